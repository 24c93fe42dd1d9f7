"""Online update rules: the SQL evaluator agrees with DuckDB, and the plan follows the catalogue."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qianmian.data.schema.vocab import APP_EVENT_TYPES, APP_PAGES, CATEGORIES, TXN_CHANNELS
from qianmian.errors import SchemaError
from qianmian.features.catalogue import FEATURES
from qianmian.features.definition import FeatureDef
from qianmian.features.online import (
    MemoryOnlineConfig,
    MemoryOnlineStore,
    RedisOnlineConfig,
    UpdatePlan,
    open_online_store,
)
from qianmian.features.online.expressions import compile_sql
from qianmian.features.online.updates import EVENT_SOURCES, apply_ops

TS = datetime(2026, 8, 1, 12, 30)


@pytest.mark.parametrize(
    ("sql", "env", "expected"),
    [
        ("category = '餐饮'", {"category": "餐饮"}, True),
        ("category = '餐饮'", {"category": "超市"}, False),
        ("category = '餐饮'", {}, None),
        ("page IN ('card_travel', 'travel_deals')", {"page": "travel_deals"}, True),
        ("page IN ('card_travel', 'travel_deals')", {"page": None}, None),
        ("page NOT IN ('a', 'b')", {"page": "c"}, True),
        ("product_id LIKE 'CC-%'", {"product_id": "CC-GOLD"}, True),
        ("product_id LIKE 'CC-%'", {"product_id": "WM-R2"}, False),
        ("x IS NULL", {"x": None}, True),
        ("x IS NOT NULL", {"x": 0}, True),
        ("x > 1 AND y > 1", {"x": 0}, False),  # FALSE AND NULL is FALSE
        ("x > 1 OR y > 1", {"x": 2}, True),  # TRUE OR NULL is TRUE
        ("x > 1 OR y > 1", {"x": 0}, None),
        ("x BETWEEN 1 AND 3", {"x": 3}, True),
        ("a / NULLIF(b, 0)", {"a": 3.0, "b": 0.0}, None),
        ("a / NULLIF(b / 3.0, 0)", {"a": 3.0, "b": 6.0}, 1.5),
        ("b - a", {"a": 1.0, "b": None}, None),
        ("COALESCE(a, 7)", {"a": None}, 7),
        ("-a % 4", {"a": 6}, 2),
        ("CASE WHEN x < 90 THEN 'new' WHEN y > 1 THEN 'old' ELSE 'mid' END", {"x": 100}, "mid"),
        ("CASE WHEN hour(ts) >= 11 AND hour(ts) < 14 THEN 1.0 ELSE 0.0 END", {"ts": TS}, 1.0),
        ("CASE WHEN isodow(ts) >= 6 THEN 1.0 ELSE 0.0 END", {"ts": TS}, 1.0),  # a Saturday
        ("dayofweek(ts)", {"ts": TS}, 6),
        ("CAST(ts AS DATE)", {"ts": TS}, date(2026, 8, 1)),
        ("CAST(x AS INTEGER) + 1", {"x": "41"}, 42),
        ("ts < __as_of_ts - INTERVAL 30 DAY", {"ts": TS, "__as_of_ts": TS}, False),
        (
            "ts >= TIMESTAMP '2026-07-01 00:00:00' - INTERVAL 1 DAY",
            {"ts": datetime(2026, 6, 30)},
            True,
        ),
        ("CAST(ts AS DATE) = DATE '2026-08-01'", {"ts": TS}, True),
    ],
)
def test_sql_fragments_evaluate_with_sql_null_logic(
    sql: str, env: dict[str, Any], expected: Any
) -> None:
    assert compile_sql(sql)(env) == expected


@pytest.mark.parametrize(
    ("sql", "pattern"),
    [
        ("regexp_matches(x, 'a')", "cannot evaluate"),
        ("x IN (SELECT 1)", "IN over a subquery"),
        ("CASE x WHEN 1 THEN 2 END", "CASE <operand>"),
        ("x LIKE y", "LIKE with a pattern"),
        ("x = (", "does not parse"),
    ],
)
def test_unsupported_sql_is_refused_when_compiled(sql: str, pattern: str) -> None:
    with pytest.raises(SchemaError, match=pattern):
        compile_sql(sql)


# -- the evaluator agrees with DuckDB on every catalogue condition and value ------------------

_EVENT_EXPRESSIONS = sorted(
    {
        (f.source, s.format(as_of_ts="__as_of_ts"))
        for f in FEATURES.values()
        if f.source in EVENT_SOURCES
        for s in (f.value, f.where)
        if s
    }
)
_times = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31))
_ROWS = {
    "transactions": st.fixed_dictionaries(
        {
            "ts": _times,
            "amount": st.floats(0.01, 5e6).map(lambda v: round(v, 2)),
            "category": st.sampled_from(CATEGORIES.values),
            "channel": st.one_of(st.none(), st.sampled_from(TXN_CHANNELS.values)),
        }
    ),
    "app_events": st.fixed_dictionaries(
        {
            "ts": _times,
            "event_type": st.sampled_from(APP_EVENT_TYPES.values),
            "page": st.one_of(st.none(), st.sampled_from(APP_PAGES.values)),
            "search_query": st.one_of(st.none(), st.sampled_from(["机票", "装修", "奶粉", "账单"])),
        }
    ),
}


@pytest.mark.parametrize("source", EVENT_SOURCES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_catalogue_fragments_evaluate_as_duckdb_does(source: str, data: st.DataObject) -> None:
    rows = data.draw(st.lists(_ROWS[source], min_size=1, max_size=20))
    exprs = [sql for s, sql in _EVENT_EXPRESSIONS if s == source]
    now = data.draw(_times)
    con = duckdb.connect()
    cols = list(rows[0])
    con.execute(
        f"CREATE TABLE ev AS SELECT * FROM (VALUES {', '.join(['(' + ', '.join(['?'] * len(cols)) + ')'] * len(rows))}) t({', '.join(cols)})",
        [r[c] for r in rows for c in cols],
    )
    select = ", ".join(f"({sql}) AS e{i}" for i, sql in enumerate(exprs))
    expected = con.execute(
        f"SELECT {select} FROM (SELECT *, ?::TIMESTAMP AS __as_of_ts FROM ev)", [now]
    ).fetchall()

    for row, want in zip(rows, expected, strict=True):
        got = [compile_sql(sql)({**row, "__as_of_ts": now}) for sql in exprs]
        assert got == [float(w) if hasattr(w, "as_tuple") else w for w in want], row


# -- the plan -----------------------------------------------------------------------------------


def test_every_event_feature_of_the_catalogue_is_updated_online() -> None:
    plan = UpdatePlan(list(FEATURES))

    event_features = [n for n, f in FEATURES.items() if f.source in EVENT_SOURCES]
    assert plan.stale == ()
    assert set(plan.updated) == set(event_features)
    assert {
        n for n in FEATURES if n.startswith("share_") and FEATURES[n].source == "derived"
    } <= set(plan.derived)
    assert {"spend_trend_30_90", "spend_trend_90_180", "lifecycle_stage"} <= set(plan.derived)


def test_a_login_moves_only_login_features() -> None:
    plan = UpdatePlan(list(FEATURES))

    ops = plan.ops("app_events", {"ts": TS, "event_type": "login", "page": None})

    assert {f for _, f, _ in ops} == {"logins_7d", "logins_30d", "logins_90d", "days_since_login"}


def test_a_dining_lunch_payment_moves_its_windows_and_shares() -> None:
    plan = UpdatePlan(list(FEATURES))
    event = {"ts": TS, "amount": 88.0, "category": "餐饮", "channel": "QR"}

    fields = {f for _, f, _ in plan.ops("transactions", event)}

    assert {"spend_7d", "spend_dining_90d", "spend_dining_30d", "txn_count_30d"} <= fields
    assert {"share_lunch_90d.sum", "share_qr_90d.n", "max_ticket_90d", "recency_days"} <= fields
    assert not {"spend_travel_90d", "spend_prior_90d", "logins_7d"} & fields


def test_derived_features_are_recomputed_only_when_their_inputs_are_loaded() -> None:
    plan = UpdatePlan(["spend_dining_90d", "share_dining_90d", "avg_ticket_90d"])

    # spend_90d is missing: the share cannot be recomputed; no count for the mean either
    assert plan.derived == ()
    assert set(plan.stale) == {"share_dining_90d", "avg_ticket_90d"}


def test_a_mean_keeps_counting_from_the_snapshot() -> None:
    plan = UpdatePlan(["txn_count_90d", "avg_ticket_90d", "max_ticket_90d"])
    deltas: dict[str, Any] = {}
    for amount in (10.0, 40.0):
        apply_ops(deltas, set(), plan.ops("transactions", {"ts": TS, "amount": amount}))

    got = plan.apply({"txn_count_90d": 2, "avg_ticket_90d": 25.0, "max_ticket_90d": 30.0}, deltas)

    assert got == {"txn_count_90d": 4, "avg_ticket_90d": 25.0, "max_ticket_90d": 40.0}
    empty = plan.apply({"txn_count_90d": 0, "avg_ticket_90d": None, "max_ticket_90d": None}, deltas)
    assert empty == {"txn_count_90d": 2, "avg_ticket_90d": 25.0, "max_ticket_90d": 40.0}


def test_distinct_days_count_each_new_day_once() -> None:
    plan = UpdatePlan(["active_days_30d"])
    deltas: dict[str, Any] = {}
    seen: set[str] = set()
    for hours in (1, 5, 30):
        event = {"ts": datetime(2026, 8, 1) + timedelta(hours=hours), "amount": 1.0}
        apply_ops(deltas, seen, plan.ops("transactions", event))

    assert plan.apply({"active_days_30d": 3}, deltas) == {"active_days_30d": 5}


def test_an_unsupported_definition_is_left_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    odd = FeatureDef(
        "last_amount",
        "最近金额",
        "last amount",
        "float",
        "rolling",
        "transactions",
        "amount",
        "last",
        window_days=30,
    )
    weird = FeatureDef(
        "odd_spend",
        "怪",
        "odd",
        "float",
        "rolling",
        "transactions",
        "amount",
        "sum",
        "regexp_matches(category, '餐')",
        30,
    )
    monkeypatch.setitem(FEATURES, odd.name, odd)
    monkeypatch.setitem(FEATURES, weird.name, weird)

    plan = UpdatePlan(["spend_7d", odd.name, weird.name])

    assert plan.updated == ("spend_7d",)
    assert set(plan.stale) == {odd.name, weird.name}


# -- configuration ------------------------------------------------------------------------------


def test_backends_are_chosen_by_their_short_name() -> None:
    assert isinstance(open_online_store(MemoryOnlineConfig()), MemoryOnlineStore)
    redis_config = RedisOnlineConfig(type="redis", url="redis://127.0.0.1:1/0", key_prefix="a:b")
    store = open_online_store(redis_config)
    assert type(store).__name__ == "RedisOnlineStore"
    store.close()
    with pytest.raises(pydantic.ValidationError, match="key_prefix"):
        RedisOnlineConfig(type="redis", key_prefix="has space")
