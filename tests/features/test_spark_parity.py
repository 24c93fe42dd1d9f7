"""DuckDB and Spark compute the same features from the same bank: every feature, every row.

One local Spark session serves the whole module (it takes seconds to start). PySpark and Java
are required: if either is missing the tests fail with the reason, they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from qianmian.errors import NotFoundError, SchemaError
from qianmian.features.catalogue import FEATURES
from qianmian.features.engine import StoreFeatureEngine
from qianmian.features.spark import SparkFeatureEngine, local_spark, to_spark_sql
from qianmian.world import World

pytestmark = pytest.mark.slow

RELATIVE_TOLERANCE = 1e-9
# as_of in the middle of a day: timestamp windows end mid-day, date sources at its date
SECOND_AS_OF = "2026-04-15 13:30:00"
TIME_FEATURES = [
    "recency_days",
    "active_days_30d",
    "share_night_90d",
    "share_weekend_90d",
    "share_lunch_90d",
    "spend_7d",
    "days_since_login",
    "tenure_days",
    "age",
]


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    session = local_spark(cores=2, memory="2g")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def as_of(feature_table: pa.Table) -> datetime:
    """The as-of time of the shared ``feature_table``."""
    return feature_table.column("as_of")[0].as_py()


@pytest.fixture(scope="module")
def spark_engine(spark, feature_world: World) -> SparkFeatureEngine:
    return SparkFeatureEngine(spark, feature_world.data_dir)


def assert_same_features(spark_table: pa.Table, duck_table: pa.Table) -> None:
    """Same schema and rows; ints, bools and strings equal, floats within the tolerance."""
    assert spark_table.schema.equals(duck_table.schema, check_metadata=True), (
        f"schemas differ:\n{spark_table.schema}\n---\n{duck_table.schema}"
    )
    assert spark_table.column("customer_id").equals(duck_table.column("customer_id"))
    different = {}
    for name in duck_table.column_names:
        left, right = spark_table.column(name), duck_table.column(name)
        if pa.types.is_floating(right.type):
            a = left.to_numpy(zero_copy_only=False)
            b = right.to_numpy(zero_copy_only=False)
            a_null, b_null = np.isnan(a), np.isnan(b)
            close = np.isclose(a, b, rtol=RELATIVE_TOLERANCE, atol=0.0) | (a == b)
            bad = (a_null != b_null) | (~a_null & ~b_null & ~close)
        else:
            both_null = pc.and_(pc.is_null(left), pc.is_null(right))
            same = pc.fill_null(pc.or_kleene(pc.equal(left, right), both_null), False)
            bad = ~same.to_numpy(zero_copy_only=False)
        if bad.any():
            rows = np.flatnonzero(bad)[:3]
            ids = duck_table.column("customer_id").take(rows).to_pylist()
            different[name] = (
                f"{bad.sum()} rows, e.g. customers {ids}: spark "
                f"{left.take(rows).to_pylist()} vs duckdb "
                f"{right.take(rows).to_pylist()}"
            )
    assert not different, "features differ:\n" + "\n".join(
        f"  {k}: {v}" for k, v in different.items()
    )


def test_spark_session_keeps_naive_times_in_utc(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    row = spark.sql(
        "SELECT CAST(TIMESTAMP_NTZ '2026-08-01 23:30:00' AS DATE) AS d, "
        "HOUR(TIMESTAMP '2026-08-01 23:30:00') AS h"
    ).collect()[0]
    assert (str(row.d), row.h) == ("2026-08-01", 23)


def test_every_feature_matches_duckdb(spark_engine, feature_table, as_of):
    spark_table = spark_engine.build(as_of)
    assert spark_table.num_columns == len(FEATURES) + 2
    assert_same_features(spark_table, feature_table)


def test_features_match_at_a_second_as_of_mid_day(spark_engine, feature_store):
    duck_table = StoreFeatureEngine(feature_store).build(SECOND_AS_OF)
    assert_same_features(spark_engine.build(SECOND_AS_OF), duck_table)


def test_a_customer_subset_matches_duckdb_and_the_full_build(
    spark_engine, feature_store, feature_table, feature_world, as_of
):
    customers = feature_world.table("customers", ["customer_id", "signup_date"])
    late = pc.filter(customers, pc.greater_equal(customers["signup_date"], pa.scalar(as_of.date())))
    ids = [
        *customers["customer_id"].to_pylist()[::200],
        late["customer_id"][0].as_py(),
        999_999_999,
    ]
    spark_table = spark_engine.build(as_of, customers=ids)
    assert_same_features(spark_table, StoreFeatureEngine(feature_store).build(as_of, customers=ids))
    expected = feature_table.filter(
        pc.is_in(feature_table["customer_id"], pa.array(ids, pa.int64()))
    )
    assert_same_features(spark_table, expected)
    absent = set(ids) - set(spark_table.column("customer_id").to_pylist())
    assert absent == {late["customer_id"][0].as_py(), 999_999_999}


def test_results_do_not_depend_on_the_session_time_zone(spark, spark_engine, feature_store, as_of):
    ids = list(range(1, 400, 7))
    duck_table = StoreFeatureEngine(feature_store).build(
        as_of, features=TIME_FEATURES, customers=ids
    )
    spark.conf.set("spark.sql.session.timeZone", "Asia/Shanghai")
    try:
        spark_table = spark_engine.build(as_of, features=TIME_FEATURES, customers=ids)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert_same_features(spark_table, duck_table)


def test_training_set_on_spark_matches_duckdb(spark_engine, feature_store):
    dates, ids, names = ["2026-03-01", "2026-06-01"], list(range(1, 4_000, 97)), TIME_FEATURES
    assert_same_features(
        spark_engine.training_set(dates, features=names, customers=ids),
        StoreFeatureEngine(feature_store).training_set(dates, features=names, customers=ids),
    )


# DuckDB expressions whose plain sqlglot transpilation means something else on Spark.
SEMANTIC_CASES = [
    ("iso day of week", "isodow(d)", "d"),
    ("date_diff counts day boundaries", "date_diff('day', ts, ts2)", "ts"),
    ("arg_max skips NULL values", "arg_max(x, ts)", None),
    ("average of decimal literals", "avg(CASE WHEN x > 1 THEN 1.0 ELSE 0.0 END)", None),
    ("count distinct skips NULLs", "count(DISTINCT x % 3)", None),
    ("integer division gives a fraction", "sum(x) / 3", None),
    ("hour and date of a naive time", "hour(ts) * 100 + day(CAST(ts AS DATE))", "ts"),
    ("interval arithmetic", "ts - INTERVAL 30 DAY < TIMESTAMP '2026-07-01 00:00:00'", "ts"),
    ("substr and LIKE", "CAST(substr(code, 5, 1) AS INTEGER) + (code LIKE 'WM-%')::INT", "code"),
]
_VALUES = """(VALUES
    (DATE '2026-08-03', TIMESTAMP '2026-07-27 23:00:00', TIMESTAMP '2026-07-28 01:00:00', 1,
     'WM-R1'),
    (DATE '2026-08-04', TIMESTAMP '2026-07-30 06:00:00', TIMESTAMP '2026-08-02 05:59:59', 2,
     'WM-R2'),
    (DATE '2026-08-05', TIMESTAMP '2026-07-31 12:00:00', TIMESTAMP '2026-08-01 00:00:00', 3,
     'CC-R3'),
    (DATE '2026-08-06', TIMESTAMP '2026-08-01 00:00:00', TIMESTAMP '2026-08-01 00:00:01', 4,
     'WM-R4'),
    (DATE '2026-08-07', TIMESTAMP '2026-08-02 00:00:01', TIMESTAMP '2026-08-09 00:00:00', NULL,
     'WM-R5'),
    (DATE '2026-08-08', TIMESTAMP '2025-12-31 23:59:59', TIMESTAMP '2026-01-01 00:00:00', 6,
     'WM-R6'),
    (DATE '2026-08-09', TIMESTAMP '2026-03-01 10:10:10', TIMESTAMP '2026-03-29 00:00:00', 7,
     'INS-1')
) AS v(d, ts, ts2, x, code)"""


@pytest.mark.parametrize(
    ("expression", "order_by"), [pytest.param(e, o, id=name) for name, e, o in SEMANTIC_CASES]
)
def test_transpiled_expressions_mean_the_same(spark, feature_store, expression, order_by):
    order = f" ORDER BY {order_by}" if order_by else ""
    sql = f"SELECT {expression} AS value FROM {_VALUES}{order}"
    expected = feature_store.query(sql).column("value").to_pylist()
    got = spark.sql(to_spark_sql(sql)).toArrow().column("value").to_pylist()
    assert got == pytest.approx(expected, rel=RELATIVE_TOLERANCE), to_spark_sql(sql)


@pytest.mark.parametrize(
    ("sql", "pattern"),
    [
        ("SELECT date_diff('month', a, b) FROM t", "date_diff\\('month'"),
        ("SELECT FROM WHERE", "does not parse"),
    ],
)
def test_untranslatable_sql_is_a_clear_error(sql, pattern):
    with pytest.raises(SchemaError, match=pattern):
        to_spark_sql(sql)


def test_missing_table_folder_is_a_clear_error(spark, tmp_path):
    with pytest.raises(NotFoundError, match="has no Parquet files in"):
        SparkFeatureEngine(spark, tmp_path)
