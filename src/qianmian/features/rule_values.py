"""How a rule reads its inputs: the kind of each field, and one reader per kind and mode.

A rule sees three kinds of value: ``num`` (``float`` and ``int`` fields, held as ``float64``),
``str`` (``string`` fields, held as Python ``str`` in object arrays) and ``bool``. Each kind has
two readers, listed in :data:`READERS`: one for whole columns (numpy arrays, pandas Series,
pyarrow arrays or lists) and one for one customer's value. Both turn every missing value
(``None``, ``NaN``, ``pd.NA``) into the kind's NULL and refuse a value of the wrong kind with a
:class:`~qianmian.errors.ValidationError`.

In column mode a ``num`` NULL is ``NaN``, a ``str`` NULL is ``None``, and a ``bool`` column is a
pair of masks ``(true, false)``: a row in neither is NULL. In one-customer mode every NULL is
``None``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qianmian.errors import ValidationError

__all__ = [
    "COLUMN_NULLS",
    "FIELD_KINDS",
    "KIND_WORDS",
    "READERS",
    "as_column",
    "is_known",
    "text_is_known",
]

FIELD_KINDS = {"float": "num", "int": "num", "bool": "bool", "string": "str"}
KIND_WORDS = {"num": "a number", "str": "text", "bool": "true/false", "null": "NULL"}


def _null(v: Any) -> bool:
    """Whether one value is missing: None, NaN or pandas' NA."""
    if v is None:
        return True
    try:
        return bool(v != v)
    except TypeError:  # pd.NA refuses bool()
        return True
    except ValueError:  # an array: not one missing value (the caller then rejects it)
        return False


# ---- one customer's value ----------------------------------------------------------------------
def _one_num(v: Any, name: str) -> float | None:
    if v.__class__ is float or v.__class__ is int:
        return None if v != v else float(v)
    if _null(v):
        return None
    if isinstance(v, str | bytes):
        raise ValidationError(f"Feature '{name}' must be a number; got the text {v!r}.")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValidationError(f"Feature '{name}' must be a number; got {v!r}.") from None


def _one_str(v: Any, name: str) -> str | None:
    if v.__class__ is str:
        return v  # type: ignore[no-any-return]
    if _null(v):
        return None
    if not isinstance(v, str):
        raise ValidationError(f"Feature '{name}' must be text; got {v!r}.")
    return v


def _one_bool(v: Any, name: str) -> bool | None:
    if v is True or v is False:
        return v  # type: ignore[no-any-return]
    if _null(v):
        return None
    if isinstance(v, np.bool_) or v in (0, 1):
        return bool(v)
    raise ValidationError(f"Feature '{name}' must be true or false; got {v!r}.")


# ---- whole columns -----------------------------------------------------------------------------
def as_column(v: Any) -> np.ndarray | None:
    """``v`` as a 1-d numpy array, or None when it is a single value."""
    if isinstance(v, np.ndarray):
        return v if v.ndim else None
    if hasattr(v, "to_numpy"):  # pandas Series, pyarrow (Chunked)Array
        return np.asarray(v.to_numpy())
    if isinstance(v, list | tuple):
        return np.asarray(v, dtype=object)
    return None


def _vec_num(v: Any, name: str) -> Any:
    arr = as_column(v)
    if arr is None:
        one = _one_num(v.item() if isinstance(v, np.ndarray) else v, name)
        return np.nan if one is None else one
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64, copy=False)
    return np.fromiter(
        (np.nan if (x := _one_num(e, name)) is None else x for e in arr), np.float64, len(arr)
    )


def _vec_str(v: Any, name: str) -> Any:
    arr = as_column(v)
    if arr is None:
        return _one_str(v.item() if isinstance(v, np.ndarray) else v, name)
    if arr.dtype.kind == "U":
        return arr.astype(object)
    return np.fromiter((_one_str(e, name) for e in arr), object, len(arr))


def _vec_bool(v: Any, name: str) -> tuple[Any, Any]:
    arr = as_column(v)
    if arr is None:
        one = _one_bool(v.item() if isinstance(v, np.ndarray) else v, name)
        return np.bool_(one is True), np.bool_(one is False)
    if arr.dtype.kind == "b":
        return arr, ~arr
    vals = np.fromiter((_one_bool(e, name) for e in arr), object, len(arr))
    return np.equal(vals, True).astype(bool), np.equal(vals, False).astype(bool)


def text_is_known(a: Any) -> Any:
    """Where a text column (or one text value) is not NULL."""
    if isinstance(a, np.ndarray):
        return np.not_equal(a, None)  # type: ignore[call-overload]  # elementwise "is not None"
    return np.bool_(a is not None)


def is_known(kind: str, a: Any) -> Any:
    """Where a column of ``kind`` (in column mode) is not NULL."""
    if kind == "num":
        return ~np.isnan(a)
    if kind == "str":
        return text_is_known(a)
    return a[0] | a[1]


# kind → (column reader, one-value reader); each takes (value, field name)
READERS = {"num": (_vec_num, _one_num), "str": (_vec_str, _one_str), "bool": (_vec_bool, _one_bool)}
# kind → its NULL in column mode
COLUMN_NULLS: dict[str, Any] = {
    "num": np.nan,
    "str": None,
    "bool": (np.False_, np.False_),
    "null": np.nan,
}
