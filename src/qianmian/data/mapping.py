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

The mapping file is read by :mod:`qianmian.data.mapping_file` and expressions are evaluated by
:mod:`qianmian.data.mapping_expr`; the file's models and readers are re-exported here.

>>> m = parse_mapping("table: customers\\ncolumns: {gender: {from: sex, values: {男: M}}}")
>>> m.columns["gender"].from_, m.columns["gender"].values
('sex', {'男': 'M'})
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qianmian.data.mapping_expr import ExpressionEvaluator, no_problems
from qianmian.data.mapping_file import (
    ColumnMapping,
    ColumnRule,
    SourceOptions,
    load_mapping,
    parse_mapping,
    scalar_text,
)
from qianmian.data.schema import Table
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
    evaluator = ExpressionEvaluator(source, rows, lines)
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
            columns[f.name] = pa.repeat(None if value is None else scalar_text(value), n)
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
    frame = pd.concat(problems, ignore_index=True) if problems else no_problems()
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
