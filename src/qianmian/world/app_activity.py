"""Mobile-banking app events: sessions of logins, page views, searches and transfers.

App users open the app a few times a month (more if young and engaged), mostly in the evening;
what they look at follows their tastes (wealth pages for those with an appetite for investment,
dining deals for diners). In the weeks before a life event they look at what they will need:
travel-card and travel-deal pages before a trip, home-improvement instalments before works,
baby and insurance pages before a birth, car loans before buying a car, instalments and loans
before a wedding, and they search for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from qianmian.data.schema.vocab import APP_EVENT_TYPES, APP_PAGES
from qianmian.world.calendar import CATEGORY_NAMES
from qianmian.world.geography import CITIES
from qianmian.world.life_events import LifeEvents
from qianmian.world.population import Population

__all__ = ["QUERY_VOCAB", "AppEvents", "draw_app_events"]

PAGES = APP_PAGES.values
EVENT_TYPES = APP_EVENT_TYPES.values
_P = {p: i for i, p in enumerate(PAGES)}
_E = {e: i for i, e in enumerate(EVENT_TYPES)}
_CAT = {c: k for k, c in enumerate(CATEGORY_NAMES)}

_GENERIC_QUERIES = (
    "账单",
    "积分兑换",
    "还款",
    "理财",
    "额度",
    "信用卡",
    "优惠券",
    "年费",
    "转账",
    "基金",
)
# Planning behaviour per life event: (first day, last day, expected sessions, pages, queries).
_EVENT_APP: dict[int, tuple[int, int, float, tuple[str, ...], tuple[str, ...]]] = {
    0: (
        -42,
        -3,
        3.5,
        ("card_travel", "travel_deals", "travel_deals", "insurance"),
        ("机票", "酒店", "旅游", "签证", "旅行险"),
    ),
    1: (
        -60,
        30,
        5.0,
        ("home_deals", "instalment", "loan", "home_deals"),
        ("装修", "装修贷", "家装分期", "家具", "家电"),
    ),
    2: (
        -150,
        30,
        5.0,
        ("baby_deals", "insurance", "baby_deals"),
        ("奶粉", "少儿保险", "母婴", "育儿", "纸尿裤"),
    ),
    3: (
        -60,
        0,
        5.0,
        ("car_loan", "loan", "insurance", "car_loan"),
        ("车贷", "汽车分期", "车险", "4S店"),
    ),
    4: (
        -120,
        -10,
        5.0,
        ("instalment", "loan", "card_platinum", "instalment"),
        ("婚庆", "钻戒", "婚纱照", "分期", "蜜月旅行"),
    ),
}


@dataclass
class AppEvents:
    customer_index: np.ndarray
    ts: np.ndarray  # datetime64[us]
    event_type: np.ndarray  # index into APP_EVENT_TYPES
    page: np.ndarray  # index into APP_PAGES, -1 if none
    query: np.ndarray  # index into QUERY_VOCAB, -1 if none
    session: np.ndarray  # session number within the customer

    @property
    def n(self) -> int:
        return len(self.customer_index)


def _page_preferences(pop: Population) -> np.ndarray:
    n = pop.n
    w = np.zeros((n, len(PAGES)))
    w[:, _P["home"]] = 3.0
    w[:, _P["bill"]] = 3.0
    w[:, _P["transfer"]] = 1.5
    w[:, _P["points_mall"]] = 0.8
    w[:, _P["limit"]] = 0.4 + 0.4 * pop.revolver
    w[:, _P["instalment"]] = 0.3 + 0.5 * pop.revolver
    w[:, _P["loan"]] = 0.3
    w[:, _P["wealth_list"]] = 0.8 * np.exp(np.clip(pop.wealth_appetite, -2, 2))
    w[:, _P["wealth_fund"]] = (
        0.3 * np.exp(np.clip(pop.wealth_appetite, -2, 2)) * (pop.risk_tolerance >= 3)
    )
    w[:, _P["insurance"]] = 0.3
    w[:, _P["dining_deals"]] = 6.0 * pop.taste[:, _CAT["餐饮"]]
    w[:, _P["travel_deals"]] = 4.0 * pop.taste[:, _CAT["旅游"]] + 0.1
    w[:, _P["card_platinum"]] = 0.1 + 0.3 * (pop.monthly_income > 25_000)
    w[:, _P["card_youth"]] = 0.3 * (pop.age < 30)
    w[:, _P["card_cobrand"]] = 0.15 + 2.0 * pop.taste[:, _CAT["电商"]]
    w[:, _P["card_travel"]] = 0.1
    return w / w.sum(axis=1, keepdims=True)


def _draw_pages(rng: np.random.Generator, prefs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One page per entry of ``rows`` from that row's preferences.

    Adding the row number to each row's CDF makes the flattened CDFs one increasing sequence,
    so a single ``searchsorted`` serves every customer.
    """
    cdf = np.cumsum(prefs, axis=1)
    cdf /= cdf[:, -1:]
    flat = (cdf + np.arange(len(prefs))[:, None]).ravel()
    pos = np.searchsorted(flat, rows + rng.random(len(rows)) * 0.999999)
    return (pos - rows * prefs.shape[1]).clip(0, prefs.shape[1] - 1)


def draw_app_events(
    rng: np.random.Generator, pop: Population, events: LifeEvents, start: date, end: date
) -> AppEvents:
    d0 = np.datetime64(start, "D")
    n_days = int((np.datetime64(end, "D") - d0).astype(int))
    first_day = np.clip((pop.signup_date - d0).astype(np.int64), 0, n_days - 1)
    months = n_days / 30.4

    # Everyday sessions.
    counts = rng.poisson(pop.app_rate * months * (n_days - first_day) / n_days)
    s_cust = np.repeat(np.arange(pop.n), counts)
    s_day = first_day[s_cust] + np.floor(
        rng.random(len(s_cust)) * (n_days - first_day[s_cust])
    ).astype(np.int64)
    prefs = _page_preferences(pop)
    n_views = 1 + rng.poisson(0.35, len(s_cust))
    v_sess = np.repeat(np.arange(len(s_cust)), n_views)
    v_page = _draw_pages(rng, prefs, s_cust[v_sess])
    s_query = np.where(
        rng.random(len(s_cust)) < 0.08, rng.integers(0, len(_GENERIC_QUERIES), len(s_cust)), -1
    )

    # Planning sessions before life events (app users only).
    ev_app = pop.app_user[events.customer_index]
    e_sess_cust, e_sess_day, e_views_page, e_views_sess, e_query = [], [], [], [], []
    base_sessions = len(s_cust)
    offset = base_sessions
    for etype, (lo, hi, expected, pages, words) in _EVENT_APP.items():
        sel = np.flatnonzero((events.event_type == etype) & ev_app)
        k = rng.poisson(expected, len(sel))
        idx = np.repeat(sel, k)
        day = (events.day[idx] - d0).astype(np.int64) + rng.integers(lo, hi + 1, len(idx))
        cust = events.customer_index[idx]
        ok = (day >= first_day[cust]) & (day < n_days)
        idx, day, cust = idx[ok], day[ok], cust[ok]
        nv = 1 + rng.poisson(0.8, len(idx))
        sess_ids = offset + np.arange(len(idx))
        offset += len(idx)
        e_sess_cust.append(cust)
        e_sess_day.append(day)
        e_views_sess.append(np.repeat(sess_ids, nv))
        e_views_page.append(np.array([_P[p] for p in pages])[rng.integers(0, len(pages), nv.sum())])
        has_q = rng.random(len(idx)) < 0.55
        codes = np.array([_Q[w] for w in words])
        q = np.where(has_q, codes[rng.integers(0, len(codes), len(idx))], -1)
        if etype == 0:  # travellers search their destination
            q = np.where(
                has_q & (rng.random(len(idx)) < 0.5), _CITY_Q0 + events.destination[idx], q
            )
        e_query.append(q)
    sess_cust = np.concatenate([s_cust, *e_sess_cust])
    sess_day = np.concatenate([s_day, *e_sess_day])
    sess_query = np.concatenate([s_query, *e_query])
    view_sess = np.concatenate([v_sess, *e_views_sess])
    view_page = np.concatenate([v_page, *e_views_page])

    # Session start times: evening-heavy.
    n_s = len(sess_cust)
    hour = rng.choice(24, size=n_s, p=_SESSION_HOURS)
    start_s = (d0 + sess_day).astype("datetime64[s]") + (
        hour * 3600 + rng.integers(0, 3600, n_s)
    ).astype("timedelta64[s]")

    # Rows: login, page views (+ transfer / failure on the transfer page), search.
    step = np.arange(len(view_sess)) - np.searchsorted(view_sess, view_sess)
    is_transfer = view_page == _P["transfer"]
    fail = is_transfer & (rng.random(len(view_sess)) < 0.06)
    has_search = sess_query >= 0
    parts = [
        (
            np.arange(n_s),
            np.full(n_s, _E["login"]),
            np.full(n_s, -1),
            np.zeros(n_s),
            np.full(n_s, -1),
        ),
        (
            view_sess,
            np.full(len(view_sess), _E["page_view"]),
            view_page,
            20.0 + 45 * step,
            np.full(len(view_sess), -1),
        ),
        (
            view_sess[is_transfer],
            np.full(is_transfer.sum(), _E["transfer"]),
            np.full(is_transfer.sum(), -1),
            50.0 + 45 * step[is_transfer],
            np.full(is_transfer.sum(), -1),
        ),
        (
            view_sess[fail],
            np.full(fail.sum(), _E["transfer_failure"]),
            np.full(fail.sum(), -1),
            52.0 + 45 * step[fail],
            np.full(fail.sum(), -1),
        ),
        (
            np.flatnonzero(has_search),
            np.full(has_search.sum(), _E["search"]),
            np.full(has_search.sum(), -1),
            np.full(has_search.sum(), 12.0),
            sess_query[has_search],
        ),
    ]
    sess = np.concatenate([p[0] for p in parts])
    kind = np.concatenate([p[1] for p in parts]).astype(np.int8)
    page = np.concatenate([p[2] for p in parts]).astype(np.int16)
    secs = np.concatenate([p[3] for p in parts]) + rng.integers(0, 15, len(sess))
    query = np.concatenate([p[4] for p in parts]).astype(np.int16)
    ts_s = start_s[sess] + secs.astype("timedelta64[s]")
    ts = ts_s.astype("datetime64[us]")
    cust = sess_cust[sess]
    rel = (ts_s - d0.astype("datetime64[s]")).astype(np.int64)
    order = np.argsort((cust.astype(np.int64) << 34) | (rel << 3) | kind, kind="stable")
    # Session numbers within each customer, in time order.
    s_rel = (start_s - d0.astype("datetime64[s]")).astype(np.int64)
    s_order = np.argsort((sess_cust.astype(np.int64) << 34) | s_rel, kind="stable")
    s_rank = np.empty(n_s, np.int64)
    s_rank[s_order] = np.arange(n_s) - np.searchsorted(sess_cust[s_order], sess_cust[s_order])
    return AppEvents(
        cust[order], ts[order], kind[order], page[order], query[order], s_rank[sess[order]] + 1
    )


QUERY_VOCAB: tuple[str, ...] = tuple(
    dict.fromkeys(
        _GENERIC_QUERIES
        + tuple(w for spec in _EVENT_APP.values() for w in spec[4])
        + tuple(c.name for c in CITIES)
    )
)
_Q = {w: i for i, w in enumerate(QUERY_VOCAB)}
_CITY_Q0 = len(QUERY_VOCAB) - len(CITIES)

_SESSION_HOURS = np.array(
    [
        0.6,
        0.3,
        0.1,
        0.05,
        0.05,
        0.1,
        0.5,
        1.5,
        2.2,
        2.0,
        1.8,
        1.8,
        2.4,
        2.0,
        1.6,
        1.5,
        1.5,
        1.7,
        2.0,
        2.6,
        3.2,
        3.6,
        3.0,
        1.6,
    ]
)
_SESSION_HOURS = _SESSION_HOURS / _SESSION_HOURS.sum()
