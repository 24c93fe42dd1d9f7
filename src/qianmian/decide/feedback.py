"""What comes back after a decision: responses, and customers changing their preferences.

A response is stored once (idempotent on its ``response_id``) and acts once on the decision
state:

* ``delivered``, ``opened``, ``clicked``, ``applied``, ``approved``, ``first_use`` confirm the
  decision's reservation (it is then never released by the time-out);
* ``ignored`` and ``complained`` apply the suppression rules (hide the offer; stop marketing);
* ``unsubscribed`` withdraws consent for the channel it came on (e.g. SMS "回T退订"); on a
  channel that needs no consent (the in-app banner) it opts the customer out of marketing;
* the bandit learns from the first rewarding or failing outcome of each decision
  (:func:`~qianmian.decide.bandit.outcome_reward`).

Preference changes are written to the store's ``preference_changes`` table before the live
state, so reloading customers from the store (a restart, a Redis flush) never undoes an
opt-out: loading applies them to each customer before writing it (:func:`with_preferences`,
so no other serving process ever reads the store's stale preferences), and
:func:`replay_preference_changes` applies those recorded while loading.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from qianmian.data.schema.vocab import RESPONSE_TYPES
from qianmian.decide.bandit import arm_key, outcome_reward
from qianmian.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from qianmian.decide.catalogue import Catalogue
    from qianmian.decide.log.base import DecisionLog, ResponseRecord
    from qianmian.decide.state.base import CustomerContactState, DecisionState
    from qianmian.features.online.base import OnlineFeatureStore
    from qianmian.store.base import Store

__all__ = [
    "CONFIRMING",
    "PREFERENCE_TABLE",
    "RESPONSE_OUTCOMES",
    "apply_response",
    "now_china",
    "record_preferences",
    "replay_preference_changes",
    "with_preferences",
]

PREFERENCE_TABLE = "preference_changes"
RESPONSE_OUTCOMES = (*RESPONSE_TYPES.values, "ignored")
CONFIRMING = frozenset({"delivered", "opened", "clicked", "applied", "approved", "first_use"})
_IDEMPOTENCY_SECONDS = 90 * 86_400
_CHINA = timezone(timedelta(hours=8))


def now_china() -> datetime:
    """The current time, naive China time (as every time in the bank's data)."""
    return datetime.now(_CHINA).replace(tzinfo=None)


def apply_response(
    response: ResponseRecord,
    *,
    state: DecisionState,
    log: DecisionLog,
    catalogue: Catalogue,
    features: OnlineFeatureStore,
    learned: Callable[[str], None] | None = None,
) -> bool:
    """Store ``response`` and act on it once; False if it was seen before.

    ``learned`` is called with the bandit arm's key when its counts change.
    """
    if response.response_type not in RESPONSE_OUTCOMES:
        raise ValidationError(
            f"response_type '{response.response_type}' is not one of {', '.join(RESPONSE_OUTCOMES)}."
        )
    decision = log.get(response.decision_id) if response.decision_id else None
    if response.decision_id and decision is None:
        raise NotFoundError(
            f"decision_id '{response.decision_id}' is not in the decision log; a response must "
            "refer to a decision made here (or give no decision_id)."
        )
    offer = _presented(decision, response.offer_id)
    # the state's own idempotency key: a retry after a log failure still acts exactly once
    if state.first_time(f"response:{response.response_id}", _IDEMPOTENCY_SECONDS):
        _act(response, offer, state, catalogue, features, learned)
    return log.record_response(response)


def _presented(decision: Mapping[str, Any] | None, offer_id: str | None) -> dict[str, Any]:
    """The presented offer the response is about (the first, unless ``offer_id`` says)."""
    if decision is None:
        return {"offer_id": offer_id}
    offers = decision.get("offers") or []
    for offer in offers:
        if offer_id is None or offer.get("offer_id") == offer_id:
            return dict(offer)
    return {"offer_id": offer_id}


def _act(
    response: ResponseRecord,
    offer: Mapping[str, Any],
    state: DecisionState,
    catalogue: Catalogue,
    features: OnlineFeatureStore,
    learned: Callable[[str], None] | None,
) -> None:
    kind, offer_id, channel = response.response_type, offer.get("offer_id"), offer.get("channel")
    reservation = offer.get("reservation_id")
    if kind in CONFIRMING and reservation:
        state.confirm(reservation)
    if kind == "ignored" and offer_id:
        state.record_outcome(
            response.customer_id, offer_id, "ignored", response.ts, catalogue.suppression_rules()
        )
    if kind == "complained" and offer_id:
        state.record_outcome(
            response.customer_id, offer_id, "complained", response.ts, catalogue.suppression_rules()
        )
    if kind == "unsubscribed":
        if channel and catalogue.channels[channel].needs_consent:
            state.set_preferences(response.customer_id, consents={channel: False})
        else:
            state.set_preferences(response.customer_id, marketing_opt_out=True)
    reward = outcome_reward(kind)
    if (
        reward is not None
        and offer_id
        and channel
        and response.decision_id
        and state.first_time(f"reward:{response.decision_id}", _IDEMPOTENCY_SECONDS)
    ):
        vector = features.get(response.customer_id) or {}
        bucket = str(vector.get("lifecycle_stage") or "unknown")
        key = arm_key(offer_id, channel, bucket)
        state.bandit_update(key, *reward)
        if learned is not None:
            learned(key)


def record_preferences(
    store: Store | None,
    state: DecisionState,
    customer_id: int,
    *,
    consents: Mapping[str, bool] | None,
    marketing_opt_out: bool | None,
    personalisation_opt_out: bool | None,
    actor: str,
    ts: datetime | None = None,
) -> CustomerContactState:
    """Change preferences: written to the store first (if any), then to the live state."""
    if state.customer(customer_id) is None:
        raise NotFoundError(f"Customer {customer_id} is not known to the decision state.")
    if store is not None:
        row = {
            "customer_id": [customer_id],
            "ts": [ts or now_china()],
            "consents": [json.dumps(dict(consents)) if consents else None],
            "marketing_opt_out": [marketing_opt_out],
            "personalisation_opt_out": [personalisation_opt_out],
            "actor": [actor],
        }
        schema = pa.schema(
            [
                ("customer_id", pa.int64()),
                ("ts", pa.timestamp("us")),
                ("consents", pa.string()),
                ("marketing_opt_out", pa.bool_()),
                ("personalisation_opt_out", pa.bool_()),
                ("actor", pa.string()),
            ]
        )
        store.write(PREFERENCE_TABLE, pa.table(row, schema=schema), mode="append")
    return state.set_preferences(
        customer_id,
        consents=consents,
        marketing_opt_out=marketing_opt_out,
        personalisation_opt_out=personalisation_opt_out,
    )


# A customer's net preference change: consents changed (channel → on), then the opt-outs
# (None: unchanged). Applying the net change once never shows an intermediate state.
_NetChange = tuple[dict[str, bool], bool | None, bool | None]


def _net_changes(store: Store) -> tuple[int, dict[int, _NetChange]]:
    """How many changes are stored, and each customer's net change, folded in time order."""
    if not store.has_table(PREFERENCE_TABLE):
        return 0, {}
    rows = store.query(f'SELECT * FROM "{PREFERENCE_TABLE}" ORDER BY ts').to_pylist()
    net: dict[int, _NetChange] = {}
    for row in rows:
        consents, marketing, personalisation = net.get(int(row["customer_id"]), ({}, None, None))
        consents = {**consents, **(json.loads(row["consents"]) if row["consents"] else {})}
        if row["marketing_opt_out"] is not None:
            marketing = bool(row["marketing_opt_out"])
        if row["personalisation_opt_out"] is not None:
            personalisation = bool(row["personalisation_opt_out"])
        net[int(row["customer_id"])] = (consents, marketing, personalisation)
    return len(rows), net


def with_preferences(store: Store) -> Callable[[CustomerContactState], CustomerContactState]:
    """A function that applies the stored preference changes to a customer read from the store.

    Loading customers through it never shows a serving process (sharing the decision state)
    the store's older consents or opt-outs, not even until :func:`replay_preference_changes`.

    Parameters
    ----------
    store : Store
        Holds the ``preference_changes`` table (none: customers are returned unchanged).

    Returns
    -------
    callable
        ``CustomerContactState`` → the same with every stored change applied, in time order.

    Examples
    --------
    >>> from qianmian.decide.state.base import CustomerContactState
    >>> from qianmian.decide.state.memory import MemoryDecisionState
    >>> from qianmian.store.duckdb import DuckDBStore
    >>> as_imported = CustomerContactState(7, frozenset({"sms", "email"}))
    >>> with DuckDBStore(":memory:") as store:
    ...     state = MemoryDecisionState()
    ...     _ = state.load_customers([as_imported])
    ...     _ = record_preferences(store, state, 7, consents={"sms": False},
    ...                            marketing_opt_out=True, personalisation_opt_out=None, actor="app")
    ...     loaded = with_preferences(store)(as_imported)
    >>> sorted(loaded.consents), loaded.marketing_opt_out
    (['email'], True)
    """
    _, net = _net_changes(store)

    def apply(customer: CustomerContactState) -> CustomerContactState:
        change = net.get(customer.customer_id)
        if change is None:
            return customer
        consents, marketing, personalisation = change
        on = {c for c, yes in consents.items() if yes}
        return replace(
            customer,
            consents=frozenset((customer.consents | on) - (consents.keys() - on)),
            marketing_opt_out=customer.marketing_opt_out if marketing is None else marketing,
            personalisation_opt_out=(
                customer.personalisation_opt_out if personalisation is None else personalisation
            ),
        )

    return apply


def replay_preference_changes(store: Store, state: DecisionState) -> int:
    """Apply every stored preference change to ``state`` (each customer's net change at once);
    return how many changes are stored."""
    count, net = _net_changes(store)
    for customer_id, (consents, marketing, personalisation) in net.items():
        try:
            state.set_preferences(
                customer_id,
                consents=consents or None,
                marketing_opt_out=marketing,
                personalisation_opt_out=personalisation,
            )
        except NotFoundError:
            continue  # the customer left the bank's tables since; nothing to apply
    return count
