"""How a :class:`~qianmian.decide.decision.Decision` is stored: one row, candidates inside.

Each decision becomes **one** row of the ``decisions`` table: the scalar columns of
:data:`~qianmian.decide.log.base.DECISION_COLUMNS` (for filtering and analytics), then its
candidates as one JSON array and the rest of the decision (the request's event, every offer
presented with its copy and reasons) as one JSON object. One row per decision keeps writes cheap
(500 decisions a second with 30 candidates each is 500 rows, not 15,500); the backends unnest the
candidates into :data:`~qianmian.decide.log.base.CANDIDATE_COLUMNS` when asked. Both backends
build their Arrow results with the schemas defined here, so they return the same types.

Times are naive China time (UTC+8); an aware ``datetime`` is converted. JSON is written by
orjson.

>>> from datetime import datetime
>>> from qianmian.decide.decision import Candidate, Decision, DecisionRequest
>>> request = DecisionRequest(customer_id=7, ts=datetime(2026, 11, 11, 20, 15))
>>> decision = Decision("d-1", request, offers=[], candidates=[Candidate("o1", "t1", "sms", None)])
>>> row = decision_row(decision)
>>> row["customer_id"], row["n_candidates"], row["offer_id"], row["model_versions"]
(7, 1, None, '{}')
>>> candidate_rows(decision)[0]["presented_rank"] is None
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pyarrow as pa

from qianmian.decide.decision import Candidate, ChosenOffer, Decision, DecisionRequest
from qianmian.decide.log.base import (
    AUDIT_COLUMNS,
    CANDIDATE_COLUMNS,
    DECISION_COLUMNS,
    RESPONSE_COLUMNS,
)

__all__ = [
    "AUDIT_SCHEMA",
    "CANDIDATE_FIELDS",
    "CANDIDATE_SCHEMA",
    "DECISION_SCHEMA",
    "RESPONSE_SCHEMA",
    "STORED_COLUMNS",
    "arrow_table",
    "candidate_rows",
    "candidates_table",
    "china_naive",
    "decision_document",
    "decision_row",
    "joined_document",
    "row_from_spool",
    "spool_line",
    "stored_text",
    "where_clause",
]

_CHINA = timezone(timedelta(hours=8))  # no daylight saving since 1991
_STRING, _FLOAT, _INT, _TS = pa.string(), pa.float64(), pa.int64(), pa.timestamp("us")

#: Columns of the stored ``decisions`` row: the queryable ones, then the JSON parts.
STORED_COLUMNS: tuple[str, ...] = (*DECISION_COLUMNS, "candidates", "document")
#: Keys of each element of the stored candidates array, in order.
CANDIDATE_FIELDS: tuple[str, ...] = (
    "offer_id",
    "treatment_id",
    "channel",
    "campaign_id",
    "personalised",
    "service",
    "removed_by",
    "reason",
    "p_response",
    "uplift",
    "value",
    "cost",
    "weight",
    "expected_value",
    "action_probability",
    "presented_rank",
)

_DECISION_TYPES = {
    "ts": _TS,
    "customer_id": _INT,
    "fallback": pa.bool_(),
    "action_probability": _FLOAT,
    "expected_value": _FLOAT,
    "n_offers": _INT,
    "n_candidates": _INT,
    "latency_ms": _FLOAT,
}
_CANDIDATE_TYPES = {
    "ts": _TS,
    "customer_id": _INT,
    **dict.fromkeys(
        ("p_response", "uplift", "value", "cost", "weight", "expected_value", "action_probability"),
        _FLOAT,
    ),
    "presented_rank": _INT,
}
DECISION_SCHEMA = pa.schema([(c, _DECISION_TYPES.get(c, _STRING)) for c in DECISION_COLUMNS])
CANDIDATE_SCHEMA = pa.schema([(c, _CANDIDATE_TYPES.get(c, _STRING)) for c in CANDIDATE_COLUMNS])
RESPONSE_SCHEMA = pa.schema(
    [
        (c, {"customer_id": _INT, "ts": _TS, "value": _FLOAT}.get(c, _STRING))
        for c in RESPONSE_COLUMNS
    ]
)
AUDIT_SCHEMA = pa.schema([(c, _TS if c == "ts" else _STRING) for c in AUDIT_COLUMNS])


def china_naive(ts: datetime) -> datetime:
    """``ts`` as naive China time (aware times are converted, naive ones taken as China time).

    >>> china_naive(datetime(2026, 1, 1, 0, 0, tzinfo=timezone.utc))
    datetime.datetime(2026, 1, 1, 8, 0)
    """
    if ts.tzinfo is None:
        return ts
    return ts.astimezone(_CHINA).replace(tzinfo=None)


def stored_text(ts: datetime) -> str:
    """``ts`` as fixed-width text that sorts as time does (SQLite stores times this way).

    >>> stored_text(datetime(2026, 11, 11, 20, 15))
    '2026-11-11 20:15:00.000000'
    """
    return china_naive(ts).isoformat(sep=" ", timespec="microseconds")


def _dumps(value: Any) -> bytes:
    """JSON of ``value``; numpy scalars as numbers, anything else orjson lacks (Decimal) as text."""
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


def _json_compatible(value: Any) -> Any:
    """``value`` with every non-JSON type (datetime, numpy scalar, Decimal ...) made JSON."""
    return orjson.loads(_dumps(value))


def _float(value: float | None) -> float | None:
    """A plain float (numpy scalars are not accepted by every database driver)."""
    return None if value is None else float(value)


def _request_document(request: DecisionRequest) -> dict[str, Any]:
    return {
        "customer_id": int(request.customer_id),
        "ts": china_naive(request.ts).isoformat(),
        "channel": request.channel,
        "placement": request.placement,
        "event": None if request.event is None else _json_compatible(dict(request.event)),
        "campaign_id": request.campaign_id,
        "max_offers": request.max_offers,
        "request_id": request.request_id,
    }


def _offer_document(offer: ChosenOffer) -> dict[str, Any]:
    return {
        "rank": offer.rank,
        "offer_id": offer.offer_id,
        "treatment_id": offer.treatment_id,
        "channel": offer.channel,
        "campaign_id": offer.campaign_id,
        "name": offer.name,
        "copy": offer.copy,
        "expected_value": offer.expected_value,
        "action_probability": offer.action_probability,
        "reasons": list(offer.reasons),
        "reservation_id": offer.reservation_id,
        "service": offer.service,
    }


def _presented_ranks(decision: Decision) -> dict[int, int]:
    """Candidate index → rank of the offer it was presented as (each offer matches one)."""
    ranks: dict[int, int] = {}
    for offer in decision.offers:
        key = (offer.offer_id, offer.treatment_id, offer.channel, offer.campaign_id)
        matches = [
            i
            for i, c in enumerate(decision.candidates)
            if (c.offer_id, c.treatment_id, c.channel, c.campaign_id) == key and i not in ranks
        ]
        # a presented offer survived every stage; prefer the kept candidate if names repeat
        kept = [i for i in matches if decision.candidates[i].removed_by is None]
        if kept or matches:
            ranks[(kept or matches)[0]] = offer.rank
    return ranks


def _candidate_entry(candidate: Candidate, rank: int | None) -> dict[str, Any]:
    return {
        "offer_id": candidate.offer_id,
        "treatment_id": candidate.treatment_id,
        "channel": candidate.channel,
        "campaign_id": candidate.campaign_id,
        "personalised": candidate.personalised,
        "service": candidate.service,
        "removed_by": candidate.removed_by,
        "reason": candidate.reason,
        "p_response": candidate.p_response,
        "uplift": candidate.uplift,
        "value": candidate.value,
        "cost": candidate.cost,
        "weight": candidate.weight,
        "expected_value": candidate.expected_value,
        "action_probability": candidate.action_probability,
        "presented_rank": rank,
    }


def _candidate_entries(decision: Decision) -> list[dict[str, Any]]:
    ranks = _presented_ranks(decision)
    return [_candidate_entry(c, ranks.get(i)) for i, c in enumerate(decision.candidates)]


def _head(decision: Decision) -> dict[str, Any]:
    """Everything in the decision document except the candidates."""
    return {
        "decision_id": decision.decision_id,
        "ts": china_naive(decision.request.ts).isoformat(),
        "request": _request_document(decision.request),
        "arm": decision.arm,
        "fallback": decision.fallback,
        "fallback_reason": decision.fallback_reason,
        "offers": [_offer_document(o) for o in decision.offers],
        "model_versions": dict(decision.model_versions),
        "feature_ref": decision.feature_ref,
        "catalogue_version": decision.catalogue_version,
        "latency_ms": decision.latency_ms,
    }


def decision_document(decision: Decision) -> dict[str, Any]:
    """The whole decision as JSON-compatible values: what :meth:`DecisionLog.get` returns.

    Keys: ``decision_id``, ``ts`` (ISO text), ``request`` (with its ``event``), ``arm``,
    ``fallback``, ``fallback_reason``, ``offers`` (each with rank, copy and reasons),
    ``model_versions``, ``feature_ref``, ``catalogue_version``, ``latency_ms`` and
    ``candidates`` (each with the keys of :data:`CANDIDATE_FIELDS`).
    """
    return {**_head(decision), "candidates": _candidate_entries(decision)}


def joined_document(head: Mapping[str, Any], candidates: Sequence[Any]) -> dict[str, Any]:
    """The stored ``document`` and ``candidates`` parts joined back into one decision document."""
    return {**head, "candidates": list(candidates)}


def decision_row(decision: Decision) -> dict[str, Any]:
    """The stored ``decisions`` row: :data:`STORED_COLUMNS` → values.

    ``ts`` is a naive China ``datetime``; ``model_versions``, ``candidates`` and ``document``
    are JSON text (the last two together make :func:`decision_document`).
    """
    request, first = decision.request, decision.chosen
    event = request.event
    event_type = None if not event or event.get("type") is None else str(event["type"])
    return {
        "decision_id": decision.decision_id,
        "ts": china_naive(request.ts),
        "customer_id": int(request.customer_id),
        "requested_channel": request.channel,
        "placement": request.placement,
        "event_type": event_type,
        "campaign_filter": request.campaign_id,
        "request_id": request.request_id,
        "arm": decision.arm,
        "fallback": decision.fallback,
        "fallback_reason": decision.fallback_reason,
        "offer_id": first.offer_id if first else None,
        "treatment_id": first.treatment_id if first else None,
        "channel": first.channel if first else None,
        "campaign_id": first.campaign_id if first else None,
        "action_probability": _float(first.action_probability) if first else None,
        "expected_value": _float(first.expected_value) if first else None,
        "reservation_id": first.reservation_id if first else None,
        "n_offers": len(decision.offers),
        "n_candidates": len(decision.candidates),
        "model_versions": _dumps(dict(decision.model_versions)).decode(),
        "feature_ref": decision.feature_ref,
        "catalogue_version": decision.catalogue_version,
        "latency_ms": _float(decision.latency_ms),
        "candidates": _dumps(_candidate_entries(decision)).decode(),
        "document": _dumps(_head(decision)).decode(),
    }


def candidate_rows(decision: Decision) -> list[dict[str, Any]]:
    """One :data:`CANDIDATE_COLUMNS` row per candidate, as the backends' ``candidates()`` give."""
    ts, customer_id = china_naive(decision.request.ts), int(decision.request.customer_id)
    rows = []
    for entry in _candidate_entries(decision):
        row = {"decision_id": decision.decision_id, "ts": ts, "customer_id": customer_id}
        rows.append({c: row[c] if c in row else entry[c] for c in CANDIDATE_COLUMNS})
    return rows


def spool_line(row: Sequence[Any]) -> bytes:
    """One stored row (values in :data:`STORED_COLUMNS` order) as a JSON line for a spool file."""
    return _dumps(dict(zip(STORED_COLUMNS, row, strict=True))) + b"\n"


def row_from_spool(line: bytes) -> tuple[Any, ...]:
    """The stored row written by :func:`spool_line` (values in :data:`STORED_COLUMNS` order)."""
    values = orjson.loads(line)
    values["ts"] = datetime.fromisoformat(values["ts"])
    return tuple(values[c] for c in STORED_COLUMNS)


def arrow_table(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """Rows of Python values (times as datetimes or :func:`stored_text`) as an Arrow table."""
    columns = [[r[i] for r in rows] for i in range(len(schema))]
    return pa.Table.from_arrays(
        [_arrow_column(values, field.type) for values, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


def candidates_table(rows: Iterable[tuple[str, Any, int, str | bytes]]) -> pa.Table:
    """:data:`CANDIDATE_SCHEMA` rows unnested from stored ``(decision_id, ts, customer_id,
    candidates)`` rows (``candidates`` the JSON text :func:`decision_row` wrote), in order."""
    columns: dict[str, list[Any]] = {c: [] for c in CANDIDATE_COLUMNS}
    own = [c for c in CANDIDATE_COLUMNS if c not in ("decision_id", "ts", "customer_id")]
    for decision_id, ts, customer_id, candidates in rows:
        entries = orjson.loads(candidates)
        columns["decision_id"].extend([decision_id] * len(entries))
        columns["ts"].extend([ts] * len(entries))
        columns["customer_id"].extend([customer_id] * len(entries))
        for c in own:
            columns[c].extend([e[c] for e in entries])
    return pa.Table.from_arrays(
        [_arrow_column(columns[f.name], f.type) for f in CANDIDATE_SCHEMA], schema=CANDIDATE_SCHEMA
    )


def _arrow_column(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    """One column of Python values as ``arrow_type`` (stored text times are parsed)."""
    if pa.types.is_timestamp(arrow_type) and any(isinstance(v, str) for v in values):
        return pa.array(values, _STRING).cast(arrow_type)
    if pa.types.is_boolean(arrow_type):
        return pa.array([None if v is None else bool(v) for v in values], arrow_type)
    if pa.types.is_floating(arrow_type):
        return pa.array([None if v is None else float(v) for v in values], arrow_type)
    return pa.array(values, arrow_type)


def where_clause(
    filters: Mapping[str, Any],
    *,
    placeholder: str,
    table: str = "",
    time: Callable[[datetime], Any] = china_naive,
) -> tuple[str, list[Any]]:
    """A WHERE clause (or '') for the filters given (None: not filtered), with its parameters.

    ``since`` and ``until`` bound ``ts`` to [since, until); times are passed through ``time``.

    >>> where_clause({"customer_id": 7, "offer_id": None, "since": None}, placeholder="?")
    (' WHERE customer_id = ?', [7])
    """
    clauses, params = [], []
    for name, value in filters.items():
        if value is None:
            continue
        if name in ("since", "until"):
            clauses.append(f"{table}ts {'>=' if name == 'since' else '<'} {placeholder}")
            params.append(time(value))
        else:
            clauses.append(f"{table}{name} = {placeholder}")
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
