"""A small evaluator for the catalogue's SQL fragments, applied to one event or one vector.

The online store must decide, for a single event, which features it counts towards (the
``where`` condition) and with what value (``value``), and must recompute derived features from
one customer's vector. Those fragments are DuckDB SQL; :func:`compile_sql` parses one with
sqlglot once and turns it into a Python function of a mapping (column → value), with SQL's
three-valued logic: a NULL operand makes a comparison NULL, and a NULL condition counts as false.

Only what the catalogue uses (and a little more) is supported: columns, literals, ``= <> < <= >
>=``, ``AND OR NOT``, ``IN``, ``LIKE``, ``BETWEEN``, ``IS [NOT] NULL``, ``CASE``, ``+ - * / %``,
``NULLIF``, ``COALESCE``, ``CAST`` to a date, number or text, ``hour``/``isodow``/``dayofweek``/
``month``/``year``/``day`` of a timestamp, typed literals (``TIMESTAMP '...'``) and
``INTERVAL n DAY``. Anything else is a :class:`~qianmian.errors.SchemaError` naming the
construct, raised when the fragment is compiled, never when an event arrives.

>>> is_dining = compile_sql("category = '餐饮'")
>>> is_dining({"category": "餐饮"}), is_dining({"category": None})
(True, None)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp

from qianmian.errors import SchemaError

__all__ = ["Evaluator", "column_names", "compile_sql"]

Evaluator = Callable[[Mapping[str, Any]], Any]

_COMPARE: dict[type[exp.Expr], Callable[[Any, Any], Any]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
}
_ARITHMETIC: dict[type[exp.Expr], Callable[[Any, Any], Any]] = {
    exp.Add: operator.add,
    exp.Sub: operator.sub,
    exp.Mul: operator.mul,
    exp.Div: lambda a, b: None if b == 0 else a / b,  # '/' is float division in DuckDB
    exp.Mod: lambda a, b: None if b == 0 else a % b,
}
_PARTS: dict[type[exp.Expr], Callable[[Any], int]] = {
    exp.Hour: lambda t: t.hour,
    exp.DayOfWeekIso: lambda t: t.isoweekday(),
    exp.DayOfWeek: lambda t: t.isoweekday() % 7,  # DuckDB dayofweek: Sunday = 0
    exp.Month: lambda t: t.month,
    exp.Year: lambda t: t.year,
    exp.Day: lambda t: t.day,
}
_INTERVAL_UNITS = {"DAY": 1.0, "HOUR": 1 / 24, "MINUTE": 1 / 1440, "WEEK": 7.0}
_DATE_TYPES = {exp.DataType.Type.DATE}
_TIMESTAMP_TYPES = {
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPNTZ,
    exp.DataType.Type.DATETIME,
}
_TEXT_TYPES = {exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT}


@lru_cache(maxsize=1024)
def compile_sql(sql: str) -> Evaluator:
    """A function evaluating the SQL expression ``sql`` against a mapping of column values.

    Columns missing from the mapping are NULL (``None``).
    """
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise SchemaError(f"The SQL expression {sql!r} does not parse: {e}.") from e
    return _compile(tree, sql)


def column_names(sql: str) -> set[str]:
    """Names of the columns ``sql`` refers to."""
    return {c.name for c in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Column)}


def _compile(node: exp.Expr, sql: str) -> Evaluator:
    sub = _compile
    if isinstance(node, exp.Paren):
        return sub(node.this, sql)
    if isinstance(node, exp.Column):
        name = node.name
        return lambda env: env.get(name)
    if isinstance(node, exp.Literal):
        value = _literal(node)
        return lambda env: value
    if isinstance(node, exp.Boolean):
        flag = bool(node.this)
        return lambda env: flag
    if isinstance(node, exp.Null):
        return lambda env: None
    if type(node) in _COMPARE:
        return _binary(_COMPARE[type(node)], sub(node.this, sql), sub(node.expression, sql))
    if type(node) in _ARITHMETIC:
        return _binary(_ARITHMETIC[type(node)], sub(node.this, sql), sub(node.expression, sql))
    if isinstance(node, exp.Neg):
        inner = sub(node.this, sql)
        return lambda env: None if (v := inner(env)) is None else -v
    if isinstance(node, exp.And):
        return _and(sub(node.this, sql), sub(node.expression, sql))
    if isinstance(node, exp.Or):
        return _or(sub(node.this, sql), sub(node.expression, sql))
    if isinstance(node, exp.Not):
        inner = sub(node.this, sql)
        return lambda env: None if (v := inner(env)) is None else not v
    if isinstance(node, exp.Is):
        if not isinstance(node.expression, exp.Null):
            raise _unsupported("IS other than IS NULL", sql)
        inner = sub(node.this, sql)
        return lambda env: inner(env) is None
    if isinstance(node, exp.In):
        return _in(node, sql)
    if isinstance(node, exp.Like):
        return _like(node, sql)
    if isinstance(node, exp.Between):
        low, high, inner = (
            sub(node.args["low"], sql),
            sub(node.args["high"], sql),
            sub(node.this, sql),
        )
        return _and(_binary(operator.ge, inner, low), _binary(operator.le, inner, high))
    if isinstance(node, exp.Case):
        return _case(node, sql)
    if isinstance(node, exp.Nullif):
        a, b = sub(node.this, sql), sub(node.expression, sql)
        return lambda env: None if (v := a(env)) is not None and v == b(env) else v
    if isinstance(node, exp.Coalesce):
        parts = [sub(node.this, sql), *(sub(e, sql) for e in node.expressions)]
        return lambda env: next((v for p in parts if (v := p(env)) is not None), None)
    if isinstance(node, exp.Cast):
        return _cast(node, sql)
    if type(node) in _PARTS:
        part, inner = _PARTS[type(node)], sub(node.this, sql)
        return lambda env: None if (t := inner(env)) is None else part(t)
    if isinstance(node, exp.Interval):
        return _interval(node, sql)
    raise _unsupported(type(node).__name__, sql)


def _unsupported(what: str, sql: str) -> SchemaError:
    return SchemaError(
        f"The online feature store cannot evaluate {what} in {sql!r}; rewrite the definition "
        "with the constructs listed in qianmian.features.online.expressions."
    )


def _literal(node: exp.Literal) -> Any:
    text = str(node.this)
    if node.is_string:
        return text
    try:
        return int(text)
    except ValueError:
        return float(text)


def _binary(op: Callable[[Any, Any], Any], a: Evaluator, b: Evaluator) -> Evaluator:
    def run(env: Mapping[str, Any]) -> Any:
        x = a(env)
        if x is None:
            return None
        y = b(env)
        return None if y is None else op(x, y)

    return run


def _and(a: Evaluator, b: Evaluator) -> Evaluator:
    def run(env: Mapping[str, Any]) -> Any:
        x = a(env)
        if x is False:
            return False
        y = b(env)
        if y is False:
            return False
        return None if x is None or y is None else True

    return run


def _or(a: Evaluator, b: Evaluator) -> Evaluator:
    def run(env: Mapping[str, Any]) -> Any:
        x = a(env)
        if x is True:
            return True
        y = b(env)
        if y is True:
            return True
        return None if x is None or y is None else False

    return run


def _in(node: exp.In, sql: str) -> Evaluator:
    if node.args.get("query") is not None or not node.expressions:
        raise _unsupported("IN over a subquery", sql)
    inner = _compile(node.this, sql)
    if all(isinstance(e, exp.Literal) for e in node.expressions):
        options = frozenset(_literal(e) for e in node.expressions)
        return lambda env: None if (v := inner(env)) is None else v in options
    parts = [_compile(e, sql) for e in node.expressions]
    return lambda env: None if (v := inner(env)) is None else any(v == p(env) for p in parts)


def _like(node: exp.Like, sql: str) -> Evaluator:
    if not isinstance(node.expression, exp.Literal):
        raise _unsupported("LIKE with a pattern that is not a literal", sql)
    pattern = "".join(
        ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(node.expression.this)
    )
    match = re.compile(pattern, re.DOTALL).fullmatch
    inner = _compile(node.this, sql)
    return lambda env: None if (v := inner(env)) is None else match(str(v)) is not None


def _case(node: exp.Case, sql: str) -> Evaluator:
    if node.this is not None:
        raise _unsupported("CASE <operand> WHEN (write CASE WHEN <condition>)", sql)
    branches = [(_compile(b.this, sql), _compile(b.args["true"], sql)) for b in node.args["ifs"]]
    default = node.args.get("default")
    otherwise = _compile(default, sql) if default is not None else (lambda env: None)

    def run(env: Mapping[str, Any]) -> Any:
        for condition, result in branches:
            if condition(env) is True:
                return result(env)
        return otherwise(env)

    return run


def _cast(node: exp.Cast, sql: str) -> Evaluator:
    kind = node.to.this
    inner = _compile(node.this, sql)
    convert: Callable[[Any], Any]
    if kind in _DATE_TYPES:
        convert = _to_date
    elif kind in _TIMESTAMP_TYPES:
        convert = _to_timestamp
    elif kind in exp.DataType.INTEGER_TYPES:
        convert = lambda v: round(v) if isinstance(v, float) else int(v)  # noqa: E731
    elif kind in exp.DataType.REAL_TYPES:
        convert = float
    elif kind in _TEXT_TYPES:
        convert = str
    elif kind == exp.DataType.Type.BOOLEAN:
        convert = bool
    else:
        raise _unsupported(f"CAST to {kind.name}", sql)
    if isinstance(node.this, exp.Literal):  # a typed literal: convert once
        value = convert(_literal(node.this))
        return lambda env: value
    return lambda env: None if (v := inner(env)) is None else convert(v)


def _to_date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def _to_timestamp(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day)
    return datetime.fromisoformat(str(v))


def _interval(node: exp.Interval, sql: str) -> Evaluator:
    unit = node.args.get("unit")
    unit_name = (unit.name if unit is not None else "").upper().rstrip("S")
    if unit_name not in _INTERVAL_UNITS or not isinstance(node.this, exp.Literal):
        raise _unsupported(f"INTERVAL {node.sql()}", sql)
    delta = timedelta(days=float(str(node.this.this)) * _INTERVAL_UNITS[unit_name])
    return lambda env: delta
