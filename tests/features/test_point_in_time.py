"""Point-in-time correctness: a feature as of ``as_of`` uses only what was known strictly before.

Rows are planted in a copy of the bank (a fresh store per test), never in the shared one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from qianmian.config import load_settings
from qianmian.features.definition import SOURCES
from qianmian.features.engine import StoreFeatureEngine
from qianmian.store.base import Store
from qianmian.world import World

SOURCE_TABLES = sorted({s.table for s in SOURCES.values()})
ID_COLUMNS = {
    "transactions": "txn_id",
    "app_events": "event_id",
    "holdings": "holding_id",
    "loans": "loan_id",
}
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


@pytest.fixture()
def as_of(feature_table: pa.Table) -> datetime:
    """The as-of time of the shared ``feature_table`` (midnight)."""
    value = feature_table.column("as_of")[0].as_py()
    assert value == datetime(value.year, value.month, value.day)
    return value


@pytest.fixture()
def bank_copy(tmp_path: Path, feature_store: Store) -> Iterator[Store]:
    """A fresh store holding a copy of the source tables; tests may change it."""
    with load_settings(tmp_path / "copy").build_store() as store:
        for name in SOURCE_TABLES:
            store.write(name, feature_store.read(name), mode="replace")
        yield store


@pytest.fixture(scope="module")
def transactions(feature_world: World) -> pd.DataFrame:
    return feature_world.table("transactions", ["customer_id", "ts", "amount"]).to_pandas()


@pytest.fixture(scope="module")
def active_customer(feature_table: pa.Table) -> int:
    """The customer with the most transactions in the 90 days before as_of."""
    counts = feature_table.column("txn_count_90d")
    return feature_table.column("customer_id")[pc.index(counts, pc.max(counts)).as_py()].as_py()


@pytest.fixture(scope="module")
def quiet_customer(feature_table: pa.Table) -> int:
    """A customer with no transaction in the year before as_of."""
    quiet = feature_table.filter(pc.equal(feature_table["frequency_365d"], 0))
    if quiet.num_rows == 0:  # every customer spends: the least active one then
        counts = feature_table.column("frequency_365d")
        return feature_table.column("customer_id")[pc.index(counts, pc.min(counts)).as_py()].as_py()
    return quiet.column("customer_id")[0].as_py()


def plant(store: Store, table: str, customer_id: int, **values: Any) -> None:
    """Append one row to ``table`` for ``customer_id``: an existing row with ``values`` set."""
    data = store.read(table)
    row = data.slice(0, 1)
    values = {"customer_id": customer_id, **values}
    if table in ID_COLUMNS:
        values[ID_COLUMNS[table]] = pc.max(data[ID_COLUMNS[table]]).as_py() + 1
    for name, value in values.items():
        i = row.schema.get_field_index(name)
        row = row.set_column(i, row.schema.field(i), pa.array([value], row.schema.field(i).type))
    store.write(table, row, mode="append")


def change(
    store: Store, table: str, where: Callable[[pa.Table], pa.ChunkedArray], **values: Any
) -> int:
    """Set ``values`` on the rows of ``table`` selected by ``where``; return how many."""
    data = store.read(table)
    mask = where(data)
    for name, value in values.items():
        i = data.schema.get_field_index(name)
        new = pa.scalar(value, data.schema.field(i).type)
        data = data.set_column(i, data.schema.field(i), pc.if_else(mask, new, data[name]))
    store.write(table, data, mode="replace")
    return pc.sum(mask.cast(pa.int64())).as_py()


def row_of(features: pa.Table, customer_id: int) -> dict[str, Any]:
    rows = features.filter(pc.equal(features["customer_id"], customer_id)).to_pylist()
    assert len(rows) == 1, f"customer {customer_id} has {len(rows)} feature rows"
    return rows[0]


def assert_same(left: pa.Table, right: pa.Table) -> None:
    """Same rows and values (floats to 1e-9: DuckDB may sum in a different order)."""
    pd.testing.assert_frame_equal(
        left.to_pandas(), right.to_pandas(), check_exact=False, rtol=1e-9, atol=0
    )


def future_rows(at: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Rows that would move many features, dated at or after ``at``."""
    day = at.date()
    return [
        ("transactions", {"ts": at, "amount": 88_888.0, "category": "旅游", "channel": "online"}),
        (
            "transactions",
            {
                "ts": at + 3 * DAY + 5 * SECOND,
                "amount": 7_777.0,
                "category": "母婴",
                "channel": "QR",
            },
        ),
        ("app_events", {"ts": at, "event_type": "login", "page": None}),
        ("app_events", {"ts": at + SECOND, "event_type": "page_view", "page": "card_travel"}),
        ("app_events", {"ts": at, "event_type": "transfer_failure", "page": None}),
        (
            "holdings",
            {
                "opened_date": day,
                "product_id": "CC-PLAT",
                "closed_date": None,
                "balance": None,
                "credit_limit": 100_000.0,
            },
        ),
        (
            "holdings",
            {
                "opened_date": day + DAY,
                "product_id": "WM-R5",
                "closed_date": None,
                "balance": 1_000_000.0,
                "credit_limit": None,
            },
        ),
        (
            "statements",
            {
                "statement_month": date(day.year, day.month, 1),
                "statement_balance": 99_000.0,
                "credit_limit": 100_000.0,
                "revolving_balance": 50_000.0,
                "min_payment_missed": True,
            },
        ),
        ("loans", {"start_date": day, "product_id": "LN-CAR", "principal": 300_000.0}),
        (
            "loans",
            {"start_date": day + 30 * DAY, "product_id": "INST-MERCHANT", "principal": 12_000.0},
        ),
    ]


def test_rows_at_or_after_as_of_change_no_feature_of_anyone(
    bank_copy, feature_table, as_of, active_customer, quiet_customer
):
    for customer in (active_customer, quiet_customer):
        for table, values in future_rows(as_of):
            plant(bank_copy, table, customer, **values)
    # a holding closed at as_of was still open before it: closing it later is no news
    closed = change(
        bank_copy,
        "holdings",
        lambda h: pc.and_(
            pc.equal(h["customer_id"], active_customer), pc.is_null(h["closed_date"])
        ),
        closed_date=as_of.date(),
    )
    assert closed > 0
    assert_same(StoreFeatureEngine(bank_copy).build(as_of), feature_table)


# (table, a row just before as_of, {feature: expected change}, {feature: expected value})
JUST_BEFORE = {
    "transaction one second before": (
        "transactions",
        lambda t: {"ts": t - SECOND, "amount": 1_234.5, "category": "旅游"},
        {"spend_7d": 1_234.5, "txn_count_7d": 1, "spend_travel_30d": 1_234.5},
        {"recency_days": 1},
    ),
    "login one second before": (
        "app_events",
        lambda t: {"ts": t - SECOND, "event_type": "login", "page": None},
        {"logins_7d": 1},
        {"days_since_login": 1},
    ),
    "card opened the day before": (
        "holdings",
        lambda t: {
            "opened_date": (t - DAY).date(),
            "product_id": "CC-PLAT",
            "closed_date": None,
            "credit_limit": 100_000.0,
        },
        {"n_cards": 1, "total_credit_limit": 100_000.0},
        {"holds_platinum": True},
    ),
    "car loan started the day before": (
        "loans",
        lambda t: {"start_date": (t - DAY).date(), "product_id": "LN-CAR", "principal": 300_000.0},
        {"loans_180d": 1, "loan_principal_180d": 300_000.0},
        {"has_car_loan": True},
    ),
}


@pytest.mark.parametrize("case", JUST_BEFORE)
def test_a_row_just_before_as_of_is_used(bank_copy, feature_table, as_of, active_customer, case):
    table, values, deltas, after = JUST_BEFORE[case]
    plant(bank_copy, table, active_customer, **values(as_of))
    built = StoreFeatureEngine(bank_copy).build(as_of)
    old, new = row_of(feature_table, active_customer), row_of(built, active_customer)
    for name, delta in deltas.items():
        assert new[name] == pytest.approx(old[name] + delta, rel=1e-12), name
    for name, value in after.items():
        assert new[name] == value, name
    others = pc.not_equal(built["customer_id"], active_customer)
    assert_same(
        built.filter(others),
        feature_table.filter(pc.not_equal(feature_table["customer_id"], active_customer)),
    )


def test_customers_who_sign_up_on_or_after_as_of_are_absent(
    bank_copy, feature_world, feature_table, as_of
):
    customers = feature_world.table("customers", ["customer_id", "signup_date"]).to_pandas()
    before = set(customers.loc[customers["signup_date"] < as_of.date(), "customer_id"])
    assert set(feature_table.column("customer_id").to_pylist()) == before
    assert len(before) < len(customers)  # the bank keeps signing customers up after as_of

    on, after, day_before = sorted(before)[:3]
    for customer, signup in (
        (on, as_of.date()),
        (after, (as_of + 40 * DAY).date()),
        (day_before, (as_of - DAY).date()),
    ):
        change(
            bank_copy,
            "customers",
            lambda c, i=customer: pc.equal(c["customer_id"], i),
            signup_date=signup,
        )
    built = StoreFeatureEngine(bank_copy).build(as_of)
    ids = set(built.column("customer_id").to_pylist())
    assert on not in ids and after not in ids
    assert ids == before - {on, after}
    assert row_of(built, day_before)["tenure_days"] == 1
    assert row_of(built, day_before)["lifecycle_stage"] == "new"


def test_the_statement_of_the_month_ending_at_as_of_is_not_used(
    bank_copy, feature_world, as_of, active_customer
):
    statements = feature_world.table("statements").to_pandas()
    mine = statements[statements["customer_id"] == active_customer].set_index("statement_month")
    ending_at_as_of = (as_of - DAY).date().replace(day=1)  # issued at as_of
    previous = (pd.Timestamp(ending_at_as_of) - pd.DateOffset(months=1)).date()
    assert {ending_at_as_of, previous} <= set(mine.index)

    def utilisation(month: date) -> float:
        return mine.loc[month, "statement_balance"] / mine.loc[month, "credit_limit"]

    engine = StoreFeatureEngine(bank_copy)
    names = ["utilisation_last", "revolving_balance_last", "utilisation_avg_3m"]
    built = row_of(engine.build(as_of, features=names), active_customer)
    assert built["utilisation_last"] == pytest.approx(utilisation(previous), rel=1e-12)
    assert built["revolving_balance_last"] == pytest.approx(
        mine.loc[previous, "revolving_balance"], rel=1e-12
    )

    def month_of(month: date) -> Callable[[pa.Table], pa.ChunkedArray]:
        return lambda s: pc.and_(
            pc.equal(s["customer_id"], active_customer),
            pc.equal(s["statement_month"], pa.scalar(month)),
        )

    # the statement issued at as_of changes nothing as of then ...
    change(bank_copy, "statements", month_of(ending_at_as_of), statement_balance=1e7)
    assert row_of(engine.build(as_of, features=names), active_customer) == built
    # ... and is the last statement one day later
    later = row_of(engine.build(as_of + DAY, features=names), active_customer)
    assert later["utilisation_last"] == pytest.approx(
        1e7 / mine.loc[ending_at_as_of, "credit_limit"], rel=1e-12
    )
    # while the statement issued a month before as_of is used
    change(bank_copy, "statements", month_of(previous), statement_balance=0.0)
    assert row_of(engine.build(as_of, features=names), active_customer)["utilisation_last"] == 0


def test_training_set_is_builds_stacked_and_each_row_sees_only_its_own_past(
    feature_store, transactions, active_customer
):
    dates = [
        datetime(2026, 3, 1),
        datetime(2026, 5, 17, 8, 30),
        datetime(2026, 8, 1),
        datetime(2026, 9, 15, 23, 59, 59),
    ]
    engine = StoreFeatureEngine(feature_store)
    training = engine.training_set(reversed(dates))  # any order in, sorted out
    assert_same(training, pa.concat_tables([engine.build(d) for d in dates]))

    mine = training.filter(pc.equal(training["customer_id"], active_customer)).to_pylist()
    assert [r["as_of"] for r in mine] == dates
    tx = transactions[transactions["customer_id"] == active_customer]
    by_hand = [tx.loc[(tx["ts"] >= d - 30 * DAY) & (tx["ts"] < d), "amount"].sum() for d in dates]
    assert [r["spend_30d"] for r in mine] == pytest.approx(by_hand, rel=1e-9)
    assert len(set(by_hand)) == len(dates)  # the windows really differ
