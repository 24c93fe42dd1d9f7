"""The embedded decision state: caps, budgets, preferences and suppressions in this process.

One lock guards everything, so a reservation (check every counter of an attempt, then add to
all of them) never interleaves with another; the many threads of one server share one
instance. Nothing survives a restart: use :class:`~qianmian.decide.state.redis.RedisDecisionState`
when several processes serve decisions or state must outlive the process.

Counters count in integer units of 1/10,000
(:data:`~qianmian.decide.state.units.UNITS_PER_ONE`), in both backends, so CNY amounts to the
cent add and come back exactly however many reservations come and go; an amount finer than a
unit is rounded to the nearest unit. Times passed in (``now``, ``ts``) are
naive datetimes; reservations expire by them, never by the clock. A counter with a
``ttl_seconds`` is forgotten once ``now`` passes its last use by that long; ``first_time``
alone uses the process's monotonic clock, as it takes no time.

>>> from qianmian.decide.state.base import Counter, ReservationAttempt
>>> state = MemoryDecisionState()
>>> cap = ReservationAttempt("push", (Counter("cap:1:d:2026-11-22", 1, limit=1),))
>>> state.reserve([cap], now=datetime(2026, 11, 22, 9), ttl_seconds=60).index
0
>>> state.reserve([cap], now=datetime(2026, 11, 22, 9), ttl_seconds=60).blocked
('cap:1:d:2026-11-22',)
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from qianmian.decide.configs import MemoryStateConfig
from qianmian.decide.state.base import (
    CustomerContactState,
    DecisionState,
    Outcome,
    Reservation,
    ReservationAttempt,
    SuppressionRules,
)
from qianmian.decide.state.units import (
    EXPIRED_PER_RESERVE,
    PlannedCounter,
    check_consents,
    check_outcome,
    check_positive,
    epoch_micros,
    epoch_seconds,
    from_units,
    plan_attempts,
)
from qianmian.errors import NotFoundError

__all__ = ["MemoryDecisionState"]


@dataclass(slots=True)
class _Customer:
    """Mutable per-customer state (only ever touched under the lock)."""

    consents: frozenset[str] = frozenset()
    marketing_opt_out: bool = False
    personalisation_opt_out: bool = False
    held_products: frozenset[str] = frozenset()
    loaded: bool = False  # False while only outcomes were recorded for this id
    suppressed_until: datetime | None = None
    hidden: dict[str, datetime] = field(default_factory=dict)
    ignores: dict[str, list[datetime]] = field(default_factory=dict)

    def view(self, customer_id: int) -> CustomerContactState:
        return CustomerContactState(
            customer_id,
            self.consents,
            self.marketing_opt_out,
            self.personalisation_opt_out,
            self.held_products,
            self.suppressed_until,
            dict(self.hidden),
        )


@dataclass(slots=True)
class _Pending:
    """An unconfirmed reservation: when it times out and what it added to which counter."""

    expires: float
    amounts: dict[str, int]


class MemoryDecisionState(DecisionState):
    """In-process :class:`~qianmian.decide.state.base.DecisionState` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._customers: dict[int, _Customer] = {}
        self._counters: dict[str, int] = {}
        self._forget_at: dict[str, float] = {}  # counter → when (epoch s) it may be forgotten
        self._forget_heap: list[tuple[float, str]] = []  # one entry per counter with a ttl
        self._pending: dict[str, _Pending] = {}
        self._pending_heap: list[tuple[float, str]] = []  # stale entries skipped on pop
        self._ids = itertools.count(1)
        self._seen: dict[str, float] = {}
        self._seen_heap: list[tuple[float, str]] = []
        self._bandit: dict[str, tuple[float, float]] = {}

    @classmethod
    def from_config(cls, config: MemoryStateConfig) -> MemoryDecisionState:
        return cls()

    # -- customers -------------------------------------------------------------------------------

    def load_customers(self, customers: Iterable[CustomerContactState]) -> int:
        n = 0
        for c in customers:
            consents = check_consents(c.consents, c.customer_id)
            with self._lock:
                record = self._customers.setdefault(c.customer_id, _Customer())
                record.consents = consents
                record.marketing_opt_out = bool(c.marketing_opt_out)
                record.personalisation_opt_out = bool(c.personalisation_opt_out)
                record.held_products = frozenset(c.held_products)
                record.loaded = True
            n += 1
        return n

    def customer(self, customer_id: int) -> CustomerContactState | None:
        with self._lock:
            record = self._customers.get(customer_id)
            return record.view(customer_id) if record is not None and record.loaded else None

    def set_preferences(
        self,
        customer_id: int,
        *,
        consents: Mapping[str, bool] | None = None,
        marketing_opt_out: bool | None = None,
        personalisation_opt_out: bool | None = None,
    ) -> CustomerContactState:
        changes = dict(consents or {})
        check_consents(changes, customer_id)
        with self._lock:
            record = self._customers.get(customer_id)
            if record is None or not record.loaded:
                raise _unknown_customer(customer_id)
            given = {ch for ch, on in changes.items() if on}
            record.consents = frozenset((record.consents - changes.keys()) | given)
            if marketing_opt_out is not None:
                record.marketing_opt_out = bool(marketing_opt_out)
            if personalisation_opt_out is not None:
                record.personalisation_opt_out = bool(personalisation_opt_out)
            return record.view(customer_id)

    def record_outcome(
        self,
        customer_id: int,
        offer_id: str,
        outcome: Outcome,
        ts: datetime,
        rules: SuppressionRules,
    ) -> CustomerContactState:
        check_outcome(outcome, rules)
        epoch_micros(ts, "outcome time 'ts'")
        window = timedelta(days=rules.ignore_window_days)
        with self._lock:
            # A customer not loaded yet keeps the suppression for when they are.
            record = self._customers.setdefault(customer_id, _Customer())
            # Forget what can no longer matter: hides that ended, ignores too old to count.
            record.hidden = {o: t for o, t in record.hidden.items() if t > ts}
            record.ignores = {
                o: t for o, t in record.ignores.items() if o == offer_id or t[-1] >= ts - window
            }
            if outcome == "ignored":
                times = sorted([*record.ignores.get(offer_id, ()), ts])[-rules.ignore_count :]
                record.ignores[offer_id] = times
                if len(times) == rules.ignore_count and times[-1] - times[0] <= window:
                    until = ts + timedelta(days=rules.hide_days)
                    record.hidden[offer_id] = max(record.hidden.get(offer_id, until), until)
            else:
                until = ts + timedelta(days=rules.complaint_days)
                before = record.suppressed_until
                record.suppressed_until = until if before is None else max(before, until)
            return record.view(customer_id)

    # -- counters and reservations ---------------------------------------------------------------

    def reserve(
        self, attempts: Sequence[ReservationAttempt], *, now: datetime, ttl_seconds: float
    ) -> Reservation:
        plans = plan_attempts(attempts)
        check_positive("ttl_seconds", ttl_seconds)
        now_s = epoch_seconds(now, "reservation time 'now'")
        with self._lock:
            self._release_due(now_s, EXPIRED_PER_RESERVE)
            blocked: list[str] = []
            for index, plan in enumerate(plans):
                over = self._first_over(plan, now_s)
                if over is not None:
                    blocked.append(over)
                    continue
                amounts: dict[str, int] = {}
                for key, units, _limit, ttl in plan:
                    self._counters[key] = self._counters.get(key, 0) + units
                    amounts[key] = amounts.get(key, 0) + units
                    if ttl:
                        self._keep_until(key, now_s + ttl)
                reservation_id = str(next(self._ids))
                expires = now_s + ttl_seconds
                self._pending[reservation_id] = _Pending(expires, amounts)
                heapq.heappush(self._pending_heap, (expires, reservation_id))
                return Reservation(index, reservation_id, tuple(blocked))
            return Reservation(None, None, tuple(blocked))

    def confirm(self, reservation_id: str) -> bool:
        with self._lock:
            return self._pending.pop(reservation_id, None) is not None

    def release(self, reservation_id: str) -> bool:
        with self._lock:
            return self._release(reservation_id)

    def release_expired(self, now: datetime, limit: int = 1000) -> int:
        now_s = epoch_seconds(now, "time 'now'")
        with self._lock:
            released = self._release_due(now_s, limit)
            self._forget_counters(now_s)
            return released

    def counter_values(self, keys: Sequence[str]) -> list[float]:
        with self._lock:
            return [from_units(self._counters.get(k, 0)) for k in keys]

    # -- idempotency and the bandit --------------------------------------------------------------

    def first_time(self, key: str, ttl_seconds: int) -> bool:
        check_positive("ttl_seconds", ttl_seconds)
        now = time.monotonic()
        with self._lock:
            heap = self._seen_heap
            while heap and heap[0][0] <= now:  # forget keys whose time is up
                until, old = heapq.heappop(heap)
                if self._seen.get(old) == until:
                    del self._seen[old]
            if key in self._seen:
                return False
            self._seen[key] = now + ttl_seconds
            heapq.heappush(heap, (now + ttl_seconds, key))
            return True

    def bandit_stats(self, keys: Sequence[str]) -> list[tuple[float, float]]:
        with self._lock:
            return [self._bandit.get(k, (0.0, 0.0)) for k in keys]

    def bandit_update(self, key: str, successes: float, failures: float) -> None:
        with self._lock:
            s, f = self._bandit.get(key, (0.0, 0.0))
            self._bandit[key] = (s + successes, f + failures)

    # -- internals (called with the lock held) ---------------------------------------------------

    def _first_over(self, plan: list[PlannedCounter], now_s: float) -> str | None:
        """The first counter of ``plan`` that would go over its limit, or None if all fit."""
        adding: dict[str, int] = {}
        for key, units, limit, _ttl in plan:
            forget_at = self._forget_at.get(key)
            if forget_at is not None and forget_at <= now_s:
                self._counters.pop(key, None)  # its heap entry removes _forget_at later
            adding[key] = adding.get(key, 0) + units
            if self._counters.get(key, 0) + adding[key] > limit:
                return key
        return None

    def _keep_until(self, key: str, until: float) -> None:
        """Remember that ``key`` may be forgotten at ``until`` (the latest use wins)."""
        # Invariant: a key is in _forget_at exactly when it has one entry on _forget_heap.
        before = self._forget_at.get(key)
        if before is None:
            heapq.heappush(self._forget_heap, (until, key))
        if before is None or until > before:
            self._forget_at[key] = until

    def _forget_counters(self, now_s: float) -> None:
        """Drop counters whose ttl has passed; a counter used since goes back on the heap."""
        heap = self._forget_heap
        while heap and heap[0][0] <= now_s:
            _, key = heapq.heappop(heap)
            until = self._forget_at[key]
            if until <= now_s:
                del self._forget_at[key]
                self._counters.pop(key, None)
            else:
                heapq.heappush(heap, (until, key))

    def _release(self, reservation_id: str) -> bool:
        pending = self._pending.pop(reservation_id, None)
        if pending is None:
            return False
        for key, units in pending.amounts.items():
            if key in self._counters:  # a forgotten counter is not brought back negative
                self._counters[key] -= units
        return True

    def _release_due(self, now_s: float, limit: int) -> int:
        released = 0
        heap = self._pending_heap
        while heap and heap[0][0] <= now_s and released < limit:
            _, reservation_id = heapq.heappop(heap)
            released += self._release(reservation_id)
        return released


def _unknown_customer(customer_id: int) -> NotFoundError:
    return NotFoundError(
        f"Customer {customer_id} has no contact state; load the customers first with "
        "qianmian.decide.profiles.load_customer_states."
    )
