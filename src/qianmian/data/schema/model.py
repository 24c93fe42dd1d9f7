"""The building blocks of the data dictionary: :class:`Field` and :class:`Table`.

A field carries its logical type, its constraints and its zh/en description; everything else
(Arrow schemas, SQL DDL for each store, validation, PII masking, the generated docs) is derived
from these declarations so that nothing is written twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

from qianmian.errors import SchemaError

__all__ = ["ARROW_TYPES", "Field", "FieldType", "PiiKind", "Table"]

FieldType = Literal["string", "int", "float", "bool", "date", "timestamp"]
PiiKind = Literal["name", "national_id", "mobile", "card_number", "email", "identifier"]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


@dataclass(frozen=True)
class Field:
    """One column of a table.

    Parameters
    ----------
    name : str
        Column name (snake_case, English).
    type : {"string", "int", "float", "bool", "date", "timestamp"}
        Logical type. Money is ``float`` in CNY rounded to the fen; timestamps are naive
        China Standard Time (UTC+8).
    zh, en : str
        Descriptions in Simplified Chinese and English.
    required : bool
        Whether the value may be missing.
    enum : tuple of str, optional
        Allowed values.
    min, max : float, optional
        Inclusive numeric bounds.
    pattern : str, optional
        Regular expression a string value must match in full.
    pii : str, optional
        The kind of personal information held (masked in every output by default).
    references : str, optional
        ``"table.column"`` this field must point to (referential integrity).
    unit : str, optional
        Unit of measure, e.g. ``"CNY"`` or ``"days"``.
    """

    name: str
    type: FieldType
    zh: str
    en: str
    required: bool = False
    enum: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    pii: PiiKind | None = None
    references: str | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ARROW_TYPES:
            raise SchemaError(
                f"Field '{self.name}' has type '{self.type}', which is not one of "
                f"{sorted(ARROW_TYPES)}."
            )
        if self.pattern is not None:
            re.compile(self.pattern)

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]

    def constraint_text(self, *, max_values: int | None = 8) -> str:
        """Human-readable constraints, for the printed dictionary (enums cut at ``max_values``)."""
        parts = []
        if self.required:
            parts.append("required")
        if self.enum is not None:
            shown = self.enum if max_values is None else self.enum[:max_values]
            more = " ..." if len(shown) < len(self.enum) else ""
            parts.append(f"one of: {', '.join(shown)}{more}")
        if self.min is not None and self.max is not None:
            parts.append(f"range [{self.min:g}, {self.max:g}]")
        elif self.min is not None:
            parts.append(f"≥ {self.min:g}")
        elif self.max is not None:
            parts.append(f"≤ {self.max:g}")
        if self.pattern is not None:
            parts.append(f"matches `{self.pattern}`")
        if self.references is not None:
            parts.append(f"→ {self.references}")
        if self.pii is not None:
            parts.append(f"PII: {self.pii}")
        if self.unit is not None:
            parts.append(f"unit: {self.unit}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Table:
    """A table of the data dictionary: its fields, primary key and what one row means."""

    name: str
    zh: str
    en: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...] = ()
    grain_en: str = ""
    _by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {f.name: f for f in self.fields}
        if len(by_name) != len(self.fields):
            raise SchemaError(f"Table '{self.name}' declares a field twice.")
        for key in self.primary_key:
            if key not in by_name:
                raise SchemaError(
                    f"Table '{self.name}' has primary key column '{key}', which is not a field."
                )
        object.__setattr__(self, "_by_name", by_name)

    @property
    def column_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise SchemaError(
                f"Table '{self.name}' has no field '{name}'. "
                f"Known fields: {', '.join(self.column_names)}."
            ) from None

    def has_field(self, name: str) -> bool:
        return name in self._by_name

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(f.name, f.arrow_type, nullable=not f.required) for f in self.fields]
        )

    @property
    def pii_fields(self) -> dict[str, str]:
        return {f.name: f.pii for f in self.fields if f.pii is not None}

    def conform(self, table: pa.Table) -> pa.Table:
        """Return ``table`` with exactly this table's columns, in order, cast to their types.

        Missing optional columns are filled with nulls; a missing required column is an error.
        """
        columns = []
        for f in self.fields:
            if f.name in table.column_names:
                columns.append(table.column(f.name).cast(f.arrow_type))
            elif f.required:
                raise SchemaError(
                    f"Table '{self.name}' needs column '{f.name}' ({f.en}), which is missing."
                )
            else:
                columns.append(pa.nulls(table.num_rows, f.arrow_type))
        return pa.Table.from_arrays(columns, schema=self.arrow_schema)
