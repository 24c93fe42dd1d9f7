"""Customer × product interactions from the store, and the two ways of splitting them for evaluation.

An *event* is one thing a customer did with a product, with its time and strength:

==========  =====================================================  ======  ========
kind        where it comes from                                    weight  acquired
==========  =====================================================  ======  ========
holding     ``holdings`` (card, wealth, insurance), ``opened_date``   1.0     yes
loan        ``loans`` (consumer loans, instalments), ``start_date``   1.0     yes
approved    ``responses`` joined to ``offers.product_id``           1.0     yes
applied     idem                                                    0.5     no
clicked     idem                                                    0.25    no
==========  =====================================================  ======  ========

Weights are the defaults of :data:`DEFAULT_WEIGHTS`; *acquired* kinds mean the customer has the
product (it is *held*: never recommended again, never a target again). Responses to offers with
no product (cashback, limit increases, coupons) are not product interactions and are left out.

Splits (both return an :class:`InteractionSplit`):

- :func:`time_split`: events before a cutoff train; the products a customer acquires for the
  first time in ``[cutoff, cutoff + horizon)`` are the targets.
- :func:`leave_latest_out`: each customer's most recently acquired product is the target, every
  other event trains (a second protocol for when few acquisitions fall after any one cutoff).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from qianmian.errors import ValidationError, invalid_parameter
from qianmian.store.base import Store

__all__ = [
    "ACQUIRED_KINDS",
    "DEFAULT_WEIGHTS",
    "EVENT_COLUMNS",
    "InteractionSplit",
    "interaction_pairs",
    "leave_latest_out",
    "load_interactions",
    "time_split",
]

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "holding": 1.0,
    "loan": 1.0,
    "approved": 1.0,
    "applied": 0.5,
    "clicked": 0.25,
}
ACQUIRED_KINDS: frozenset[str] = frozenset({"holding", "loan", "approved"})
EVENT_COLUMNS: tuple[str, ...] = ("customer_id", "product_id", "ts", "kind", "weight", "held")
_RESPONSE_KINDS = ("clicked", "applied", "approved")

_HOLDINGS_SQL = """
SELECT customer_id, product_id, CAST(opened_date AS TIMESTAMP) AS ts, 'holding' AS kind
FROM holdings WHERE opened_date IS NOT NULL
"""
_LOANS_SQL = """
SELECT customer_id, product_id, CAST(start_date AS TIMESTAMP) AS ts, 'loan' AS kind
FROM loans WHERE start_date IS NOT NULL
"""
_RESPONSES_SQL = """
SELECT r.customer_id, o.product_id, CAST(r.ts AS TIMESTAMP) AS ts, r.response_type AS kind
FROM responses r JOIN offers o ON o.offer_id = r.offer_id
WHERE o.product_id IS NOT NULL AND r.response_type IN ('clicked', 'applied', 'approved')
"""


def _check_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    out = dict(DEFAULT_WEIGHTS)
    for kind, w in (weights or {}).items():
        if kind not in DEFAULT_WEIGHTS:
            raise invalid_parameter(
                "load_interactions", "weights", f"keyed by {sorted(DEFAULT_WEIGHTS)}", kind
            )
        if isinstance(w, bool) or not isinstance(w, int | float) or not w > 0:
            raise invalid_parameter("load_interactions", "weights", "positive numbers", w)
        out[kind] = float(w)
    return out


def load_interactions(
    store: Store,
    *,
    weights: Mapping[str, float] | None = None,
    include_loans: bool = True,
) -> pd.DataFrame:
    """Every customer × product event in the store, oldest first.

    Parameters
    ----------
    store : Store
        Needs ``holdings``; ``loans`` (unless ``include_loans=False``) and ``responses`` with
        ``offers`` are read when present.
    weights : mapping of kind → positive float, optional
        Overrides of :data:`DEFAULT_WEIGHTS` (e.g. ``{"clicked": 0.1}``).
    include_loans : bool, default=True
        Loans and instalment plans are products too (``LN-*``, ``INST-*``).

    Returns
    -------
    DataFrame
        :data:`EVENT_COLUMNS`: ``customer_id`` (int64), ``product_id`` (str), ``ts``
        (datetime64), ``kind``, ``weight`` (float), ``held`` (bool: the kind is an acquisition).
    """
    w = _check_weights(weights)
    tables = set(store.tables())
    sources = [_HOLDINGS_SQL]
    if include_loans and "loans" in tables:
        sources.append(_LOANS_SQL)
    if {"responses", "offers"} <= tables:
        sources.append(_RESPONSES_SQL)
    frame = store.query(" UNION ALL ".join(f"({s})" for s in sources)).to_pandas()
    return _as_events(frame, w)


def _as_events(frame: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    frame = frame.assign(
        customer_id=frame["customer_id"].astype("int64"),
        product_id=frame["product_id"].astype(str),
        ts=pd.to_datetime(frame["ts"]).astype("datetime64[us]"),
        kind=frame["kind"].astype(str),
    )
    frame["weight"] = frame["kind"].map(weights).astype(float)
    frame["held"] = frame["kind"].isin(ACQUIRED_KINDS)
    frame = frame.sort_values(["ts", "customer_id", "product_id", "kind"], kind="stable")
    return frame.reset_index(drop=True)[list(EVENT_COLUMNS)]


def interaction_pairs(interactions: pd.DataFrame) -> pd.DataFrame:
    """One row per customer × product: the strongest weight and whether the product is held.

    Accepts events (:func:`load_interactions`) or pairs; ``weight`` defaults to 1 and ``held``
    to True when absent.

    >>> events = pd.DataFrame({"customer_id": [1, 1, 2], "product_id": ["A", "A", "B"],
    ...                        "weight": [0.25, 1.0, 0.5], "held": [False, True, False]})
    >>> interaction_pairs(events).to_dict("list")
    {'customer_id': [1, 2], 'product_id': ['A', 'B'], 'weight': [1.0, 0.5], 'held': [True, False]}
    """
    if not isinstance(interactions, pd.DataFrame):
        raise ValidationError(
            "interactions must be a pandas DataFrame with customer_id and product_id columns; "
            f"got {type(interactions).__name__}."
        )
    missing = [c for c in ("customer_id", "product_id") if c not in interactions.columns]
    if missing:
        raise ValidationError(
            f"interactions lack the column(s) {', '.join(missing)}; each row needs the customer "
            "and the product."
        )
    frame = interactions
    if frame["customer_id"].isna().any() or frame["product_id"].isna().any():
        raise ValidationError("interactions have missing customer_id or product_id values.")
    weight = frame["weight"] if "weight" in frame.columns else pd.Series(1.0, index=frame.index)
    weight = pd.to_numeric(weight, errors="coerce")
    if not (np.isfinite(weight.to_numpy(float)).all() and (weight > 0).all()):
        raise ValidationError("interactions.weight must be finite and positive on every row.")
    held = frame["held"] if "held" in frame.columns else pd.Series(True, index=frame.index)
    pairs = (
        pd.DataFrame(
            {
                "customer_id": frame["customer_id"].astype("int64").to_numpy(),
                "product_id": frame["product_id"].astype(str).to_numpy(),
                "weight": weight.to_numpy(float),
                "held": held.astype(bool).to_numpy(),
            }
        )
        .groupby(["customer_id", "product_id"], sort=True)
        .agg(weight=("weight", "max"), held=("held", "any"))
        .reset_index()
    )
    return pairs


@dataclass(frozen=True)
class InteractionSplit:
    """Training events and the products each evaluated customer should be recommended.

    Attributes
    ----------
    train : DataFrame
        Events (:data:`EVENT_COLUMNS`) the models may learn from.
    targets : DataFrame
        ``customer_id``, ``product_id``: what each customer went on to acquire (none of it held
        in ``train``).
    protocol : str
        ``"time"`` or ``"leave_latest_out"``.
    as_of : datetime
        When the recommendations are made: the cutoff, or the end of the events
        (leave-latest-out); side features must be computed as of it.
    """

    train: pd.DataFrame
    targets: pd.DataFrame
    protocol: str
    as_of: datetime

    @property
    def customers(self) -> np.ndarray:
        """The evaluated customers: those with at least one target, sorted."""
        return np.unique(self.targets["customer_id"].to_numpy(np.int64))


def _as_datetime(value: date | datetime | str, name: str) -> datetime:
    try:
        return pd.Timestamp(value).to_pydatetime()
    except (TypeError, ValueError) as e:
        raise invalid_parameter("time_split", name, "a date, datetime or ISO string", value) from e


def _check_events(events: pd.DataFrame) -> None:
    missing = [c for c in EVENT_COLUMNS if c not in getattr(events, "columns", ())]
    if missing:
        raise ValidationError(
            f"events lack the column(s) {', '.join(missing)}; pass the frame "
            "load_interactions() returns."
        )


def _first_acquisitions(events: pd.DataFrame) -> pd.DataFrame:
    acquired = events.loc[events["held"].to_numpy(bool), ["customer_id", "product_id", "ts"]]
    return acquired.groupby(["customer_id", "product_id"], sort=True)["ts"].min().reset_index()


def time_split(
    events: pd.DataFrame,
    cutoff: date | datetime | str,
    horizon_days: int,
    *,
    customers: Sequence[int] | np.ndarray | None = None,
) -> InteractionSplit:
    """Train on events before ``cutoff``; test on first acquisitions in the horizon after it.

    Parameters
    ----------
    events : DataFrame
        From :func:`load_interactions`.
    cutoff : date, datetime or ISO string
    horizon_days : int >= 1
    customers : sequence of int, optional
        Customers that may be evaluated (e.g. those who had signed up before the cutoff).
        Default: those with at least one event before the cutoff; a customer who joined later
        cannot be recommended anything at the cutoff.

    Returns
    -------
    InteractionSplit
        Targets: products first acquired in ``[cutoff, cutoff + horizon_days)`` by an eligible
        customer who did not hold them before the cutoff.

    Examples
    --------
    >>> ev = pd.DataFrame({"customer_id": [1, 1, 1, 2], "product_id": ["A", "B", "A", "C"],
    ...                    "ts": pd.to_datetime(["2026-01-05", "2026-03-02", "2026-03-09",
    ...                                          "2026-03-01"]),
    ...                    "kind": "holding", "weight": 1.0, "held": True})
    >>> split = time_split(ev, "2026-03-01", 30)
    >>> split.targets.to_dict("list")
    {'customer_id': [1], 'product_id': ['B']}
    """
    _check_events(events)
    at = _as_datetime(cutoff, "cutoff")
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 1:
        raise invalid_parameter("time_split", "horizon_days", "a positive int", horizon_days)
    end = at + timedelta(days=horizon_days)
    ts = events["ts"]
    train = events.loc[ts < at].reset_index(drop=True)
    first = _first_acquisitions(events)
    fresh = first.loc[(first["ts"] >= at) & (first["ts"] < end)]
    eligible = np.unique(train["customer_id"].to_numpy(np.int64))
    if customers is not None:
        eligible = np.intersect1d(eligible, np.asarray(customers, dtype=np.int64))
    fresh = fresh.loc[fresh["customer_id"].isin(eligible)]
    targets = fresh[["customer_id", "product_id"]].reset_index(drop=True)
    return InteractionSplit(train=train, targets=targets, protocol="time", as_of=at)


def leave_latest_out(events: pd.DataFrame, *, min_products: int = 2) -> InteractionSplit:
    """Hold out each customer's most recently acquired product (ties: all products of that day).

    Parameters
    ----------
    events : DataFrame
        From :func:`load_interactions`.
    min_products : int >= 2, default=2
        Only customers who acquired at least this many distinct products are evaluated (so that
        something remains to learn from).

    Returns
    -------
    InteractionSplit
        ``train``: every event except those of held-out (customer, product) pairs; ``as_of``: the
        latest event time plus one day.
    """
    _check_events(events)
    if isinstance(min_products, bool) or not isinstance(min_products, int) or min_products < 2:
        raise invalid_parameter("leave_latest_out", "min_products", "an int >= 2", min_products)
    first = _first_acquisitions(events)
    counts = first.groupby("customer_id")["product_id"].transform("size")
    latest = first.groupby("customer_id")["ts"].transform("max")
    chosen = first.loc[(counts >= min_products) & (first["ts"] == latest)]
    # A customer whose every product was acquired the same day has no history left: skip them.
    n_chosen = chosen.groupby("customer_id")["product_id"].transform("size")
    chosen = chosen.loc[n_chosen < counts.loc[chosen.index]]
    targets = chosen[["customer_id", "product_id"]].reset_index(drop=True)
    key = pd.MultiIndex.from_frame(events[["customer_id", "product_id"]])
    drop = key.isin(pd.MultiIndex.from_frame(targets))
    train = events.loc[~drop].reset_index(drop=True)
    as_of = (pd.Timestamp(events["ts"].max()).normalize() + pd.Timedelta(days=1)).to_pydatetime()
    return InteractionSplit(train=train, targets=targets, protocol="leave_latest_out", as_of=as_of)
