"""Check imported rows against the data dictionary, vectorised with Arrow, pandas and NumPy.

Every row ends either in ``good`` (conforming to the dictionary) or with one or more problems in
``problems`` (one row per problem, in the shape of the ``quarantine`` table); no row is dropped
silently. The checks, in order: type (text parsed to int, float, bool, date or timestamp), required,
enum, min/max, pattern, duplicate primary key within the input (the first occurrence wins), primary
key already stored, and referential integrity (``references``).

>>> import pyarrow as pa
>>> from qianmian.data.schema import table
>>> result = validate_rows(table("customers"), pa.table({"customer_id": ["1", "x", "1"]}))
>>> result.good.column("customer_id").to_pylist(), result.problems["row_number"].tolist()
([1], [2, 3])
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qianmian.data.schema import Field, Table
from qianmian.data.schema import table as dictionary_table
from qianmian.data.schema.model import ARROW_TYPES
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

#: Columns of :attr:`ValidationResult.problems`: the quarantine table's, plus ``check`` (the kind
#: of problem, for summaries) and ``row_index`` (position of the row in the validated input).
PROBLEM_COLUMNS = [
    "import_id",
    "table_name",
    "row_number",
    "field",
    "value",
    "reason",
    "raw",
    "check",
    "row_index",
]
FINDING_COLUMNS = ["row_index", "field", "value", "reason", "check"]

NULL_TOKENS = ("", "NULL", "null", "None", "NaN", "nan", "N/A", "#N/A", "\\N")
_TRUE = ("true", "t", "yes", "y", "1", "是", "真")
_FALSE = ("false", "f", "no", "n", "0", "否", "假")
_DATE_FORMATS = "YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, YYYYMMDD or YYYY年M月D日"
TYPE_REASONS = {
    "int": "is not a whole number",
    "float": "is not a number",
    "bool": "is not a yes/no value (use 是/否, Y/N, true/false or 1/0)",
    "date": f"is not a valid date (use {_DATE_FORMATS})",
    "timestamp": f"is not a valid date-time (use {_DATE_FORMATS}, then HH:MM[:SS[.ffffff]])",
    "string": "is not text",
}
_TIME = r"(?:[ T]?(?P<H>\d{1,2})[:时](?P<M>\d{2})分?(?::?(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?秒?)?)?$"
_DATES = (
    r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})",
    r"^(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})",
    r"^(?P<y>\d{4})\.(?P<m>\d{1,2})\.(?P<d>\d{1,2})",
    r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日",
)
_DATETIME_PATTERNS = (
    *(date + _TIME for date in _DATES),
    r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?:(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2}))?$",
)
_INT = r"^[+-]?\d{1,18}(?:\.0*)?$"
_FLOAT = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_THOUSANDS = r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$"


@dataclass(frozen=True)
class Coerced:
    """Values converted to a dictionary type: ``values`` (null where missing or invalid) and
    ``invalid`` (bool array, True where a value was present but could not be converted)."""

    values: pa.Array
    invalid: np.ndarray


def coerce(values: pa.Array | pa.ChunkedArray | Sequence[Any], field_type: str) -> Coerced:
    """Convert ``values`` to the Arrow type of a dictionary ``field_type``, value by value.

    Text is trimmed; empty text and :data:`NULL_TOKENS` are missing. Values that are present but
    cannot be converted are null in ``values`` and flagged in ``invalid``; nothing raises.

    Parameters
    ----------
    values : pyarrow.Array or sequence, length n
        Text as read from a file, or already typed values (e.g. from Parquet or an expression).
    field_type : {"string", "int", "float", "bool", "date", "timestamp"}

    Examples
    --------
    >>> c = coerce(["2024/1/31", "20240131", "2024年1月31日", "2024-02-30", ""], "date")
    >>> [str(d) for d in c.values.to_pylist()], c.invalid.tolist()
    (['2024-01-31', '2024-01-31', '2024-01-31', 'None', 'None'], [False, False, False, True, False])
    """
    arr = _as_array(values)
    target = ARROW_TYPES[field_type]
    if arr.type == target and field_type != "string":
        out = arr
    elif (pa.types.is_integer(arr.type) and field_type in ("int", "float")) or (
        pa.types.is_floating(arr.type) and field_type == "float"
    ):
        out = pc.cast(arr, target)
    else:
        text = clean_text(arr)
        out = _PARSERS[field_type](text)
        return Coerced(out, _flag(text, out))
    if field_type in ("date", "timestamp"):  # dates from expressions may fall outside Python's
        lo, hi = pa.scalar(-719162, pa.int32()), pa.scalar(2932896, pa.int32())
        days = pc.cast(pc.cast(out, pa.date32()), pa.int32())
        bad = pc.fill_null(pc.or_(pc.less(days, lo), pc.greater(days, hi)), False)
        out = pc.if_else(bad, pa.scalar(None, target), out)
        return Coerced(out, bad.to_numpy(zero_copy_only=False))
    return Coerced(out, np.zeros(len(out), dtype=bool))


def _as_array(values: pa.Array | pa.ChunkedArray | Sequence[Any]) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    if isinstance(values, pa.Array):
        return values
    return (
        pa.array(list(values), type=pa.string())
        if all(v is None or isinstance(v, str) for v in values)
        else pa.array(list(values))
    )


def clean_text(arr: pa.Array) -> pa.Array:
    """Values as trimmed text, with empty text and :data:`NULL_TOKENS` as nulls."""
    text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    return pc.if_else(pc.is_in(text, pa.array(NULL_TOKENS)), pa.scalar(None, pa.string()), text)


def _flag(text: pa.Array, out: pa.Array) -> np.ndarray:
    return pc.and_(pc.is_valid(text), pc.is_null(out)).to_numpy(zero_copy_only=False)


def _parse_string(text: pa.Array) -> pa.Array:
    return text


def _parse_int(text: pa.Array) -> pa.Array:
    text = _drop_thousands(text)
    ok = pc.fill_null(pc.match_substring_regex(text, _INT), False)
    digits = pc.replace_substring_regex(pc.if_else(ok, text, "0"), r"\.0*$", "")
    return pc.if_else(ok, pc.cast(digits, pa.int64()), pa.scalar(None, pa.int64()))


def _parse_float(text: pa.Array) -> pa.Array:
    text = _drop_thousands(text)
    ok = pc.fill_null(pc.match_substring_regex(text, _FLOAT), False)
    number = pc.cast(pc.if_else(ok, text, "0"), pa.float64())
    ok = pc.and_(ok, pc.is_finite(number))
    return pc.if_else(ok, number, pa.scalar(None, pa.float64()))


def _drop_thousands(text: pa.Array) -> pa.Array:
    grouped = pc.fill_null(pc.match_substring_regex(text, _THOUSANDS), False)
    return pc.if_else(grouped, pc.replace_substring(text, ",", ""), text)


def _parse_bool(text: pa.Array) -> pa.Array:
    lower = pc.utf8_lower(text)
    is_true, is_false = pc.is_in(lower, pa.array(_TRUE)), pc.is_in(lower, pa.array(_FALSE))
    known = pc.or_(is_true, is_false)
    return pc.if_else(known, is_true, pa.scalar(None, pa.bool_()))


def _parse_timestamp(text: pa.Array) -> pa.Array:
    n = len(text)
    parts = {k: np.zeros(n, dtype=np.int64) for k in "ymdHMSf"}
    matched = np.zeros(n, dtype=bool)
    for pattern in _DATETIME_PATTERNS:
        found = pc.extract_regex(text, pattern)
        hit = pc.is_valid(found).to_numpy(zero_copy_only=False) & ~matched
        if not hit.any():
            continue
        for k in "ymdHMSf" if "f" in found.type.names else "ymdHMS":
            raw = found.field(k)
            if k == "f":
                raw = pc.utf8_rpad(raw, 6, "0")
            number = pc.cast(pc.if_else(pc.equal(raw, ""), "0", raw), pa.int64())
            parts[k] = np.where(hit, pc.fill_null(number, 0).to_numpy(), parts[k])
        matched |= hit
    y, m, d = parts["y"], parts["m"], parts["d"]
    month = ((y - 1970) * 12 + np.clip(m, 1, 12) - 1).astype("datetime64[M]")
    first = month.astype("datetime64[D]")
    days_in_month = ((month + 1).astype("datetime64[D]") - first).astype(np.int64)
    ok = (
        matched
        & (y >= 1)
        & (m >= 1)
        & (m <= 12)
        & (d >= 1)
        & (d <= days_in_month)
        & (parts["H"] < 24)
        & (parts["M"] < 60)
        & (parts["S"] < 60)
    )
    seconds = parts["H"] * 3600 + parts["M"] * 60 + parts["S"]
    stamp = ((first + (d - 1)).astype("datetime64[us]") + seconds * 1_000_000 + parts["f"]).astype(
        "datetime64[us]"
    )
    return pa.array(stamp, type=pa.timestamp("us"), mask=~ok)


def _parse_date(text: pa.Array) -> pa.Array:
    stamp = _parse_timestamp(text)
    day = pc.cast(pc.floor_temporal(stamp, unit="day"), pa.date32())
    midnight = pc.equal(
        pc.cast(stamp, pa.int64()),
        pc.multiply(pc.cast(pc.cast(day, pa.int32()), pa.int64()), 86_400_000_000),
    )
    return pc.if_else(midnight, day, pa.scalar(None, pa.date32()))


_PARSERS = {
    "string": _parse_string,
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "date": _parse_date,
    "timestamp": _parse_timestamp,
}


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


def to_quarantine_table(problems: pd.DataFrame) -> pa.Table:
    """Problems (:data:`PROBLEM_COLUMNS`) as an Arrow table of the ``quarantine`` table."""
    quarantine = dictionary_table("quarantine")
    frame = problems[quarantine.column_names].astype(
        {"row_number": "int64"} | {c: object for c in quarantine.column_names if c != "row_number"}
    )
    return quarantine.conform(pa.Table.from_pandas(frame, preserve_index=False))


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
    findings = _Findings(n)
    if prior_problems is not None and len(prior_problems):
        findings.extend(prior_problems)
    typed: dict[str, pa.Array] = {}
    for f in table.fields:
        raw = data.column(f.name) if f.name in data.column_names else pa.nulls(n, pa.string())
        coerced = coerce(raw, f.type)
        typed[f.name] = coerced.values
        text = pc.cast(_as_array(raw), pa.string())
        findings.add(coerced.invalid, f.name, text, TYPE_REASONS[f.type], "type")
        _check_field(f, coerced, text, findings)
    _check_keys(table, typed, lines, stored_keys, findings)
    _check_references(table, typed, parent_keys or {}, findings)
    good_rows = np.flatnonzero(~findings.bad)
    good = table.conform(pa.table(typed).take(pa.array(good_rows, pa.int64())))
    problems = _assemble(
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


class _Findings:
    """Problems found so far, as small frames, and which rows have at least one."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.frames: list[pd.DataFrame] = []

    def add(
        self,
        mask: np.ndarray,
        field: str | None,
        text: pa.Array,
        reason: str | np.ndarray,
        check: str,
    ) -> None:
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        values = text.take(pa.array(rows, pa.int64())).to_pylist()
        reasons = reason if isinstance(reason, str) else np.asarray(reason, dtype=object)[rows]
        self.extend(
            pd.DataFrame(
                {
                    "row_index": rows,
                    "field": field,
                    "value": values,
                    "reason": reasons,
                    "check": check,
                }
            )
        )

    def extend(self, frame: pd.DataFrame) -> None:
        self.frames.append(frame[FINDING_COLUMNS])
        self.bad[frame["row_index"].to_numpy(dtype=np.int64)] = True


def _check_field(f: Field, coerced: Coerced, text: pa.Array, findings: _Findings) -> None:
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
    findings: _Findings,
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
    findings: _Findings,
) -> None:
    for f in table.fields:
        if f.references is None:
            continue
        parent, column = f.references.split(".", 1)
        stored = parent_keys.get(f.references)
        allowed = pa.array([], f.arrow_type) if stored is None else _as_array(stored)
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


def _masker() -> Any:
    from qianmian.data.masking import mask_value

    return mask_value


def _assemble(
    findings: _Findings,
    table: Table,
    lines: np.ndarray,
    import_id: str,
    source: pa.Table,
    source_pii: Mapping[str, str],
) -> pd.DataFrame:
    if not findings.frames:
        return pd.DataFrame(
            {
                c: pd.Series(dtype="int64" if c in ("row_number", "row_index") else object)
                for c in PROBLEM_COLUMNS
            }
        )
    frame = pd.concat(findings.frames, ignore_index=True)
    frame["row_index"] = frame["row_index"].astype("int64")
    frame["row_number"] = lines[frame["row_index"].to_numpy()]
    frame["import_id"], frame["table_name"] = import_id, table.name
    pii = table.pii_fields
    if frame["field"].isin(list(pii)).any():
        mask = _masker()
        frame["value"] = [
            mask(str(v), pii[f]) if f in pii and v is not None else v
            for f, v in zip(frame["field"], frame["value"], strict=True)
        ]
    frame["value"] = frame["value"].astype(object)
    frame["raw"] = frame["row_index"].map(
        _raw_rows(source, frame["row_index"].unique(), source_pii)
    )
    order = frame.sort_values(["row_number", "row_index"], kind="stable").index
    return frame.loc[order, PROBLEM_COLUMNS].reset_index(drop=True)


def _raw_rows(source: pa.Table, rows: np.ndarray, pii: Mapping[str, str]) -> dict[int, str]:
    """Each problem row of the source as JSON, PII columns masked."""
    records = source.take(pa.array(rows, pa.int64())).to_pylist()
    mask = _masker() if any(c in pii for c in source.column_names) else None
    out = {}
    for row, record in zip(rows.tolist(), records, strict=True):
        if mask is not None:
            record = {
                c: v if c not in pii or v is None else mask(str(v), pii[c])
                for c, v in record.items()
            }
        out[row] = json.dumps(record, ensure_ascii=False, default=str)
    return out
