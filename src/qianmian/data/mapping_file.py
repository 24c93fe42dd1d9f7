"""Mapping files: YAML read into validated models, with errors that name the file and line.

The format and what each rule does are described in :mod:`qianmian.data.mapping`, which applies
a mapping to a file's columns. YAML 1.2 booleans are used (``yes``/``no``/``on``/``off`` stay
text), and keys are kept as written, so that ``1`` and ``true`` are two different source values.

>>> parse_mapping("table: customers\\ncolumns: {tier: {constant: 二线}}").columns["tier"].constant
'二线'
>>> parse_mapping("table: loans\\ncolumns: {tier: {constant: 1, from: x}}")  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ... (stack omitted)
qianmian.errors.MappingError: ... line 2, columns.tier: give exactly one of 'from', 'constant' ...
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from qianmian.data.yaml_lines import KeyPath, compose_with_lines, describe_error
from qianmian.errors import MappingError

__all__ = [
    "ColumnMapping",
    "ColumnRule",
    "SourceOptions",
    "load_mapping",
    "parse_mapping",
    "scalar_text",
]


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
            return {scalar_text(k): None if v is None else scalar_text(v) for k, v in value.items()}
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
    """A validated mapping file; see :mod:`qianmian.data.mapping` for its shape."""

    model_config = ConfigDict(extra="forbid")

    table: str
    source: SourceOptions = SourceOptions()
    columns: dict[str, ColumnRule] = {}
    _lines: dict[KeyPath, int] = PrivateAttr(default_factory=dict)
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


def scalar_text(value: Any) -> str:
    """A YAML scalar as text: booleans as ``true``/``false``, as a bank's file would hold them."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_mapping(text: str, *, name: str = "<mapping>") -> ColumnMapping:
    """Parse and validate mapping YAML ``text``; errors name the line (``name`` is the file)."""
    data, lines = compose_with_lines(
        text, name, what="mapping file", error=MappingError, unique_keys=False
    )
    if not isinstance(data, dict):
        raise MappingError(
            f"The mapping file {name} must be a YAML mapping with 'table' and "
            f"'columns' keys, but it holds {type(data).__name__}."
        )
    try:
        mapping = ColumnMapping.model_validate(data)
    except PydanticValidationError as e:
        raise MappingError(
            f"The mapping file {name} is invalid: "
            + "; ".join(describe_error(err, lines) for err in e.errors()[:5])
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
