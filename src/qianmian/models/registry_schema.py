"""A model's feature schema: the ordered (feature, type) pairs it reads, their hash and diff.

The registry stores a model's schema hash on its card and refuses to load it for a caller whose
schema differs; these helpers compute the pairs (types from the feature catalogue, else from
pandas dtypes), the hash, and a short description of any difference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from qianmian.errors import SchemaError, ValidationError

__all__ = ["catalogue_schema", "dtype_kind", "schema_diff", "schema_hash"]

_KINDS = frozenset({"int", "float", "bool", "string", "date", "datetime", "category"})


def schema_hash(features: Iterable[tuple[str, str]]) -> str:
    """A stable sha256 of the ordered (feature, type) pairs a model reads.

    The same names and types in the same order give the same hash on any machine; renaming,
    retyping, adding, dropping or reordering a feature changes it.

    >>> schema_hash([("recency_days", "int"), ("monetary_30d", "float")])[:16]
    '155bacad4d380484'
    >>> schema_hash([("a", "int"), ("b", "int")]) == schema_hash([("b", "int"), ("a", "int")])
    False
    """
    pairs = [(str(n), str(t)) for n, t in features]
    names = [n for n, _ in pairs]
    if not all(names) or len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValidationError(
            "A feature schema needs distinct, non-empty feature names. "
            f"Got {'repeated ' + ', '.join(repeated) if repeated else 'an empty name'} instead."
        )
    payload = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def catalogue_schema(
    feature_names: Iterable[str], dtypes: Mapping[str, Any] | pd.Series | None = None
) -> list[tuple[str, str]]:
    """(feature, type) pairs: types from the feature catalogue, else from ``dtypes``.

    Catalogue features get their declared type (``int``, ``float``, ``bool``, ``string``);
    other columns (models on a bank's own data) get the kind of their pandas dtype, so ``int32``
    and ``int64`` agree.

    >>> catalogue_schema(["recency_days", "score"], {"score": "float32"})
    [('recency_days', 'int'), ('score', 'float')]
    """
    from qianmian.features.catalogue import FEATURES, feature

    out: list[tuple[str, str]] = []
    for name in feature_names:
        if name in FEATURES:
            out.append((name, feature(name).type))
        elif dtypes is not None and name in dtypes:
            out.append((name, dtype_kind(dtypes[name])))
        else:
            try:
                feature(name)
            except SchemaError as e:
                raise SchemaError(
                    f"{e} It is not in the feature catalogue and no dtype was given for it; "
                    "pass dtypes (e.g. the training frame's .dtypes) or a schema."
                ) from None
    return out


def dtype_kind(dtype: Any) -> str:
    """The kind of a pandas/numpy dtype: int, float, bool, string, datetime, category or its name.

    >>> [dtype_kind(d) for d in ("int32", "float64", "bool", "object", "datetime64[ns]")]
    ['int', 'float', 'bool', 'string', 'datetime']
    """
    if isinstance(dtype, str) and dtype in _KINDS:
        return dtype
    try:
        dtype = pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return str(dtype)
    types = pd.api.types
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if types.is_bool_dtype(dtype):
        return "bool"
    if types.is_integer_dtype(dtype):
        return "int"
    if types.is_float_dtype(dtype):
        return "float"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if types.is_string_dtype(dtype) or types.is_object_dtype(dtype):
        return "string"
    return str(dtype)


def schema_diff(model: Mapping[str, str], caller: Sequence[tuple[str, str]]) -> list[str]:
    """How the caller's (feature, type) pairs differ from a model's, as short phrases.

    >>> schema_diff({"a": "int", "b": "float"}, [("a", "float"), ("c", "int")])
    ['the caller lacks b', 'the caller adds c', "types differ for a (model 'int', caller 'float')"]
    """
    theirs = dict(caller)
    out: list[str] = []
    missing = [n for n in model if n not in theirs]
    extra = [n for n in theirs if n not in model]
    retyped = [
        f"{n} (model {model[n]!r}, caller {theirs[n]!r})"
        for n in model
        if n in theirs and model[n] != theirs[n]
    ]
    for label, names in (
        ("the caller lacks", missing),
        ("the caller adds", extra),
        ("types differ for", retyped),
    ):
        if names:
            out.append(f"{label} {', '.join(names[:10])}{' …' if len(names) > 10 else ''}")
    if not out:
        at = next((i for i, (a, b) in enumerate(zip(model, theirs, strict=True)) if a != b), None)
        if at is not None:
            out.append(
                f"the same features in another order (position {at}: model "
                f"{list(model)[at]!r}, caller {list(theirs)[at]!r})"
            )
    return out
