"""The same data written to every backend reads back as the same Arrow table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from qianmian.store import Store

pytestmark = pytest.mark.integration

# Characters that stress CSV, SQL and encodings: separators, quotes, escapes, CJK, emoji.
ALPHABET = [*"ab,;\"'\\\n\r\t %$:{}|", "千", "面", "银", "行", "🙂", "\u00e9"]
DAYS_0001 = (dt.date(1, 1, 1) - dt.date(1970, 1, 1)).days
DAYS_9999 = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days
US_PER_DAY = 86_400_000_000


def random_table(n: int, seed: int) -> pa.Table:
    """``n`` rows of every logical type, about one value in ten null, from ``seed``."""
    rng = np.random.default_rng(seed)

    def nulls() -> np.ndarray:
        return rng.random(n) < 0.1

    ints = rng.integers(
        np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64, endpoint=True
    )
    floats = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    strings = ["".join(rng.choice(ALPHABET, rng.integers(0, 12))) for _ in range(n)]
    days = rng.integers(DAYS_0001, DAYS_9999, n, endpoint=True)
    micros = days * US_PER_DAY + rng.integers(0, US_PER_DAY, n)
    return pa.table(
        {
            "id": pa.array(rng.permutation(n), pa.int64()),
            "i": pa.array(ints, pa.int64(), mask=nulls()),
            "f": pa.array(floats, pa.float64(), mask=nulls()),
            "s": pa.array(strings, pa.string(), mask=nulls()),
            "b": pa.array(rng.integers(0, 2, n).astype(bool), pa.bool_(), mask=nulls()),
            "d": pa.array(days.astype(np.int32), pa.date32(), mask=nulls()),
            "ts": pa.array(micros, pa.timestamp("us"), mask=nulls()),
        }
    )


@pytest.fixture
def both(store_factory: Callable[[str], Store]) -> tuple[Store, Store]:
    return store_factory("duckdb"), store_factory("postgres")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_data_reads_back_identically_from_both_backends(
    both: tuple[Store, Store], seed: int
) -> None:
    data = random_table(2_000, seed)
    duck, pg = both

    reads = []
    for store in both:
        store.write("random", data)
        reads.append(store.read("random").sort_by("id"))

    assert reads[0].schema == reads[1].schema == data.schema
    assert reads[0].equals(reads[1])
    assert reads[0].equals(data.sort_by("id"))
    sql = "SELECT id, s, ts FROM random WHERE b AND d > $since ORDER BY id"
    since = dt.date(5000, 1, 1)
    assert duck.query(sql, {"since": since}).equals(pg.query(sql, {"since": since}))


def test_dictionary_table_reads_back_identically_from_both_backends(
    both: tuple[Store, Store], make_customers: Callable[..., pa.Table]
) -> None:
    data = make_customers(300, seed=7)

    reads = []
    for store in both:
        store.write("customers", data.slice(0, 200))
        store.write("customers", data.slice(200).drop_columns(["city", "gender"]))
        reads.append(store.read("customers").sort_by("customer_id"))

    assert reads[0].schema == reads[1].schema
    assert reads[0].equals(reads[1])
