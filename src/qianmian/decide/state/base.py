"""The :class:`DecisionState` interface: what live decisions must read and change atomically.

It holds, per customer, the contact preferences (consent per channel, the marketing opt-out,
the refusal of personalised marketing), the products held, and suppressions after outcomes;
and, for everyone, **counters with limits** (contact caps per period, offer and campaign
budgets in CNY and counts, channel capacity per day) reserved atomically, and the bandit's
statistics.

Reservation semantics, stated plainly:

* :meth:`DecisionState.reserve` takes attempts in order of preference; each attempt lists
  counters (key, amount, limit). The first attempt whose every counter stays within its limit
  after adding its amount is applied — all its counters at once — and nothing else is; no
  other reservation can interleave (a Lua script in Redis, a lock in memory). So concurrent
  decisions never exceed a cap or a budget.
* A reservation that is not confirmed within ``ttl_seconds`` is released (its amounts taken
  back) by :meth:`release_expired`, which the engine calls as it goes; a confirmed one stays.
* Times are passed in (``now``), never read from the clock, so simulations run in their own
  time. Counter keys carry their period (``...:d:2026-11-22``); their ``ttl_seconds`` only
  lets the backend forget them.

Backends: :class:`~qianmian.decide.state.memory.MemoryDecisionState` (embedded default) and
:class:`~qianmian.decide.state.redis.RedisDecisionState` (production); the same contract tests
run on both. Any backend failure raises :class:`~qianmian.errors.StoreError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "Counter",
    "CustomerContactState",
    "DecisionState",
    "Outcome",
    "Reservation",
    "ReservationAttempt",
    "SuppressionRules",
]

Outcome = Literal["ignored", "complained"]


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter a reservation adds to: it may not exceed ``limit`` after adding ``amount``."""

    key: str
    amount: float
    limit: float
    ttl_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class ReservationAttempt:
    """One way to serve a request (an offer on a channel) and the counters it would use."""

    label: str
    counters: tuple[Counter, ...]


@dataclass(frozen=True, slots=True)
class Reservation:
    """The result of :meth:`DecisionState.reserve`.

    ``index`` is the attempt reserved (None if none fitted); ``blocked`` holds, for each
    attempt tried before it (and for all when none fitted), the key of the first counter
    that would have gone over its limit.
    """

    index: int | None
    reservation_id: str | None
    blocked: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SuppressionRules:
    """When outcomes hide offers: ignored ``ignore_count`` times within ``ignore_window_days``
    → that offer hidden for ``hide_days``; a complaint → no marketing for ``complaint_days``."""

    ignore_count: int = 2
    ignore_window_days: int = 30
    hide_days: int = 60
    complaint_days: int = 90


@dataclass(frozen=True, slots=True)
class CustomerContactState:
    """A customer's contact preferences, holdings and suppressions, as decisions read them.

    ``consents`` names the channels the customer agreed to be marketed on (``in_app`` needs
    none). ``hidden_offers`` maps an offer id to the time it is hidden until.
    """

    customer_id: int
    consents: frozenset[str] = frozenset()
    marketing_opt_out: bool = False
    personalisation_opt_out: bool = False
    held_products: frozenset[str] = frozenset()
    marketing_suppressed_until: datetime | None = None
    hidden_offers: Mapping[str, datetime] = field(default_factory=dict)


class DecisionState(ABC):
    """Customer contact state and atomic counters for live decisions."""

    # -- customers ---------------------------------------------------------------------------

    @abstractmethod
    def load_customers(self, customers: Iterable[CustomerContactState]) -> int:
        """Insert or replace these customers' state (suppressions kept); return how many."""

    @abstractmethod
    def customer(self, customer_id: int) -> CustomerContactState | None:
        """One customer's state, or None if never loaded."""

    @abstractmethod
    def set_preferences(
        self,
        customer_id: int,
        *,
        consents: Mapping[str, bool] | None = None,
        marketing_opt_out: bool | None = None,
        personalisation_opt_out: bool | None = None,
    ) -> CustomerContactState:
        """Change preferences (only those given); raises ``NotFoundError`` for an unknown id."""

    @abstractmethod
    def record_outcome(
        self,
        customer_id: int,
        offer_id: str,
        outcome: Outcome,
        ts: datetime,
        rules: SuppressionRules,
    ) -> CustomerContactState:
        """Apply an outcome's suppression (see :class:`SuppressionRules`); return the new state."""

    # -- counters and reservations -----------------------------------------------------------

    @abstractmethod
    def reserve(
        self, attempts: Sequence[ReservationAttempt], *, now: datetime, ttl_seconds: float
    ) -> Reservation:
        """Reserve the first attempt that fits, atomically (see the module docstring)."""

    @abstractmethod
    def confirm(self, reservation_id: str) -> bool:
        """Keep a reservation for good; False if unknown, already released or expired."""

    @abstractmethod
    def release(self, reservation_id: str) -> bool:
        """Take a reservation's amounts back now; False if unknown or already gone."""

    @abstractmethod
    def release_expired(self, now: datetime, limit: int = 1000) -> int:
        """Release up to ``limit`` unconfirmed reservations whose time-out has passed."""

    @abstractmethod
    def counter_values(self, keys: Sequence[str]) -> list[float]:
        """Current values of counters (0 for a key never used)."""

    # -- idempotency and the bandit ----------------------------------------------------------

    @abstractmethod
    def first_time(self, key: str, ttl_seconds: int) -> bool:
        """True the first time ``key`` is seen within ``ttl_seconds``, False afterwards."""

    @abstractmethod
    def bandit_stats(self, keys: Sequence[str]) -> list[tuple[float, float]]:
        """(successes, failures) per key; (0, 0) for a key never updated."""

    @abstractmethod
    def bandit_update(self, key: str, successes: float, failures: float) -> None:
        """Add to a key's successes and failures."""

    def ping(self) -> None:  # noqa: B027 - in-process state is always there
        """Raise ``StoreError`` if the backend cannot be reached."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections."""

    def __enter__(self) -> DecisionState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
