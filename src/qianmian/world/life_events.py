"""Hidden life events: travel, home renovation, a new baby, a car purchase, a wedding.

Each event has a day (the trip's departure, the start of works, the birth, the purchase, the
wedding) and shifts the customer's spending and app behaviour in windows around it, weeks
ahead for the planning part, so that a customer's next 7-30 days of need can be forecast from
what they do now. Rates per year depend on life stage (see docs/world.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from qianmian.world.geography import CITIES, city_weights
from qianmian.world.population import Population

__all__ = ["EVENT_TYPES", "NEED_WINDOWS", "LifeEvents", "draw_life_events"]

EVENT_TYPES = ("travel", "renovation", "new_baby", "car_purchase", "wedding")

# Window (days relative to the event day) during which the event creates a need an offer can
# serve; used by the ground truth.
NEED_WINDOWS: dict[str, tuple[int, int]] = {
    "travel": (-45, 10),
    "renovation": (-60, 90),
    "new_baby": (-150, 90),
    "car_purchase": (-60, 14),
    "wedding": (-120, 20),
}

LEAD_DAYS = 150  # events are drawn from this many days before the window ...
TAIL_DAYS = 90  # ... to this many days after it, so windows are never cut at the edges


@dataclass
class LifeEvents:
    """One row per event: the customer's index in the chunk, the type, the day and details."""

    customer_index: np.ndarray
    event_type: np.ndarray  # index into EVENT_TYPES
    day: np.ndarray  # datetime64[D]
    duration: np.ndarray  # trip length in days (travel), else 0
    destination: np.ndarray  # city index for travel, else -1
    scale: np.ndarray  # budget multiplier

    @property
    def n(self) -> int:
        return len(self.customer_index)


def _holiday_weights(days: np.ndarray) -> np.ndarray:
    month = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dom = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    w = np.ones(len(days))
    w[(month == 10) & (dom <= 7)] *= 6
    w[(month == 5) & (dom <= 5)] *= 4
    w[((month == 7) & (dom >= 10)) | (month == 8)] *= 2
    w[(month == 2) & (dom <= 20)] *= 1.8
    return w / w.sum()


def draw_life_events(
    rng: np.random.Generator, pop: Population, start: date, end: date
) -> LifeEvents:
    """Draw every customer's life events over the window and its margins."""
    first = np.datetime64(start, "D") - LEAD_DAYS
    days = np.arange(first, np.datetime64(end, "D") + TAIL_DAYS, dtype="datetime64[D]")
    years = len(days) / 365.25
    age, married = pop.age, pop.marital_status == "已婚"
    z_inc = np.log(pop.monthly_income / 7000) / 0.6

    rates = {
        "travel": 0.9 * np.exp(0.45 * z_inc) * (age < 68) * (pop.spend_rate > 0.5),
        "renovation": 0.04 + 0.08 * (married & (age >= 27) & (age <= 45)),
        "new_baby": 0.17 * (married & (age >= 24) & (age <= 39) & (pop.children < 2)),
        "car_purchase": 0.07 * (~pop.has_car) * ((age >= 24) & (age <= 50)) * np.exp(0.3 * z_inc),
        "wedding": 0.14 * ((pop.marital_status == "未婚") & (age >= 23) & (age <= 36)),
    }
    holiday = _holiday_weights(days)
    parts = []
    for k, name in enumerate(EVENT_TYPES):
        counts = rng.poisson(rates[name] * years)
        idx = np.repeat(np.arange(pop.n), counts)
        if name == "travel":
            day = days[rng.choice(len(days), size=len(idx), p=holiday)]
        else:
            day = days[rng.integers(0, len(days), len(idx))]
        parts.append((idx, np.full(len(idx), k, np.int8), day))
    cidx = np.concatenate([p[0] for p in parts])
    etype = np.concatenate([p[1] for p in parts])
    day = np.concatenate([p[2] for p in parts])

    m = len(cidx)
    is_travel = etype == 0
    duration = np.where(is_travel, rng.integers(2, 11, m), 0)
    dest = rng.choice(len(CITIES), size=m, p=city_weights())
    dest = np.where(dest == pop.city_index[cidx], (dest + 7) % len(CITIES), dest)
    dest = np.where(is_travel, dest, -1)
    scale = rng.lognormal(0, 0.35, m) * np.sqrt(pop.monthly_income[cidx] / 8000).clip(0.4, 4)
    order = np.lexsort((day, cidx))
    return LifeEvents(
        cidx[order], etype[order], day[order], duration[order], dest[order], scale[order]
    )
