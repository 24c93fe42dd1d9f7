"""What the store backends share: table names, column types, DDL, ``$name`` parameters, checks.

Every stored column has one of the data dictionary's six logical types (``string``, ``int``,
``float``, ``bool``, ``date``, ``timestamp``), so the same table reads back as the same Arrow
types from DuckDB and from PostgreSQL. Dictionary tables take their columns from the dictionary;
other tables take them from the first Arrow table written, mapped to the logical types here.

>>> create_table_sql('"orders"', [Column("id", "int", required=True)], "postgres")
'CREATE TABLE "orders" ("id" BIGINT NOT NULL)'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.types as pat

from qianmian.data.schema import TABLES
from qianmian.data.schema.model import ARROW_TYPES, FieldType
from qianmian.errors import ImportFileError, SchemaError, StoreError, ValidationError

__all__ = [
    "SQL_TYPES",
    "Column",
    "Dialect",
    "check_mode",
    "check_table_name",
    "chosen_columns",
    "column_list",
    "columns_for_write",
    "conform",
    "create_table_sql",
    "excerpt",
    "first_line",
    "logical_type",
    "named_parameters",
    "parquet_columns",
    "quote_ident",
    "read_schema",
    "select_params",
    "to_pyformat",
]

Dialect = Literal["duckdb", "postgres"]

SQL_TYPES: dict[Dialect, dict[str, str]] = {
    "duckdb": {
        "string": "VARCHAR",
        "int": "BIGINT",
        "float": "DOUBLE",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
    },
    "postgres": {
        "string": "TEXT",
        "int": "BIGINT",
        "float": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
    },
}

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Column:
    """One stored column: its name, logical type (None when the backend's type is not one of
    the six) and whether it may hold nulls."""

    name: str
    type: FieldType | None
    required: bool = False


def check_table_name(name: str) -> str:
    """Return ``name`` if it is a plain SQL identifier; otherwise raise :class:`SchemaError`."""
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
        raise SchemaError(
            f"The table name {name!r} is not allowed: a table name must start with a letter or "
            "underscore and hold only letters, digits and underscores. Rename the table."
        )
    return name


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (DuckDB and PostgreSQL quote alike)."""
    return '"' + name.replace('"', '""') + '"'


def logical_type(arrow_type: pa.DataType, table: str, column: str) -> FieldType:
    """The logical type a column of ``arrow_type`` is stored as; unsupported types are refused."""
    if pat.is_dictionary(arrow_type):
        return logical_type(arrow_type.value_type, table, column)
    if (
        pat.is_string(arrow_type)
        or pat.is_large_string(arrow_type)
        or pat.is_string_view(arrow_type)
    ):
        return "string"
    if pat.is_boolean(arrow_type):
        return "bool"
    if pat.is_integer(arrow_type):
        return "int"
    if pat.is_floating(arrow_type) or pat.is_decimal(arrow_type):
        return "float"
    if pat.is_date(arrow_type):
        return "date"
    if pat.is_timestamp(arrow_type) and arrow_type.tz is None:
        return "timestamp"
    hint = (
        "convert it to naive China Standard Time (tz_convert('Asia/Shanghai') then drop the "
        "time zone)"
        if pat.is_timestamp(arrow_type)
        else "cast it to one of string, int64, float64, bool, date32 or timestamp[us]"
    )
    raise SchemaError(
        f"Column '{column}' of table '{table}' has Arrow type {arrow_type}, which a store cannot "
        f"hold; {hint} before writing."
    )


def columns_for_write(name: str, schema: pa.Schema) -> list[Column]:
    """The columns table ``name`` is created with: the dictionary's, or ``schema``'s mapped."""
    if name in TABLES:
        return [Column(f.name, f.type, f.required) for f in TABLES[name].fields]
    return [Column(f.name, logical_type(f.type, name, f.name)) for f in schema]


def create_table_sql(qualified_name: str, columns: Sequence[Column], dialect: Dialect) -> str:
    """``CREATE TABLE`` for ``columns`` (required ones ``NOT NULL``) in ``dialect``."""
    types = SQL_TYPES[dialect]
    parts = []
    for c in columns:
        if c.type is None:
            raise SchemaError(f"Column '{c.name}' has no logical type to create it with.")
        parts.append(f"{quote_ident(c.name)} {types[c.type]}" + (" NOT NULL" if c.required else ""))
    return f"CREATE TABLE {qualified_name} ({', '.join(parts)})"


def conform(name: str, data: pa.Table, columns: Sequence[Column]) -> pa.Table:
    """``data`` with exactly ``columns``, in order, cast to their logical types.

    Missing optional columns become nulls; a missing required column or a column the table does
    not have is a :class:`SchemaError`. Dictionary tables are conformed by ``Table.conform``.
    """
    known = {c.name for c in columns}
    extra = [c for c in data.column_names if c not in known]
    if extra:
        raise SchemaError(
            f"Table '{name}' has no column {', '.join(repr(c) for c in extra)}; its columns are "
            f"{', '.join(c.name for c in columns)}. Drop or rename the extra column before writing."
        )
    if len(set(data.column_names)) != len(data.column_names):
        raise SchemaError(f"The data written to table '{name}' names a column twice.")
    try:
        if name in TABLES and [c.name for c in columns] == TABLES[name].column_names:
            conformed = TABLES[name].conform(data)
        else:
            conformed = _conform_columns(name, data, columns)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        bad = _uncastable_column(data, columns)
        raise SchemaError(
            f"Column '{bad}' of the data written to table '{name}' cannot be converted to the "
            f"table's type for it ({e}). Convert the column before writing."
        ) from e
    for c in columns:
        nulls = conformed.column(c.name).null_count
        if c.required and nulls:
            raise ValidationError(
                f"Column '{c.name}' of table '{name}' is required, but {nulls} of the rows written "
                "have no value in it. Fill or drop those rows before writing."
            )
    return conformed


def _conform_columns(name: str, data: pa.Table, columns: Sequence[Column]) -> pa.Table:
    arrays, fields = [], []
    for c in columns:
        if c.name in data.column_names:
            array = data.column(c.name)
            if c.type is not None:
                array = array.cast(ARROW_TYPES[c.type])
        elif c.required:
            raise SchemaError(f"Table '{name}' needs column '{c.name}', which is missing.")
        else:
            array = pa.nulls(data.num_rows, ARROW_TYPES[c.type or "string"])
        arrays.append(array)
        fields.append(pa.field(c.name, array.type, nullable=not c.required))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _uncastable_column(data: pa.Table, columns: Sequence[Column]) -> str:
    for c in columns:
        if c.type is not None and c.name in data.column_names:
            try:
                data.column(c.name).cast(ARROW_TYPES[c.type])
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return c.name
    return "?"


def read_schema(name: str, result: pa.Schema) -> pa.Schema:
    """The schema a read of table ``name`` returns: dictionary types and nullability where the
    column is in the dictionary, ``result``'s own field otherwise."""
    table = TABLES.get(name)
    if table is None:
        return pa.schema([f.with_nullable(True) for f in result])
    fields = []
    for f in result:
        if table.has_field(f.name):
            d = table.field(f.name)
            fields.append(pa.field(f.name, d.arrow_type, nullable=not d.required))
        else:
            fields.append(f.with_nullable(True))
    return pa.schema(fields)


# ---------------------------------------------------------------------------------------------
# ``$name`` parameters. Both backends need to know which names a statement uses (DuckDB refuses
# unused values, psycopg needs ``%(name)s``), outside string literals, quoted identifiers,
# comments and dollar-quoted strings.

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _segments(sql: str) -> Iterator[tuple[str, str]]:
    """Split ``sql`` into ("text", ...) and ("param", name) segments."""
    i, start, n = 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            backslash = (
                ch == "'"
                and i > 0
                and sql[i - 1] in "eE"
                and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            )
            i += 1
            while i < n:
                if backslash and sql[i] == "\\":
                    i += 2
                    continue
                if sql[i] == ch:
                    if i + 1 < n and sql[i + 1] == ch:
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == "$" and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is not None:
                end = sql.find(tag.group(0), tag.end())
                i = n if end < 0 else end + len(tag.group(0))
                continue
            name = _NAME.match(sql, i + 1)
            if name is None:
                i += 1
                continue
            yield "text", sql[start:i]
            yield "param", name.group(0)
            i = start = name.end()
        else:
            i += 1
    yield "text", sql[start:]


def named_parameters(sql: str) -> list[str]:
    """The distinct ``$name`` parameters ``sql`` uses, in order of first use.

    >>> named_parameters("SELECT * FROM t WHERE a = $a AND b = '$b' AND c > $a")
    ['a']
    """
    return list(dict.fromkeys(v for kind, v in _segments(sql) if kind == "param"))


def to_pyformat(sql: str) -> str:
    """``sql`` with ``$name`` written ``%(name)s`` and every literal ``%`` doubled, for psycopg.

    >>> to_pyformat("SELECT '5%' AS p WHERE a = $a")
    "SELECT '5%%' AS p WHERE a = %(a)s"
    """
    return "".join(
        v.replace("%", "%%") if kind == "text" else f"%({v})s" for kind, v in _segments(sql)
    )


def select_params(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values of the parameters ``sql`` uses; a missing one is a :class:`StoreError`."""
    given = dict(params or {})
    used = named_parameters(sql)
    missing = [p for p in used if p not in given]
    if missing:
        raise StoreError(
            f"The query uses parameter {', '.join('$' + p for p in missing)}, but no value was "
            f"given for it. Pass params={{{', '.join(repr(p) + ': ...' for p in missing)}}}."
        )
    return {p: given[p] for p in used}


def column_list(names: Iterable[str]) -> str:
    """Comma-separated quoted column names."""
    return ", ".join(quote_ident(n) for n in names)


# ---------------------------------------------------------------------------------------------
# Checks and messages both backends share.


def chosen_columns(name: str, stored: list[Column], columns: Sequence[str] | None) -> list[str]:
    """The columns a read returns; asking for one the table lacks is a :class:`SchemaError`."""
    known = [c.name for c in stored]
    if columns is None:
        return known
    if isinstance(columns, str) or not columns:
        raise SchemaError(
            f"The columns to read from table '{name}' must be a non-empty list of names. Got "
            f"{columns!r} instead."
        )
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise SchemaError(
            f"Table '{name}' has no column {', '.join(repr(c) for c in unknown)}. Known columns: "
            f"{', '.join(known)}."
        )
    return list(columns)


def check_mode(mode: str) -> None:
    """Refuse a write mode other than "append" or "replace"."""
    if mode not in ("append", "replace"):
        raise ValueError(f"The 'mode' of a write must be 'append' or 'replace'. Got {mode!r}.")


def first_line(error: BaseException) -> str:
    """The first line of an error's message, for wrapping it in a sentence."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def excerpt(sql: str, limit: int = 120) -> str:
    """``sql`` on one line, shortened, quoted, for messages."""
    flat = " ".join(sql.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def parquet_columns(paths: Sequence[Path]) -> dict[str, pa.Field]:
    """The columns of Parquet files by name (first file's type first); unreadable files refused."""
    if isinstance(paths, (str, Path)) or not paths:
        raise ImportFileError(
            f"Give a non-empty list of Parquet files to load. Got {paths!r} instead."
        )
    columns: dict[str, pa.Field] = {}
    for path in paths:
        try:
            schema = pq.read_schema(path)
        except FileNotFoundError as e:
            raise ImportFileError(
                f"The Parquet file {path} does not exist. Check the path, or generate or export "
                "the data first."
            ) from e
        except (pa.ArrowInvalid, OSError) as e:
            raise ImportFileError(
                f"The file {path} cannot be read as Parquet: {first_line(e)}."
            ) from e
        for f in schema:
            columns.setdefault(f.name, f)
    return columns
