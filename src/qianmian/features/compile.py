"""Compile feature definitions into one SQL statement for a given as-of time.

The SQL is written in DuckDB's dialect and transpiled by sqlglot for other engines (Spark),
so that every engine runs the *same* definitions. Structure of the statement::

    base      customers who signed up before as_of, with their profile features
    src_*     one aggregate per source (transactions, app_events, holdings, statements,
              loans), over rows strictly before as_of and inside the widest window
    joined    base LEFT JOIN every src_*, missing aggregates replaced by their default
    layer_*   derived features, layer by layer (a feature may use earlier derived ones)
    final     the requested features, cast to their types, with customer_id and as_of
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlglot
from sqlglot import exp

from qianmian.errors import SchemaError
from qianmian.features.catalogue import FEATURES, feature
from qianmian.features.definition import SOURCES, FeatureDef

__all__ = ["AsOf", "check_definition", "compile_features", "dependencies", "resolve"]

_SQL_TYPES = {"float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN", "string": "VARCHAR"}
_DATE_TIME_COLUMNS = {"opened_date", "statement_month", "start_date", "signup_date"}


@dataclass(frozen=True)
class AsOf:
    """An as-of time and the literals that stand for it in SQL."""

    at: datetime

    @classmethod
    def of(cls, value: date | datetime | str) -> AsOf:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise SchemaError(
                    f"as_of '{value}' is not a date or time like 2026-06-01."
                ) from None
        if not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        return cls(value.replace(tzinfo=None, microsecond=0))

    def ts(self, minus_days: int = 0) -> str:
        return f"TIMESTAMP '{(self.at - timedelta(days=minus_days)):%Y-%m-%d %H:%M:%S}'"

    def day(self, minus_days: int = 0) -> str:
        return f"DATE '{(self.at - timedelta(days=minus_days)).date():%Y-%m-%d}'"

    def minus_one_month(self) -> str:
        y, m = self.at.year, self.at.month - 1
        if m == 0:
            y, m = y - 1, 12
        last = [
            31,
            29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28,
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ][m - 1]
        return f"DATE '{date(y, m, min(self.at.day, last)):%Y-%m-%d}'"

    def fill(self, sql: str) -> str:
        return sql.format(
            as_of_ts=self.ts(), as_of_date=self.day(), as_of_minus_1_month=self.minus_one_month()
        )


@functools.cache
def check_definition(f: FeatureDef) -> None:
    """Every column a definition names must exist: in its source table (per the data
    dictionary) or, for a derived feature, in the catalogue. Raises a SchemaError naming it."""
    if f.source == "derived":
        dependencies(f)
        return
    from qianmian.data.schema import table

    source_table = table(SOURCES[f.source].table)
    placeholders = AsOf.of("2000-01-01")
    for part, text in (("value", f.value), ("where", f.where)):
        if not text:
            continue
        try:
            tree = sqlglot.parse_one(placeholders.fill(text), read="duckdb")
        except sqlglot.errors.ParseError as e:
            raise SchemaError(f"Feature '{f.name}' has a {part} that does not parse: {e}.") from e
        for col in tree.find_all(exp.Column):
            if not source_table.has_field(col.name):
                raise SchemaError(
                    f"Feature '{f.name}' names field '{col.name}' in its {part}, but table "
                    f"'{source_table.name}' has no such field. Known fields: "
                    f"{', '.join(source_table.column_names)}."
                )


def dependencies(f: FeatureDef) -> set[str]:
    """Features a derived feature's expression refers to (unknown names are an error)."""
    if f.source != "derived":
        return set()
    try:
        tree = sqlglot.parse_one(f.value, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise SchemaError(f"Feature '{f.name}' has an expression that does not parse: {e}.") from e
    names = {c.name for c in tree.find_all(exp.Column)}
    for n in names:
        feature(n)  # raises a SchemaError naming the unknown field
    return names


def resolve(names: Iterable[str] | None) -> list[str]:
    """Requested features plus everything derived ones need, in catalogue order."""
    wanted = list(FEATURES) if names is None else [feature(n).name for n in names]
    needed: set[str] = set()
    stack = list(wanted)
    while stack:
        n = stack.pop()
        if n in needed:
            continue
        needed.add(n)
        stack.extend(dependencies(FEATURES[n]))
    return [n for n in FEATURES if n in needed]


def _time_bound(f: FeatureDef, as_of: AsOf, days: int) -> str:
    col = SOURCES[f.source].time
    bound = as_of.day(days) if col in _DATE_TIME_COLUMNS else as_of.ts(days)
    return f"{col} >= {bound}"


def _aggregate(f: FeatureDef, as_of: AsOf, widest: int | None) -> str:
    conds = []
    if f.window_days is not None and f.window_days != widest:
        conds.append(_time_bound(f, as_of, f.window_days))
    if f.where:
        conds.append(f"({as_of.fill(f.where)})")
    value = as_of.fill(f.value)
    cond = " AND ".join(conds)

    def when(v: str) -> str:
        return f"CASE WHEN {cond} THEN {v} END" if cond else v

    time = SOURCES[f.source].time
    match f.agg:
        case "sum" | "avg" | "max" | "min":
            return f"{f.agg}({when(value)})"
        case "count":
            return f"count({when(value)})"
        case "count_distinct":
            return f"count(DISTINCT {when(value)})"
        case "days_since_last":
            return f"date_diff('day', CAST(max({when(time)}) AS DATE), {as_of.day()})"
        case "last":
            return f"arg_max({value}, {time})"
    raise SchemaError(f"Feature '{f.name}' has unknown aggregate '{f.agg}'.")


_EMPTY_TYPES = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


def _empty_table(name: str) -> str:
    """A typed, empty stand-in for a dictionary table the store does not hold."""
    from qianmian.data.schema import table

    cols = ", ".join(
        f"CAST(NULL AS {_EMPTY_TYPES.get(f.type, 'VARCHAR')}) AS {f.name}"
        for f in table(name).fields
    )
    return f"(SELECT {cols} WHERE FALSE) AS {name}"


def _source_ctes(
    defs: list[FeatureDef], as_of: AsOf, customers: str | None, missing: Collection[str] = ()
) -> list[tuple[str, str, list[FeatureDef]]]:
    """(cte name, SQL, features) per source; 'last' aggregates get their own CTE per window."""
    groups: dict[tuple[str, str], list[FeatureDef]] = {}
    for f in defs:
        if f.source in ("customers", "derived"):
            continue
        key = (f.source, f"last_{f.window_days}_{f.where}" if f.agg == "last" else "")
        groups.setdefault(key, []).append(f)
    out = []
    for k, ((source, variant), fs) in enumerate(groups.items()):
        src = SOURCES[source]
        windows = [f.window_days for f in fs]
        widest = None if any(w is None for w in windows) else max(w for w in windows if w)
        where = [as_of.fill(src.available)]
        if widest is not None:
            where.append(_time_bound(fs[0], as_of, widest))
        if variant and fs[0].where:  # a 'last' group shares its window and filter
            where.append(f"({as_of.fill(fs[0].where)})")
        if customers:
            where.append(f"customer_id IN ({customers})")
        cols = ",\n    ".join(f"{_aggregate(f, as_of, widest)} AS {f.name}" for f in fs)
        name = f"src_{source}{'_' + str(k) if variant else ''}"
        sql = (
            f"SELECT customer_id,\n    {cols}\n"
            f"FROM {_empty_table(src.table) if src.table in missing else src.table}\n"
            f"WHERE {' AND '.join(where)}\nGROUP BY customer_id"
        )
        out.append((name, sql, fs))
    return out


def _layers(derived: list[FeatureDef]) -> list[list[FeatureDef]]:
    done: set[str] = set()
    layers: list[list[FeatureDef]] = []
    pending = list(derived)
    names = {f.name for f in derived}
    while pending:
        layer = [f for f in pending if not (dependencies(f) & names) - done]
        if not layer:
            raise SchemaError(
                "Derived features depend on each other in a cycle: "
                f"{', '.join(f.name for f in pending)}."
            )
        layers.append(layer)
        done |= {f.name for f in layer}
        pending = [f for f in pending if f.name not in done]
    return layers


def compile_features(
    names: Sequence[str] | None,
    as_of: date | datetime | str,
    *,
    customers: Sequence[int] | None = None,
    dialect: str = "duckdb",
    missing_tables: Collection[str] = (),
) -> str:
    """One SQL statement computing ``names`` (all features if None) as of ``as_of``.

    Every source row used is strictly before ``as_of``; customers who signed up on or after it
    are left out. ``customers`` restricts the statement to those ids. Sources in
    ``missing_tables`` (a bank with no marketing history yet) read as empty: their features
    take their defaults.

    >>> sql = compile_features(["spend_30d"], "2026-06-01")
    >>> "ts < TIMESTAMP '2026-06-01 00:00:00'" in sql
    True
    """
    at = AsOf.of(as_of)
    wanted = list(FEATURES) if names is None else [feature(n).name for n in names]
    defs = [FEATURES[n] for n in resolve(wanted)]
    for f in defs:
        check_definition(f)
    ids = None
    if customers is not None:
        ids = ", ".join(str(int(c)) for c in customers) or "NULL"
    profile = [f for f in defs if f.source == "customers"]
    base_where = [at.fill(SOURCES["customers"].available)]
    if ids:
        base_where.append(f"customer_id IN ({ids})")
    base_cols = "".join(f",\n    {at.fill(f.value)} AS {f.name}" for f in profile)
    ctes = [
        ("base", f"SELECT customer_id{base_cols}\nFROM customers\nWHERE {' AND '.join(base_where)}")
    ]
    sources = _source_ctes(defs, at, ids, missing_tables)
    ctes += [(n, sql) for n, sql, _ in sources]
    joined_cols = ["base.customer_id", *(f"base.{f.name}" for f in profile)]
    joins = []
    for n, _, fs in sources:
        joins.append(f"LEFT JOIN {n} ON {n}.customer_id = base.customer_id")
        for f in fs:
            col = f"{n}.{f.name}"
            joined_cols.append(
                f"COALESCE({col}, {f.default}) AS {f.name}" if f.default else f"{col} AS {f.name}"
            )
    ctes.append(
        ("joined", "SELECT " + ",\n    ".join(joined_cols) + "\nFROM base\n" + "\n".join(joins))
    )
    previous = "joined"
    for i, layer in enumerate(_layers([f for f in defs if f.source == "derived"])):
        cols = ",\n    ".join(f"{f.value} AS {f.name}" for f in layer)
        ctes.append((f"layer_{i}", f"SELECT *,\n    {cols}\nFROM {previous}"))
        previous = f"layer_{i}"
    final = ",\n    ".join(f"CAST({n} AS {_SQL_TYPES[FEATURES[n].type]}) AS {n}" for n in wanted)
    sql = (
        "WITH "
        + ",\n".join(f"{n} AS (\n{body}\n)" for n, body in ctes)
        + f"\nSELECT customer_id, {at.ts()} AS as_of,\n    {final}\nFROM {previous}\n"
        "ORDER BY customer_id"
    )
    if dialect == "duckdb":
        return sql
    if dialect == "spark":  # plain transpiling changes some meanings; see to_spark_sql
        from qianmian.features.spark import to_spark_sql  # needs sqlglot only, not pyspark

        return to_spark_sql(sql)
    return sqlglot.transpile(sql, read="duckdb", write=dialect)[0]
