"""The commercial calendar of a Chinese card portfolio: day and hour intensity per category.

Assumptions (documented in docs/world.md):
- Salaries land around the 10th-15th; spending is ~10% higher from the 10th to the 20th and ~8%
  lower in the last days of the month.
- Weekly rhythm per category (dining and leisure up at weekends, commuting down).
- Festivals: Spring Festival (three weeks of shopping before, family dining during), 618
  (June 1-18, peak on the 18th), Double 11 (Nov 1-11, peak on the 11th), Double 12, May Day and
  National Day golden weeks (travel), summer holidays (travel, education) and school start.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from qianmian.data.schema.vocab import CATEGORIES
from qianmian.errors import ConfigError

__all__ = [
    "CATEGORY_NAMES",
    "SPRING_FESTIVAL",
    "category_day_weights",
    "category_hour_weights",
    "day_range",
]

CATEGORY_NAMES: tuple[str, ...] = CATEGORIES.values

# Lunar new year's day (正月初一) by year.
SPRING_FESTIVAL: dict[int, date] = {
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
}

# Multipliers by day of week (Mon..Sun).
_WEEKDAY: dict[str, tuple[float, ...]] = {
    "餐饮": (0.9, 0.9, 0.95, 1.0, 1.2, 1.3, 1.2),
    "超市": (0.9, 0.9, 0.9, 0.95, 1.0, 1.35, 1.3),
    "出行": (1.2, 1.2, 1.2, 1.2, 1.15, 0.6, 0.55),
    "娱乐": (0.7, 0.7, 0.75, 0.8, 1.2, 1.7, 1.5),
    "服饰": (0.85, 0.85, 0.85, 0.9, 1.0, 1.4, 1.35),
    "家装": (0.85, 0.85, 0.85, 0.9, 0.95, 1.4, 1.3),
    "汽车": (0.8, 0.8, 0.8, 0.85, 0.95, 1.5, 1.4),
}

_HOUR: dict[str, tuple[float, ...]] = {
    # 24 weights, hour 0..23
    "餐饮": (
        0.2,
        0.1,
        0,
        0,
        0,
        0.1,
        0.5,
        1.2,
        1.5,
        0.8,
        0.8,
        2.5,
        4.0,
        2.5,
        0.8,
        0.6,
        0.7,
        2.0,
        3.5,
        3.0,
        1.8,
        1.2,
        0.8,
        0.4,
    ),
    "出行": (
        0.2,
        0.1,
        0,
        0,
        0.1,
        0.3,
        1.2,
        3.5,
        3.5,
        1.5,
        0.8,
        0.8,
        0.9,
        0.8,
        0.8,
        0.9,
        1.2,
        2.5,
        3.5,
        2.0,
        1.2,
        1.0,
        0.8,
        0.5,
    ),
    "电商": (
        1.0,
        0.5,
        0.2,
        0.1,
        0.1,
        0.1,
        0.2,
        0.4,
        0.6,
        0.8,
        1.0,
        1.2,
        1.3,
        1.1,
        1.0,
        1.0,
        1.0,
        1.0,
        1.1,
        1.4,
        1.9,
        2.3,
        2.2,
        1.6,
    ),
}
_DEFAULT_HOUR = (
    0.1,
    0.05,
    0,
    0,
    0,
    0.05,
    0.2,
    0.5,
    0.8,
    1.1,
    1.4,
    1.5,
    1.4,
    1.3,
    1.3,
    1.4,
    1.5,
    1.5,
    1.6,
    1.7,
    1.5,
    1.1,
    0.6,
    0.3,
)


def day_range(start: date, end: date) -> np.ndarray:
    """Days ``[start, end)`` as ``datetime64[D]``."""
    return np.arange(np.datetime64(start, "D"), np.datetime64(end, "D"), dtype="datetime64[D]")


def _window(days: np.ndarray, first: np.datetime64, last: np.datetime64) -> np.ndarray:
    return (days >= first) & (days <= last)


def _spring_festival(days: np.ndarray, years: range) -> dict[str, np.ndarray]:
    """Offsets of each day to the nearest Spring Festival, and the pre/during windows."""
    pre = np.zeros(days.shape, bool)
    during = np.zeros(days.shape, bool)
    for y in years:
        if y not in SPRING_FESTIVAL:
            raise ConfigError(
                f"The simulated calendar knows Spring Festival only for {min(SPRING_FESTIVAL)}-"
                f"{max(SPRING_FESTIVAL)}; the year {y} is outside. Choose a start date in that range."
            )
        sf = np.datetime64(SPRING_FESTIVAL[y], "D")
        pre |= _window(days, sf - 21, sf - 1)
        during |= _window(days, sf, sf + 6)
    return {"pre": pre, "during": during}


def category_day_weights(days: np.ndarray) -> np.ndarray:
    """Relative spending intensity per category per day, shape ``(n_categories, n_days)``.

    Each row averages about 1 over a full year, so that a customer's yearly rate is preserved.
    """
    dates = days.astype("datetime64[D]")
    dow = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday → Monday = 0
    dom = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    years = range(int(str(dates[0])[:4]), int(str(dates[-1])[:4]) + 2)

    def md(m: int, d: int) -> np.ndarray:
        return (month == m) & (dom == d)

    def mrange(m: int, d0: int, d1: int) -> np.ndarray:
        return (month == m) & (dom >= d0) & (dom <= d1)

    sf = _spring_festival(dates, years)
    payday = np.where((dom >= 10) & (dom <= 20), 1.1, np.where(dom >= 26, 0.92, 1.0))
    double11 = mrange(11, 1, 10)
    d11 = md(11, 11)
    d618 = md(6, 18)
    p618 = mrange(6, 1, 17)
    golden = mrange(10, 1, 7)
    mayday = mrange(5, 1, 5)
    summer = ((month == 7) & (dom >= 10)) | (month == 8)
    school = mrange(9, 1, 10) | mrange(2, 20, 28)

    weights = np.empty((len(CATEGORY_NAMES), len(dates)))
    for k, cat in enumerate(CATEGORY_NAMES):
        w = np.asarray(_WEEKDAY.get(cat, (1.0,) * 7))[dow] * payday
        season = np.ones(len(dates))
        if cat in ("电商", "家电数码", "服饰", "母婴"):
            strength = {"电商": 1.0, "家电数码": 0.8, "服饰": 0.5, "母婴": 0.5}[cat]
            season *= np.where(double11, 1 + 0.6 * strength, 1.0)
            season *= np.where(d11, 1 + 5.0 * strength, 1.0)
            season *= np.where(p618, 1 + 0.4 * strength, 1.0)
            season *= np.where(d618, 1 + 3.0 * strength, 1.0)
            season *= np.where(md(12, 12), 1 + 1.0 * strength, 1.0)
        if cat in ("超市", "服饰", "珠宝", "家电数码"):
            season *= np.where(
                sf["pre"], {"超市": 1.8, "服饰": 1.6, "珠宝": 1.6, "家电数码": 1.3}[cat], 1.0
            )
        if cat in ("餐饮", "娱乐"):
            season *= np.where(sf["during"], 1.4, 1.0)
        if cat in ("出行", "教育", "家装", "超市"):
            season *= np.where(
                sf["during"], {"出行": 0.6, "教育": 0.3, "家装": 0.2, "超市": 0.7}[cat], 1.0
            )
        if cat == "航空":
            season *= np.where(sf["pre"], 1.7, 1.0)
        if cat in ("旅游", "酒店", "航空"):
            season *= np.where(golden, 2.2, 1.0) * np.where(mayday, 1.8, 1.0)
            season *= np.where(summer, 1.45, 1.0) * np.where(sf["during"], 1.5, 1.0)
        if cat == "教育":
            season *= np.where(summer, 1.4, 1.0) * np.where(school, 2.0, 1.0)
        w = w * season
        weights[k] = w / w.mean()
    return weights


def category_hour_weights() -> np.ndarray:
    """Probability of each hour of the day per category, shape ``(n_categories, 24)``."""
    out = np.empty((len(CATEGORY_NAMES), 24))
    for k, cat in enumerate(CATEGORY_NAMES):
        h = np.asarray(_HOUR.get(cat, _DEFAULT_HOUR), dtype=float)
        out[k] = h / h.sum()
    return out
