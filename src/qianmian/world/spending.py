"""Card transactions: a customer's everyday spending plus what their life events add.

Everyday spending is a Poisson process per customer and category: the customer's monthly rate
times their taste for the category, shaped by the commercial calendar (weekday, payday,
festivals), by an activity trend (declining customers fade towards dormancy) and limited to days
after sign-up. Life events add transactions in windows around the event day (bookings weeks
before a trip, spending in the destination during it; months of home-improvement spending after
works start; baby goods before and after a birth; a down payment and then fuel after a car
purchase; rings, clothes, a banquet and a honeymoon around a wedding). Fully vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from qianmian.world.calendar import CATEGORY_NAMES, category_day_weights, category_hour_weights
from qianmian.world.life_events import LifeEvents
from qianmian.world.merchants import Merchants
from qianmian.world.population import Population

__all__ = ["Transactions", "draw_transactions"]

_CAT = {c: k for k, c in enumerate(CATEGORY_NAMES)}
# Median ticket (CNY) and log-sd per category.
_MEDIAN = np.array(
    [
        {
            "餐饮": 75,
            "超市": 130,
            "电商": 180,
            "出行": 35,
            "加油": 280,
            "旅游": 1800,
            "酒店": 550,
            "航空": 1200,
            "家装": 2500,
            "家电数码": 1500,
            "服饰": 350,
            "母婴": 260,
            "教育": 1800,
            "医疗": 220,
            "娱乐": 120,
            "珠宝": 3500,
            "汽车": 2500,
        }[c]
        for c in CATEGORY_NAMES
    ],
    float,
)
_SIGMA = np.array([0.8 if c in ("家装", "汽车", "教育", "珠宝") else 0.7 for c in CATEGORY_NAMES])
_P_ONLINE = np.array(
    [
        {
            "餐饮": 0.25,
            "超市": 0.12,
            "电商": 0.97,
            "出行": 0.5,
            "加油": 0.02,
            "旅游": 0.7,
            "酒店": 0.65,
            "航空": 0.85,
            "家装": 0.1,
            "家电数码": 0.45,
            "服饰": 0.35,
            "母婴": 0.4,
            "教育": 0.4,
            "医疗": 0.15,
            "娱乐": 0.4,
            "珠宝": 0.05,
            "汽车": 0.02,
        }[c]
        for c in CATEGORY_NAMES
    ]
)
_BIG_TICKET = np.isin(
    np.array(CATEGORY_NAMES), ["家装", "家电数码", "珠宝", "汽车", "旅游", "航空"]
)

# Life-event spending: event -> (category, first day, last day, expected count, median CNY,
# log-sd, where: "home" | "dest"). "L" as last day means the trip's last day.
_EVENT_SPEND: dict[int, tuple[tuple, ...]] = {
    0: (
        ("航空", -35, -3, 1.5, 1400, 0.5, "home"),
        ("酒店", -30, -2, 1.2, 900, 0.5, "home"),
        ("旅游", -35, -5, 0.8, 2600, 0.6, "home"),
        ("餐饮", 0, "L", 4.0, 160, 0.6, "dest"),
        ("娱乐", 0, "L", 1.2, 320, 0.7, "dest"),
        ("出行", 0, "L", 2.0, 60, 0.6, "dest"),
        ("服饰", 0, "L", 0.6, 600, 0.7, "dest"),
    ),
    1: (
        ("家装", 0, 90, 7.0, 4200, 0.9, "home"),
        ("家装", -20, 0, 1.0, 1500, 0.7, "home"),
        ("家电数码", 35, 100, 2.5, 3800, 0.7, "home"),
    ),
    2: (
        ("母婴", -100, 0, 4.0, 420, 0.7, "home"),
        ("母婴", 0, 180, 12.0, 360, 0.7, "home"),
        ("医疗", -90, 10, 3.0, 650, 0.8, "home"),
    ),
    3: (
        ("汽车", 0, 0, 1.0, 28000, 0.45, "home"),
        ("汽车", 3, 40, 1.2, 2800, 0.6, "home"),
        ("加油", 5, 300, 18.0, 300, 0.4, "home"),
    ),
    4: (
        ("珠宝", -100, -20, 1.5, 12000, 0.6, "home"),
        ("服饰", -60, -5, 3.0, 1300, 0.7, "home"),
        ("家电数码", -90, -10, 2.0, 5200, 0.6, "home"),
        ("餐饮", -90, -30, 1.0, 18000, 0.5, "home"),
        ("餐饮", 0, 0, 1.0, 32000, 0.5, "home"),
        ("旅游", 3, 20, 1.0, 8500, 0.5, "home"),
        ("航空", -30, 2, 1.0, 3200, 0.5, "home"),
    ),
}


@dataclass
class Transactions:
    """Column arrays, sorted by customer then time."""

    customer_index: np.ndarray
    ts: np.ndarray  # datetime64[us]
    amount: np.ndarray
    category: np.ndarray  # index into CATEGORY_NAMES
    merchant: np.ndarray  # index into the merchant table
    channel: np.ndarray  # 0 POS, 1 online, 2 QR
    city: np.ndarray  # index into CITIES

    @property
    def n(self) -> int:
        return len(self.customer_index)


def _trend_factor(trend: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Activity multiplier at window position x in [0, 1], normalised to max 1."""
    f = np.exp(trend * (x - 1.0))
    return f / np.maximum(1.0, np.exp(-trend))


def _trend_mean(trend: np.ndarray) -> np.ndarray:
    """Mean of :func:`_trend_factor` over the window (closed form)."""
    a = np.where(np.abs(trend) < 1e-6, 1e-6, trend)
    return (1 - np.exp(-a)) / a / np.maximum(1.0, np.exp(-trend))


def draw_transactions(
    rng: np.random.Generator,
    pop: Population,
    events: LifeEvents,
    merchants: Merchants,
    start: date,
    end: date,
) -> Transactions:
    d0 = np.datetime64(start, "D")
    n_days = int((np.datetime64(end, "D") - d0).astype(int))
    days = np.arange(d0, np.datetime64(end, "D"), dtype="datetime64[D]")
    W = category_day_weights(days)
    cdf = np.cumsum(W, axis=1)
    cdf /= cdf[:, -1:]
    hour_cdf = np.cumsum(category_hour_weights(), axis=1)
    first_day = np.clip((pop.signup_date - d0).astype(np.int64), 0, n_days - 1)
    active_frac = (n_days - first_day) / n_days

    # ---- everyday spending ---------------------------------------------------------------
    months = n_days / 30.4
    lam = (pop.spend_rate * months * active_frac / _trend_mean(pop.trend))[:, None] * pop.taste
    counts = rng.poisson(lam)
    cust = np.repeat(np.tile(np.arange(pop.n), 1), counts.sum(axis=1))
    cat = np.repeat(np.tile(np.arange(len(CATEGORY_NAMES)), pop.n), counts.ravel())
    day = np.empty(len(cust), np.int64)
    for k in range(len(CATEGORY_NAMES)):
        sel = np.flatnonzero(cat == k)
        lo = np.where(first_day[cust[sel]] > 0, cdf[k, first_day[cust[sel]] - 1], 0.0)
        u = lo + rng.random(len(sel)) * (1.0 - lo)
        day[sel] = np.minimum(np.searchsorted(cdf[k], u), n_days - 1)
    keep = rng.random(len(cust)) < _trend_factor(pop.trend[cust], day / n_days)
    cust, cat, day = cust[keep], cat[keep], day[keep]
    city = pop.city_index[cust]
    median = _MEDIAN[cat]
    sigma = _SIGMA[cat]
    where_dest = np.zeros(len(cust), bool)

    # ---- life-event spending --------------------------------------------------------------
    ev_parts = []
    ev_day = (events.day - d0).astype(np.int64)
    for etype, specs in _EVENT_SPEND.items():
        sel = np.flatnonzero(events.event_type == etype)
        for cat_name, lo, hi, expected, med, sd, where in specs:
            n_each = rng.poisson(expected * (events.duration[sel] / 5.0 if hi == "L" else 1.0))
            idx = np.repeat(sel, n_each)
            last = events.duration[idx] if hi == "L" else np.full(len(idx), hi)
            offset = lo + np.floor(rng.random(len(idx)) * (last - lo + 1)).astype(np.int64)
            ev_parts.append(
                (
                    idx,
                    np.full(len(idx), _CAT[cat_name]),
                    ev_day[idx] + offset,
                    med * events.scale[idx],
                    np.full(len(idx), sd),
                    np.full(len(idx), where == "dest"),
                )
            )
    e_idx = np.concatenate([p[0] for p in ev_parts])
    e_cust = events.customer_index[e_idx]
    e_day = np.concatenate([p[2] for p in ev_parts])
    ok = (e_day >= first_day[e_cust]) & (e_day < n_days)
    e_dest = np.concatenate([p[5] for p in ev_parts])[ok]
    cust = np.concatenate([cust, e_cust[ok]])
    cat = np.concatenate([cat, np.concatenate([p[1] for p in ev_parts])[ok]])
    day = np.concatenate([day, e_day[ok]])
    median = np.concatenate([median, np.concatenate([p[3] for p in ev_parts])[ok]])
    sigma = np.concatenate([sigma, np.concatenate([p[4] for p in ev_parts])[ok]])
    city = np.concatenate(
        [city, np.where(e_dest, events.destination[e_idx[ok]], pop.city_index[e_cust[ok]])]
    )
    where_dest = np.concatenate([where_dest, e_dest])

    # ---- attributes of each transaction ----------------------------------------------------
    m = len(cust)
    income_factor = np.sqrt(pop.monthly_income[cust] / 8000.0).clip(0.35, 5.0) ** 0.8
    amount = np.exp(np.log(median * income_factor) + sigma * rng.standard_normal(m))
    amount = np.round(np.clip(amount, 1.0, 4_900_000.0), 2)
    hour = np.empty(m, np.int64)
    u = rng.random(m)
    for k in range(len(CATEGORY_NAMES)):
        sel = cat == k
        hour[sel] = np.searchsorted(hour_cdf[k], u[sel])
    hour = np.minimum(hour, 23)
    secs = hour * 3600 + rng.integers(0, 3600, m)
    ts = ((d0 + day).astype("datetime64[s]") + secs.astype("timedelta64[s]")).astype(
        "datetime64[us]"
    )

    online = (rng.random(m) < _P_ONLINE[cat]) & ~where_dest
    has_national = merchants.national_count[cat] > 0
    online &= has_national
    qr_share = np.clip(0.8 - 0.009 * (pop.age[cust] - 25), 0.2, 0.85)
    qr_share = np.where(_BIG_TICKET[cat], 0.15, qr_share)
    channel = np.where(online, 1, np.where(rng.random(m) < qr_share, 2, 0))

    loc_off = merchants.local_offset[city, cat]
    loc_cnt = merchants.local_count[city, cat]
    favourite = (pop.customer_id[cust] * 2654435761 + cat * 40503) % loc_cnt
    pick = np.where(
        rng.random(m) < 0.45, favourite, np.floor(rng.random(m) * loc_cnt).astype(np.int64)
    )
    nat = merchants.national_offset[cat] + np.floor(
        rng.random(m) * np.maximum(merchants.national_count[cat], 1)
    ).astype(np.int64)
    merchant = np.where(online, nat, loc_off + pick)

    rel = (ts - d0.astype("datetime64[us]")).astype(np.int64) // 1_000_000
    order = np.argsort((cust.astype(np.int64) << 34) | rel, kind="stable")
    return Transactions(
        cust[order],
        ts[order],
        amount[order],
        cat[order].astype(np.int8),
        merchant[order],
        channel[order].astype(np.int8),
        city[order].astype(np.int16),
    )
