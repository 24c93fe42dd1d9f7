"""Compiling the conditions of a rule: comparisons, AND/OR/NOT, IS NULL, IN, BETWEEN and LIKE.

Each ``compile_*`` function takes the :class:`~qianmian.features.rule_compiler.RuleCompiler`
(for its operands and its error messages) and one sqlglot node, and returns a ``bool``
:class:`~qianmian.features.rule_nodes.CompiledNode` with SQL's three-valued logic: a NULL
operand makes a comparison NULL, and ``AND``/``OR`` are decided by a FALSE/TRUE on either side.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from functools import reduce
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlglot import exp

from qianmian.features.rule_nodes import CompiledNode, negate
from qianmian.features.rule_values import KIND_WORDS, is_known, text_is_known

if TYPE_CHECKING:
    from qianmian.features.rule_compiler import RuleCompiler

__all__ = [
    "COMPARISONS",
    "compile_between",
    "compile_comparison",
    "compile_connective",
    "compile_in",
    "compile_is_null",
    "compile_like",
    "compile_not",
]

COMPARISONS: dict[type, Callable[[Any, Any], Any]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
}


def compile_comparison(compiler: RuleCompiler, e: exp.Binary) -> CompiledNode:
    """``a = b``, ``a <> b``, ``a < b`` ...: both sides of one kind; NULL on either side gives NULL."""
    a, b = compiler.node(e.this), compiler.node(e.expression)
    op = COMPARISONS[type(e)]
    if "null" in (a.kind, b.kind):
        raise compiler.fail(
            f"'{e.sql()}' compares with NULL, which is never true; write "
            "'... IS NULL' or '... IS NOT NULL'"
        )
    if a.kind != b.kind:
        raise compiler.fail(
            f"'{e.sql()}' compares {a.label}, which is {KIND_WORDS[a.kind]}, "
            f"with {b.label}, which is {KIND_WORDS[b.kind]}"
        )
    if a.kind == "bool" and op not in (operator.eq, operator.ne):
        raise compiler.fail(f"'{e.sql()}' orders conditions; only = and <> apply to them")
    kind, fa, fb, ga, gb = a.kind, a.vec, b.vec, a.one, b.one

    def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
        x, y = fa(c), fb(c)
        known = is_known(kind, x) & is_known(kind, y)
        if kind == "bool":
            r = (x[0] & y[0]) | (x[1] & y[1])
            r = r if op is operator.eq else ~r
        elif kind == "str":
            r = op(np.where(text_is_known(x), x, ""), np.where(text_is_known(y), y, ""))
        else:
            with np.errstate(invalid="ignore"):
                r = op(x, y)
        return r & known, ~r & known

    if b.const:  # the usual 'feature > 10000': bind the constant (real-time speed)
        k = b.value

        def one(r: Mapping[str, Any]) -> Any:
            x = ga(r)
            return None if x is None else op(x, k)
    else:

        def one(r: Mapping[str, Any]) -> Any:
            x, y = ga(r), gb(r)
            return None if x is None or y is None else op(x, y)

    return CompiledNode("bool", vec, one, f"'{e.sql()}'")


def compile_connective(compiler: RuleCompiler, e: exp.Connector) -> CompiledNode:
    """``a AND b`` / ``a OR b`` in three-valued logic."""
    a, b = compiler.condition(e.this), compiler.condition(e.expression)
    fa, fb, ga, gb = a.vec, b.vec, a.one, b.one
    is_and = isinstance(e, exp.And)
    decisive = not is_and  # FALSE decides an AND, TRUE an OR, whatever the other side

    def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
        (at, af), (bt, bf) = fa(c), fb(c)
        return (at & bt, af | bf) if is_and else (at | bt, af & bf)

    def one(r: Mapping[str, Any]) -> Any:
        x = ga(r)
        if x is decisive:
            return decisive
        y = gb(r)
        if y is decisive:
            return decisive
        return None if x is None or y is None else not decisive

    return CompiledNode("bool", vec, one, f"'{e.sql()}'")


def compile_not(compiler: RuleCompiler, e: exp.Not) -> CompiledNode:
    """``NOT a``: NULL stays NULL."""
    return negate(compiler.condition(e.this), f"'{e.sql()}'")


def compile_is_null(compiler: RuleCompiler, e: exp.Is) -> CompiledNode:
    """``a IS NULL`` (``IS NOT NULL`` arrives as ``NOT (a IS NULL)``): never NULL itself."""
    if not isinstance(e.expression, exp.Null):
        raise compiler.fail(f"'{e.sql()}': IS only tests for NULL (IS NULL, IS NOT NULL)")
    n = compiler.node(e.this)
    kind, f, g = n.kind, n.vec, n.one

    def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
        known = is_known(kind, f(c))
        return ~known, known

    return CompiledNode("bool", vec, lambda r: g(r) is None, f"'{e.sql()}'")


def compile_in(compiler: RuleCompiler, e: exp.In) -> CompiledNode:
    """``a IN (literal, ...)`` for a number or text ``a``."""
    if e.args.get("query") or e.args.get("unnest") or e.args.get("field"):
        raise compiler.fail(f"'{e.sql()}': IN takes a list of values, like IN (1, 2)")
    a = compiler.typed(e.this, "num", "str", where=f"'{e.sql()}'")
    items = [compiler.node(x) for x in e.expressions]
    for item in items:
        if not item.const or item.kind == "null":
            raise compiler.fail(
                f"'{e.sql()}': every IN value must be a number or text literal, not {item.label}"
            )
        if item.kind != a.kind:
            raise compiler.fail(
                f"'{e.sql()}' looks for {item.label} in {a.label}, which is {KIND_WORDS[a.kind]}"
            )
    values, f, g, kind = [i.value for i in items], a.vec, a.one, a.kind
    valueset = frozenset(values)

    def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
        x = f(c)
        known = is_known(kind, x)
        hit = (
            np.isin(x, values)
            if kind == "num"
            else reduce(operator.or_, (np.equal(x, v) for v in values))
        )
        return hit & known, ~hit & known

    return CompiledNode(
        "bool", vec, lambda r: None if (v := g(r)) is None else v in valueset, f"'{e.sql()}'"
    )


def compile_between(compiler: RuleCompiler, e: exp.Between) -> CompiledNode:
    """``a BETWEEN low AND high``, compiled as ``a >= low AND a <= high``."""
    if e.args.get("symmetric"):
        raise compiler.fail(f"'{e.sql()}': write BETWEEN low AND high, without SYMMETRIC")
    low = exp.GTE(this=e.this.copy(), expression=e.args["low"].copy())
    high = exp.LTE(this=e.this.copy(), expression=e.args["high"].copy())
    return compiler.node(exp.And(this=low, expression=high))


def compile_like(compiler: RuleCompiler, e: exp.Like) -> CompiledNode:
    """``a [NOT] LIKE 'pattern'`` with ``%`` and ``_``, matching the whole text."""
    a = compiler.typed(e.this, "str", where=f"'{e.sql()}'")
    pattern = e.expression
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        raise compiler.fail(f"'{e.sql()}': the LIKE pattern must be a text literal")
    parts = {"%": ".*", "_": "."}
    rx = re.compile("".join(parts.get(ch, re.escape(ch)) for ch in pattern.this), re.DOTALL)
    f, g = a.vec, a.one

    def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
        x = f(c)
        known = text_is_known(x)
        hit: Any
        if isinstance(x, np.ndarray):
            hit = np.fromiter(
                (s is not None and rx.fullmatch(s) is not None for s in x), bool, len(x)
            )
        else:
            hit = np.bool_(x is not None and rx.fullmatch(x) is not None)
        return hit & known, ~hit & known

    node = CompiledNode(
        "bool",
        vec,
        lambda r: None if (v := g(r)) is None else rx.fullmatch(v) is not None,
        f"'{e.sql()}'",
    )
    return negate(node, node.label) if e.args.get("negate") else node
