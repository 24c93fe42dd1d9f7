"""YAML read with the line of every key, so that errors in a configuration file name the line.

Configuration files (import mappings, the offer catalogue) are validated with pydantic, whose
errors carry a location such as ``("offers", 3, "risk_level")``. :func:`compose_with_lines`
reads the text once into Python values and a map from each key path to its 1-based line;
:func:`describe_error` turns a pydantic error into ``"line 42, offers[3].risk_level: ..."``.

The loader reads YAML 1.2 scalars where YAML 1.1 surprises people: only ``true``/``false``
are booleans (``yes``, ``no``, ``on``, ``off``, ``Y``, ``N`` stay text) and ``21:00`` is text,
not the base-60 number 1260. Mapping keys are kept as written, so ``1`` and ``true`` are two
different keys.

>>> data, lines = compose_with_lines("offers:\\n  - id: A\\n    quiet: 21:00\\n", "x.yaml")
>>> data["offers"][0]["quiet"], lines[("offers", 0, "quiet")]
('21:00', 3)
>>> loc_text(("offers", 3, "risk_level"))
'offers[3].risk_level'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from qianmian.errors import ConfigError, QianmianError

__all__ = [
    "KeyPath",
    "Yaml12Loader",
    "compose_with_lines",
    "describe_error",
    "duplicate_key",
    "error_text",
    "key_lines",
    "loc_text",
    "nearest_path",
]

KeyPath = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys as text, sequence positions as ints."""


class Yaml12Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 booleans and no base-60 numbers; keys kept as written."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        return {
            key.value
            if isinstance(key, yaml.ScalarNode)
            else self.construct_object(key, deep): self.construct_object(value, deep)
            for key, value in node.value
        }


_DROPPED_TAGS = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# PyYAML's own int and float patterns, without the YAML 1.1 base-60 forms (``21:00`` → 1260).
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def compose_with_lines(
    text: str,
    name: str,
    *,
    what: str = "YAML file",
    error: type[QianmianError] = ConfigError,
    unique_keys: bool = True,
) -> tuple[Any, dict[KeyPath, int]]:
    """Read YAML ``text`` into Python values and the line of every key and sequence item.

    Parameters
    ----------
    text : str
        The YAML document.
    name : str
        The file's name, for messages.
    what : str
        What the file is ("mapping file", "offer catalogue"), for messages.
    error : type
        The :class:`~qianmian.errors.QianmianError` subclass raised for a file that does not
        parse (or sets a key twice).
    unique_keys : bool
        Refuse a mapping that sets the same key twice (YAML itself keeps the last silently).

    Returns
    -------
    (data, lines)
        The document's value (None for an empty one) and :func:`key_lines` of it.
    """
    loader = Yaml12Loader(text)  # a SafeLoader subclass: no arbitrary objects
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise error(
            f"The {what} {name} is not valid YAML{where}: {problem}. "
            "Check the indentation and quote values containing ':' or '#'."
        ) from e
    finally:
        loader.dispose()
    if unique_keys and (twice := duplicate_key(node)) is not None:
        path, first, second = twice
        raise error(
            f"{name}, line {second}, {loc_text(path)}: the key is already set at line {first}; "
            "give each key once."
        )
    return data, key_lines(node)


def key_lines(node: yaml.Node | None) -> dict[KeyPath, int]:
    """The 1-based line of every mapping key and sequence item under ``node``, by key path.

    >>> key_lines(yaml.compose("a:\\n  - 1\\n  - b: 2\\n"))
    {('a',): 1, ('a', 0): 2, ('a', 1): 3, ('a', 1, 'b'): 3}
    """
    lines: dict[KeyPath, int] = {}
    _walk(node, (), lines)
    return lines


def _walk(node: yaml.Node | None, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    """Record the lines under ``node`` (at ``path``) into ``lines``."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[(*path, str(key.value))] = key.start_mark.line + 1
            _walk(value, (*path, str(key.value)), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), lines)


def duplicate_key(node: yaml.Node | None, path: KeyPath = ()) -> tuple[KeyPath, int, int] | None:
    """The first key set twice in one mapping: (its path, first line, second line), or None."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if str(key.value) in seen:
                return (*path, str(key.value)), seen[str(key.value)], line
            seen[str(key.value)] = line
            if (found := duplicate_key(value, (*path, str(key.value)))) is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            if (found := duplicate_key(item, (*path, i))) is not None:
                return found
    return None


def nearest_path(loc: Sequence[Any], known: Mapping[KeyPath, Any]) -> KeyPath:
    """The longest path along ``loc`` that ``known`` holds (pydantic's own parts skipped).

    >>> nearest_path(("offers", 0, "treatments", 2), {("offers",): 1, ("offers", 0): 2})
    ('offers', 0)
    """
    path: KeyPath = ()
    for part in loc:
        if (*path, part) in known:
            path = (*path, part)
    return path


def loc_text(loc: Sequence[Any]) -> str:
    """A location as people write it: ``offers[3].risk_level`` ('top level' when empty)."""
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for an error in a dict key: the key is named
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def error_text(err: Mapping[str, Any]) -> str:
    """A pydantic error's message without pydantic's prefixes."""
    if err["type"] == "extra_forbidden":
        return "is not a known key"
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def describe_error(err: Mapping[str, Any], lines: Mapping[KeyPath, int]) -> str:
    """``"line 7, columns.tier: message"`` for one pydantic error (no line if none is known)."""
    path = nearest_path(err["loc"], lines)
    at = f"line {lines[path]}, " if path else ""
    return f"{at}{loc_text(err['loc'])}: {error_text(err)}"
