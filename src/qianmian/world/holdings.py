"""What customers hold: cards with credit limits, wealth, insurance, loans; and card statements.

- Cards: the first card is opened at sign-up; its tier follows income, credit score, age and
  tastes (young customers 青年卡, heavy online shoppers and travellers 联名卡, the affluent 金卡
  and 白金卡). A quarter hold a second card. Limits scale with income and score, within the tier's
  range.
- Wealth holdings never exceed the customer's risk tolerance (suitability); insurance follows
  children and car ownership.
- Consumer loans: a loan history over the last two years for about one customer in six, plus car
  loans and consumer loans that follow car purchases, renovations and weddings, and merchant
  instalment plans on large purchases. Overdue loans are likelier with low credit scores.
- Statements: monthly spend per customer; revolvers repay part and carry the rest with interest;
  minimum payments are missed more often by low scores and near the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from qianmian.world.calendar import CATEGORY_NAMES
from qianmian.world.life_events import EVENT_TYPES, LifeEvents
from qianmian.world.population import Population
from qianmian.world.spending import Transactions

__all__ = ["Holdings", "Loans", "Statements", "draw_holdings", "draw_loans", "draw_statements"]

_CAT = {c: k for k, c in enumerate(CATEGORY_NAMES)}
_CARD_LIMITS = {
    "CC-STD": (3_000, 50_000, 2.5),
    "CC-GOLD": (10_000, 100_000, 3.5),
    "CC-PLAT": (50_000, 500_000, 5.0),
    "CC-COBRAND-TRAVEL": (10_000, 150_000, 3.5),
    "CC-COBRAND-ECOM": (5_000, 80_000, 2.8),
    "CC-YOUTH": (2_000, 30_000, 2.0),
}
_CARDS = tuple(_CARD_LIMITS)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Holdings:
    customer_index: np.ndarray
    seq: np.ndarray  # number of the holding within the customer (1, 2, ...)
    product_id: np.ndarray
    opened_date: np.ndarray
    balance: np.ndarray
    credit_limit: np.ndarray  # NaN unless a card
    status: np.ndarray


@dataclass
class Loans:
    customer_index: np.ndarray
    seq: np.ndarray
    product_id: np.ndarray
    principal: np.ndarray
    interest_rate: np.ndarray
    term_months: np.ndarray
    start_date: np.ndarray
    status: np.ndarray
    missed_payments: np.ndarray
    purpose: np.ndarray


@dataclass
class Statements:
    customer_index: np.ndarray
    month: np.ndarray  # datetime64[D], first day
    credit_limit: np.ndarray
    statement_balance: np.ndarray
    paid_amount: np.ndarray
    revolving_balance: np.ndarray
    min_payment_missed: np.ndarray


def _first_card(rng: np.random.Generator, pop: Population) -> np.ndarray:
    n = pop.n
    inc, score, age = pop.monthly_income, pop.credit_score, pop.age
    card = np.full(n, "CC-STD", dtype=object)
    u = rng.random(n)
    card = np.where((inc > 12_000) & (u < 0.5), "CC-GOLD", card)
    card = np.where((inc > 30_000) & (score > 680) & (rng.random(n) < 0.55), "CC-PLAT", card)
    card = np.where(
        (pop.taste[:, _CAT["电商"]] > 0.22) & (rng.random(n) < 0.3) & (card == "CC-STD"),
        "CC-COBRAND-ECOM",
        card,
    )
    travel = pop.taste[:, [_CAT["旅游"], _CAT["航空"], _CAT["酒店"]]].sum(axis=1)
    card = np.where(
        (travel > 0.08) & (rng.random(n) < 0.3) & (card != "CC-PLAT"), "CC-COBRAND-TRAVEL", card
    )
    card = np.where((age < 30) & (rng.random(n) < 0.45) & (card == "CC-STD"), "CC-YOUTH", card)
    return card


def _limits(
    rng: np.random.Generator, pop: Population, idx: np.ndarray, card: np.ndarray
) -> np.ndarray:
    lo = np.array([_CARD_LIMITS[c][0] for c in card], float)
    hi = np.array([_CARD_LIMITS[c][1] for c in card], float)
    mult = np.array([_CARD_LIMITS[c][2] for c in card], float)
    raw = (
        pop.monthly_income[idx]
        * mult
        * np.exp((pop.credit_score[idx] - 650) / 200 + rng.normal(0, 0.2, len(idx)))
    )
    return np.round(np.clip(raw, lo, hi), -3)


def draw_holdings(rng: np.random.Generator, pop: Population, start: date, end: date) -> Holdings:
    n = pop.n
    end_d = np.datetime64(end, "D")
    c1 = _first_card(rng, pop)
    has2 = rng.random(n) < 0.25
    idx2 = np.flatnonzero(has2)
    alt = np.array(["CC-STD", "CC-COBRAND-ECOM", "CC-COBRAND-TRAVEL", "CC-GOLD"], dtype=object)
    c2 = alt[rng.integers(0, len(alt), len(idx2))]
    c2 = np.where(c2 == c1[idx2], "CC-COBRAND-ECOM", c2)
    c2 = np.where(c2 == c1[idx2], "CC-STD", c2)
    span2 = np.maximum((end_d - pop.signup_date[idx2]).astype(np.int64), 1)
    open2 = pop.signup_date[idx2] + (rng.random(len(idx2)) * span2).astype("timedelta64[D]")

    # Wealth: suitable products only.
    wl = np.flatnonzero(rng.random(n) < _sigmoid(pop.wealth_appetite - 0.4))
    level = np.clip(pop.risk_tolerance[wl] - rng.integers(0, 3, len(wl)), 1, 5)
    w_prod = np.array([f"WM-R{k}" for k in level], dtype=object)
    w_amt = np.round(pop.monthly_income[wl] * rng.lognormal(np.log(5), 0.8, len(wl)), -2)
    w_span = np.maximum((end_d - pop.signup_date[wl]).astype(np.int64), 1)
    w_open = pop.signup_date[wl] + (rng.random(len(wl)) * w_span).astype("timedelta64[D]")

    # Insurance.
    health = np.flatnonzero(rng.random(n) < 0.10 + 0.08 * (pop.children > 0))
    car_ins = np.flatnonzero(pop.has_car & (rng.random(n) < 0.35))
    child = np.flatnonzero((pop.children > 0) & (rng.random(n) < 0.12))
    ins_idx = np.concatenate([health, car_ins, child])
    ins_prod = np.concatenate(
        [
            np.full(len(health), "INS-HEALTH", dtype=object),
            np.full(len(car_ins), "INS-CAR", dtype=object),
            np.full(len(child), "INS-CHILD", dtype=object),
        ]
    )
    i_span = np.maximum((end_d - pop.signup_date[ins_idx]).astype(np.int64), 1)
    i_open = pop.signup_date[ins_idx] + (rng.random(len(ins_idx)) * i_span).astype("timedelta64[D]")

    cust = np.concatenate([np.arange(n), idx2, wl, ins_idx])
    product = np.concatenate([c1, c2, w_prod, ins_prod])
    opened = np.concatenate([pop.signup_date, open2, w_open, i_open])
    is_card = np.arange(len(cust)) < n + len(idx2)
    limit = np.full(len(cust), np.nan)
    limit[is_card] = _limits(rng, pop, cust[is_card], product[is_card])
    balance = np.full(len(cust), np.nan)
    balance[n + len(idx2) : n + len(idx2) + len(wl)] = w_amt
    status = np.where(is_card & (pop.trend[cust] < -1.8), "dormant", "active").astype(object)
    order = np.lexsort((opened, cust))
    cust, product, opened = cust[order], product[order], opened[order]
    seq = np.arange(len(cust)) - np.searchsorted(cust, cust) + 1
    return Holdings(cust, seq, product, opened, balance[order], limit[order], status[order])


def draw_loans(
    rng: np.random.Generator,
    pop: Population,
    events: LifeEvents,
    tx: Transactions,
    start: date,
    end: date,
) -> Loans:
    n = pop.n
    end_d = np.datetime64(end, "D")
    z_inc = np.log(pop.monthly_income / 7000) / 0.6
    # Past consumer loans.
    k = rng.poisson(0.22 * np.exp(0.3 * pop.revolver - 0.2 * (pop.age > 55)))
    h_idx = np.repeat(np.arange(n), k)
    h_start = end_d - rng.integers(1, 730, len(h_idx)).astype("timedelta64[D]")
    h_amt = np.round(40_000 * np.exp(0.4 * z_inc[h_idx] + rng.normal(0, 0.6, len(h_idx))), -3)
    h_prod = np.full(len(h_idx), "LN-CONSUMER", dtype=object)
    h_purpose = rng.choice(
        np.array(["日常消费", "装修", "教育", "旅游", "医疗"], dtype=object),
        len(h_idx),
        p=[0.45, 0.2, 0.12, 0.13, 0.1],
    )
    # Loans that follow life events inside the window.
    ev_ok = (events.day >= np.datetime64(start, "D")) & (events.day < end_d)
    car = (
        ev_ok
        & (events.event_type == EVENT_TYPES.index("car_purchase"))
        & (rng.random(events.n) < 0.4)
    )
    other = (
        ev_ok
        & np.isin(
            events.event_type, [EVENT_TYPES.index("renovation"), EVENT_TYPES.index("wedding")]
        )
        & (rng.random(events.n) < 0.3)
    )
    e_sel = np.flatnonzero(car | other)
    e_idx = events.customer_index[e_sel]
    e_prod = np.where(car[e_sel], "LN-CAR", "LN-CONSUMER").astype(object)
    e_amt = np.round(np.where(car[e_sel], 90_000, 60_000) * events.scale[e_sel], -3)
    e_start = events.day[e_sel] + rng.integers(0, 15, len(e_sel)).astype("timedelta64[D]")
    e_purpose = np.where(
        car[e_sel],
        "购车",
        np.where(events.event_type[e_sel] == EVENT_TYPES.index("wedding"), "婚庆", "装修"),
    ).astype(object)
    # Merchant instalments on large purchases.
    big = (tx.amount >= 5_000) & np.isin(
        tx.category, [_CAT["家装"], _CAT["家电数码"], _CAT["珠宝"], _CAT["汽车"]]
    )
    big &= rng.random(tx.n) < 0.25
    m_idx = tx.customer_index[big]
    m_amt = tx.amount[big]
    m_start = tx.ts[big].astype("datetime64[D]")

    cust = np.concatenate([h_idx, e_idx, m_idx])
    product = np.concatenate([h_prod, e_prod, np.full(len(m_idx), "INST-MERCHANT", dtype=object)])
    principal = np.concatenate([h_amt, e_amt, m_amt]).clip(1_000, 500_000)
    start_d = np.concatenate([h_start, e_start, m_start])
    purpose = np.concatenate([h_purpose, e_purpose, np.full(len(m_idx), "分期购物", dtype=object)])
    m = len(cust)
    term = np.where(
        product == "LN-CAR", 36, rng.choice([6, 12, 24, 36], m, p=[0.2, 0.4, 0.25, 0.15])
    )
    rate = np.round(
        np.where(
            product == "INST-MERCHANT",
            0.0,
            np.clip(
                0.06 + (700 - pop.credit_score[cust]) / 2500 + rng.normal(0, 0.01, m), 0.036, 0.18
            ),
        ),
        4,
    )
    age_m = (end_d - start_d).astype(np.int64) / 30.4
    p_over = _sigmoid((600 - pop.credit_score[cust]) / 35 - 1.5) * 0.5
    overdue = (rng.random(m) < p_over) & (age_m > 2)
    status = np.where(overdue, "overdue", np.where(age_m >= term, "repaid", "active"))
    missed = np.where(overdue, 1 + rng.poisson(1.0, m), 0)
    order = np.lexsort((start_d, cust))
    cust = cust[order]
    seq = np.arange(m) - np.searchsorted(cust, cust) + 1
    return Loans(
        cust,
        seq,
        product[order],
        principal[order],
        rate[order],
        term[order],
        start_d[order],
        status[order].astype(object),
        missed[order],
        purpose[order],
    )


def draw_statements(
    rng: np.random.Generator,
    pop: Population,
    hold: Holdings,
    tx: Transactions,
    start: date,
    end: date,
) -> Statements:
    n = pop.n
    months = np.arange(np.datetime64(start, "M"), np.datetime64(end, "M"), dtype="datetime64[M]")
    nm = len(months)
    tx_m = (tx.ts.astype("datetime64[M]") - months[0]).astype(np.int64)
    spend = np.bincount(tx.customer_index * nm + tx_m, weights=tx.amount, minlength=n * nm).reshape(
        n, nm
    )
    is_card = ~np.isnan(hold.credit_limit)
    open_m = (hold.opened_date[is_card].astype("datetime64[M]") - months[0]).astype(np.int64)
    limit = np.zeros((n, nm))
    for j in range(nm):
        ok = open_m <= j
        limit[:, j] = np.bincount(
            hold.customer_index[is_card][ok], weights=hold.credit_limit[is_card][ok], minlength=n
        )
    signup_m = (pop.signup_date.astype("datetime64[M]") - months[0]).astype(np.int64)
    revolving = np.zeros(n)
    out_bal, out_paid, out_rev, out_missed = (np.zeros((n, nm)) for _ in range(4))
    p_miss = 0.004 + _sigmoid((560 - pop.credit_score) / 30) * 0.12
    for j in range(nm):
        balance = revolving * 1.015 + spend[:, j]
        share = np.where(pop.revolver, rng.uniform(0.12, 0.7, n), 1.0)
        near_limit = balance > 0.9 * np.maximum(limit[:, j], 1)
        missed = (balance > 0) & (rng.random(n) < p_miss * np.where(near_limit, 3.0, 1.0))
        paid = np.where(missed, 0.0, balance * share)
        revolving = np.clip(balance - paid, 0, None)
        out_bal[:, j], out_paid[:, j], out_rev[:, j], out_missed[:, j] = (
            balance,
            paid,
            revolving,
            missed,
        )
    cust, mon = np.nonzero(np.arange(nm)[None, :] >= signup_m[:, None])
    return Statements(
        cust,
        months[mon].astype("datetime64[D]"),
        limit[cust, mon],
        np.round(out_bal[cust, mon], 2),
        np.round(out_paid[cust, mon], 2),
        np.round(out_rev[cust, mon], 2),
        out_missed[cust, mon].astype(bool),
    )
