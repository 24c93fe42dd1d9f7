"""A small, safe rule language: conditions over customer features, written like SQL.

A rule is one SQL boolean expression, e.g. ``spend_90d / 3 > 10000 AND city_tier IN ('一线',
'新一线')``. It is parsed with sqlglot (DuckDB dialect), checked against a whitelist and the
known fields, and compiled twice: to numpy closures (no ``eval``/``exec``) and back to SQL.

Allowed: ``AND OR NOT``, ``= <> != < <= > >=``, ``+ - * /``, parentheses, number, text,
``TRUE``/``FALSE`` literals, ``IN (literals)``, ``BETWEEN``, ``IS [NOT] NULL``, ``LIKE`` with a
literal pattern, ``COALESCE``, ``ABS``, ``LEAST``, ``GREATEST`` and ``CASE WHEN``. Anything else
(sub-queries, other functions, ``*``, ``;``) is a :class:`RuleError`.

NULL semantics follow SQL: a missing value (``None``, ``NaN``, ``pd.NA``) makes a comparison
unknown, ``AND``/``OR``/``NOT`` use three-valued logic, and an unknown result counts as
``False`` at the end (like a ``WHERE`` clause). ``x / 0`` is NULL in Python and in the SQL
from :meth:`Rule.to_sql` (written ``x / NULLIF(0, 0)``), whatever the engine's own habit.
``LEAST``/``GREATEST`` skip NULLs (as DuckDB, Spark and PostgreSQL do).
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, cast

import numpy as np
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from qianmian.errors import SchemaError, ValidationError

__all__ = ["ALLOWED_FUNCTIONS", "Rule", "RuleError", "parse_rule"]

ALLOWED_FUNCTIONS = ("ABS", "COALESCE", "GREATEST", "LEAST")
_MAX_CHARS = 4_000  # deeper nesting than any sane rule; keeps recursion bounded
_KINDS = {"float": "num", "int": "num", "bool": "bool", "string": "str"}
_KIND_WORDS = {"num": "a number", "str": "text", "bool": "true/false", "null": "NULL"}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
}


class RuleError(SchemaError):
    """A rule does not parse, uses something outside the whitelist, or mixes types.

    A :class:`~qianmian.errors.SchemaError` (so also a ``ValueError``): a rule is a definition
    over the feature schema. An unknown field raises it too.
    """


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


# ---- reading one input value or column, by kind ------------------------------------------------
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


def _array(v: Any) -> np.ndarray | None:
    """``v`` as a 1-d numpy array, or None when it is a single value."""
    if isinstance(v, np.ndarray):
        return v if v.ndim else None
    if hasattr(v, "to_numpy"):  # pandas Series, pyarrow (Chunked)Array
        return np.asarray(v.to_numpy())
    if isinstance(v, list | tuple):
        return np.asarray(v, dtype=object)
    return None


def _vec_num(v: Any, name: str) -> Any:
    arr = _array(v)
    if arr is None:
        one = _one_num(v.item() if isinstance(v, np.ndarray) else v, name)
        return np.nan if one is None else one
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64, copy=False)
    return np.fromiter(
        (np.nan if (x := _one_num(e, name)) is None else x for e in arr), np.float64, len(arr)
    )


def _vec_str(v: Any, name: str) -> Any:
    arr = _array(v)
    if arr is None:
        return _one_str(v.item() if isinstance(v, np.ndarray) else v, name)
    if arr.dtype.kind == "U":
        return arr.astype(object)
    return np.fromiter((_one_str(e, name) for e in arr), object, len(arr))


def _vec_bool(v: Any, name: str) -> tuple[Any, Any]:
    arr = _array(v)
    if arr is None:
        one = _one_bool(v.item() if isinstance(v, np.ndarray) else v, name)
        return np.bool_(one is True), np.bool_(one is False)
    if arr.dtype.kind == "b":
        return arr, ~arr
    vals = np.fromiter((_one_bool(e, name) for e in arr), object, len(arr))
    return np.equal(vals, True).astype(bool), np.equal(vals, False).astype(bool)


def _str_known(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        return np.not_equal(a, None)  # type: ignore[call-overload]  # elementwise "is not None"
    return np.bool_(a is not None)


def _known(kind: str, a: Any) -> Any:
    if kind == "num":
        return ~np.isnan(a)
    if kind == "str":
        return _str_known(a)
    return a[0] | a[1]


_READ = {"num": (_vec_num, _one_num), "str": (_vec_str, _one_str), "bool": (_vec_bool, _one_bool)}
_NULLS: dict[str, Any] = {
    "num": np.nan,
    "str": None,
    "bool": (np.False_, np.False_),
    "null": np.nan,
}


@dataclass
class _Node:
    """A compiled expression: its kind and one closure per evaluation mode."""

    kind: str  # num, str, bool or null
    vec: Callable[[Mapping[str, Any]], Any]  # whole columns → array (bool kind: (true, false))
    one: Callable[[Mapping[str, Any]], Any]  # one customer's values → value or None
    label: str
    const: bool = False
    value: Any = None


def _literal(kind: str, value: Any, label: str) -> _Node:
    vec_value = (np.bool_(value), np.bool_(not value)) if kind == "bool" else value
    vec_value = np.nan if kind == "null" else vec_value
    return _Node(kind, lambda c: vec_value, lambda r: value, label, True, value)


class _Compiler:
    """Turns a validated sqlglot tree into a :class:`_Node`, checking each step."""

    def __init__(self, text: str, fields: Mapping[str, str]) -> None:
        self.text, self.fields, self.used = text, fields, set[str]()

    def fail(self, reason: str) -> RuleError:
        return RuleError(f"The rule '{self.text}' is not valid: {reason}.")

    def node(self, e: exp.Expression) -> _Node:
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

    def typed(self, e: exp.Expression, *kinds: str, where: str) -> _Node:
        n = self.node(e)
        if n.kind not in kinds:
            want = " or ".join(_KIND_WORDS[k] for k in kinds)
            raise self.fail(f"{where} needs {want}, but {n.label} is {_KIND_WORDS[n.kind]}")
        return n

    def condition(self, e: exp.Expression) -> _Node:
        n = self.node(e)
        if n.kind == "null":
            raise self.fail("NULL alone is not a condition")
        if n.kind != "bool":
            example = f"{e.sql()} > 0" if n.kind == "num" else f"{e.sql()} = '...'"
            raise self.fail(
                f"{n.label} is {_KIND_WORDS[n.kind]}, not a condition; compare it, e.g. '{example}'"
            )
        return n

    # ---- leaves -----------------------------------------------------------------------------
    def _column(self, e: exp.Column) -> _Node:
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
        vec_read, one_read = _READ[_KINDS[ftype]]
        return _Node(
            _KINDS[ftype],
            lambda c: vec_read(c[name], name),
            lambda r: one_read(r[name], name),
            f"feature '{name}' ({ftype})",
        )

    def _literal(self, e: exp.Literal) -> _Node:
        if e.is_string:
            return _literal("str", e.this, f"the text '{e.this}'")
        return _literal("num", float(e.this), f"the number {e.this}")

    def _boolean(self, e: exp.Boolean) -> _Node:
        return _literal("bool", bool(e.this), e.sql())

    def _null(self, e: exp.Null) -> _Node:
        return _literal("null", None, "NULL")

    def _paren(self, e: exp.Paren) -> _Node:
        return self.node(e.this)

    # ---- numbers ----------------------------------------------------------------------------
    def _neg(self, e: exp.Neg) -> _Node:
        n = self.typed(e.this, "num", where=f"'{e.sql()}'")
        if n.const:
            return _literal("num", -n.value, f"the number -{n.value}")
        f, g = n.vec, n.one
        return _Node(
            "num", lambda c: -f(c), lambda r: None if (v := g(r)) is None else -v, f"'{e.sql()}'"
        )

    def _arithmetic(self, e: exp.Binary, op: Callable[[Any, Any], Any]) -> _Node:
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

        return _Node("num", vec, one, f"'{e.sql()}'")

    def _add(self, e: exp.Add) -> _Node:
        return self._arithmetic(e, operator.add)

    def _sub(self, e: exp.Sub) -> _Node:
        return self._arithmetic(e, operator.sub)

    def _mul(self, e: exp.Mul) -> _Node:
        return self._arithmetic(e, operator.mul)

    def _div(self, e: exp.Div) -> _Node:
        return self._arithmetic(e, operator.truediv)

    def _abs(self, e: exp.Abs) -> _Node:
        n = self.typed(e.this, "num", where="ABS()")
        f, g = n.vec, n.one
        return _Node(
            "num",
            lambda c: np.abs(f(c)),
            lambda r: None if (v := g(r)) is None else abs(v),
            f"'{e.sql()}'",
        )

    def _extreme(self, e: exp.Func, vec_op: Any, one_op: Callable[..., Any]) -> _Node:
        where = f"{e.sql_name()}()"
        args = [self.typed(x, "num", where=where) for x in [e.this, *e.expressions]]
        vecs, ones = [a.vec for a in args], [a.one for a in args]

        def one(r: Mapping[str, Any]) -> Any:
            vals = [v for g in ones if (v := g(r)) is not None]
            return one_op(vals) if vals else None

        return _Node("num", lambda c: reduce(vec_op, (f(c) for f in vecs)), one, f"'{e.sql()}'")

    def _least(self, e: exp.Least) -> _Node:
        return self._extreme(e, np.fmin, min)

    def _greatest(self, e: exp.Greatest) -> _Node:
        return self._extreme(e, np.fmax, max)

    # ---- values of any kind -----------------------------------------------------------------
    def _same_kind(self, nodes: list[_Node], what: str) -> str:
        kinds = {n.kind for n in nodes} - {"null"}
        if len(kinds) > 1:
            labels = ", ".join(f"{n.label} ({_KIND_WORDS[n.kind]})" for n in nodes)
            raise self.fail(f"{what} mixes kinds of value: {labels}")
        if not kinds:
            raise self.fail(f"{what} gives only NULL")
        return kinds.pop()

    def _coalesce(self, e: exp.Coalesce) -> _Node:
        args = [self.node(x) for x in [e.this, *e.expressions]]
        kind = self._same_kind(args, "COALESCE()")
        vecs, ones = [a.vec for a in args if a.kind != "null"], [a.one for a in args]

        def pick(a: Any, b: Any) -> Any:
            known = _known(kind, a)
            if kind == "bool":
                return np.where(known, a[0], b[0]), np.where(known, a[1], b[1])
            return np.where(known, a, b)

        def one(r: Mapping[str, Any]) -> Any:
            return next((v for g in ones if (v := g(r)) is not None), None)

        return _Node(kind, lambda c: reduce(pick, (f(c) for f in vecs)), one, f"'{e.sql()}'")

    def _case(self, e: exp.Case) -> _Node:
        if e.this is not None:
            raise self.fail("write CASE WHEN <condition> THEN ..., not CASE <value> WHEN ...")
        conds = [self.condition(branch.this) for branch in e.args["ifs"]]
        values = [self.node(branch.args["true"]) for branch in e.args["ifs"]]
        default = self.node(e.args["default"]) if e.args.get("default") else None
        kind = self._same_kind([*values, *([default] if default else [])], "CASE")
        null = _NULLS[kind]
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

        return _Node(kind, vec, one, "CASE")

    # ---- conditions -------------------------------------------------------------------------
    def _compare(self, e: exp.Binary) -> _Node:
        a, b = self.node(e.this), self.node(e.expression)
        op = _COMPARE[type(e)]
        if "null" in (a.kind, b.kind):
            raise self.fail(
                f"'{e.sql()}' compares with NULL, which is never true; write "
                "'... IS NULL' or '... IS NOT NULL'"
            )
        if a.kind != b.kind:
            raise self.fail(
                f"'{e.sql()}' compares {a.label}, which is {_KIND_WORDS[a.kind]}, "
                f"with {b.label}, which is {_KIND_WORDS[b.kind]}"
            )
        if a.kind == "bool" and op not in (operator.eq, operator.ne):
            raise self.fail(f"'{e.sql()}' orders conditions; only = and <> apply to them")
        kind, fa, fb, ga, gb = a.kind, a.vec, b.vec, a.one, b.one

        def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
            x, y = fa(c), fb(c)
            known = _known(kind, x) & _known(kind, y)
            if kind == "bool":
                r = (x[0] & y[0]) | (x[1] & y[1])
                r = r if op is operator.eq else ~r
            elif kind == "str":
                r = op(np.where(_str_known(x), x, ""), np.where(_str_known(y), y, ""))
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

        return _Node("bool", vec, one, f"'{e.sql()}'")

    def _connective(self, e: exp.Connector) -> _Node:
        a, b = self.condition(e.this), self.condition(e.expression)
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

        return _Node("bool", vec, one, f"'{e.sql()}'")

    def _not(self, e: exp.Not) -> _Node:
        return _negate(self.condition(e.this), f"'{e.sql()}'")

    def _is(self, e: exp.Is) -> _Node:
        if not isinstance(e.expression, exp.Null):
            raise self.fail(f"'{e.sql()}': IS only tests for NULL (IS NULL, IS NOT NULL)")
        n = self.node(e.this)
        kind, f, g = n.kind, n.vec, n.one

        def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
            known = _known(kind, f(c))
            return ~known, known

        return _Node("bool", vec, lambda r: g(r) is None, f"'{e.sql()}'")

    def _in(self, e: exp.In) -> _Node:
        if e.args.get("query") or e.args.get("unnest") or e.args.get("field"):
            raise self.fail(f"'{e.sql()}': IN takes a list of values, like IN (1, 2)")
        a = self.typed(e.this, "num", "str", where=f"'{e.sql()}'")
        items = [self.node(x) for x in e.expressions]
        for item in items:
            if not item.const or item.kind == "null":
                raise self.fail(
                    f"'{e.sql()}': every IN value must be a number or text "
                    f"literal, not {item.label}"
                )
            if item.kind != a.kind:
                raise self.fail(
                    f"'{e.sql()}' looks for {item.label} in {a.label}, which is {_KIND_WORDS[a.kind]}"
                )
        values, f, g, kind = [i.value for i in items], a.vec, a.one, a.kind
        valueset = frozenset(values)

        def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
            x = f(c)
            known = _known(kind, x)
            hit = (
                np.isin(x, values)
                if kind == "num"
                else reduce(operator.or_, (np.equal(x, v) for v in values))
            )
            return hit & known, ~hit & known

        return _Node(
            "bool", vec, lambda r: None if (v := g(r)) is None else v in valueset, f"'{e.sql()}'"
        )

    def _between(self, e: exp.Between) -> _Node:
        if e.args.get("symmetric"):
            raise self.fail(f"'{e.sql()}': write BETWEEN low AND high, without SYMMETRIC")
        low = exp.GTE(this=e.this.copy(), expression=e.args["low"].copy())
        high = exp.LTE(this=e.this.copy(), expression=e.args["high"].copy())
        return self.node(exp.And(this=low, expression=high))

    def _like(self, e: exp.Like) -> _Node:
        a = self.typed(e.this, "str", where=f"'{e.sql()}'")
        pattern = e.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise self.fail(f"'{e.sql()}': the LIKE pattern must be a text literal")
        parts = {"%": ".*", "_": "."}
        rx = re.compile("".join(parts.get(ch, re.escape(ch)) for ch in pattern.this), re.DOTALL)
        f, g = a.vec, a.one

        def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
            x = f(c)
            known = _str_known(x)
            hit: Any
            if isinstance(x, np.ndarray):
                hit = np.fromiter(
                    (s is not None and rx.fullmatch(s) is not None for s in x), bool, len(x)
                )
            else:
                hit = np.bool_(x is not None and rx.fullmatch(x) is not None)
            return hit & known, ~hit & known

        node = _Node(
            "bool",
            vec,
            lambda r: None if (v := g(r)) is None else rx.fullmatch(v) is not None,
            f"'{e.sql()}'",
        )
        return _negate(node, node.label) if e.args.get("negate") else node


def _negate(n: _Node, label: str) -> _Node:
    f, g = n.vec, n.one

    def vec(c: Mapping[str, Any]) -> tuple[Any, Any]:
        t, fl = f(c)
        return fl, t

    return _Node("bool", vec, lambda r: None if (v := g(r)) is None else not v, label)


# The whitelist: exactly these node types may appear in a rule (anything else is refused).
_HANDLERS: dict[type[exp.Expression], Callable[[_Compiler, Any], _Node]] = {
    exp.Column: _Compiler._column,
    exp.Literal: _Compiler._literal,
    exp.Boolean: _Compiler._boolean,
    exp.Null: _Compiler._null,
    exp.Paren: _Compiler._paren,
    exp.Neg: _Compiler._neg,
    exp.Add: _Compiler._add,
    exp.Sub: _Compiler._sub,
    exp.Mul: _Compiler._mul,
    exp.Div: _Compiler._div,
    exp.Abs: _Compiler._abs,
    exp.Least: _Compiler._least,
    exp.Greatest: _Compiler._greatest,
    exp.Coalesce: _Compiler._coalesce,
    exp.Case: _Compiler._case,
    exp.And: _Compiler._connective,
    exp.Or: _Compiler._connective,
    exp.Not: _Compiler._not,
    exp.Is: _Compiler._is,
    exp.In: _Compiler._in,
    exp.Between: _Compiler._between,
    exp.Like: _Compiler._like,
    **{op: _Compiler._compare for op in _COMPARE},
}


def _null_safe_division(node: exp.Expression) -> exp.Expression:
    divisor = node.expression if isinstance(node, exp.Div) else None
    if divisor is not None and not (isinstance(divisor, exp.Literal) and float(divisor.this)):
        node.set("expression", exp.Nullif(this=node.expression, expression=exp.Literal.number(0)))
    return node


@dataclass(frozen=True, eq=False)
class Rule:
    """A validated condition over features, ready to evaluate in Python or as SQL.

    Build it with :func:`parse_rule`. ``fields_used`` lists the features it reads, sorted.
    """

    text: str
    fields_used: tuple[str, ...]
    _tree: exp.Expression = field(repr=False)
    _node: _Node = field(repr=False)

    def evaluate(self, columns: Mapping[str, Any]) -> np.ndarray | bool:
        """Evaluate the rule on whole columns or on one customer's values.

        Parameters
        ----------
        columns : mapping of str to array-like or scalar
            At least :attr:`fields_used`. Numpy arrays, pandas Series, pyarrow arrays or lists
            (all of one length ``n``) are evaluated vectorised; plain values as one customer.

        Returns
        -------
        numpy.ndarray of bool, shape (n,), or bool
            True where the condition holds; NULL (unknown) counts as False. An array whenever
            any value given is a column (even for a rule such as ``TRUE`` that reads none).

        Examples
        --------
        >>> rule = parse_rule("spend_90d / 3 > 10000 AND city_tier = '一线'")
        >>> rule.evaluate({"spend_90d": [36000.0, 9000.0], "city_tier": ["一线", "一线"]})
        array([ True, False])
        >>> rule.evaluate({"spend_90d": 36000.0, "city_tier": None})
        False
        """
        for name in self.fields_used:
            if name not in columns:
                raise SchemaError(self._missing(columns))
            if _array(columns[name]) is not None:
                return self.evaluate_many(columns)
        if not self.fields_used and any(_array(v) is not None for v in columns.values()):
            return self.evaluate_many(columns)
        return self.evaluate_one(columns)

    def evaluate_one(self, row: Mapping[str, Any]) -> bool:
        """One customer: ``row`` maps each field to one value (None or NaN when missing)."""
        try:
            return self._node.one(row) is True
        except KeyError:
            raise SchemaError(self._missing(row)) from None

    def evaluate_many(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Whole columns of one length: returns a bool array of that length (NULL → False)."""
        names = self.fields_used or tuple(columns)
        lengths = {
            n: len(a) for n in names if n in columns and (a := _array(columns[n])) is not None
        }
        if len(set(lengths.values())) > 1:
            sizes = ", ".join(f"{n} has {k:,}" for n, k in lengths.items())
            raise ValidationError(
                f"The columns given to the rule '{self.text}' differ in length: {sizes}."
            )
        try:
            true = np.asarray(self._node.vec(columns)[0], dtype=bool)
        except KeyError:
            raise SchemaError(self._missing(columns)) from None
        if true.ndim == 0:  # no column read: one answer for every row
            true = np.full(next(iter(lengths.values()), 1), bool(true))
        return true

    def to_sql(self, dialect: str = "duckdb", *, null_as_false: bool = True) -> str:
        """The rule as a SQL expression in ``dialect`` (any sqlglot dialect: duckdb, spark ...).

        Division is written ``x / NULLIF(y, 0)`` so every engine gives NULL for ``x / 0``; with
        ``null_as_false`` the whole condition is wrapped in ``COALESCE(..., FALSE)`` so that a
        selected column equals :meth:`evaluate` (a ``WHERE`` clause needs no wrapping).
        """
        tree = self._tree.copy().transform(_null_safe_division)
        if null_as_false:
            tree = exp.Coalesce(this=exp.Paren(this=tree), expressions=[exp.false()])
        return tree.sql(dialect=dialect)

    def _missing(self, columns: Mapping[str, Any]) -> str:
        missing = [f for f in self.fields_used if f not in columns]
        return (
            f"The rule '{self.text}' needs the feature(s) {', '.join(missing)}, which the "
            "input does not have."
        )


def parse_rule(text: str, fields: Mapping[str, Any] | None = None) -> Rule:
    """Parse, validate and compile one rule.

    Parameters
    ----------
    text : str
        A SQL boolean expression over feature names (DuckDB dialect).
    fields : mapping of str to type, optional
        The names a rule may use and their types (``float``, ``int``, ``bool``, ``string``, or
        an object with a ``.type`` such as a :class:`~qianmian.features.definition.FeatureDef`).
        Default: the feature catalogue.

    Returns
    -------
    Rule

    Raises
    ------
    RuleError
        The text does not parse, is not one condition, uses an unknown field (also a
        :class:`~qianmian.errors.SchemaError`), a construct outside the whitelist, or compares
        values of different kinds.

    Examples
    --------
    >>> parse_rule("risk_level <= 2 AND holds_wealth").fields_used
    ('holds_wealth', 'risk_level')
    """
    if fields is None:
        from qianmian.features.catalogue import FEATURES

        fields = FEATURES
    types = {name: cast(str, getattr(t, "type", t)) for name, t in fields.items()}
    for name, t in types.items():
        if t not in _KINDS:
            raise SchemaError(
                f"Field '{name}' has type '{t}'; a rule field must be one of {', '.join(_KINDS)}."
            )
    tree = _parse(text)
    compiler = _Compiler(text, types)
    node = compiler.condition(tree)
    return Rule(text, tuple(sorted(compiler.used)), tree, node)


def _parse(text: str) -> exp.Expression:
    def fail(reason: str) -> RuleError:
        return RuleError(f"The rule '{text}' is not valid: {reason}.")

    if not isinstance(text, str) or not text.strip():
        raise fail("it is empty; write a condition such as 'spend_90d > 0'")
    if len(text) > _MAX_CHARS:
        raise RuleError(
            f"The rule starting '{text[:60]}...' is {len(text):,} characters long; "
            f"a rule may have at most {_MAX_CHARS:,}."
        )
    try:
        tokens = sqlglot.Dialect.get_or_raise("duckdb").tokenize(text)
        if any(t.token_type == TokenType.SEMICOLON for t in tokens):
            raise fail("it contains ';' — a rule is one condition, not SQL statements")
        trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except SqlglotError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise fail(f"it does not parse ({first})") from e
    if len(trees) != 1:
        raise fail("it must be exactly one condition")
    return cast(exp.Expression, trees[0])
