"""Bulk data movement between Arrow and PostgreSQL: ``COPY`` both ways, and the type mapping.

Writes stream CSV written by Arrow into ``COPY ... FROM STDIN``; reads stream
``COPY (...) TO STDOUT`` into Arrow's CSV reader with the column types known beforehand (found
without running the statement, by describing it), so no value passes through a Python object.
PostgreSQL types map to the Arrow types DuckDB returns for the same column type. Used by
:class:`qianmian.store.postgres.PostgresStore`, which checks that psycopg is installed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import pq as libpq

from qianmian.store.ddl import Column, column_list, logical_type

__all__ = [
    "ARROW_BY_NAME",
    "ARROW_BY_OID",
    "COPYABLE",
    "LOGICAL_BY_NAME",
    "copy_in",
    "copy_out",
    "describe_result",
    "fetched_array",
]


# PostgreSQL types by name and OID, with the Arrow type DuckDB returns for the same column type;
# ARROW_BY_NAME and LOGICAL_BY_NAME read catalog type names, ARROW_BY_OID result columns.
_PG_TYPES: list[tuple[str, int, pa.DataType]] = [
    ("text", 25, pa.string()),
    ("character varying", 1043, pa.string()),
    ("character", 1042, pa.string()),
    ("name", 19, pa.string()),
    ("bigint", 20, pa.int64()),
    ("integer", 23, pa.int32()),
    ("smallint", 21, pa.int16()),
    ("double precision", 701, pa.float64()),
    ("real", 700, pa.float32()),
    ("numeric", 1700, pa.float64()),  # DuckDB gives DECIMAL; cast in SQL where it matters
    ("boolean", 16, pa.bool_()),
    ("date", 1082, pa.date32()),
    ("timestamp without time zone", 1114, pa.timestamp("us")),
]
ARROW_BY_NAME = {name: arrow for name, _, arrow in _PG_TYPES}
ARROW_BY_OID = {oid: arrow for _, oid, arrow in _PG_TYPES}
LOGICAL_BY_NAME = {name: logical_type(arrow, "", name) for name, _, arrow in _PG_TYPES}
#: Statements COPY (...) TO STDOUT accepts; others that return rows are fetched row by row.
COPYABLE = re.compile(r"\s*\(*\s*(select|with|values|table|insert|update|delete|merge)\b", re.I)


def copy_in(
    conn: psycopg.Connection[Any],
    table: str,
    columns: list[Column],
    batches: Iterable[pa.RecordBatch],
) -> int:
    """Stream ``batches`` into ``table`` (a quoted, qualified name) as CSV through COPY; return
    the rows sent."""
    sql = f"COPY {table} ({column_list(c.name for c in columns)}) FROM STDIN (FORMAT csv)"
    options = pacsv.WriteOptions(include_header=False)
    rows = 0
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            sink = pa.BufferOutputStream()
            pacsv.write_csv(batch, sink, options)
            copy.write(memoryview(sink.getvalue()))
            rows += batch.num_rows
    return rows


def describe_result(conn: psycopg.Connection[Any], literal: str) -> list[tuple[str, int]]:
    """Names and type OIDs of the columns ``literal`` returns, without running it."""
    pgconn, encoding = conn.pgconn, conn.info.encoding
    result = pgconn.prepare(b"", literal.encode(encoding))
    if result.status != libpq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(result, encoding=encoding)
    result = pgconn.describe_prepared(b"")
    if result.status != libpq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(result, encoding=encoding)
    return [
        ((result.fname(i) or b"").decode(encoding), result.ftype(i)) for i in range(result.nfields)
    ]


def copy_out(conn: psycopg.Connection[Any], select: str, schema: pa.Schema) -> pa.Table:
    """Run ``select`` through ``COPY ... TO STDOUT`` and parse its CSV as ``schema``."""
    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(f"COPY ({select}) TO STDOUT (FORMAT csv)") as copy:
        for chunk in copy:
            buffer.write(chunk)
    if buffer.tell() == 0:
        return schema.empty_table()
    buffer.seek(0)
    # Positional names, as a result may name two columns alike; PostgreSQL writes NULL as an
    # unquoted empty field and an empty string as "", booleans as t and f.
    keys = [f"c{i}" for i in range(len(schema))]
    data = pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=keys),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types=dict(zip(keys, schema.types, strict=True)),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    return pa.Table.from_arrays(data.columns, schema=schema)


def fetched_array(values: list[Any], arrow_type: pa.DataType | None) -> pa.Array:
    """One fetched column as Arrow; types with no Arrow match come back as their text."""
    if arrow_type is None:
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if pa.types.is_floating(arrow_type):
        values = [None if v is None else float(v) for v in values]
    return pa.array(values, arrow_type)
