"""Column mappings: how the columns of a bank's file become the fields of a dictionary table.

A mapping is a YAML file::

    table: customers
    source: {format: csv, delimiter: ";", encoding: utf-8}
    columns:
      customer_id: {expr: "row_number"}          # a DuckDB SQL expression over source columns
      occupation: {from: job, values: {admin.: 企业白领, unknown: null}}
      marital_status: marital                    # a source column, taken as is
      city_tier: {constant: 二线}

Rules per target field: a plain string or ``from`` names a source column (matched exactly, else
ignoring case), optionally recoded by ``values`` (values not listed pass through unchanged, so that
validation reports them); ``constant`` fills every row; ``expr`` is evaluated by DuckDB row by row,
with ``row_number`` (1 for the first data record) and ``line_number`` (its line in the file)
available, and a row where it fails is quarantined rather than failing the import. Fields the
mapping does not name are taken from a source column of the same name, ignoring case. Without a
mapping, every field is matched that way. YAML keys ``yes``/``no``/``on``/``off`` stay text.

>>> m = parse_mapping("table: customers\\ncolumns: {gender: {from: sex, values: {男: M}}}")
>>> m.columns["gender"].from_, m.columns["gender"].values
('sex', {'男': 'M'})
"""

from __future__ import annotations

import codecs
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from qianmian.data.schema import Table
from qianmian.data.validate import clean_text
from qianmian.errors import MappingError

__all__ = [
    "ColumnMapping",
    "ColumnRule",
    "MappedData",
    "SourceOptions",
    "load_mapping",
    "map_columns",
    "parse_mapping",
]

#: Queries spent isolating the rows where an expression fails; past it, a row whose expression
#: gives NULL although its input columns are all present counts as failed.
MAX_ISOLATION_QUERIES = 400


class SourceOptions(BaseModel):
    """How to read the source file (command-line options take precedence)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "parquet"] | None = None
    delimiter: str | None = None
    encoding: str | None = None

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        value = {"\\t": "\t", "tab": "\t"}.get(value, value) if value is not None else None
        if value is not None and len(value) != 1:
            raise ValueError(f"the delimiter must be one character (or 'tab'), got {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(
                    f"unknown encoding {value!r}; use e.g. utf-8, gbk or gb18030"
                ) from None
        return value


class ColumnRule(BaseModel):
    """Where one target field comes from: exactly one of ``from``, ``constant`` or ``expr``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str | None = Field(None, alias="from", min_length=1)
    values: dict[str, str | None] | None = None
    constant: str | int | float | bool | None = None
    expr: str | None = Field(None, min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _text_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):  # YAML reads 1 and true as numbers and booleans
            return {_text(k): None if v is None else _text(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ColumnRule:
        given = [
            name
            for name, attr in (("from", "from_"), ("constant", "constant"), ("expr", "expr"))
            if attr in self.model_fields_set
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'from', 'constant' or 'expr'"
                + (f", not {' and '.join(given)}" if given else "")
            )
        if self.values is not None and self.from_ is None:
            raise ValueError("'values' recodes a source column, so it needs 'from'")
        return self


class ColumnMapping(BaseModel):
    """A validated mapping file; see the module docstring for its shape."""

    model_config = ConfigDict(extra="forbid")

    table: str
    source: SourceOptions = SourceOptions()
    columns: dict[str, ColumnRule] = {}
    _lines: dict[tuple[str, ...], int] = PrivateAttr(default_factory=dict)
    _name: str = PrivateAttr("<mapping>")

    @field_validator("columns", mode="before")
    @classmethod
    def _plain_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"from": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    def where(self, *path: str) -> str:
        """' (mapping.yaml, line 7)' for a key path, for error messages."""
        line = self._lines.get(tuple(path))
        return f" ({self._name}, line {line})" if line else f" ({self._name})"


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 booleans (``yes``, ``no``, ``Y``, ``N`` stay text) and keys kept
    as written, so that ``1`` and ``true`` are two different source values."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        return {
            key.value
            if isinstance(key, yaml.ScalarNode)
            else self.construct_object(key, deep): self.construct_object(value, deep)
            for key, value in node.value
        }


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(
        r"^(?:true|True|TRUE|false|"
        r"False|FALSE)$"
    ),
    list("tTfF"),
)


def parse_mapping(text: str, *, name: str = "<mapping>") -> ColumnMapping:
    """Parse and validate mapping YAML ``text``; errors name the line (``name`` is the file)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise MappingError(
            f"The mapping file {name} is not valid YAML{where}: {problem}. "
            "Check the indentation and quote values containing ':' or '#'."
        ) from e
    if not isinstance(data, dict):
        raise MappingError(
            f"The mapping file {name} must be a YAML mapping with 'table' and "
            f"'columns' keys, but it holds {type(data).__name__}."
        )
    lines: dict[tuple[str, ...], int] = {}
    _key_lines(node, (), lines)
    try:
        mapping = ColumnMapping.model_validate(data)
    except PydanticValidationError as e:
        raise MappingError(
            f"The mapping file {name} is invalid: "
            + "; ".join(_describe(err, lines) for err in e.errors()[:5])
            + ". See examples/mappings/ for the format."
        ) from e
    mapping._lines, mapping._name = lines, name
    return mapping


def load_mapping(path: Path | str) -> ColumnMapping:
    """Read and validate the mapping file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e)
        raise MappingError(
            f"The mapping file {path} cannot be read ({reason}); save it as UTF-8 and check "
            "the path."
        ) from e
    return parse_mapping(text, name=str(path))


def _key_lines(
    node: yaml.Node | None, path: tuple[str, ...], lines: dict[tuple[str, ...], int]
) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[(*path, str(key.value))] = key.start_mark.line + 1
            _key_lines(value, (*path, str(key.value)), lines)


def _describe(err: Any, lines: dict[tuple[str, ...], int]) -> str:
    loc = [str(p) for p in err["loc"]]
    path: tuple[str, ...] = ()
    for part in ("from" if p == "from_" else p for p in loc):
        if (*path, part) in lines:
            path = (*path, part)
    at = f"line {lines[path]}, " if path else ""
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "is not a known key"
    return f"{at}{'.'.join(loc) or 'top level'}: {message}"


@dataclass(frozen=True)
class MappedData:
    """Source rows rewritten as target fields by :func:`map_columns`.

    ``data`` has one column per mapped field (text or typed, for validation to check);
    ``problems`` lists rows where an expression failed (``row_index, field, value, reason,
    check``); ``source_pii`` names the source columns feeding a PII field, by PII kind;
    ``unused_columns`` are source columns feeding no field.
    """

    data: pa.Table
    problems: pd.DataFrame
    source_pii: dict[str, str] = field(default_factory=dict)
    unused_columns: list[str] = field(default_factory=list)


def map_columns(
    table: Table,
    source: pa.Table,
    mapping: ColumnMapping | None = None,
    *,
    row_numbers: Sequence[int] | np.ndarray | None = None,
    line_numbers: Sequence[int] | np.ndarray | None = None,
) -> MappedData:
    """Build the fields of dictionary ``table`` from the ``source`` columns, by ``mapping``.

    Parameters
    ----------
    table : Table
        Target dictionary table.
    source : pyarrow.Table, n rows
        The file as read (text columns for CSV).
    mapping : ColumnMapping, optional
        Without it, fields are matched to source columns of the same name, ignoring case.
    row_numbers, line_numbers : sequence of int, length n, optional
        Offered to expressions as ``row_number`` and ``line_number`` (default 1..n).

    Returns
    -------
    MappedData

    Raises
    ------
    MappingError
        The mapping names an unknown field or source column, an expression does not compile,
        or a required field has no source.
    """
    n = source.num_rows
    rows = np.arange(1, n + 1) if row_numbers is None else np.asarray(row_numbers)
    lines = rows if line_numbers is None else np.asarray(line_numbers)
    rules = dict(mapping.columns) if mapping is not None else {}
    where = mapping.where if mapping is not None else (lambda *_: "")
    if mapping is not None and mapping.table != table.name:
        raise MappingError(
            f"The mapping is for table '{mapping.table}'{where('table')} but the "
            f"import is into '{table.name}'; use a mapping for '{table.name}'."
        )
    for name in rules:
        if not table.has_field(name):
            close = difflib.get_close_matches(name, table.column_names, n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise MappingError(
                f"The mapping names field '{name}'{where('columns', name)}, which table "
                f"'{table.name}' does not have.{hint} Its fields are: "
                f"{', '.join(table.column_names)}."
            )
    by_fold = {c.casefold(): c for c in reversed(source.column_names)}
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    problems, feeds = [], {}
    missing = []
    evaluator = _ExpressionEvaluator(source, rows, lines)
    for f in table.fields:
        rule = rules.get(f.name)
        if rule is None and f.name.casefold() in by_fold:
            rule = ColumnRule(**{"from": by_fold[f.name.casefold()]})
        if rule is None:
            missing += [f.name] if f.required else []
            continue
        if rule.expr is not None:
            columns[f.name], failed = evaluator.evaluate(
                f.name, rule.expr, where("columns", f.name, "expr")
            )
            problems.append(_without_pii(failed, withhold=f.pii is not None))
            feeds[f.name] = evaluator.referenced(rule.expr)
        elif rule.from_ is not None:
            name = _source_column(rule.from_, source, by_fold, where("columns", f.name, "from"))
            columns[f.name] = _recode(source.column(name), rule.values)
            feeds[f.name] = [name]
        else:
            value = rule.constant
            columns[f.name] = pa.repeat(None if value is None else _text(value), n)
            feeds[f.name] = []
    if missing:
        raise MappingError(
            f"Table '{table.name}' requires {', '.join(missing)}, but the file has no column of "
            f"that name and the mapping gives no rule for it. The file's columns are: "
            f"{', '.join(source.column_names)}. Add e.g. '{missing[0]}: {{from: <column>}}' under "
            "'columns' in a mapping file (--mapping)."
        )
    if not columns:
        raise MappingError(
            f"No field of table '{table.name}' matches a column of the file ("
            f"{', '.join(source.column_names)}); name them in a mapping file (--mapping)."
        )
    used = {c for names in feeds.values() for c in names}
    pii = {
        c: table.field(f).pii
        for f, names in feeds.items()
        for c in names
        if table.field(f).pii is not None
    }
    frame = pd.concat(problems, ignore_index=True) if problems else _no_problems()
    return MappedData(
        pa.table(columns),
        frame,
        {c: str(k) for c, k in pii.items()},
        [c for c in source.column_names if c not in used],
    )


def _source_column(name: str, source: pa.Table, by_fold: dict[str, str], where: str) -> str:
    if name in source.column_names:
        return name
    if name.casefold() in by_fold:
        return by_fold[name.casefold()]
    close = difflib.get_close_matches(name, source.column_names, n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise MappingError(
        f"The mapping reads source column '{name}'{where}, which the file does "
        f"not have.{hint} The file's columns are: {', '.join(source.column_names)}."
    )


def _recode(column: pa.ChunkedArray, values: dict[str, str | None] | None) -> pa.Array:
    column = column.combine_chunks()
    if not values:
        return column
    text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
    index = pc.index_in(text, value_set=pa.array(list(values), pa.string()))
    recoded = pa.array(list(values.values()), pa.string()).take(index)
    return pc.if_else(pc.is_valid(index), recoded, text)


def _without_pii(problems: pd.DataFrame, *, withhold: bool) -> pd.DataFrame:
    """DuckDB's messages quote the failing value: mask ID numbers, mobiles, cards and emails in
    them, and withhold them entirely for a field that holds personal data."""
    if problems.empty:
        return problems
    if withhold:
        return problems.assign(
            reason="the mapping expression failed (message withheld: the field holds personal data)"
        )
    from qianmian.data.masking import mask_text

    return problems.assign(reason=problems["reason"].map(mask_text))


def _no_problems() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_index": pd.Series(dtype="int64"),
            "field": pd.Series(dtype=object),
            "value": pd.Series(dtype=object),
            "reason": pd.Series(dtype=object),
            "check": pd.Series(dtype=object),
        }
    )


class _ExpressionEvaluator:
    """Evaluates mapping expressions with DuckDB over the source rows, row failures isolated."""

    def __init__(self, source: pa.Table, rows: np.ndarray, lines: np.ndarray) -> None:
        import duckdb  # only mappings with expressions need it

        self._duckdb = duckdb
        extra = {
            "row_number": pa.array(rows, pa.int64()),
            "line_number": pa.array(lines, pa.int64()),
            "__position": pa.array(np.arange(len(rows)), pa.int64()),
        }
        # as for validation, empty text and NULL tokens are missing values, not text to parse
        self.frame = pa.table(
            {
                name: clean_text(column.combine_chunks())
                if pa.types.is_string(column.type)
                else column
                for name, column in zip(source.column_names, source.columns, strict=True)
            }
        )
        for name, values in extra.items():
            if name.casefold() not in {c.casefold() for c in source.column_names}:
                self.frame = self.frame.append_column(name, values)
        self.columns = self.frame.column_names
        self._connection: Any = None

    def referenced(self, expr: str) -> list[str]:
        """Source columns an expression appears to use (identifiers matching a column name)."""
        words = {w.casefold() for w in re.findall(r'"([^"]+)"|(\w+)', expr) for w in w if w}
        return [
            c
            for c in self.frame.column_names
            if c.casefold() in words and c not in ("row_number", "line_number", "__position")
        ]

    def _run(self, expr: str, rows: np.ndarray | None = None, limit: str = "") -> pa.Array:
        if self._connection is None:
            self._connection = self._duckdb.connect(config={"enable_external_access": False})
        part = self.frame if rows is None else self.frame.take(pa.array(rows, pa.int64()))
        self._connection.register("source", part)
        sql = f"SELECT ({expr}) AS v FROM source ORDER BY __position {limit}"
        return self._connection.sql(sql).to_arrow_table().column("v").combine_chunks()

    def evaluate(self, field_name: str, expr: str, where: str) -> tuple[pa.Array, pd.DataFrame]:
        try:
            self._run(expr, limit="LIMIT 0")
        except self._duckdb.Error as e:
            raise MappingError(
                f"The expression for field '{field_name}'{where} cannot be used: "
                f"{_first_line(e)}. Source columns are: "
                f"{', '.join(self.columns)}."
            ) from e
        try:
            return self._run(expr), _no_problems()
        except self._duckdb.Error:
            pass  # some rows fail: evaluate the others and find which ones
        try:
            result = self._run(f"TRY({expr})")
        except self._duckdb.Error:
            result = pa.nulls(self.frame.num_rows)
        failures = self._isolate(
            expr, np.flatnonzero(pc.is_null(result).to_numpy(zero_copy_only=False))
        )
        rows = np.array(sorted(failures), dtype=np.int64)
        return result, pd.DataFrame(
            {
                "row_index": rows,
                "field": field_name,
                "value": None,
                "reason": [f"the mapping expression failed: {failures[r]}" for r in rows.tolist()],
                "check": "expression",
            }
        )

    def _isolate(self, expr: str, candidates: np.ndarray) -> dict[int, str]:
        """Rows among ``candidates`` (NULL under TRY) where ``expr`` raises, by bisection."""
        failures: dict[int, str] = {}
        unresolved: list[np.ndarray] = []
        stack, queries = [candidates], 0
        while stack:
            rows = stack.pop()
            if rows.size == 0:
                continue
            if queries >= MAX_ISOLATION_QUERIES:
                unresolved.append(rows)
                continue
            queries += 1
            try:
                self._run(expr, rows)
            except self._duckdb.Error as e:
                if rows.size == 1:
                    failures[int(rows[0])] = _first_line(e)
                else:
                    stack += [rows[rows.size // 2 :], rows[: rows.size // 2]]
        if unresolved:  # too many to isolate: NULL with every input present counts as a failure
            rest = np.concatenate(unresolved)
            present = np.ones(rest.size, dtype=bool)
            for name in self.referenced(expr):
                values = self.frame.column(name).take(pa.array(rest, pa.int64()))
                present &= pc.is_valid(values).to_numpy(zero_copy_only=False)
            example = next(iter(failures.values()), "no value")
            for r in rest[present].tolist():
                failures[r] = f"no value (like other rows: {example})"
        return failures


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0].rstrip(".")
