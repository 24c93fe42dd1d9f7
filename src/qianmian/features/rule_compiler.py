"""Compiling a parsed rule: the whitelist of sqlglot nodes, type checks, and values.

:class:`RuleCompiler` walks a sqlglot tree once, refusing any node type not in the whitelist
(``_HANDLERS``) with a message saying why, checking the kind of every operand (number, text,
true/false) and building a :class:`~qianmian.features.rule_nodes.CompiledNode` for each step.
This module compiles the values — fields, literals, arithmetic, ``ABS``, ``LEAST``,
``GREATEST``, ``COALESCE`` and ``CASE``; :mod:`qianmian.features.rule_conditions` compiles the
conditions.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

import numpy as np
from sqlglot import exp

from qianmian.errors import RuleError
from qianmian.features.rule_conditions import (
    COMPARISONS,
    compile_between,
    compile_comparison,
    compile_connective,
    compile_in,
    compile_is_null,
    compile_like,
    compile_not,
)
from qianmian.features.rule_nodes import CompiledNode, literal
from qianmian.features.rule_values import (
    COLUMN_NULLS,
    FIELD_KINDS,
    KIND_WORDS,
    READERS,
    is_known,
)

__all__ = ["ALLOWED_FUNCTIONS", "RuleCompiler"]

ALLOWED_FUNCTIONS = ("ABS", "COALESCE", "GREATEST", "LEAST")


class RuleCompiler:
    """Turns a validated sqlglot tree into a :class:`CompiledNode`, checking each step."""

    def __init__(self, text: str, fields: Mapping[str, str]) -> None:
        self.text, self.fields, self.used = text, fields, set[str]()

    def fail(self, reason: str) -> RuleError:
        """The error for this rule, ``reason`` being the end of its sentence."""
        return RuleError(f"The rule '{self.text}' is not valid: {reason}.")

    def node(self, e: exp.Expression) -> CompiledNode:
        """Compile ``e`` if its node type is whitelisted, else refuse it saying why."""
        handler = _HANDLERS.get(type(e))
        if handler is None:
            raise self.fail(self._why_not(e))
        return handler(self, e)  # type: ignore[no-any-return]

    def _why_not(self, e: exp.Expression) -> str:
        if isinstance(e, exp.Subquery | exp.Query):
            return "sub-queries are not allowed"
        if isinstance(e, exp.Star):
            return "'*' is not allowed; name the features"
        if isinstance(e, exp.Func):
            name = e.name.upper() if isinstance(e, exp.Anonymous) else e.sql_name()
            return (
                f"the function {name}() is not allowed; the allowed functions are "
                f"{', '.join(ALLOWED_FUNCTIONS)}"
            )
        if isinstance(e, exp.Alias):
            return f"'{e.sql()}' is not one condition (is a word or operator missing?)"
        return f"'{e.sql()}' ({type(e).__name__}) is not allowed in a rule"

    def typed(self, e: exp.Expression, *kinds: str, where: str) -> CompiledNode:
        """Compile ``e``, which must give one of ``kinds``; ``where`` names its place."""
        n = self.node(e)
        if n.kind not in kinds:
            want = " or ".join(KIND_WORDS[k] for k in kinds)
            raise self.fail(f"{where} needs {want}, but {n.label} is {KIND_WORDS[n.kind]}")
        return n

    def condition(self, e: exp.Expression) -> CompiledNode:
        """Compile ``e``, which must be a condition (of kind ``bool``)."""
        n = self.node(e)
        if n.kind == "null":
            raise self.fail("NULL alone is not a condition")
        if n.kind != "bool":
            example = f"{e.sql()} > 0" if n.kind == "num" else f"{e.sql()} = '...'"
            raise self.fail(
                f"{n.label} is {KIND_WORDS[n.kind]}, not a condition; compare it, e.g. '{example}'"
            )
        return n

    # ---- leaves -----------------------------------------------------------------------------
    def _column(self, e: exp.Column) -> CompiledNode:
        if e.table:
            raise self.fail(f"'{e.sql()}' names a table; write the feature name alone")
        name = e.name
        if name not in self.fields:
            near = difflib.get_close_matches(name, self.fields, n=3)
            near += [f for f in self.fields if f == name.lower() and f not in near]
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise RuleError(f"The rule '{self.text}' uses an unknown field '{name}'.{hint}")
        self.used.add(name)
        ftype = self.fields[name]
        vec_read, one_read = READERS[FIELD_KINDS[ftype]]
        return CompiledNode(
            FIELD_KINDS[ftype],
            lambda c: vec_read(c[name], name),
            lambda r: one_read(r[name], name),
            f"feature '{name}' ({ftype})",
        )

    def _literal(self, e: exp.Literal) -> CompiledNode:
        if e.is_string:
            return literal("str", e.this, f"the text '{e.this}'")
        return literal("num", float(e.this), f"the number {e.this}")

    def _boolean(self, e: exp.Boolean) -> CompiledNode:
        return literal("bool", bool(e.this), e.sql())

    def _null(self, e: exp.Null) -> CompiledNode:
        return literal("null", None, "NULL")

    def _paren(self, e: exp.Paren) -> CompiledNode:
        return self.node(e.this)

    # ---- numbers ----------------------------------------------------------------------------
    def _neg(self, e: exp.Neg) -> CompiledNode:
        n = self.typed(e.this, "num", where=f"'{e.sql()}'")
        if n.const:
            return literal("num", -n.value, f"the number -{n.value}")
        f, g = n.vec, n.one
        return CompiledNode(
            "num", lambda c: -f(c), lambda r: None if (v := g(r)) is None else -v, f"'{e.sql()}'"
        )

    def _arithmetic(self, e: exp.Binary, op: Callable[[Any, Any], Any]) -> CompiledNode:
        a, b = (self.typed(x, "num", where=f"'{e.sql()}'") for x in (e.this, e.expression))
        fa, fb, ga, gb = a.vec, b.vec, a.one, b.one
        if op is operator.truediv:

            def vec(c: Mapping[str, Any]) -> Any:
                x, y = fa(c), fb(c)
                with np.errstate(all="ignore"):  # inf, NaN and x / 0 are handled as values
                    return np.where(y == 0, np.nan, np.divide(x, y))

            def one(r: Mapping[str, Any]) -> Any:
                x, y = ga(r), gb(r)
                return None if x is None or y is None or y == 0 else x / y
        else:

            def vec(c: Mapping[str, Any]) -> Any:
                with np.errstate(over="ignore", invalid="ignore"):  # overflow gives inf, as in SQL
                    return op(fa(c), fb(c))

            def one(r: Mapping[str, Any]) -> Any:
                x, y = ga(r), gb(r)
                return None if x is None or y is None else op(x, y)

        return CompiledNode("num", vec, one, f"'{e.sql()}'")

    def _add(self, e: exp.Add) -> CompiledNode:
        return self._arithmetic(e, operator.add)

    def _sub(self, e: exp.Sub) -> CompiledNode:
        return self._arithmetic(e, operator.sub)

    def _mul(self, e: exp.Mul) -> CompiledNode:
        return self._arithmetic(e, operator.mul)

    def _div(self, e: exp.Div) -> CompiledNode:
        return self._arithmetic(e, operator.truediv)

    def _abs(self, e: exp.Abs) -> CompiledNode:
        n = self.typed(e.this, "num", where="ABS()")
        f, g = n.vec, n.one
        return CompiledNode(
            "num",
            lambda c: np.abs(f(c)),
            lambda r: None if (v := g(r)) is None else abs(v),
            f"'{e.sql()}'",
        )

    def _extreme(self, e: exp.Func, vec_op: Any, one_op: Callable[..., Any]) -> CompiledNode:
        where = f"{e.sql_name()}()"
        args = [self.typed(x, "num", where=where) for x in [e.this, *e.expressions]]
        vecs, ones = [a.vec for a in args], [a.one for a in args]

        def one(r: Mapping[str, Any]) -> Any:
            vals = [v for g in ones if (v := g(r)) is not None]
            return one_op(vals) if vals else None

        return CompiledNode(
            "num", lambda c: reduce(vec_op, (f(c) for f in vecs)), one, f"'{e.sql()}'"
        )

    def _least(self, e: exp.Least) -> CompiledNode:
        return self._extreme(e, np.fmin, min)

    def _greatest(self, e: exp.Greatest) -> CompiledNode:
        return self._extreme(e, np.fmax, max)

    # ---- values of any kind -----------------------------------------------------------------
    def _same_kind(self, nodes: list[CompiledNode], what: str) -> str:
        kinds = {n.kind for n in nodes} - {"null"}
        if len(kinds) > 1:
            labels = ", ".join(f"{n.label} ({KIND_WORDS[n.kind]})" for n in nodes)
            raise self.fail(f"{what} mixes kinds of value: {labels}")
        if not kinds:
            raise self.fail(f"{what} gives only NULL")
        return kinds.pop()

    def _coalesce(self, e: exp.Coalesce) -> CompiledNode:
        args = [self.node(x) for x in [e.this, *e.expressions]]
        kind = self._same_kind(args, "COALESCE()")
        vecs, ones = [a.vec for a in args if a.kind != "null"], [a.one for a in args]

        def pick(a: Any, b: Any) -> Any:
            known = is_known(kind, a)
            if kind == "bool":
                return np.where(known, a[0], b[0]), np.where(known, a[1], b[1])
            return np.where(known, a, b)

        def one(r: Mapping[str, Any]) -> Any:
            return next((v for g in ones if (v := g(r)) is not None), None)

        return CompiledNode(kind, lambda c: reduce(pick, (f(c) for f in vecs)), one, f"'{e.sql()}'")

    def _case(self, e: exp.Case) -> CompiledNode:
        if e.this is not None:
            raise self.fail("write CASE WHEN <condition> THEN ..., not CASE <value> WHEN ...")
        conds = [self.condition(branch.this) for branch in e.args["ifs"]]
        values = [self.node(branch.args["true"]) for branch in e.args["ifs"]]
        default = self.node(e.args["default"]) if e.args.get("default") else None
        kind = self._same_kind([*values, *([default] if default else [])], "CASE")
        null = COLUMN_NULLS[kind]
        pairs = [
            (c.vec, v.vec if v.kind != "null" else (lambda _c: null))
            for c, v in zip(conds, values, strict=True)
        ]
        otherwise = default.vec if default and default.kind != "null" else (lambda _c: null)
        one_pairs = [(c.one, v.one) for c, v in zip(conds, values, strict=True)]
        one_default = default.one if default else (lambda _r: None)

        def vec(c: Mapping[str, Any]) -> Any:
            out = otherwise(c)
            for cond, val in reversed(pairs):  # the first true branch wins
                t, v = cond(c)[0], val(c)
                out = (
                    (np.where(t, v[0], out[0]), np.where(t, v[1], out[1]))
                    if kind == "bool"
                    else np.where(t, v, out)
                )
            return out

        def one(r: Mapping[str, Any]) -> Any:
            for cond, val in one_pairs:
                if cond(r) is True:
                    return val(r)
            return one_default(r)

        return CompiledNode(kind, vec, one, "CASE")


# The whitelist: exactly these node types may appear in a rule (anything else is refused).
# Values compile in RuleCompiler's methods above, conditions in rule_conditions' functions.
_HANDLERS: dict[type[exp.Expression], Callable[[RuleCompiler, Any], CompiledNode]] = {
    exp.Column: RuleCompiler._column,
    exp.Literal: RuleCompiler._literal,
    exp.Boolean: RuleCompiler._boolean,
    exp.Null: RuleCompiler._null,
    exp.Paren: RuleCompiler._paren,
    exp.Neg: RuleCompiler._neg,
    exp.Add: RuleCompiler._add,
    exp.Sub: RuleCompiler._sub,
    exp.Mul: RuleCompiler._mul,
    exp.Div: RuleCompiler._div,
    exp.Abs: RuleCompiler._abs,
    exp.Least: RuleCompiler._least,
    exp.Greatest: RuleCompiler._greatest,
    exp.Coalesce: RuleCompiler._coalesce,
    exp.Case: RuleCompiler._case,
    exp.And: compile_connective,
    exp.Or: compile_connective,
    exp.Not: compile_not,
    exp.Is: compile_is_null,
    exp.In: compile_in,
    exp.Between: compile_between,
    exp.Like: compile_like,
    **{op: compile_comparison for op in COMPARISONS},
}
