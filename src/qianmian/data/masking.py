"""PII masking of values, columns, tables and free text.

Masking rules (the kind names are those of the data dictionary's ``pii`` field):

============  ==========================  =============================================
kind          example                     rule
============  ==========================  =============================================
national_id   ``110***********1234``      first 3 and last 4 kept (15-digit: 3 and 4)
mobile        ``138****5678``             digits 4-7 of the 11-digit number masked; a
                                          ``+86`` prefix and separators are kept
card_number   ``622588******1234``        first 6 (BIN) and last 4 digits kept, as the
                                          PBOC/PCI display rule; separators are kept
name          ``张*``, ``欧阳**``           surname kept (compound ones too), rest ``*``
email         ``z***@qq.com``             first character of the local part, ``***``,
                                          then the domain
identifier    ``U1*******90``             first 2 and last 2 kept (8+ characters)
============  ==========================  =============================================

A value that does not look like its kind is masked conservatively: every character but the
last two becomes ``*`` (values of four characters or fewer are masked entirely). Masking never
raises on a value, so it is safe to apply twice. Masking keeps the length of ID numbers, mobiles
and card numbers.

Detection of personal information in free text is :func:`~qianmian.data.pii_text.find_pii`
(re-exported here with :class:`~qianmian.data.pii_text.PiiSpan`); :func:`mask_text` masks what
it finds.

>>> mask_value("13812345678", "mobile"), mask_value("欧阳娜娜", "name")
('138****5678', '欧阳**')
>>> mask_text("客户张伟来电,手机 138-1234-5678。")
'客户张*来电,手机 138-****-5678。'
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qianmian.data.pii_rules import COMPOUND_SURNAMES
from qianmian.data.pii_text import NAME_STOP_CHARS, PiiSpan, find_pii, half_width
from qianmian.data.schema import table as schema_table
from qianmian.errors import ValidationError

__all__ = [
    "ID_TYPE_KINDS",
    "MASK_KINDS",
    "NAME_STOP_CHARS",
    "PiiSpan",
    "find_pii",
    "mask_column",
    "mask_frame",
    "mask_text",
    "mask_value",
]

MASK_KINDS = ("name", "national_id", "mobile", "card_number", "email", "identifier")
#: Masking kind of each ``id_type`` of the identifiers table (others: ``identifier``).
ID_TYPE_KINDS = {
    "mobile": "mobile",
    "email": "email",
    "card_number": "card_number",
    "national_id": "national_id",
    "device_id": "identifier",
    "app_user_id": "identifier",
}

# Clean, canonical values are masked by Arrow regex replacement; anything else goes through
# the scalar rules one by one. Each pair is (full-match pattern, replacement).
_FAST: dict[str, list[tuple[str, str]]] = {
    "national_id": [
        (r"^([0-9]{3})[0-9]{11}([0-9]{3}[0-9Xx])$", r"\1***********\2"),
        (r"^([0-9]{3})[0-9]{8}([0-9]{4})$", r"\1********\2"),
    ],
    "mobile": [(r"^(1[0-9]{2})[0-9]{4}([0-9]{4})$", r"\1****\2")],
    "card_number": [
        (rf"^([0-9]{{6}})[0-9]{{{k}}}([0-9]{{4}})$", r"\1" + "*" * k + r"\2") for k in range(3, 10)
    ],
    "email": [
        (r"^([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)$", r"\1***\2")
    ],
}
_EMAIL = re.compile(r"([^@\s])[^@\s]*(@[^@\s]+\.[^@\s]+)")
_COUNTRY = re.compile(r"(?:\+|00)?86[ \-]*(?=1[0-9]{2}[ \-]*[0-9]{4}[ \-]*[0-9]{4}\Z)")
_SEPARATED = re.compile(r"[0-9][0-9Xx \-]*")
_SEPARATORS = " -"


def _conservative(text: str) -> str:
    return "*" * len(text) if len(text) <= 4 else "*" * (len(text) - 2) + text[-2:]


def _mask_digits(
    text: str, n_digits: tuple[int, ...], head: int, tail: int, country: bool = False
) -> str:
    """Mask the digits of ``text`` but the first ``head`` and last ``tail``, keeping separators.

    Applies when the value is digits (and ``X``) with spaces or dashes, holding a number of
    digits in ``n_digits`` (after a ``+86``/``0086``/``86`` prefix if ``country``); anything
    else is masked conservatively.
    """
    prefix = _COUNTRY.match(text) if country else None
    start = prefix.end() if prefix else 0
    if not _SEPARATED.fullmatch(text, start):
        return _conservative(text)
    positions = [i for i in range(start, len(text)) if text[i] not in _SEPARATORS]
    if len(positions) not in n_digits:
        return _conservative(text)
    hidden = set(positions[head : len(positions) - tail])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(text))


def _mask_name(text: str) -> str:
    keep = 2 if len(text) > 2 and text[:2] in COMPOUND_SURNAMES else min(len(text) - 1, 1)
    return text[: max(keep, 0)] + "*" * (len(text) - max(keep, 0))


def _mask_email(text: str) -> str:
    match = _EMAIL.fullmatch(text)
    return f"{match[1]}***{match[2]}" if match else _conservative(text)


def _mask_identifier(text: str) -> str:
    return text[:2] + "*" * (len(text) - 4) + text[-2:] if len(text) >= 8 else _conservative(text)


_SCALAR = {
    "name": _mask_name,
    "national_id": lambda t: _mask_digits(t, (15, 18), 3, 4),
    "mobile": lambda t: _mask_digits(t, (11,), 3, 4, country=True),
    "card_number": lambda t: _mask_digits(t, tuple(range(13, 20)), 6, 4),
    "email": _mask_email,
    "identifier": _mask_identifier,
}


def _check_kind(kind: str) -> None:
    if kind not in MASK_KINDS:
        raise ValidationError(
            f"The masking kind must be one of {', '.join(MASK_KINDS)}. Got {kind!r} instead."
        )


def mask_value(value: Any, kind: str) -> str | None:
    """Mask one value of PII ``kind``; ``None`` (or NaN) stays ``None``.

    Parameters
    ----------
    value : str or None
        Any other type is masked as its ``str()``.
    kind : {"name", "national_id", "mobile", "card_number", "email", "identifier"}

    Returns
    -------
    str or None

    Examples
    --------
    >>> mask_value("11010519491231002X", "national_id")
    '110***********002X'
    >>> mask_value("6225 8812 3456 7890", "card_number"), mask_value("zhang@qq.com", "email")
    ('6225 88** **** 7890', 'z***@qq.com')
    >>> mask_value("not a phone", "mobile")
    '*********ne'
    """
    _check_kind(kind)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return _SCALAR[kind](value if isinstance(value, str) else str(value))


def _to_arrow(values: Any) -> pa.Array:
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        try:
            values = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            values = pa.array(
                [None if v is None or v is pd.NA or v != v else str(v) for v in values],
                type=pa.string(),
            )
    if isinstance(values, pa.ChunkedArray):  # also what Arrow-backed pandas columns give
        values = values.combine_chunks()
    if pa.types.is_null(values.type) or pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    if not pa.types.is_string(values.type):
        values = pa.array(
            [None if v is None else str(v) for v in values.to_pylist()], type=pa.string()
        )
    return values


def _mask_arrow(values: pa.Array, kind: str) -> pa.Array:
    if not values.null_count:
        return _mask_present(values, kind)
    masked = _mask_present(pc.fill_null(values, ""), kind)
    return pc.if_else(pc.is_valid(values), masked, pa.scalar(None, masked.type))


def _mask_present(values: pa.Array, kind: str) -> pa.Array:
    """Mask a string array without nulls."""
    length = pc.utf8_length(values)
    if kind == "name":
        compound = pc.and_(
            pc.match_substring_regex(values, "^(?:" + "|".join(COMPOUND_SURNAMES) + ")"),
            pc.greater(length, 2),
        )
        keep = pc.if_else(
            compound, 2, pc.max_element_wise(pc.min_element_wise(pc.subtract(length, 1), 1), 0)
        )
        head = pc.if_else(
            compound,
            pc.utf8_slice_codeunits(values, 0, 2),
            pc.if_else(pc.greater(keep, 0), pc.utf8_slice_codeunits(values, 0, 1), ""),
        )
        return pc.binary_join_element_wise(
            head, pc.binary_repeat("*", pc.subtract(length, keep)), ""
        )
    short = pc.less_equal(length, 4)
    stars = pc.binary_repeat("*", pc.if_else(short, length, pc.subtract(length, 2)))
    tail = pc.if_else(short, "", pc.utf8_slice_codeunits(values, -2))
    out = pc.binary_join_element_wise(stars, tail, "")  # the conservative rule
    if kind == "identifier":
        long = pc.greater_equal(length, 8)
        body = pc.binary_repeat("*", pc.max_element_wise(pc.subtract(length, 4), 0))
        kept = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(values, 0, 2), body, pc.utf8_slice_codeunits(values, -2), ""
        )
        return pc.if_else(long, kept, out)
    fast = pa.repeat(False, len(values)) if len(values) else pa.array([], pa.bool_())
    for pattern, replacement in _FAST[kind]:
        hit = pc.fill_null(pc.match_substring_regex(values, pattern), False)
        out = pc.if_else(hit, pc.replace_substring_regex(values, pattern, replacement), out)
        fast = pc.or_(fast, hit)
    # the rest (separators, +86 prefixes, junk) follows the scalar rules
    slow = pc.invert(fast)
    if pc.any(slow).as_py():
        rest = [_SCALAR[kind](v) for v in values.filter(slow).to_pylist()]
        out = pc.replace_with_mask(out, slow, pa.array(rest, type=out.type))
    return out


def mask_column(values: pd.Series | pa.Array | pa.ChunkedArray, kind: str) -> Any:
    """Mask a whole column of PII ``kind``, vectorised (about a million values a second).

    Parameters
    ----------
    values : pandas.Series, pyarrow.Array or pyarrow.ChunkedArray
        Non-string values are masked as their ``str()``; nulls stay null.
    kind : {"name", "national_id", "mobile", "card_number", "email", "identifier"}

    Returns
    -------
    Same container as ``values`` (a Series keeps its index and name), with string values.

    Examples
    --------
    >>> mask_column(pd.Series(["13812345678", None, "+86 139 1234 5678"]), "mobile").tolist()
    ['138****5678', nan, '+86 139 **** 5678']
    """
    _check_kind(kind)
    masked = _mask_arrow(_to_arrow(values), kind)
    if isinstance(values, pd.Series):
        return pd.Series(masked.to_pandas().array, index=values.index, name=values.name)
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([masked])
    return masked


def _mask_identifiers(values: pa.Array, id_types: pa.Array) -> pa.Array:
    """Mask ``id_value`` by each row's ``id_type`` (unknown types as plain identifiers)."""
    id_types = pc.cast(id_types, pa.string())
    out = _mask_arrow(values, "identifier")
    for kind in ("mobile", "email", "card_number", "national_id"):
        types = [t for t, k in ID_TYPE_KINDS.items() if k == kind]
        sel = pc.fill_null(pc.and_(pc.is_in(id_types, pa.array(types)), pc.is_valid(values)), False)
        if pc.any(sel).as_py():
            out = pc.replace_with_mask(out, sel, _mask_arrow(values.filter(sel), kind))
    return out


def mask_frame(data: pd.DataFrame | pa.Table, table_name: str) -> pd.DataFrame | pa.Table:
    """Mask every column that the data dictionary marks as PII in table ``table_name``.

    Columns absent from ``data`` are skipped; ``id_value`` (kind ``identifier``) is masked by
    the row's ``id_type`` when that column is present, so a mobile stays ``138****5678``.

    Examples
    --------
    >>> df = pd.DataFrame({"customer_id": [1], "id_type": ["mobile"], "id_value": ["13812345678"]})
    >>> mask_frame(df, "identifiers")["id_value"].tolist()
    ['138****5678']
    """
    pii = schema_table(table_name).pii_fields
    names = data.column_names if isinstance(data, pa.Table) else [str(c) for c in data.columns]

    def read(name: str) -> pa.Array:
        return _to_arrow(data.column(name) if isinstance(data, pa.Table) else data[name])

    masked_columns = {}
    for name, kind in pii.items():
        if name not in names:
            continue
        if kind == "identifier" and "id_type" in names:
            masked_columns[name] = _mask_identifiers(read(name), read("id_type"))
        else:
            masked_columns[name] = _mask_arrow(read(name), kind)
    if isinstance(data, pa.Table):
        for column, masked in masked_columns.items():
            data = data.set_column(data.column_names.index(column), column, masked)
        return data
    out = data.copy()
    for column, masked in masked_columns.items():
        out[column] = pd.Series(masked.to_pandas().array, index=data.index)
    return out


def mask_text(text: str) -> str:
    """Mask every piece of personal information :func:`find_pii` finds in ``text``.

    >>> mask_text("本人王建国,身份证11010519491231002X,邮箱wjg@163.com")
    '本人王**,身份证110***********002X,邮箱w***@163.com'
    """
    for _ in range(3):  # masking one span can, rarely, expose another; repeat until clean
        spans = find_pii(text)
        if not spans:
            return text
        for span in reversed(spans):
            masked = mask_value(half_width(span.value), span.kind) or ""
            text = text[: span.start] + masked + text[span.end :]
    for span in reversed(find_pii(text)):
        text = text[: span.start] + "*" * (span.end - span.start) + text[span.end :]
    return text
