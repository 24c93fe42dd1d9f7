"""A compiled piece of a rule: its kind and one closure per evaluation mode.

Every part of a rule, from a literal to the whole condition, compiles to a :class:`CompiledNode`
holding two closures: ``vec`` evaluates whole columns at once (numpy, no Python loop per row) and
``one`` evaluates one customer's values (plain Python, for real-time calls). Both follow SQL's
NULL semantics; see :mod:`qianmian.features.rule_values` for how NULL is held in each mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CompiledNode", "literal", "negate"]


@dataclass
class CompiledNode:
    """A compiled expression: its kind and one closure per evaluation mode."""

    kind: str  # num, str, bool or null
    vec: Callable[[Mapping[str, Any]], Any]  # whole columns → array (bool kind: (true, false))
    one: Callable[[Mapping[str, Any]], Any]  # one customer's values → value or None
    label: str
    const: bool = False
    value: Any = None


def literal(kind: str, value: Any, label: str) -> CompiledNode:
    """A constant of ``kind``; ``label`` names it in error messages."""
    vec_value = (np.bool_(value), np.bool_(not value)) if kind == "bool" else value
    vec_value = np.nan if kind == "null" else vec_value
    return CompiledNode(kind, lambda c: vec_value, lambda r: value, label, True, value)


def negate(n: CompiledNode, label: str) -> CompiledNode:
    """``NOT n`` for a condition ``n``: NULL stays NULL."""
    f, g = n.vec, n.one

    def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
        t, fl = f(c)
        return fl, t

    return CompiledNode("bool", vec, lambda r: None if (v := g(r)) is None else not v, label)
