"""Real-time triggers as policy as code: a moment (an event) and a rule → offers, via the engine.

"A customer just paid ¥5,000 at a furniture store → a 12-period interest-free instalment
coupon within seconds." Triggers are declared in YAML (the packaged ``triggers.yaml``, or a
bank's own file), one mapping per trigger::

    triggers:
      - id: big_home_purchase_instalment     # snake_case, unique
        name_zh: 家装大额消费送免息分期券
        name_en: Big home-improvement purchase → interest-free instalments
        description_zh: 客户刚在家装商户刷卡5000元及以上 ...
        description_en: A customer has just paid ¥5,000 or more at a furniture store ...
        on: [transaction]                    # event types it listens to
        when: event_amount >= 5000 AND event_category = '家装'
        offers: [OF-INST-12, OF-INST-6]      # candidate offers, ids in the offer catalogue
        max_offers: 1                        # at most this many at once (default: all, ≤ 5)
        channel: app_push                    # or null: the engine chooses
        ttl_seconds: 300                     # older events fire nothing (the moment passed)
        cooldown_seconds: 86400              # per customer × trigger; 0 = none
        start_date: 2026-11-01               # optional, inclusive, by the event's date
        end_date: 2026-11-11
        priority: 30                         # lower first when one event matches several

``when`` is a rule in the tag rule language (:mod:`qianmian.features.rules`) over the decision
fields (:func:`~qianmian.decide.rule_fields.decision_fields`): the customer's live features,
their tags as ``tag_<id>``, and the event as ``event_type``, ``event_amount``,
``event_category``, ``event_page``, ``hour``, ``weekday``, ``day`` and ``month``. The file is
checked at load (:mod:`qianmian.stream.triggers_schema`); an error names the file, the line
and the trigger.

Firing (:func:`fire`) hands the trigger's offers to the decision engine, which checks them as
it checks any request — consent, opt-out, caps, budgets, eligibility, suitability — and may
answer nothing. In order:

1. **Too late** — an event older than ``ttl_seconds`` when processed is ``"stale"``: nothing
   is asked, nothing is logged.
2. **Once per event** — the key ``fired:<event id>:<trigger id>`` is claimed in the decision
   state (kept 7 days); if it was claimed before, the event is a redelivery and the result is
   ``"duplicate"``: a redelivered event never sends a second offer. The claim comes *before*
   the decision, so a consumer that crashes between the two loses that one offer (the
   redelivery finds the claim) — it never sends it twice.
3. **The decision** — one :class:`~qianmian.decide.decision.DecisionRequest` at the event's
   time with the trigger's offers, channel and ``max_offers``, the request id
   ``<event id>:<trigger id>`` and the cooldown key ``trigger:<trigger id>:<customer id>``,
   reserved by the engine atomically with the caps. The cooldown holds once the channel
   confirms sending (an unconfirmed reservation, and its cooldown, is released after the
   catalogue's ``reservation_ttl_seconds``).

>>> triggers = TriggerSet.load()
>>> event = {"type": "transaction", "amount": 5200.0, "category": "家装"}
>>> row = trigger_row({}, "transaction", event, datetime(2026, 9, 15, 14, 30),
...                   fields=triggers.fields_used)
>>> [t.id for t in triggers.matching("transaction", row, date(2026, 9, 15))]
['big_home_purchase_instalment']
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from qianmian.decide.decision import ChosenOffer, Decision, DecisionRequest
from qianmian.decide.rule_fields import TAG_PREFIX, context_row, decision_fields, tag_row
from qianmian.errors import ConfigError, NotFoundError, QianmianError, ValidationError
from qianmian.stream.triggers_schema import (
    MAX_OFFERS,
    TRIGGER_EVENTS,
    Trigger,
    TriggerSpec,
    parse_triggers,
)

if TYPE_CHECKING:
    from qianmian.decide.catalogue import Catalogue
    from qianmian.decide.engine import DecisionEngine
    from qianmian.features.tags import TagLibrary

__all__ = [
    "IDEMPOTENCY_SECONDS",
    "MAX_OFFERS",
    "TRIGGER_EVENTS",
    "FireResult",
    "FireStatus",
    "Trigger",
    "TriggerSet",
    "TriggerSpec",
    "fire",
    "trigger_row",
]

logger = logging.getLogger(__name__)

IDEMPOTENCY_SECONDS = 7 * 24 * 3600  # far beyond any trigger's time-to-live (at most a day)
_CHINA = timezone(timedelta(hours=8))

FireStatus = Literal["decided", "stale", "duplicate"]


class TriggerSet:
    """An ordered set of triggers with unique ids, indexed by the event types they listen to.

    Parameters
    ----------
    triggers : iterable of Trigger

    Examples
    --------
    >>> triggers = TriggerSet.load()
    >>> [t.id for t in triggers.for_event("login")]
    ['double11_instalment_limit', 'login_steady_wealth_instalment']
    >>> triggers["fund_page_comparison"].offers
    ('OF-WM-R3', 'OF-WM-R4')
    """

    def __init__(self, triggers: Iterable[Trigger]) -> None:
        self._triggers: dict[str, Trigger] = {}
        for trigger in triggers:
            if trigger.id in self._triggers:
                raise ConfigError(
                    f"The trigger id '{trigger.id}' is used twice; trigger ids must be unique."
                )
            self._triggers[trigger.id] = trigger
        ordered = sorted(self._triggers.values(), key=lambda t: t.priority)  # stable: file order
        self._by_event: dict[str, tuple[Trigger, ...]] = {
            kind: tuple(t for t in ordered if kind in t.on) for kind in TRIGGER_EVENTS
        }
        self._fields = tuple(
            sorted({f for t in self._triggers.values() for f in t.rule.fields_used})
        )

    # ---- building ---------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        catalogue: Catalogue | None = None,
        tags: TagLibrary | None = None,
    ) -> TriggerSet:
        """Read triggers from YAML (default: the file shipped with qianmian).

        ``catalogue``, when given, must hold every offer a trigger names; ``tags`` is the tag
        library rules read as ``tag_<id>`` (default: the packaged one).
        """
        if path is None:
            text = resources.files("qianmian.stream").joinpath("triggers.yaml").read_text("utf-8")
            return cls.from_yaml(text, "triggers.yaml", catalogue=catalogue, tags=tags)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"The trigger file '{path}' does not exist; check the path, or omit it to use "
                "the packaged triggers."
            ) from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"The trigger file '{path}' is not UTF-8 text: {e}.") from e
        return cls.from_yaml(text, str(path), catalogue=catalogue, tags=tags)

    @classmethod
    def from_yaml(
        cls,
        text: str,
        name: str = "<triggers>",
        *,
        catalogue: Catalogue | None = None,
        tags: TagLibrary | None = None,
    ) -> TriggerSet:
        """Build a set from YAML text; errors name ``name``, the line and the trigger.

        Raises
        ------
        ConfigError
            A key is unknown or invalid, an id is used twice, or an offer is not in
            ``catalogue`` (see :func:`~qianmian.stream.triggers_schema.parse_triggers`).
        RuleError
            A rule does not parse or reads an unknown field.
        """
        return cls(parse_triggers(text, name, fields=decision_fields(tags), catalogue=catalogue))

    # ---- looking up -------------------------------------------------------------------------
    @property
    def triggers(self) -> tuple[Trigger, ...]:
        """Every trigger, in file order."""
        return tuple(self._triggers.values())

    @property
    def fields_used(self) -> tuple[str, ...]:
        """Every field some trigger's rule reads, sorted (``tag_*`` fields included)."""
        return self._fields

    def for_event(self, event_type: str) -> list[Trigger]:
        """The triggers listening to ``event_type``, by priority (empty for other types)."""
        return list(self._by_event.get(event_type, ()))

    def matching(self, event_type: str, row: Mapping[str, Any], day: date) -> list[Trigger]:
        """The triggers an event sets off, by priority.

        Parameters
        ----------
        event_type : str
            The event's type (``transaction``, ``login`` ...).
        row : mapping
            The values rules read, as :func:`trigger_row` builds them: the customer's features,
            the event's context fields and the ``tag_`` fields of :attr:`fields_used`.
        day : date
            The event's date (China time), checked against each trigger's dates.
        """
        if isinstance(day, datetime):  # a datetime never compares with a date
            day = day.date()
        found = []
        for trigger in self._by_event.get(event_type, ()):
            if not trigger.live_on(day):
                continue
            try:
                if trigger.rule.evaluate_one(row):
                    found.append(trigger)
            except QianmianError as e:
                raise type(e)(f"Trigger '{trigger.id}' ({trigger.name_zh}): {e}") from e
        return found

    def __len__(self) -> int:
        return len(self._triggers)

    def __iter__(self) -> Iterator[Trigger]:
        return iter(self._triggers.values())

    def __contains__(self, trigger_id: object) -> bool:
        return trigger_id in self._triggers

    def __getitem__(self, trigger_id: str) -> Trigger:
        try:
            return self._triggers[trigger_id]
        except KeyError:
            from difflib import get_close_matches

            near = get_close_matches(trigger_id, self._triggers, n=3)
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise NotFoundError(f"There is no trigger '{trigger_id}'.{hint}") from None


def trigger_row(
    features: Mapping[str, Any],
    event_type: str,
    event_context: Mapping[str, Any] | None,
    ts: datetime,
    tags: TagLibrary | None = None,
    fields: Iterable[str] = (),
) -> dict[str, Any]:
    """The values trigger rules read for one event: features, context and the tags used.

    Parameters
    ----------
    features : mapping
        The customer's live feature vector (feature → value); empty when unknown.
    event_type : str
        The event's type; it wins over a ``type`` in ``event_context``.
    event_context : mapping or None
        ``{"amount", "category", "page"}`` of the event (missing keys are unknown).
    ts : datetime
        The event's time (naive China time; an aware one is converted).
    tags : TagLibrary, optional
        The library ``tag_`` fields are evaluated with (default: the packaged one).
    fields : iterable of str
        The fields the rules read (:attr:`TriggerSet.fields_used`): only these tags are
        evaluated, and any of them the features lack is set to None (unknown), so a rule never
        fails for a missing value — it is false.

    Returns
    -------
    dict
        The features, then the context fields as the engine sees them
        (:func:`~qianmian.decide.rule_fields.context_row`; ``channel`` and ``placement`` None),
        then ``tag_<id>`` booleans.

    Examples
    --------
    >>> row = trigger_row({"spend_90d": 36000.0}, "login", None, datetime(2026, 11, 11, 9),
    ...                   fields=["tag_monthly_spend_over_10k", "loans_180d"])
    >>> row["event_type"], row["weekday"], row["tag_monthly_spend_over_10k"], row["loans_180d"]
    ('login', 3, True, None)
    """
    names = tuple(fields)
    row: dict[str, Any] = {n: None for n in names if not n.startswith(TAG_PREFIX)}
    row.update(features)
    event = {**(event_context or {}), "type": event_type}
    # context_row reads only the request's time and event: the customer id is not used
    row.update(context_row(DecisionRequest(0, _china_time(ts), event=event)))
    row.update(tag_row(names, features, tags))
    return row


@dataclass(frozen=True, slots=True)
class FireResult:
    """What firing a trigger for one event came to.

    ``status`` is ``"stale"`` (the event outlived the trigger's ``ttl_seconds``; nothing was
    asked), ``"duplicate"`` (this event already fired this trigger; nothing was asked) or
    ``"decided"`` (the engine answered: ``decision`` holds its answer, logged).
    :attr:`fired` is True when that answer presents at least one offer.
    """

    trigger_id: str
    event_id: str
    customer_id: int
    status: FireStatus
    age_seconds: float
    decision: Decision | None = None

    @property
    def fired(self) -> bool:
        return self.decision is not None and bool(self.decision.offers)

    @property
    def offers(self) -> list[ChosenOffer]:
        """The offers presented (empty unless :attr:`fired`)."""
        return list(self.decision.offers) if self.decision is not None else []


def fire(
    trigger: Trigger,
    *,
    engine: DecisionEngine,
    customer_id: int,
    event_id: str | int,
    event_ts: datetime,
    event_context: Mapping[str, Any],
    now: datetime,
) -> FireResult:
    """Put a matched trigger's offers to the decision engine, once per event, while it is fresh.

    See the module docstring for the three steps (stale, duplicate, decided) and why a crash
    between the claim and the decision loses an offer rather than sending it twice.

    Parameters
    ----------
    trigger : Trigger
        A trigger :meth:`TriggerSet.matching` returned for the event.
    engine : DecisionEngine
        Decides, reserves caps, budgets and the cooldown, and logs.
    customer_id : int
    event_id : str or int
        The event's idempotency key (unique across redeliveries of the same event).
    event_ts : datetime
        When the event happened (naive China time; an aware one is converted). The decision is
        made at this time.
    event_context : mapping
        ``{"type", "amount", "category", "page"}`` of the event; ``type`` must be one the
        trigger listens to.
    now : datetime
        The processing time, for the time-to-live.

    Returns
    -------
    FireResult

    Raises
    ------
    ValidationError
        ``event_context`` has no ``type`` the trigger listens to, or the engine refuses the
        request (an offer no longer in its catalogue).
    NotFoundError
        The engine knows nothing of the customer.
    StoreError
        The decision state or the decision log failed. After a failed claim nothing happened;
        after a failed decision the claim stands, so the event's offer is lost, not repeated.
    """
    kind = event_context.get("type")
    if kind not in trigger.on:
        raise ValidationError(
            f"event_context has type {kind!r}, but trigger '{trigger.id}' fires on "
            f"{', '.join(trigger.on)}; pass the event's type as event_context['type']."
        )
    key = str(event_id)
    event_ts, now = _china_time(event_ts), _china_time(now)
    age = (now - event_ts).total_seconds()
    if age > trigger.ttl_seconds:
        logger.debug("Event %s is %.0f s old; trigger %s has passed.", key, age, trigger.id)
        return FireResult(trigger.id, key, customer_id, "stale", age)
    if not engine.state.first_time(f"fired:{key}:{trigger.id}", IDEMPOTENCY_SECONDS):
        logger.info("Event %s already fired trigger %s; not deciding again.", key, trigger.id)
        return FireResult(trigger.id, key, customer_id, "duplicate", age)
    cooldown = (
        (f"trigger:{trigger.id}:{customer_id}", trigger.cooldown_seconds)
        if trigger.cooldown_seconds > 0
        else None
    )
    request = DecisionRequest(
        customer_id,
        ts=event_ts,
        channel=trigger.channel,
        event=dict(event_context),
        offer_ids=trigger.offers,
        max_offers=trigger.max_offers,
        request_id=f"{key}:{trigger.id}",
        cooldown=cooldown,
    )
    return FireResult(trigger.id, key, customer_id, "decided", age, engine.decide(request))


def _china_time(ts: datetime) -> datetime:
    """``ts`` as naive China time (the bank's clock); a naive ``ts`` is taken as it is."""
    return ts.astimezone(_CHINA).replace(tzinfo=None) if ts.tzinfo is not None else ts
