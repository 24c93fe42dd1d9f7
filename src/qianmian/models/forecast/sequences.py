"""Per-customer daily sequences for need forecasting, built point in time from the store.

A :class:`DailyPanel` holds, for every customer who signed up before the end of a date range,
one row per day of

* spend (CNY) in each of the :data:`CATEGORY_GROUPS`, and
* app activity counts in each of the :data:`APP_CHANNELS` (logins, views of the pages that
  announce a need, searches by topic),

read from the ``transactions`` and ``app_events`` tables with one aggregate query each, over
rows with ``start <= ts < end`` only. Forecasting inputs for an as-of date are a slice of days
strictly before it (:meth:`DailyPanel.inputs`); targets are the spend in ``[as_of, as_of + h)``
(:meth:`DailyPanel.targets`). Building a panel with ``end = as_of`` (what
:func:`load_inputs` does) reads no row on or after the as-of date at all.

Category groups: the 17 spending categories are grouped into 13 so that the sparsest ones that
always move together in a life event are pooled (旅游 + 酒店 + 航空 are one trip; 家装 + 家电数码
are one home renovation; 出行 + 加油 are everyday mobility), while every category a life event
drives keeps a group of its own (travel, home, baby, auto, jewellery for weddings). A
transaction's category is its ``category`` field, as in the feature catalogue; a row without
one falls back to its MCC through the data dictionary's category → MCC table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from qianmian.data.schema.vocab import CATEGORY_MCC
from qianmian.errors import ValidationError, invalid_parameter
from qianmian.store.base import Store

__all__ = [
    "APP_CHANNELS",
    "CALENDAR_CHANNELS",
    "CATEGORY_GROUPS",
    "GROUP_NAMES",
    "NEED_PAGES",
    "SEARCH_TOPICS",
    "DailyPanel",
    "SequenceWindow",
    "load_inputs",
    "load_panel",
    "to_day",
]

# Group slug → (Chinese name, English name, member categories).
CATEGORY_GROUPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "dining": ("餐饮", "dining", ("餐饮",)),
    "groceries": ("超市", "supermarket", ("超市",)),
    "ecommerce": ("电商", "e-commerce", ("电商",)),
    "mobility": ("出行加油", "transport and fuel", ("出行", "加油")),
    "travel": ("旅游出行", "travel (trips, hotels, flights)", ("旅游", "酒店", "航空")),
    "home": ("家装家电", "home improvement and appliances", ("家装", "家电数码")),
    "apparel": ("服饰", "apparel", ("服饰",)),
    "jewellery": ("珠宝", "jewellery", ("珠宝",)),
    "baby": ("母婴", "mother and baby", ("母婴",)),
    "auto": ("汽车", "automotive", ("汽车",)),
    "education": ("教育", "education", ("教育",)),
    "health": ("医疗", "healthcare", ("医疗",)),
    "entertainment": ("娱乐", "entertainment", ("娱乐",)),
}
GROUP_NAMES: tuple[str, ...] = tuple(CATEGORY_GROUPS)

# App pages whose views announce a need; all other pages are counted together.
NEED_PAGES: tuple[str, ...] = (
    "card_travel",
    "travel_deals",
    "home_deals",
    "instalment",
    "loan",
    "car_loan",
    "insurance",
    "baby_deals",
    "card_platinum",
)
# Search topics by keyword (a query belongs to the first topic one of whose keywords it
# contains); a query naming a city where the bank has customers is a travel search.
SEARCH_TOPICS: dict[str, tuple[str, ...]] = {
    "car": ("车贷", "汽车", "车险", "4S", "买车"),
    "wedding": ("婚", "钻戒", "蜜月"),
    "home": ("装修", "家装", "家具", "家电", "建材"),
    "baby": ("奶粉", "少儿", "母婴", "育儿", "纸尿裤", "孕"),
    "travel": ("机票", "酒店", "旅游", "旅行", "签证", "航班"),
}
APP_CHANNELS: tuple[str, ...] = (
    "logins",
    *(f"page_{p}" for p in NEED_PAGES),
    "page_other",
    *(f"search_{t}" for t in SEARCH_TOPICS),
    "search_other",
)
# Day of week and day of month (pay cycle). No day-of-year season: with a year or two of
# history, test months lie outside the training months and a season feature only extrapolates.
CALENDAR_CHANNELS: tuple[str, ...] = ("dow_sin", "dow_cos", "day_of_month")

_MCC_CATEGORY = {mcc: cat for cat, codes in CATEGORY_MCC.items() for mcc in codes}


def to_day(value: date | datetime | str, name: str = "as_of") -> date:
    """A date from a date, a datetime (its day) or an ISO string; anything else is an error."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise ValidationError(f"{name} '{value}' is not a date like 2026-06-01.")


def _sql_list(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _group_case() -> str:
    """SQL: the group number of a transaction (NULL when its category is unknown)."""
    mcc_case = " ".join(
        f"WHEN mcc IN ({_sql_list(list(codes))}) THEN '{cat}'"
        for cat, codes in CATEGORY_MCC.items()
    )
    category = f"COALESCE(category, CASE {mcc_case} END)"
    whens = " ".join(
        f"WHEN {category} IN ({_sql_list(members)}) THEN {k}"
        for k, (_, _, members) in enumerate(CATEGORY_GROUPS.values())
    )
    return f"CASE {whens} END"


@dataclass(frozen=True)
class SequenceWindow:
    """Model inputs for one as-of date: the ``lookback`` days strictly before it.

    Attributes
    ----------
    as_of : date
        The forecast origin; no input comes from it or later.
    customer_id : ndarray of shape (n,)
    spend : ndarray of shape (n, lookback, len(GROUP_NAMES))
        Daily spend in CNY.
    app : ndarray of shape (n, lookback, len(APP_CHANNELS))
        Daily app activity counts.
    calendar : ndarray of shape (lookback, len(CALENDAR_CHANNELS))
        Day-of-week and day-of-month encodings of the input days.
    tenure_days : ndarray of shape (n,)
        Days from sign-up to the as-of date.
    """

    as_of: date
    customer_id: np.ndarray
    spend: np.ndarray
    app: np.ndarray
    calendar: np.ndarray
    tenure_days: np.ndarray

    @property
    def n(self) -> int:
        return len(self.customer_id)


def calendar_features(first: date, days: int) -> np.ndarray:
    """Calendar encodings of ``days`` consecutive days from ``first``, shape (days, 3)."""
    d = np.arange(np.datetime64(first, "D"), np.datetime64(first, "D") + days)
    dow = (d.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0
    dom = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return np.stack(
        [np.sin(2 * np.pi * dow / 7), np.cos(2 * np.pi * dow / 7), dom / 31.0], axis=1
    ).astype(np.float32)


@dataclass(frozen=True)
class DailyPanel:
    """Daily spend by group and app activity per customer over ``[start, end)``.

    Attributes
    ----------
    start, end : date
        The first day and the first day after the range.
    customer_id : ndarray of shape (n,)
        Customers who signed up before ``end``, sorted.
    signup : ndarray of shape (n,), datetime64[D]
        Sign-up days (the range start when unknown).
    spend : ndarray of shape (n, days, len(GROUP_NAMES)), float32
    app : ndarray of shape (n, days, len(APP_CHANNELS)), float32
    """

    start: date
    end: date
    customer_id: np.ndarray
    signup: np.ndarray
    spend: np.ndarray
    app: np.ndarray

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def day_index(self, day: date | datetime | str) -> int:
        """Position of ``day`` in the panel (may lie outside it)."""
        return (to_day(day) - self.start).days

    def eligible(self, as_of: date | datetime | str) -> np.ndarray:
        """Mask of customers who signed up strictly before ``as_of``."""
        return self.signup < np.datetime64(to_day(as_of), "D")

    def rows_at(self, as_of: date | datetime | str) -> np.ndarray:
        """Panel rows of the customers who signed up strictly before ``as_of``."""
        return np.flatnonzero(self.eligible(as_of))

    def inputs(
        self,
        as_of: date | datetime | str,
        lookback_days: int,
        rows: np.ndarray | None = None,
    ) -> SequenceWindow:
        """The ``lookback_days`` days strictly before ``as_of``.

        ``rows`` picks panel rows (default: every customer signed up before ``as_of``).
        """
        day = to_day(as_of)
        t = self.day_index(day)
        if t - lookback_days < 0 or t > self.days:
            raise ValidationError(
                f"as_of {day} with a lookback of {lookback_days} days needs data from "
                f"{day - timedelta(days=lookback_days)} to {day}, but the panel covers "
                f"{self.start} to {self.end}. Load a panel that covers the lookback."
            )
        rows = self.rows_at(day) if rows is None else rows
        return SequenceWindow(
            as_of=day,
            customer_id=self.customer_id[rows],
            spend=self.spend[rows, t - lookback_days : t],
            app=self.app[rows, t - lookback_days : t],
            calendar=calendar_features(day - timedelta(days=lookback_days), lookback_days),
            tenure_days=(np.datetime64(day, "D") - self.signup[rows]).astype(np.float32),
        )

    def targets(
        self,
        as_of: date | datetime | str,
        horizon_days: int,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Spend by group in ``[as_of, as_of + horizon)``, shape (rows, groups)."""
        day = to_day(as_of)
        t = self.day_index(day)
        if t < 0 or t + horizon_days > self.days:
            raise ValidationError(
                f"The target window {day} + {horizon_days} days ends after the data: the panel "
                f"covers {self.start} to {self.end}. Choose an earlier as_of."
            )
        rows = self.rows_at(day) if rows is None else rows
        return self.spend[rows, t : t + horizon_days].sum(axis=1)


def load_panel(
    store: Store, start: date | datetime | str, end: date | datetime | str
) -> DailyPanel:
    """Read daily spend and app activity with ``start <= ts < end`` from the store.

    Parameters
    ----------
    store : Store
        Holds ``customers``, ``transactions`` and ``app_events`` (app events may be absent).
    start, end : date
        The day range; nothing on or after ``end`` is read.

    Returns
    -------
    DailyPanel
    """
    first, stop = to_day(start, "start"), to_day(end, "end")
    if stop <= first:
        raise invalid_parameter("load_panel", "end", f"a day after start ({first})", stop)
    params = {"start": first, "end": stop}
    customers = store.query(
        "SELECT customer_id, signup_date FROM customers "
        "WHERE signup_date IS NULL OR signup_date < $end ORDER BY customer_id",
        params,
    ).to_pandas()
    ids = customers["customer_id"].to_numpy(np.int64)
    signup = pd.to_datetime(customers["signup_date"]).fillna(pd.Timestamp(first))
    n, days = len(ids), (stop - first).days
    spend = np.zeros((n, days, len(GROUP_NAMES)), np.float32)
    app = np.zeros((n, days, len(APP_CHANNELS)), np.float32)
    panel = DailyPanel(first, stop, ids, signup.to_numpy().astype("datetime64[D]"), spend, app)
    if n == 0:
        return panel
    txn = store.query(
        f"SELECT customer_id, CAST(ts AS DATE) - CAST($start AS DATE) AS d, "
        f"{_group_case()} AS g, sum(amount) AS s FROM transactions "
        "WHERE ts >= CAST($start AS TIMESTAMP) AND ts < CAST($end AS TIMESTAMP) "
        "GROUP BY 1, 2, 3",
        params,
    ).to_pandas()
    txn = txn[txn["g"].notna()]
    rows = np.searchsorted(ids, txn["customer_id"].to_numpy(np.int64))
    known = (rows < n) & (ids[np.minimum(rows, n - 1)] == txn["customer_id"].to_numpy(np.int64))
    np.add.at(
        spend,
        (rows[known], txn["d"].to_numpy(np.int64)[known], txn["g"].to_numpy(np.int64)[known]),
        txn["s"].to_numpy(np.float32)[known],
    )
    if store.has_table("app_events"):
        _fill_app(store, panel, params)
    return panel


def _fill_app(store: Store, panel: DailyPanel, params: dict[str, date]) -> None:
    events = store.query(
        "SELECT customer_id, CAST(ts AS DATE) - CAST($start AS DATE) AS d, event_type, page, "
        "search_query, count(*) AS n FROM app_events "
        "WHERE ts >= CAST($start AS TIMESTAMP) AND ts < CAST($end AS TIMESTAMP) "
        "AND event_type IN ('login', 'page_view', 'search') GROUP BY 1, 2, 3, 4, 5",
        params,
    ).to_pandas()
    if events.empty:
        return
    cities = set(
        store.query("SELECT DISTINCT city FROM customers WHERE city IS NOT NULL")
        .column("city")
        .to_pylist()
    )
    index = {c: k for k, c in enumerate(APP_CHANNELS)}
    kind = events["event_type"].to_numpy()
    page = events["page"].fillna("").map(lambda p: index.get(f"page_{p}", index["page_other"]))
    queries = events["search_query"].fillna("")
    topic = queries.map({q: index[f"search_{_search_topic(q, cities)}"] for q in queries.unique()})
    channel = np.where(
        kind == "login",
        index["logins"],
        np.where(kind == "page_view", page.to_numpy(), topic.to_numpy()),
    ).astype(np.int64)
    ids = panel.customer_id
    cust = events["customer_id"].to_numpy(np.int64)
    rows = np.searchsorted(ids, cust)
    known = (rows < len(ids)) & (ids[np.minimum(rows, len(ids) - 1)] == cust)
    np.add.at(
        panel.app,
        (rows[known], events["d"].to_numpy(np.int64)[known], channel[known]),
        events["n"].to_numpy(np.float32)[known],
    )


def _search_topic(query: str, cities: set[str]) -> str:
    for topic, words in SEARCH_TOPICS.items():
        if any(w in query for w in words):
            return topic
    return "travel" if query in cities else "other"


def load_inputs(
    store: Store, as_of: date | datetime | str, lookback_days: int = 91
) -> SequenceWindow:
    """Inputs for ``as_of``: reads only rows strictly before it.

    Parameters
    ----------
    store : Store
    as_of : date
        The forecast origin.
    lookback_days : int
        Length of the daily sequence.

    Returns
    -------
    SequenceWindow
    """
    if not isinstance(lookback_days, int) or lookback_days < 1:
        raise invalid_parameter("load_inputs", "lookback_days", "a positive int", lookback_days)
    day = to_day(as_of)
    panel = load_panel(store, day - timedelta(days=lookback_days), day)
    return panel.inputs(day, lookback_days)
