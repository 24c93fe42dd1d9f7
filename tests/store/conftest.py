"""Store fixtures: one ``store`` per backend, and factories of stores and sample tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from qianmian.config import DuckDBStoreConfig
from qianmian.store import Store

BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.integration)]

StoreFactory = Callable[[str], Store]


@pytest.fixture
def store_factory(request: pytest.FixtureRequest, tmp_workspace: Path) -> Iterator[StoreFactory]:
    """Open a fresh, empty store of a backend by name; every store opened is closed afterwards."""
    opened: list[Store] = []

    def open_store(kind: str) -> Store:
        if kind == "duckdb":
            from qianmian.store.duckdb import DuckDBStore

            store: Store = DuckDBStore.from_config(DuckDBStoreConfig(), workspace=tmp_workspace)
        else:
            from qianmian.store.postgres import PostgresStore

            dsn = request.getfixturevalue("postgres_dsn")
            store = PostgresStore(dsn, db_schema=request.getfixturevalue("postgres_schema"))
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, store_factory: StoreFactory) -> Store:
    """An empty store of each backend in turn."""
    return store_factory(request.param)


CUSTOMER_NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", 'O"Brien, Jr.', "多行\n姓名", "", "NULL"]
CITIES = ["北京", "上海", "深圳", "成都", None]


@pytest.fixture
def make_customers() -> Callable[..., pa.Table]:
    """Build a ``customers`` table of ``n`` rows from ``seed``: dates, bools, nulls, Chinese."""

    def build(n: int = 50, *, seed: int = 0, start_id: int = 1) -> pa.Table:
        rng = np.random.default_rng(seed)
        ids = np.arange(start_id, start_id + n)
        births = [
            dt.date(1950, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 20_000, n)
        ]
        incomes = np.round(rng.lognormal(9.5, 0.6, n), 2)
        return pa.table(
            {
                "customer_id": pa.array(ids, pa.int64()),
                "name": [CUSTOMER_NAMES[i % len(CUSTOMER_NAMES)] for i in range(n)],
                "gender": rng.choice(["男", "女"], n).tolist(),
                "birth_date": pa.array(
                    [b if i % 7 else None for i, b in enumerate(births)], pa.date32()
                ),
                "children": pa.array(
                    [int(c) if c < 4 else None for c in rng.integers(0, 5, n)], pa.int64()
                ),
                "city": [CITIES[i % len(CITIES)] for i in range(n)],
                "monthly_income": pa.array(
                    [None if i % 11 == 0 else float(v) for i, v in enumerate(incomes)], pa.float64()
                ),
                "credit_score": pa.array(rng.integers(300, 851, n), pa.int64()),
                "signup_date": pa.array(
                    [
                        dt.date(2015, 1, 1) + dt.timedelta(days=int(d))
                        for d in rng.integers(0, 3000, n)
                    ],
                    pa.date32(),
                ),
                "consent_sms": pa.array(
                    [bool(b) if i % 5 else None for i, b in enumerate(rng.integers(0, 2, n))],
                    pa.bool_(),
                ),
                "marketing_opt_out": pa.array(rng.integers(0, 2, n).astype(bool)),
            }
        )

    return build
