"""What the backends share: names, type mapping, DDL and ``$name`` parameters."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qianmian.data.schema import TABLES
from qianmian.errors import SchemaError, StoreError
from qianmian.store.ddl import (
    Column,
    check_table_name,
    columns_for_write,
    create_table_sql,
    logical_type,
    named_parameters,
    select_params,
    to_pyformat,
)

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@pytest.mark.parametrize("name", ["customers", "_tmp", "Feature_2024"])
def test_plain_identifiers_are_table_names(name: str) -> None:
    assert check_table_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "2024_scores", "bad-name", 'x"; DROP TABLE y; --', "a.b", "表", "with space"]
)
def test_other_table_names_are_refused(name: str) -> None:
    with pytest.raises(SchemaError, match="not allowed"):
        check_table_name(name)


@pytest.mark.parametrize(
    ("arrow_type", "logical"),
    [
        (pa.string(), "string"),
        (pa.large_string(), "string"),
        (pa.string_view(), "string"),
        (pa.dictionary(pa.int8(), pa.string()), "string"),
        (pa.int8(), "int"),
        (pa.uint32(), "int"),
        (pa.int64(), "int"),
        (pa.float32(), "float"),
        (pa.decimal128(12, 2), "float"),
        (pa.bool_(), "bool"),
        (pa.date32(), "date"),
        (pa.date64(), "date"),
        (pa.timestamp("ns"), "timestamp"),
        (pa.timestamp("s"), "timestamp"),
    ],
)
def test_arrow_types_map_to_logical_types(arrow_type: pa.DataType, logical: str) -> None:
    assert logical_type(arrow_type, "t", "c") == logical


@pytest.mark.parametrize(
    ("arrow_type", "match"),
    [
        (pa.timestamp("us", tz="Asia/Shanghai"), "naive China Standard Time"),
        (pa.list_(pa.int64()), "cast it to one of"),
        (pa.binary(), "cast it to one of"),
        (pa.null(), "cast it to one of"),
    ],
)
def test_unstorable_arrow_types_are_refused(arrow_type: pa.DataType, match: str) -> None:
    with pytest.raises(SchemaError, match=f"Column 'c' of table 't'.*{match}"):
        logical_type(arrow_type, "t", "c")


def test_dictionary_tables_are_created_with_dictionary_types() -> None:
    columns = columns_for_write("products", pa.schema([("ignored", pa.int8())]))

    assert [c.name for c in columns] == TABLES["products"].column_names
    sql = create_table_sql('"products"', columns, "postgres")
    assert sql.startswith('CREATE TABLE "products" ("product_id" TEXT NOT NULL, ')
    assert '"annual_fee" DOUBLE PRECISION, ' in sql
    assert '"term_months" BIGINT, ' in sql
    assert '"launch_date" DATE)' in sql


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (
            "duckdb",
            '"s" VARCHAR, "i" BIGINT NOT NULL, "f" DOUBLE, "b" BOOLEAN, "d" DATE, "t" TIMESTAMP',
        ),
        (
            "postgres",
            '"s" TEXT, "i" BIGINT NOT NULL, "f" DOUBLE PRECISION, "b" BOOLEAN, "d" DATE, '
            '"t" TIMESTAMP',
        ),
    ],
)
def test_ddl_maps_logical_types_per_dialect(dialect: str, expected: str) -> None:
    columns = [
        Column("s", "string"),
        Column("i", "int", required=True),
        Column("f", "float"),
        Column("b", "bool"),
        Column("d", "date"),
        Column("t", "timestamp"),
    ]

    assert create_table_sql('"x"', columns, dialect) == f'CREATE TABLE "x" ({expected})'  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SELECT $a, $b, $a", ["a", "b"]),
        ("SELECT '$a', \"$b\", $c", ["c"]),
        ("SELECT 'it''s $a' || $b", ["b"]),
        ("SELECT E'\\' $a' AS x, $b", ["b"]),
        ("SELECT 1 -- $a\n, $b /* $c */", ["b"]),
        ("SELECT $$ $a $$, $tag$ $b $tag$, $c", ["c"]),
        ("SELECT price$a FROM t WHERE x = $_x1", ["_x1"]),
        ("SELECT $1, $ 2", []),
    ],
)
def test_named_parameters_skip_literals_identifiers_and_comments(
    sql: str, names: list[str]
) -> None:
    assert named_parameters(sql) == names


@given(st.text())
def test_pyformat_round_trips_any_text(sql: str) -> None:
    # Python's own %-formatting undoes the translation: %% back to %, %(name)s back to $name.
    assert to_pyformat(sql) % {n: f"${n}" for n in named_parameters(sql)} == sql


@given(st.text(), identifiers)
def test_text_inside_string_literals_is_never_a_parameter(text: str, name: str) -> None:
    literal = "'" + text.replace("'", "''") + "'"

    assert named_parameters(f"SELECT {literal} AS x WHERE y = ${name}") == [name]


def test_select_params_keeps_used_values_and_names_missing_ones() -> None:
    assert select_params("SELECT $a", {"a": 1, "b": 2}) == {"a": 1}
    with pytest.raises(StoreError, match=r"parameter \$b, but no value"):
        select_params("SELECT $a, $b", {"a": 1})
