"""Convert values to the data dictionary's types, vectorised with Arrow and NumPy, never raising.

Text is trimmed and :data:`NULL_TOKENS` are missing values; numbers may carry thousands
separators; yes/no values are read in Chinese and English (是/否, Y/N, true/false, 1/0); dates
and date-times in the formats Chinese bank exports use (``2024-01-31``, ``2024/1/31``,
``20240131``, ``2024年1月31日``, then an optional time). A value that is present but cannot be
converted becomes null and is flagged, for :mod:`qianmian.data.validate` to report with its
:data:`TYPE_REASONS` text.

>>> c = coerce(["1,200", "12.5", "abc", None], "float")
>>> c.values.to_pylist(), c.invalid.tolist()
([1200.0, 12.5, None, None], [False, False, True, False])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qianmian.data.schema.model import ARROW_TYPES

__all__ = ["NULL_TOKENS", "TYPE_REASONS", "Coerced", "as_array", "clean_text", "coerce"]


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
    arr = as_array(values)
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


def as_array(values: pa.Array | pa.ChunkedArray | Sequence[Any]) -> pa.Array:
    """``values`` as one Arrow array (chunks combined; a sequence of text as strings)."""
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
