"""Daily sequences for need forecasting: shapes, sums, category groups and point-in-time reads."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from forecast_world import copy_tables, forecast_world, workspace_store

from qianmian.config import load_settings
from qianmian.data.schema.vocab import CATEGORIES
from qianmian.errors import ConfigError, ValidationError
from qianmian.models.forecast.sequences import (
    APP_CHANNELS,
    CALENDAR_CHANNELS,
    CATEGORY_GROUPS,
    GROUP_NAMES,
    _group_case,
    _search_topic,
    load_inputs,
    load_panel,
)
from qianmian.store.base import Store
from qianmian.world import World

AS_OF = date(2026, 7, 1)
LOOKBACK = 56


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return forecast_world(tmp_path_factory)


@pytest.fixture()
def store(world: World):
    with workspace_store(world.workspace) as s:
        yield s


def test_every_category_is_in_exactly_one_group() -> None:
    members = [c for _, _, cats in CATEGORY_GROUPS.values() for c in cats]
    assert sorted(members) == sorted(CATEGORIES.values)
    for needed in ("travel", "home", "baby", "auto", "jewellery"):
        assert needed in GROUP_NAMES


def test_a_transaction_without_category_falls_back_to_its_mcc() -> None:
    rows = duckdb.sql(
        f"SELECT {_group_case()} AS g FROM (VALUES (NULL, '7011'), ('母婴', '5812'), "
        "(NULL, '0000')) AS t(category, mcc)"
    ).fetchall()
    assert rows == [(GROUP_NAMES.index("travel"),), (GROUP_NAMES.index("baby"),), (None,)]


@pytest.mark.parametrize(
    ("query", "topic"),
    [
        ("机票", "travel"),
        ("装修贷", "home"),
        ("家装分期", "home"),
        ("汽车分期", "car"),
        ("蜜月旅行", "wedding"),
        ("纸尿裤", "baby"),
        ("成都", "travel"),
        ("理财", "other"),
    ],
)
def test_search_topics(query: str, topic: str) -> None:
    assert _search_topic(query, {"成都", "上海"}) == topic


def test_inputs_have_the_documented_shapes(store: Store) -> None:
    window = load_inputs(store, AS_OF, LOOKBACK)
    n = (
        store.query("SELECT count(*) AS n FROM customers WHERE signup_date < $d", {"d": AS_OF})
        .column("n")[0]
        .as_py()
    )
    assert window.n == n
    assert window.spend.shape == (n, LOOKBACK, len(GROUP_NAMES))
    assert window.app.shape == (n, LOOKBACK, len(APP_CHANNELS))
    assert window.calendar.shape == (LOOKBACK, len(CALENDAR_CHANNELS))
    assert (window.tenure_days > 0).all()
    assert np.all(np.diff(window.customer_id) > 0)


def test_inputs_and_targets_add_up_to_the_transactions(store: Store) -> None:
    panel = load_panel(store, AS_OF - timedelta(days=LOOKBACK), AS_OF + timedelta(days=30))
    window = panel.inputs(AS_OF, LOOKBACK)
    sql = (
        "SELECT sum(amount) AS s FROM transactions t JOIN customers c USING (customer_id) "
        "WHERE ts >= $lo AND ts < $hi AND c.signup_date < $d"
    )
    lo = datetime.combine(AS_OF - timedelta(days=LOOKBACK), datetime.min.time())
    at = datetime.combine(AS_OF, datetime.min.time())
    before = store.query(sql, {"lo": lo, "hi": at, "d": AS_OF}).column("s")[0].as_py()
    after = store.query(sql, {"lo": at, "hi": at + timedelta(days=30), "d": AS_OF})
    assert window.spend.sum(dtype=np.float64) == pytest.approx(before, rel=1e-5)
    assert panel.targets(AS_OF, 30).sum(dtype=np.float64) == pytest.approx(
        after.column("s")[0].as_py(), rel=1e-5
    )
    logins = store.query(
        "SELECT count(*) AS n FROM app_events a JOIN customers c USING (customer_id) "
        "WHERE event_type = 'login' AND ts >= $lo AND ts < $hi AND c.signup_date < $d",
        {"lo": lo, "hi": at, "d": AS_OF},
    )
    assert window.app[:, :, APP_CHANNELS.index("logins")].sum() == logins.column("n")[0].as_py()


def _plant(store: Store, customer: int, ts: datetime, txn_id: int, event_id: int) -> None:
    store.write(
        "transactions",
        pa.table(
            {
                "txn_id": [txn_id],
                "customer_id": [customer],
                "ts": pa.array([ts], pa.timestamp("us")),
                "amount": [88_888.0],
                "category": ["旅游"],
            }
        ),
    )
    store.write(
        "app_events",
        pa.table(
            {
                "event_id": [event_id],
                "customer_id": [customer],
                "ts": pa.array([ts], pa.timestamp("us")),
                "event_type": ["search"],
                "search_query": ["机票"],
            }
        ),
    )


def test_nothing_on_or_after_as_of_reaches_the_inputs(world: World, tmp_path: Path) -> None:
    with workspace_store(world.workspace) as src, load_settings(tmp_path).build_store() as dst:
        copy_tables(src, dst, ("customers", "transactions", "app_events"))
    with load_settings(tmp_path).build_store() as store:
        before = load_inputs(store, AS_OF, LOOKBACK)
        row = 5
        customer = int(before.customer_id[row])
        at = datetime.combine(AS_OF, datetime.min.time())
        _plant(store, customer, at, 10**12, 10**12)  # on as_of, the first microsecond
        _plant(store, customer, at + timedelta(days=3), 10**12 + 1, 10**12 + 1)
        same = load_inputs(store, AS_OF, LOOKBACK)
        np.testing.assert_array_equal(same.spend, before.spend)
        np.testing.assert_array_equal(same.app, before.app)
        _plant(store, customer, at - timedelta(microseconds=1), 10**12 + 2, 10**12 + 2)
        later = load_inputs(store, AS_OF, LOOKBACK)
    travel, search = GROUP_NAMES.index("travel"), APP_CHANNELS.index("search_travel")
    assert later.spend[row, -1, travel] - before.spend[row, -1, travel] == pytest.approx(88_888)
    assert later.app[row, -1, search] - before.app[row, -1, search] == 1
    assert later.spend.sum(dtype=np.float64) - before.spend.sum(dtype=np.float64) == (
        pytest.approx(88_888, rel=1e-6)
    )


def test_a_window_outside_the_panel_is_refused(store: Store) -> None:
    panel = load_panel(store, AS_OF - timedelta(days=10), AS_OF)
    with pytest.raises(ValidationError, match="lookback of 56 days"):
        panel.inputs(AS_OF, LOOKBACK)
    with pytest.raises(ValidationError, match="ends after the data"):
        panel.targets(AS_OF, 7)


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda s: load_inputs(s, "1 July", 30), ValidationError, "not a date"),
        (lambda s: load_inputs(s, AS_OF, 0), ConfigError, "lookback_days"),
        (lambda s: load_panel(s, AS_OF, AS_OF), ConfigError, "'end'"),
    ],
)
def test_bad_arguments_get_clear_errors(store: Store, call, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        call(store)
