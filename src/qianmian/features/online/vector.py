"""How a snapshot's feature vectors are packed: one float64 per feature, one row per customer.

Every feature value fits a float64: floats as themselves, ints exactly up to 2**53, bools as
0/1, strings as an index into the column's categories; NULL is NaN (so a float feature cannot
hold a genuine NaN: it reads back as ``None``). A customer's vector is then one contiguous row
that both backends read in one step — a numpy row in memory, 8 bytes per feature in Redis — and
:meth:`VectorLayout.decode` turns it back into the batch row's Python values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qianmian.errors import ValidationError

__all__ = ["Kind", "VectorLayout"]

Kind = Literal["float", "int", "bool", "string"]
KEY_COLUMNS = ("customer_id", "as_of")
_MAX_EXACT_INT = 2**53


@dataclass(frozen=True)
class VectorLayout:
    """The columns of a loaded snapshot, their kinds, string categories and the as-of time."""

    names: tuple[str, ...]
    kinds: tuple[Kind, ...]
    categories: dict[str, tuple[str, ...]]
    as_of: datetime
    _decoders: tuple[tuple[str, int, tuple[str, ...]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        codes = {"float": 0, "int": 1, "bool": 2, "string": 3}
        decoders = tuple(
            (n, codes[k], self.categories.get(n, ()))
            for n, k in zip(self.names, self.kinds, strict=True)
        )
        object.__setattr__(self, "_decoders", decoders)

    @classmethod
    def pack(cls, table: pa.Table) -> tuple[VectorLayout, np.ndarray, np.ndarray]:
        """Check a batch feature table and pack it.

        Returns
        -------
        layout : VectorLayout
        customer_ids : ndarray of int64, shape (n,)
        matrix : ndarray of float64, shape (n, n_features), C-contiguous
        """
        for name in KEY_COLUMNS:
            if name not in table.column_names:
                raise ValidationError(
                    f"The feature table has no '{name}' column; load a table built by "
                    "StoreFeatureEngine.build (customer_id, as_of, then the features)."
                )
        if table.num_rows == 0:
            raise ValidationError("The feature table is empty; there is no snapshot to load.")
        ids = _customer_ids(table.column("customer_id"))
        as_of = _single_as_of(table.column("as_of"))
        names = [n for n in table.column_names if n not in KEY_COLUMNS]
        kinds: list[Kind] = []
        categories: dict[str, tuple[str, ...]] = {}
        matrix = np.empty((table.num_rows, len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            kind, values, cats = _pack_column(name, table.column(name))
            kinds.append(kind)
            matrix[:, j] = values
            if cats is not None:
                categories[name] = cats
        layout = cls(tuple(names), tuple(kinds), categories, as_of)
        return layout, ids, matrix

    def decode(self, row: Sequence[float]) -> dict[str, Any]:
        """The Python values of one packed row (``None`` for NULL)."""
        out: dict[str, Any] = {}
        for (name, kind, cats), v in zip(self._decoders, row, strict=True):
            if v != v:  # NaN: NULL
                out[name] = None
            elif kind == 0:
                out[name] = v
            elif kind == 1:
                out[name] = int(v)
            elif kind == 2:
                out[name] = v != 0.0
            else:
                out[name] = cats[int(v)]
        return out

    def decode_bytes(self, blob: bytes) -> dict[str, Any]:
        """:meth:`decode` for a row stored as little-endian float64 bytes."""
        return self.decode(np.frombuffer(blob, dtype="<f8").tolist())

    def to_json(self) -> str:
        return json.dumps(
            {
                "names": self.names,
                "kinds": self.kinds,
                "categories": self.categories,
                "as_of": self.as_of.isoformat(),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> VectorLayout:
        d = json.loads(text)
        return cls(
            tuple(d["names"]),
            tuple(d["kinds"]),
            {k: tuple(v) for k, v in d["categories"].items()},
            datetime.fromisoformat(d["as_of"]),
        )


def _customer_ids(column: pa.ChunkedArray) -> np.ndarray:
    if not pa.types.is_integer(column.type):
        raise ValidationError(
            f"The feature table's 'customer_id' column is {column.type}; it must hold integers."
        )
    if column.null_count:
        raise ValidationError(
            f"The feature table's 'customer_id' column has {column.null_count} empty values; "
            "every row needs a customer id."
        )
    ids = column.to_numpy().astype(np.int64, copy=False)
    uniq, counts = np.unique(ids, return_counts=True)
    if len(uniq) != len(ids):
        dup = uniq[counts > 1][:3].tolist()
        raise ValidationError(
            f"The feature table has more than one row for customer_id {dup}; load one vector "
            "per customer (a single as_of)."
        )
    return ids


def _single_as_of(column: pa.ChunkedArray) -> datetime:
    values = column.unique().to_pylist()
    if len(values) != 1 or values[0] is None:
        raise ValidationError(
            f"The feature table's 'as_of' column holds {len(values)} values ({values[:3]}); "
            "load one snapshot, with one non-empty as_of, at a time."
        )
    at = values[0]
    if not isinstance(at, datetime):  # a date
        at = datetime(at.year, at.month, at.day)
    if at.tzinfo is not None:  # the bank's times are naive China time
        at = at.astimezone(timezone(timedelta(hours=8))).replace(tzinfo=None)
    return at


def _pack_column(
    name: str, column: pa.ChunkedArray
) -> tuple[Kind, np.ndarray, tuple[str, ...] | None]:
    """(kind, float64 values with NaN for NULL, categories of a string column)."""
    t = column.type
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type)
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        encoded = column.combine_chunks().dictionary_encode()
        cats = tuple(encoded.dictionary.to_pylist())
        codes = pc.cast(encoded.indices, pa.float64()).to_numpy(zero_copy_only=False)
        return "string", codes, cats
    if pa.types.is_boolean(t):
        kind: Kind = "bool"
    elif pa.types.is_integer(t):
        kind = "int"
        top = pc.max(pc.abs(column)).as_py() if len(column) > column.null_count else 0
        if top is not None and top > _MAX_EXACT_INT:
            raise ValidationError(
                f"Feature '{name}' holds the integer {top}, beyond 2**53, which the online "
                "store cannot hold exactly; store it as a string feature."
            )
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        kind = "float"
    else:
        raise ValidationError(
            f"Feature '{name}' has type {t}; the online store holds numbers, booleans and "
            "strings only. Cast or drop the column before loading."
        )
    values = pc.cast(column, pa.float64()).to_numpy()
    return kind, np.asarray(values, dtype=np.float64), None
