"""The Store contract: one test body per behaviour, run against every backend."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qianmian.data.schema import TABLES
from qianmian.errors import ImportFileError, NotFoundError, SchemaError, StoreError, ValidationError
from qianmian.store import Store

CUSTOMERS = TABLES["customers"]


def by_id(table: pa.Table, key: str = "customer_id") -> pa.Table:
    return table.sort_by(key)


def assert_tables_equal(actual: pa.Table, expected: pa.Table) -> None:
    assert actual.schema == expected.schema, f"{actual.schema}\n!=\n{expected.schema}"
    assert actual.equals(expected), f"{actual.to_pylist()[:3]} != {expected.to_pylist()[:3]}"


# -- round trips -------------------------------------------------------------------------------


def test_dictionary_table_round_trips_with_dictionary_types(
    store: Store, make_customers: Callable[..., pa.Table]
) -> None:
    data = make_customers(60)

    assert store.write("customers", data) == 60

    assert_tables_equal(by_id(store.read("customers")), CUSTOMERS.conform(data))


def test_read_returns_only_the_columns_asked_for(
    store: Store, make_customers: Callable[..., pa.Table]
) -> None:
    store.write("customers", make_customers(5))

    got = store.read("customers", ["name", "customer_id"])

    assert got.column_names == ["name", "customer_id"]
    assert got.schema.field("customer_id") == pa.field("customer_id", pa.int64(), nullable=False)


def test_append_adds_rows_and_replace_swaps_them(
    store: Store, make_customers: Callable[..., pa.Table]
) -> None:
    store.write("customers", make_customers(10))
    store.write("customers", make_customers(5, seed=1, start_id=11), mode="append")
    assert store.count("customers") == 15

    store.write("customers", make_customers(3, seed=2, start_id=100), mode="replace")

    assert store.read("customers", ["customer_id"]).column("customer_id").to_pylist() == [
        100,
        101,
        102,
    ]


def test_missing_optional_columns_read_back_as_nulls(store: Store) -> None:
    store.write("customers", pa.table({"customer_id": [1, 2], "city": ["北京", None]}))

    got = store.read("customers")

    assert got.column_names == CUSTOMERS.column_names
    assert got.column("city").to_pylist() == ["北京", None]
    assert got.column("birth_date").null_count == 2
    assert got.column("consent_sms").type == pa.bool_()


@pytest.mark.parametrize(
    ("name", "data", "error", "match"),
    [
        (
            "customers",
            pa.table({"customer_id": [1], "shoe_size": [42]}),
            SchemaError,
            "'shoe_size'",
        ),
        ("customers", pa.table({"name": ["张伟"]}), SchemaError, "'customer_id'"),
        (
            "customers",
            pa.table({"customer_id": pa.array([1, None], pa.int64())}),
            ValidationError,
            "'customer_id'.* 1 of the rows",
        ),
        ("customers", pa.table({"customer_id": ["not a number"]}), SchemaError, "'customer_id'"),
        ("bad-name", pa.table({"x": [1]}), SchemaError, "'bad-name'"),
        ("bad name", pa.table({"x": [1]}), SchemaError, "not allowed"),
        (
            "scores",
            pa.table({"at": pa.array([0], pa.timestamp("us", tz="UTC"))}),
            SchemaError,
            "naive China Standard Time",
        ),
        ("scores", pa.table({"tags": [["a"]]}), SchemaError, "Column 'tags' of table 'scores'"),
    ],
)
def test_invalid_writes_are_refused_and_leave_no_table(
    store: Store, name: str, data: pa.Table, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        store.write(name, data)

    assert store.tables() == []


def test_other_tables_take_the_types_of_the_first_write(store: Store) -> None:
    data = pa.table(
        {
            "customer_id": pa.array([2, 1], pa.int32()),
            "score": pa.array([0.5, None], pa.float32()),
            "segment": pa.array(["高净值", "大众"]).dictionary_encode(),
            "contacted": [True, False],
            "as_of": pa.array([dt.date(2024, 6, 30)] * 2),
            "scored_at": pa.array(
                [dt.datetime(2024, 6, 30, 12, 0, 0, 250000)] * 2, pa.timestamp("ms")
            ),
        }
    )
    store.write("scores", data)

    got = by_id(store.read("scores"))

    assert got.schema == pa.schema(
        [
            ("customer_id", pa.int64()),
            ("score", pa.float64()),
            ("segment", pa.string()),
            ("contacted", pa.bool_()),
            ("as_of", pa.date32()),
            ("scored_at", pa.timestamp("us")),
        ]
    )
    assert got.to_pylist()[1]["segment"] == "高净值"
    assert got.column("score").to_pylist() == [None, 0.5]


def test_appends_to_other_tables_are_conformed_to_the_stored_columns(store: Store) -> None:
    store.write("scores", pa.table({"customer_id": [1], "score": [0.5]}))

    store.write("scores", pa.table({"customer_id": pa.array([2], pa.int8())}))
    with pytest.raises(SchemaError, match="no column 'rank'"):
        store.write("scores", pa.table({"customer_id": [3], "rank": [1]}))

    assert by_id(store.read("scores")).to_pylist() == [
        {"customer_id": 1, "score": 0.5},
        {"customer_id": 2, "score": None},
    ]


def test_timestamps_round_trip_to_the_microsecond(store: Store) -> None:
    moments = [
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
        dt.datetime(1969, 12, 31, 23, 59, 59, 1),
        dt.datetime(1, 1, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2024, 1, 1, 0, 0, 0, 1),
        None,
    ]
    data = pa.table({"event_id": range(len(moments)), "at": pa.array(moments, pa.timestamp("us"))})
    store.write("events", data)

    got = by_id(store.read("events"), "event_id")

    assert got.column("at").to_pylist() == moments
    assert got.column("at").type == pa.timestamp("us")


def test_special_values_round_trip(store: Store) -> None:
    strings = ["", None, "NULL", "\\N", "NA", 'say "hi", then\nleave', "100%", "$name", "🙂"]
    floats = [
        0.1 + 0.2,
        float("nan"),
        float("inf"),
        float("-inf"),
        -0.0,
        5e-324,
        1.7976931348623157e308,
        None,
        1 / 3,
    ]
    data = pa.table({"i": range(9), "s": strings, "f": floats})
    store.write("odd", data)

    got = by_id(store.read("odd"), "i")

    assert got.column("s").to_pylist() == strings
    for read, written in zip(got.column("f").to_pylist(), floats, strict=True):
        assert (
            (read is None and written is None)
            or (math.isnan(written) and math.isnan(read))
            or read == written
        )


# -- query -------------------------------------------------------------------------------------


def test_query_binds_named_parameters(
    store: Store, make_customers: Callable[..., pa.Table]
) -> None:
    store.write("customers", make_customers(30))

    got = store.query(
        "SELECT customer_id, '100% $min' AS note FROM customers "
        "WHERE customer_id >= $min AND customer_id < $min + $span ORDER BY customer_id",
        {"min": 10, "span": 3, "unused": "ignored"},
    )

    assert got.column("customer_id").to_pylist() == [10, 11, 12]
    assert got.column("note").to_pylist() == ["100% $min"] * 3


def test_query_returns_the_same_types_as_read(
    store: Store, make_customers: Callable[..., pa.Table]
) -> None:
    store.write("customers", make_customers(5))

    got = store.query(
        "SELECT customer_id, name, birth_date, monthly_income, consent_sms, "
        "count(*) OVER () AS n FROM customers WHERE name = $name",
        {"name": "张伟"},
    )

    assert got.schema == pa.schema(
        [
            ("customer_id", pa.int64()),
            ("name", pa.string()),
            ("birth_date", pa.date32()),
            ("monthly_income", pa.float64()),
            ("consent_sms", pa.bool_()),
            ("n", pa.int64()),
        ]
    )
    assert got.num_rows == 1


@pytest.mark.parametrize(
    ("sql", "params", "match"),
    [
        ("SELECT * FROM customers WHERE customer_id = $id", {}, r"\$id"),
        ("SELEC 1", None, "SELEC"),
        ("SELECT * FROM no_such_table", None, "no_such_table"),
    ],
)
def test_query_failures_are_store_errors(
    store: Store, sql: str, params: dict[str, object] | None, match: str
) -> None:
    with pytest.raises(StoreError, match=match):
        store.query(sql, params)


# -- catalog -----------------------------------------------------------------------------------


def test_tables_has_table_count_and_drop(store: Store) -> None:
    store.write("zeta", pa.table({"x": [1, 2, 3]}))
    store.write("alpha", pa.table({"x": pa.array([], pa.int64())}))

    assert store.tables() == ["alpha", "zeta"]
    assert store.has_table("zeta") and not store.has_table("beta")
    assert (store.count("zeta"), store.count("alpha")) == (3, 0)

    store.drop("zeta")
    store.drop("zeta")  # dropping a missing table is fine

    assert store.tables() == ["alpha"]


@pytest.mark.parametrize(
    "action", [lambda s: s.read("nope"), lambda s: s.count("nope"), lambda s: s.read("nope", ["x"])]
)
def test_unknown_tables_are_not_found(store: Store, action: Callable[[Store], object]) -> None:
    with pytest.raises(NotFoundError, match="no table 'nope'"):
        action(store)


def test_reading_an_unknown_column_names_it(store: Store) -> None:
    store.write("scores", pa.table({"x": [1]}))

    with pytest.raises(SchemaError, match="no column 'y'"):
        store.read("scores", ["x", "y"])


def test_a_closed_store_refuses_work(store: Store) -> None:
    store.close()
    store.close()  # closing twice is fine

    with pytest.raises(StoreError, match="closed"):
        store.tables()


# -- transactions ------------------------------------------------------------------------------


def test_transaction_commits_all_writes_together(store: Store) -> None:
    with store.transaction() as tx:
        tx.write("a", pa.table({"x": [1]}))
        tx.write("b", pa.table({"y": ["一"]}))
        tx.write("a", pa.table({"x": [2]}))
        assert tx.count("a") == 2

    assert (store.count("a"), store.count("b")) == (2, 1)


def test_failed_transaction_leaves_no_trace(
    store: Store, make_customers: Callable[..., pa.Table]
) -> None:
    store.write("customers", make_customers(10))
    before = by_id(store.read("customers"))

    with pytest.raises(RuntimeError, match="campaign aborted"), store.transaction() as tx:
        tx.write("customers", make_customers(5, start_id=11))
        tx.write("customers", make_customers(2, start_id=99), mode="replace")
        tx.write("contacts_draft", pa.table({"customer_id": [1]}))
        with tx.transaction() as inner:  # a nested transaction joins the outer one
            inner.drop("customers")
        raise RuntimeError("campaign aborted")

    assert store.tables() == ["customers"]
    assert_tables_equal(by_id(store.read("customers")), before)


def test_failed_write_inside_a_transaction_rolls_back_the_rest(store: Store) -> None:
    with pytest.raises(SchemaError), store.transaction() as tx:
        tx.write("a", pa.table({"x": [1]}))
        tx.write("a", pa.table({"x": [2], "surprise": [3]}))

    assert not store.has_table("a")


# -- Parquet -----------------------------------------------------------------------------------


def test_load_parquet_reads_many_files_into_one_table(
    store: Store, tmp_path: Path, make_customers: Callable[..., pa.Table]
) -> None:
    first, second = make_customers(40), make_customers(25, seed=1, start_id=41)
    pq.write_table(first, tmp_path / "part-0.parquet")
    # Columns in another order, one optional column missing, an int32 id: all conformed.
    rest = [c for c in second.column_names if c not in ("customer_id", "city")]
    second = second.select(list(reversed(rest))).append_column(
        "customer_id", pa.array(range(41, 66), pa.int32())
    )
    pq.write_table(second, tmp_path / "part-1.parquet")
    paths = [tmp_path / "part-0.parquet", tmp_path / "part-1.parquet"]

    assert store.load_parquet("customers", paths) == 65
    assert store.load_parquet("customers", paths[:1], mode="append") == 40

    got = by_id(store.read("customers"))
    assert got.num_rows == 105
    assert got.schema == CUSTOMERS.arrow_schema
    assert got.filter(pa.compute.field("customer_id") > 40).column("city").null_count == 25

    assert store.load_parquet("customers", paths[1:]) == 25
    assert store.count("customers") == 25


def test_load_parquet_of_other_tables_takes_the_file_types(store: Store, tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"k": pa.array([1, 2], pa.int16()), "v": ["a", None]}), tmp_path / "x.parquet"
    )

    store.load_parquet("features", [tmp_path / "x.parquet"])

    assert store.read("features").schema == pa.schema([("k", pa.int64()), ("v", pa.string())])


@pytest.mark.parametrize(
    ("columns", "error", "match"),
    [
        ({"customer_id": [1], "shoe_size": [42]}, SchemaError, "'shoe_size'"),
        ({"name": ["张伟"]}, SchemaError, "'customer_id'"),
    ],
)
def test_load_parquet_refuses_files_that_break_the_dictionary(
    store: Store,
    tmp_path: Path,
    columns: dict[str, list[object]],
    error: type[Exception],
    match: str,
) -> None:
    pq.write_table(pa.table(columns), tmp_path / "bad.parquet")

    with pytest.raises(error, match=match):
        store.load_parquet("customers", [tmp_path / "bad.parquet"])

    assert not store.has_table("customers")


def test_load_parquet_refuses_missing_or_unreadable_files(store: Store, tmp_path: Path) -> None:
    (tmp_path / "not.parquet").write_text("id,name\n1,x\n")

    with pytest.raises(ImportFileError, match="does not exist"):
        store.load_parquet("customers", [tmp_path / "missing.parquet"])
    with pytest.raises(ImportFileError, match="cannot be read as Parquet"):
        store.load_parquet("customers", [tmp_path / "not.parquet"])
    with pytest.raises(ImportFileError, match="non-empty list"):
        store.load_parquet("customers", [])
