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
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

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
    _lines: dict[tuple[str, ...], int] = PrivateAttr(default_factory=dict)
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


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 booleans (``yes``, ``no``, ``Y``, ``N`` stay text) and keys kept
    as written, so that ``1`` and ``true`` are two different source values."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        return {
            key.value
            if isinstance(key, yaml.ScalarNode)
            else self.construct_object(key, deep): self.construct_object(value, deep)
            for key, value in node.value
        }


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(
        r"^(?:true|True|TRUE|false|"
        r"False|FALSE)$"
    ),
    list("tTfF"),
)


def parse_mapping(text: str, *, name: str = "<mapping>") -> ColumnMapping:
    """Parse and validate mapping YAML ``text``; errors name the line (``name`` is the file)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise MappingError(
            f"The mapping file {name} is not valid YAML{where}: {problem}. "
            "Check the indentation and quote values containing ':' or '#'."
        ) from e
    if not isinstance(data, dict):
        raise MappingError(
            f"The mapping file {name} must be a YAML mapping with 'table' and "
            f"'columns' keys, but it holds {type(data).__name__}."
        )
    lines: dict[tuple[str, ...], int] = {}
    _key_lines(node, (), lines)
    try:
        mapping = ColumnMapping.model_validate(data)
    except PydanticValidationError as e:
        raise MappingError(
            f"The mapping file {name} is invalid: "
            + "; ".join(_describe(err, lines) for err in e.errors()[:5])
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


def _key_lines(
    node: yaml.Node | None, path: tuple[str, ...], lines: dict[tuple[str, ...], int]
) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[(*path, str(key.value))] = key.start_mark.line + 1
            _key_lines(value, (*path, str(key.value)), lines)


def _describe(err: Any, lines: dict[tuple[str, ...], int]) -> str:
    loc = [str(p) for p in err["loc"]]
    path: tuple[str, ...] = ()
    for part in ("from" if p == "from_" else p for p in loc):
        if (*path, part) in lines:
            path = (*path, part)
    at = f"line {lines[path]}, " if path else ""
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "is not a known key"
    return f"{at}{'.'.join(loc) or 'top level'}: {message}"
