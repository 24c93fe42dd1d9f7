"""How one event moves a customer's feature vector, derived from the feature catalogue.

Nothing here names a feature: :class:`UpdatePlan` reads every catalogue feature over
``transactions`` or ``app_events`` (its ``agg``, ``value``, ``where`` and window) and every
``derived`` feature over them, for the columns a snapshot holds, and turns them into rules:

============================  ==========================================================
catalogue aggregate           online update for an event that meets ``where``
============================  ==========================================================
``sum``, ``count``            add the event's value (or 1) — exact
``max``, ``min``              keep the larger / smaller of the snapshot value and the event's
``avg``                       running mean over the snapshot's rows and the new ones; needs a
                              ``count`` of the same rows (same source, where and window) in
                              the snapshot, and a value that is never NULL
``days_since_last``           0 (the event happened "today")
``count_distinct``            add 1 per value not seen since the snapshot — exact when the
                              snapshot's as_of is a midnight and the value is the event's day
``last`` and anything else    left as in the snapshot (listed in :attr:`UpdatePlan.stale`)
``derived``                   recomputed from the updated vector when an input changed
============================  ==========================================================

An event becomes a list of :data:`Op` (``("add", field, 12.5)``, ``("addi", field, 1)``,
``("max", field, 3.0)``, ``("min", ...)``, ``("distinct", field, marker)``) that a backend
applies atomically to the customer's accumulators (:func:`apply_ops` in memory, a Lua script in
Redis); :meth:`UpdatePlan.apply` turns a snapshot vector plus accumulators into the current one.
``{as_of_ts}`` in a condition stands for the event's own time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlglot import exp, parse_one

from qianmian.data.schema import table as schema_table
from qianmian.errors import SchemaError
from qianmian.features.catalogue import FEATURES
from qianmian.features.compile import dependencies
from qianmian.features.definition import FeatureDef
from qianmian.features.online.expressions import Evaluator, compile_sql

__all__ = ["EVENT_SOURCES", "EventSource", "Op", "UpdatePlan", "apply_ops"]

logger = logging.getLogger(__name__)

EventSource = Literal["transactions", "app_events"]
EVENT_SOURCES: tuple[EventSource, ...] = ("transactions", "app_events")
Op = tuple[str, str, Any]
RuleKind = Literal["sum", "count", "max", "min", "mean", "last_seen", "distinct"]
_EPOCH = datetime(1970, 1, 1)
_PLACEHOLDERS = {
    "as_of_ts": "__as_of_ts",
    "as_of_date": "__as_of_date",
    "as_of_minus_1_month": "__as_of_minus_1_month",
}


@dataclass(frozen=True)
class _Rule:
    feature: str
    kind: RuleKind
    numeric_type: str
    value: Evaluator
    count_feature: str | None = None  # mean: the snapshot's count of the same rows


class UpdatePlan:
    """The update rules for a snapshot holding ``columns`` (catalogue features among them).

    >>> plan = UpdatePlan(["spend_90d", "spend_dining_90d", "share_dining_90d"])
    >>> plan.ops("transactions", {"ts": datetime(2026, 8, 1, 12), "amount": 50.0,
    ...                           "category": "餐饮"})
    [('add', 'spend_90d', 50.0), ('add', 'spend_dining_90d', 50.0)]
    >>> plan.apply({"spend_90d": 100.0, "spend_dining_90d": 0.0, "share_dining_90d": 0.0},
    ...            {"spend_90d": 50.0, "spend_dining_90d": 50.0})["share_dining_90d"]
    0.3333333333333333
    """

    def __init__(self, columns: Sequence[str]) -> None:
        loaded = set(columns)
        present = [n for n in FEATURES if n in loaded]
        self._groups: dict[str, list[tuple[Evaluator | None, list[_Rule]]]] = {
            s: [] for s in EVENT_SOURCES
        }
        self._fields: dict[str, _Rule] = {}
        stale: list[str] = []
        for name in present:
            f = FEATURES[name]
            if f.source not in EVENT_SOURCES:
                continue
            rule = _rule_for(f, present)
            if rule is None:
                stale.append(name)
                continue
            self._add_rule(f, rule)
        updated = {r.feature for r in self._fields.values()}
        derived, not_derivable = _derived_order(present, updated)
        self.updated: tuple[str, ...] = tuple(n for n in present if n in updated)
        self.derived: tuple[str, ...] = tuple(d for d, _, _ in derived)
        self.stale: tuple[str, ...] = tuple(stale + not_derivable)
        self._derived = derived

    def _add_rule(self, f: FeatureDef, rule: _Rule) -> None:
        where = None if f.where is None else compile_sql(f.where.format(**_PLACEHOLDERS))
        groups = self._groups[f.source]
        for existing_where, rules in groups:
            if existing_where is where:  # compile_sql caches: same text, same function
                rules.append(rule)
                break
        else:
            groups.append((where, [rule]))
        for fld in _fields_of(rule):
            self._fields[fld] = rule

    def ops(self, source: EventSource, event: Mapping[str, Any]) -> list[Op]:
        """The accumulator updates one event makes (``event`` holds ``ts`` as a datetime)."""
        env = dict(event)
        ts = env["ts"]
        env["__as_of_ts"] = ts
        env["__as_of_date"] = ts.date()
        out: list[Op] = []
        for where, rules in self._groups[source]:
            if where is not None and where(env) is not True:
                continue
            for rule in rules:
                v = rule.value(env)
                if v is None:
                    continue
                out.extend(_ops_for(rule, v, ts))
        return out

    def apply(self, vector: dict[str, Any], deltas: Mapping[str, Any]) -> dict[str, Any]:
        """Update ``vector`` (the snapshot's values) in place with a customer's accumulators."""
        rules = {self._fields[f] for f in deltas if f in self._fields}
        if not rules:
            return vector
        new = {r.feature: _updated_value(r, vector, deltas) for r in rules}
        vector.update(new)
        changed = set(new)
        for name, evaluate, deps in self._derived:
            if deps & changed:
                vector[name] = _cast(evaluate(vector), FEATURES[name].type)
                changed.add(name)
        return vector


def apply_ops(deltas: dict[str, Any], seen: set[str], ops: Sequence[Op]) -> None:
    """Apply ``ops`` to one customer's accumulators (the in-memory twin of the Lua script)."""
    for op, fld, arg in ops:
        if op in ("add", "addi"):
            deltas[fld] = deltas.get(fld, 0) + arg
        elif op == "max":
            if fld not in deltas or arg > deltas[fld]:
                deltas[fld] = arg
        elif op == "min":
            if fld not in deltas or arg < deltas[fld]:
                deltas[fld] = arg
        elif op == "distinct" and "d:" + arg not in seen:
            seen.add("d:" + arg)
            deltas[fld] = deltas.get(fld, 0) + 1


def _rule_for(f: FeatureDef, present: list[str]) -> _Rule | None:
    try:
        value = compile_sql(f.value.format(**_PLACEHOLDERS))
        if f.where is not None:
            compile_sql(f.where.format(**_PLACEHOLDERS))
    except SchemaError as e:
        logger.warning("Feature %s is not updated online: %s", f.name, e)
        return None
    numeric = f.type in ("float", "int")
    match f.agg:
        case "sum" | "count":
            return _Rule(f.name, f.agg, f.type, value)
        case "max" | "min" if numeric:
            return _Rule(f.name, f.agg, f.type, value)
        case "days_since_last":
            return _Rule(f.name, "last_seen", f.type, value)
        case "count_distinct":
            return _Rule(f.name, "distinct", f.type, value)
        case "avg" if numeric and _never_null(f.value, f.source):
            count = _count_of_same_rows(f, present)
            if count is not None:
                return _Rule(f.name, "mean", f.type, value, count)
    return None


def _count_of_same_rows(f: FeatureDef, present: list[str]) -> str | None:
    for name in present:
        g = FEATURES[name]
        if (g.agg, g.value.strip(), g.source, g.where, g.window_days) == (
            "count",
            "1",
            f.source,
            f.where,
            f.window_days,
        ):
            return name
    return None


def _never_null(sql: str, source: str) -> bool:
    """Whether ``sql`` has a value on every row of ``source`` (conservatively)."""
    src = schema_table(source)

    def check(node: exp.Expr) -> bool:
        if isinstance(node, exp.Paren | exp.Cast):
            return check(node.this)
        if isinstance(node, exp.Literal | exp.Boolean):
            return True
        if isinstance(node, exp.Column):
            return src.has_field(node.name) and src.field(node.name).required
        if isinstance(node, exp.Case):
            default = node.args.get("default")
            return (
                default is not None
                and check(default)
                and all(check(b.args["true"]) for b in node.args["ifs"])
            )
        return False

    return check(parse_one(sql, read="duckdb"))


def _fields_of(rule: _Rule) -> tuple[str, ...]:
    if rule.kind == "mean":
        return (rule.feature + ".sum", rule.feature + ".n")
    return (rule.feature,)


def _ops_for(rule: _Rule, v: Any, ts: datetime) -> list[Op]:
    name = rule.feature
    match rule.kind:
        case "sum" | "count":
            amount = 1 if rule.kind == "count" else v
            if rule.numeric_type == "int":
                return [("addi", name, int(amount))]
            return [("add", name, float(amount))]
        case "max" | "min":
            return [(rule.kind, name, float(v))]
        case "last_seen":
            return [("max", name, (ts - _EPOCH).total_seconds())]
        case "distinct":
            marker = v.isoformat() if isinstance(v, date) else str(v)
            return [("distinct", name, f"{name}|{marker}")]
        case "mean":
            return [("add", name + ".sum", float(v)), ("addi", name + ".n", 1)]
    raise AssertionError(rule.kind)  # pragma: no cover - every kind is matched above


def _updated_value(rule: _Rule, vector: Mapping[str, Any], deltas: Mapping[str, Any]) -> Any:
    name, base = rule.feature, vector.get(rule.feature)
    match rule.kind:
        case "sum" | "count" | "distinct":
            value = (base or 0) + deltas[name]
        case "max":
            value = deltas[name] if base is None else max(base, float(deltas[name]))
        case "min":
            value = deltas[name] if base is None else min(base, float(deltas[name]))
        case "last_seen":
            value = 0
        case "mean":
            assert rule.count_feature is not None
            n0 = vector.get(rule.count_feature) or 0
            total0 = base * n0 if base is not None else 0.0
            n = n0 + float(deltas.get(name + ".n", 0))
            value = (total0 + float(deltas.get(name + ".sum", 0.0))) / n if n else base
    return _cast(value, FEATURES[name].type)


def _cast(v: Any, type_: str) -> Any:
    if v is None:
        return None
    if type_ == "float":
        v = float(v)
        return None if math.isnan(v) else v
    if type_ == "int":
        return round(float(v)) if not isinstance(v, int) else v
    if type_ == "bool":
        return bool(v)
    return str(v)


def _derived_order(
    present: list[str], updated: set[str]
) -> tuple[list[tuple[str, Evaluator, set[str]]], list[str]]:
    """Derived features that depend on updated ones, inputs before outputs; and those that
    depend on them but cannot be recomputed (an input is not in the snapshot)."""
    names = set(present)
    derived = {n: dependencies(FEATURES[n]) for n in present if FEATURES[n].source == "derived"}
    affected: set[str] = set()
    grew = True
    while grew:
        grew = False
        for n, deps in derived.items():
            if n not in affected and deps & (updated | affected):
                affected.add(n)
                grew = True
    blocked = sorted(n for n in affected if not derived[n] <= names)
    order: list[tuple[str, Evaluator, set[str]]] = []
    done: set[str] = set()
    pending = [n for n in present if n in affected and n not in blocked]
    while pending:
        ready = [n for n in pending if not (derived[n] & set(pending)) - done]
        if not ready:  # pragma: no cover - compile_features already rejects cycles
            raise SchemaError(f"Derived features depend on each other in a cycle: {pending}.")
        for n in ready:
            order.append((n, compile_sql(FEATURES[n].value), derived[n]))
            done.add(n)
        pending = [n for n in pending if n not in done]
    return order, blocked
