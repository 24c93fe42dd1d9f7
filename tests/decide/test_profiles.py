"""Contact states read from the store: consents, opt-outs and held products, in batches."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from qianmian.decide.profiles import customer_states, load_customer_states
from qianmian.decide.state.base import CustomerContactState
from qianmian.decide.state.memory import MemoryDecisionState
from qianmian.errors import ConfigError, NotFoundError
from qianmian.store.base import Store
from qianmian.store.duckdb import DuckDBStore
from qianmian.world import World, WorldConfig

BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.integration)]
CHANNEL_OF = {
    "consent_sms": "sms",
    "consent_app_push": "app_push",
    "consent_email": "email",
    "consent_call_center": "call_center",
    "consent_wechat": "wechat",
}
EXTRA_CUSTOMER = 10_001  # no consent or opt-out values, no holdings


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    """The smallest simulated bank's customers and holdings, plus the cases it lacks."""
    world = World.generate(
        WorldConfig(customers=300, months=1, seed=3), tmp_path_factory.mktemp("bank"), workers=1
    )
    with DuckDBStore(":memory:") as s:
        for name in ("customers", "holdings"):
            s.load_parquet(name, world.table_paths(name))
        customers, holdings = s.read("customers"), s.read("holdings")
    products = sorted(set(holdings.column("product_id").to_pylist()))
    held_by_1 = {h["product_id"] for h in holdings.to_pylist() if h["customer_id"] == 1}
    not_held = [p for p in products if p not in held_by_1][:2]
    some = holdings.filter(pc.equal(holdings.column("customer_id"), 3)).to_pylist()[0]
    day, closed = dt.date(2025, 1, 1), dt.date(2025, 6, 1)
    rows = [  # customer, product, status, closed_date
        (1, not_held[0], "closed", closed),  # closed: not held
        (2, not_held[0], None, None),  # no status, not closed: held
        (2, not_held[1], None, closed),  # no status, closed: not held
        (3, some["product_id"], "active", None),  # a second holding of one product
        (4, not_held[1], "dormant", None),  # dormant: still held
    ]
    start = max(holdings.column("holding_id").to_pylist()) + 1
    extra = pa.table(
        {
            "holding_id": [start + i for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "product_id": [r[1] for r in rows],
            "opened_date": [day] * len(rows),
            "closed_date": [r[3] for r in rows],
            "status": [r[2] for r in rows],
        }
    )
    return {
        "customers": customers,
        "holdings": holdings,
        "extra_holdings": extra,
        "extra_customers": pa.table({"customer_id": [EXTRA_CUSTOMER]}),
    }


@pytest.fixture(params=BACKENDS)
def empty_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "duckdb":
        with DuckDBStore(":memory:") as s:
            yield s
        return
    from qianmian.store.postgres import PostgresStore

    dsn = request.getfixturevalue("postgres_dsn")
    with PostgresStore(dsn, db_schema=request.getfixturevalue("postgres_schema")) as s:
        yield s


@pytest.fixture
def store(empty_store: Store, bank: dict[str, pa.Table]) -> Store:
    empty_store.write("customers", bank["customers"])
    empty_store.write("customers", bank["extra_customers"])
    empty_store.write("holdings", bank["holdings"])
    empty_store.write("holdings", bank["extra_holdings"])
    return empty_store


def expected_states(store: Store) -> dict[int, CustomerContactState]:
    """The states computed in Python from the stored rows, independently of the SQL."""
    held: dict[int, set[str]] = defaultdict(set)
    for h in store.read("holdings").to_pylist() if store.has_table("holdings") else []:
        status = h["status"] or ("active" if h["closed_date"] is None else "closed")
        if status != "closed":
            held[h["customer_id"]].add(h["product_id"])
    return {
        c["customer_id"]: CustomerContactState(
            c["customer_id"],
            frozenset(ch for column, ch in CHANNEL_OF.items() if c[column]),
            bool(c["marketing_opt_out"]),
            bool(c["personalisation_opt_out"]),
            frozenset(held[c["customer_id"]]),
        )
        for c in store.read("customers").to_pylist()
    }


@pytest.mark.parametrize("batch_size", [7, 50_000])
def test_customer_states_match_the_tables(
    store: Store, bank: dict[str, pa.Table], batch_size: int
) -> None:
    expected = expected_states(store)

    got = list(customer_states(store, batch_size=batch_size))

    assert got == [expected[c] for c in sorted(expected)]
    # the cases the test data is meant to hold are really there
    extra = bank["extra_holdings"].to_pylist()
    assert extra[0]["product_id"] not in expected[1].held_products  # closed
    assert extra[1]["product_id"] in expected[2].held_products  # no status, open
    assert extra[2]["product_id"] not in expected[2].held_products  # no status, closed
    assert extra[4]["product_id"] in expected[4].held_products  # dormant
    assert expected[EXTRA_CUSTOMER] == CustomerContactState(EXTRA_CUSTOMER)
    assert any(s.marketing_opt_out for s in got) and any(s.personalisation_opt_out for s in got)
    assert {ch for s in got for ch in s.consents} == set(CHANNEL_OF.values())


def test_load_customer_states_reports_progress(store: Store) -> None:
    expected = expected_states(store)
    state = MemoryDecisionState()
    calls: list[tuple[int, int]] = []

    loaded = load_customer_states(
        store, state, lambda n, total: calls.append((n, total)), batch_size=100
    )

    assert loaded == len(expected) == 301
    assert calls == [(100, 301), (200, 301), (300, 301), (301, 301)]
    assert [state.customer(c) for c in expected] == list(expected.values())


def test_a_store_without_holdings_gives_no_held_products(
    empty_store: Store, bank: dict[str, pa.Table]
) -> None:
    empty_store.write("customers", bank["customers"])

    got = list(customer_states(empty_store, batch_size=128))

    assert len(got) == 300 and all(not s.held_products for s in got)
    expected = expected_states(empty_store)
    assert got == [expected[c] for c in sorted(expected)]


def test_a_store_without_customers_is_a_clear_error(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "empty.duckdb") as empty:
        with pytest.raises(NotFoundError, match="no 'customers' table"):
            list(customer_states(empty))
        with pytest.raises(NotFoundError, match="no 'customers' table"):
            load_customer_states(empty, MemoryDecisionState())
        with pytest.raises(ConfigError, match="'batch_size' parameter of customer_states"):
            load_customer_states(empty, MemoryDecisionState(), batch_size=0)
