"""What both decision-state backends share: counter units, naive times as numbers, input checks.

Amounts count in integer units of 1/10,000 (:data:`UNITS_PER_ONE`), so CNY amounts to the cent
add and come back exactly however many reservations come and go, in process and in Redis alike;
times are naive datetimes (China time) carried as microseconds since 1970-01-01. The checks
give both backends the same errors for the same bad input.

>>> to_units(12.34, "amount"), from_units(123_400)
(123400, 12.34)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from qianmian.data.schema.vocab import CONTACT_CHANNELS
from qianmian.decide.state.base import ReservationAttempt, SuppressionRules
from qianmian.errors import ValidationError

__all__ = [
    "CHANNELS",
    "EXPIRED_PER_RESERVE",
    "MAX_UNITS",
    "UNITS_PER_ONE",
    "PlannedCounter",
    "check_consents",
    "check_outcome",
    "check_positive",
    "epoch_micros",
    "epoch_seconds",
    "from_epoch_micros",
    "from_units",
    "plan_attempts",
    "to_units",
]

UNITS_PER_ONE = 10_000
# Lua numbers are doubles: integers beyond 2**53 are not exact, so limits are clamped there
# (9×10^11 CNY, far above any budget); an infinite limit means "no limit".
MAX_UNITS = 2**53 - 1
# Every reserve first releases this many timed-out reservations, so state stays clean even
# when nobody calls release_expired.
EXPIRED_PER_RESERVE = 10
CHANNELS = frozenset(CONTACT_CHANNELS.values)
_EPOCH = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)

# A counter as both backends apply it: key, amount and limit in units, ttl (0: none).
PlannedCounter = tuple[str, int, int, int]


def to_units(value: float, what: str) -> int:
    """``value`` in integer units of 1/10,000, clamped to what Lua counts exactly."""
    if math.isnan(value):
        raise ValidationError(f"The counter {what} must be a number. Got NaN instead.")
    if math.isinf(value):
        return MAX_UNITS if value > 0 else -MAX_UNITS
    return max(-MAX_UNITS, min(MAX_UNITS, round(value * UNITS_PER_ONE)))


def from_units(units: int) -> float:
    """Units back to a float (the nearest double to the decimal: 3000 → 0.3).

    >>> from_units(to_units(0.1, "amount") * 3)
    0.3
    """
    return units / UNITS_PER_ONE


def plan_attempts(attempts: Sequence[ReservationAttempt]) -> list[list[PlannedCounter]]:
    """Attempts as (key, units, limit units, ttl) lists; a bad amount is a ValidationError."""
    plans = []
    for attempt in attempts:
        plan = []
        for c in attempt.counters:
            units = to_units(c.amount, f"amount of '{c.key}'")
            if units < 0 or math.isinf(c.amount):
                raise ValidationError(
                    f"The amount of counter '{c.key}' in attempt '{attempt.label}' must be a "
                    f"finite number ≥ 0. Got {c.amount!r} instead."
                )
            if c.ttl_seconds is not None and c.ttl_seconds <= 0:
                raise ValidationError(
                    f"The ttl_seconds of counter '{c.key}' must be a positive int or None. "
                    f"Got {c.ttl_seconds!r} instead."
                )
            ttl = math.ceil(c.ttl_seconds) if c.ttl_seconds else 0  # EXPIRE takes whole seconds
            plan.append((c.key, units, to_units(c.limit, f"limit of '{c.key}'"), ttl))
        plans.append(plan)
    return plans


def check_positive(name: str, value: float) -> None:
    """Reject a time-out that is not a positive number of seconds."""
    if not value > 0 or math.isinf(value):
        raise ValidationError(
            f"The '{name}' must be a positive number of seconds. Got {value!r} instead."
        )


def epoch_micros(ts: datetime, what: str = "time") -> int:
    """A naive datetime as integer microseconds since 1970-01-01 (exact both ways)."""
    if ts.tzinfo is not None:
        raise ValidationError(
            f"The {what} must be a naive datetime (China time, no tzinfo). Got {ts!r} instead."
        )
    return (ts - _EPOCH) // _MICRO


def epoch_seconds(ts: datetime, what: str = "time") -> float:
    """A naive datetime as seconds since 1970-01-01 (the score of a reservation's time-out)."""
    return epoch_micros(ts, what) / 1_000_000


def from_epoch_micros(micros: int) -> datetime:
    """Inverse of :func:`epoch_micros`."""
    return _EPOCH + timedelta(microseconds=micros)


def check_consents(consents: Iterable[str], customer_id: int) -> frozenset[str]:
    """The consents as a frozenset; a channel not in CONTACT_CHANNELS is a ValidationError."""
    given = frozenset(consents)
    if not given <= CHANNELS:
        unknown = ", ".join(sorted(given - CHANNELS))
        raise ValidationError(
            f"The consents of customer {customer_id} name unknown channel(s) {unknown}; use "
            f"{', '.join(sorted(CHANNELS))}."
        )
    return given


def check_outcome(outcome: str, rules: SuppressionRules) -> None:
    """Reject an unknown outcome or rules that cannot be applied."""
    if outcome not in ("ignored", "complained"):
        raise ValidationError(
            f"The outcome must be 'ignored' or 'complained'. Got {outcome!r} instead."
        )
    if rules.ignore_count < 1:
        raise ValidationError(
            f"The 'ignore_count' of SuppressionRules must be ≥ 1. Got {rules.ignore_count}."
        )
    for name in ("ignore_window_days", "hide_days", "complaint_days"):
        if getattr(rules, name) < 0:
            raise ValidationError(
                f"The '{name}' of SuppressionRules must be ≥ 0. Got {getattr(rules, name)}."
            )
