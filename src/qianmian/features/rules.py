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

This module parses and wraps a rule; the compiling lives beside it: ``rule_compiler`` (the
whitelist and the values), ``rule_conditions`` (the conditions), ``rule_nodes`` (the compiled
form) and ``rule_values`` (reading inputs by kind).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from qianmian.errors import RuleError, SchemaError, ValidationError
from qianmian.features.rule_compiler import ALLOWED_FUNCTIONS, RuleCompiler
from qianmian.features.rule_nodes import CompiledNode
from qianmian.features.rule_values import FIELD_KINDS, as_column

__all__ = ["ALLOWED_FUNCTIONS", "Rule", "RuleError", "parse_rule"]

_MAX_CHARS = 4_000  # deeper nesting than any sane rule; keeps recursion bounded


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
    _node: CompiledNode = field(repr=False)

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
            if as_column(columns[name]) is not None:
                return self.evaluate_many(columns)
        if not self.fields_used and any(as_column(v) is not None for v in columns.values()):
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
            n: len(a) for n in names if n in columns and (a := as_column(columns[n])) is not None
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
        if t not in FIELD_KINDS:
            raise SchemaError(
                f"Field '{name}' has type '{t}'; a rule field must be one of {', '.join(FIELD_KINDS)}."
            )
    tree = _parse(text)
    compiler = RuleCompiler(text, types)
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
