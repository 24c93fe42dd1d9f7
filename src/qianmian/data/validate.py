"""Check imported rows against the data dictionary, vectorised with Arrow, pandas and NumPy.

Every row ends either in ``good`` (conforming to the dictionary) or with one or more problems in
``problems`` (one row per problem, in the shape of the ``quarantine`` table); no row is dropped
silently. The checks, in order: type (text parsed to int, float, bool, date or timestamp), required,
enum, min/max, pattern, duplicate primary key within the input (the first occurrence wins), primary
key already stored, and referential integrity (``references``).

Converting values (:func:`coerce`) lives in :mod:`qianmian.data.coerce`, and turning what the
checks find into quarantine rows in :mod:`qianmian.data.quarantine`; their public names are
re-exported here.

>>> import pyarrow as pa
>>> from qianmian.data.schema import table
>>> result = validate_rows(table("customers"), pa.table({"customer_id": ["1", "x", "1"]}))
>>> result.good.column("customer_id").to_pylist(), result.problems["row_number"].tolist()
([1], [2, 3])
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qianmian.data.coerce import (
    NULL_TOKENS,
    TYPE_REASONS,
    Coerced,
    as_array,
    clean_text,
    coerce,
)
from qianmian.data.quarantine import (
    PROBLEM_COLUMNS,
    Findings,
    assemble_problems,
    to_quarantine_table,
)
from qianmian.data.schema import Field, Table
from qianmian.errors import SchemaError

__all__ = [
    "NULL_TOKENS",
    "PROBLEM_COLUMNS",
    "TYPE_REASONS",
    "Coerced",
    "ValidationResult",
    "clean_text",
    "coerce",
    "to_quarantine_table",
    "validate_rows",
]


@dataclass(frozen=True)
class ValidationResult:
    """What :func:`validate_rows` found.

    Attributes
    ----------
    good : pyarrow.Table
        The rows without any problem, conforming to the dictionary table (its schema, in order).
    good_rows : numpy.ndarray of int
        Position of each good row in the validated input.
    problems : pandas.DataFrame
        One row per problem, columns :data:`PROBLEM_COLUMNS`, sorted by ``row_number``. PII values
        are masked in ``value`` and ``raw``.
    rows_checked : int
        Rows validated; every one is either good or has at least one problem.
    """

    good: pa.Table
    good_rows: np.ndarray
    problems: pd.DataFrame
    rows_checked: int

    @property
    def rows_good(self) -> int:
        return self.good.num_rows

    @property
    def rows_quarantined(self) -> int:
        return int(self.problems["row_index"].nunique())

    def quarantine_table(self) -> pa.Table:
        """The problems as an Arrow table of the ``quarantine`` dictionary table."""
        return to_quarantine_table(self.problems)


def validate_rows(
    table: Table,
    data: pa.Table,
    *,
    row_numbers: Sequence[int] | np.ndarray | None = None,
    stored_keys: pa.Table | None = None,
    parent_keys: Mapping[str, pa.Array | pa.ChunkedArray | None] | None = None,
    prior_problems: pd.DataFrame | None = None,
    import_id: str = "",
    source: pa.Table | None = None,
    source_pii: Mapping[str, str] | None = None,
) -> ValidationResult:
    """Check every row of ``data`` against dictionary ``table``; split good rows from problems.

    Parameters
    ----------
    table : Table
        The dictionary table the rows are meant for.
    data : pyarrow.Table, n rows
        Columns named after fields of ``table`` (missing ones count as empty), as text or typed.
    row_numbers : sequence of int, length n, optional
        Line of each row in the source file, reported in ``problems`` (default 1..n).
    stored_keys : pyarrow.Table, optional
        Primary-key columns of the rows already stored; a row repeating one is a problem.
    parent_keys : mapping of str to pyarrow.Array, optional
        For each ``references`` target ("table.column"), the values already stored (None: the
        parent table does not exist). A value found in neither is a problem. When the parent is
        ``table`` itself, the good rows of ``data`` count too.
    prior_problems : pandas.DataFrame, optional
        Problems found before validation (e.g. a mapping expression that failed), with columns
        ``row_index, field, value, reason, check``; those rows are not good either.
    import_id : str
        Written into every problem.
    source, source_pii : pyarrow.Table and mapping of str to str, optional
        The source rows (aligned with ``data``) rendered as JSON into ``raw``, with the named source
        columns masked as the given PII kind. Default: ``data`` itself, masked by the dictionary.

    Returns
    -------
    ValidationResult
    """
    unknown = [c for c in data.column_names if not table.has_field(c)]
    if unknown:
        raise SchemaError(
            f"Table '{table.name}' has no field {', '.join(map(repr, unknown))}; "
            f"known fields: {', '.join(table.column_names)}."
        )
    n = data.num_rows
    lines = np.arange(1, n + 1) if row_numbers is None else np.asarray(row_numbers, dtype=np.int64)
    findings = Findings(n)
    if prior_problems is not None and len(prior_problems):
        findings.extend(prior_problems)
    typed: dict[str, pa.Array] = {}
    for f in table.fields:
        raw = data.column(f.name) if f.name in data.column_names else pa.nulls(n, pa.string())
        coerced = coerce(raw, f.type)
        typed[f.name] = coerced.values
        text = pc.cast(as_array(raw), pa.string())
        findings.add(coerced.invalid, f.name, text, TYPE_REASONS[f.type], "type")
        _check_field(f, coerced, text, findings)
    _check_keys(table, typed, lines, stored_keys, findings)
    _check_references(table, typed, parent_keys or {}, findings)
    good_rows = np.flatnonzero(~findings.bad)
    good = table.conform(pa.table(typed).take(pa.array(good_rows, pa.int64())))
    problems = assemble_problems(
        findings,
        table,
        lines,
        import_id,
        source if source is not None else data,
        (source_pii or {}) if source is not None else table.pii_fields,
    )
    result = ValidationResult(good, good_rows, problems, n)
    assert result.rows_good + result.rows_quarantined == n, "a row was neither good nor bad"
    return result


def _check_field(f: Field, coerced: Coerced, text: pa.Array, findings: Findings) -> None:
    values = coerced.values
    present = pc.is_valid(values).to_numpy(zero_copy_only=False)
    if f.required:
        findings.add(
            ~present & ~coerced.invalid, f.name, text, "is required but missing", "required"
        )
    if f.enum is not None:
        outside = present & ~pc.is_in(pc.cast(values, pa.string()), pa.array(f.enum)).to_numpy(
            zero_copy_only=False
        )
        if outside.any():  # one reason per distinct bad value, with its closest allowed value
            bad = pc.cast(values, pa.string()).filter(outside).to_pandas()
            per_row = np.full(len(outside), None, dtype=object)
            per_row[outside] = bad.map({v: _enum_reason(f, v) for v in bad.unique()}).to_numpy()
            findings.add(outside, f.name, text, per_row, "enum")
    if f.type in ("int", "float"):
        for bound, compare, word in (
            (f.min, pc.less, "below the minimum"),
            (f.max, pc.greater, "above the maximum"),
        ):
            if bound is not None:
                out = pc.fill_null(compare(values, bound), False).to_numpy(zero_copy_only=False)
                findings.add(out, f.name, text, f"is {word} {bound:g}", "range")
    if f.pattern is not None and f.type == "string":
        findings.add(
            present & ~_full_match(values, f.pattern),
            f.name,
            text,
            f"does not match the pattern {f.pattern}",
            "pattern",
        )


def _enum_reason(f: Field, value: str | None) -> str:
    assert f.enum is not None
    shown = ", ".join(f.enum[:12]) + (" ..." if len(f.enum) > 12 else "")
    folded = {v.casefold(): v for v in f.enum}
    close = (
        [folded[str(value).casefold()]]
        if str(value).casefold() in folded
        else difflib.get_close_matches(str(value), f.enum, n=1, cutoff=0.6)
    )
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"is not one of the allowed values ({shown}){hint}"


def _full_match(values: pa.Array, pattern: str) -> np.ndarray:
    try:  # Arrow's RE2 is vectorised; Python's re is the dictionary's reference when they differ
        matched = pc.match_substring_regex(values, f"^(?:{pattern})$")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        regex = re.compile(pattern)
        matched = pa.array(
            [v is None or regex.fullmatch(v) is not None for v in values.to_pylist()]
        )
    return pc.fill_null(matched, True).to_numpy(zero_copy_only=False)


def _check_keys(
    table: Table,
    typed: dict[str, pa.Array],
    lines: np.ndarray,
    stored: pa.Table | None,
    findings: Findings,
) -> None:
    pk = list(table.primary_key)
    if not pk:
        return
    eligible = np.ones(len(lines), dtype=bool)
    for k in pk:
        eligible &= pc.is_valid(typed[k]).to_numpy(zero_copy_only=False)
    key_text = _key_text(table, pk, typed)
    frame = pd.DataFrame({"key": key_text.to_pandas(), "line": lines})[eligible]
    first_line = frame.groupby("key", sort=False)["line"].transform("first")
    later = frame.index[frame.duplicated("key", keep="first")]
    dup = np.zeros(len(lines), dtype=bool)
    dup[later] = True
    reasons = np.full(len(lines), None, dtype=object)
    reasons[later] = [
        f"duplicate key {key}, first seen on line {first}"
        for key, first in zip(frame.loc[later, "key"], first_line.loc[later], strict=True)
    ]
    findings.add(dup, ",".join(pk), key_text, reasons, "duplicate")
    if stored is not None and stored.num_rows:
        keys = pa.table({k: typed[k] for k in pk})
        already = _rows_in(keys, stored.select(pk)) & eligible
        findings.add(
            already,
            ",".join(pk),
            key_text,
            f"key is already stored in table {table.name}",
            "stored",
        )


def _key_text(table: Table, pk: list[str], typed: dict[str, pa.Array]) -> pa.Array:
    """'customer_id=7' (PII key parts masked), for reasons that name a key."""
    parts = []
    for k in pk:
        text = pc.cast(typed[k], pa.string())
        kind = table.field(k).pii
        if kind is not None:
            from qianmian.data.masking import mask_column

            text = mask_column(text, kind)
        parts.append(pc.binary_join_element_wise(f"{k}=", text, ""))
    return pc.binary_join_element_wise(*parts, ", ")


def _rows_in(left: pa.Table, right: pa.Table) -> np.ndarray:
    """Whether each row of ``left`` occurs in ``right`` (same columns; nulls never match)."""
    try:
        right = right.cast(left.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        left = pa.table({c: pc.cast(left.column(c), pa.string()) for c in left.column_names})
        right = pa.table({c: pc.cast(right.column(c), pa.string()) for c in left.column_names})
    position = pa.array(np.arange(left.num_rows), pa.int64())
    hits = left.append_column("__position", position).join(
        right.group_by(left.column_names).aggregate([]),
        keys=left.column_names,
        join_type="left semi",
    )
    found = np.zeros(left.num_rows, dtype=bool)
    found[hits.column("__position").to_numpy()] = True
    return found


def _check_references(
    table: Table,
    typed: dict[str, pa.Array],
    parent_keys: Mapping[str, pa.Array | pa.ChunkedArray | None],
    findings: Findings,
) -> None:
    for f in table.fields:
        if f.references is None:
            continue
        parent, column = f.references.split(".", 1)
        stored = parent_keys.get(f.references)
        allowed = pa.array([], f.arrow_type) if stored is None else as_array(stored)
        values = typed[f.name]
        present = pc.is_valid(values).to_numpy(zero_copy_only=False)
        reason = (
            f"has no matching {f.references} (the parent table {parent} has no such row"
            f"{' yet; import it first' if stored is None else ''})"
        )
        dangling = np.zeros(len(present), dtype=bool)
        while True:  # for a self-reference, a row pointing at a bad row of this input is bad too
            candidates = allowed
            if parent == table.name:
                own = typed[column].filter(pa.array(~(findings.bad | dangling)))
                candidates = pa.concat_arrays([pc.cast(allowed, own.type), own])
            found = _rows_in(pa.table({"v": values}), pa.table({"v": candidates}))
            now = present & ~found
            if parent != table.name or not (now & ~dangling).any():
                dangling = now
                break
            dangling |= now
        findings.add(dangling, f.name, pc.cast(values, pa.string()), reason, "reference")
