"""PySpark feature engine: the catalogue's features on Spark, from the bank's Parquet tables.

The same compiled statement as DuckDB's (:func:`qianmian.features.compile.compile_features`),
transpiled to Spark SQL by :func:`to_spark_sql`, which keeps DuckDB's meaning where sqlglot's
plain transpilation would not (ISO day of week, ``date_diff`` in days, ``arg_max`` skipping
NULLs, decimal literals). :func:`local_spark` starts a single-machine session for tests,
benchmarks and small banks; a bank's cluster session works as well (session time zone UTC).

Example (needs a generated bank, so it is not run as a doctest)::

    spark = local_spark(cores=2)
    engine = SparkFeatureEngine(spark, world.data_dir)
    engine.build("2026-08-01", features=["spend_30d"]).num_rows
    # 4000
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from qianmian.errors import ConfigError, NotFoundError, SchemaError, invalid_parameter
from qianmian.features.catalogue import FEATURES
from qianmian.features.definition import SOURCES
from qianmian.features.engine import FeatureEngine

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SOURCE_TABLES", "SparkFeatureEngine", "local_spark", "to_spark_sql"]

logger = logging.getLogger(__name__)

#: The bank's tables features are computed from (one temp view each).
SOURCE_TABLES: tuple[str, ...] = tuple(dict.fromkeys(s.table for s in SOURCES.values()))

_ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "string": pa.string()}
_KEY_TYPES = {"customer_id": pa.int64(), "as_of": pa.timestamp("us")}

# Spark logs to stderr at WARN by default; this keeps only errors (the named logger is the one
# whose level PySpark reports on start-up unless it is configured).
_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
logger.pyspark.name = org.apache.spark.api.python.PythonGatewayServer
logger.pyspark.level = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def _pyspark() -> Any:
    """The ``pyspark.sql`` module, or an install hint."""
    try:
        with warnings.catch_warnings():
            # pyspark warns about pandas 3 on import; we exchange data through Arrow only
            warnings.filterwarnings("ignore", message=".*pandas.*", category=FutureWarning)
            import pyspark.sql
    except ImportError as e:
        raise ImportError(
            "The Spark feature engine needs PySpark. Install it with: pip install 'qianmian[spark]'."
        ) from e
    return pyspark.sql


@functools.cache
def _log4j2_file() -> Path:
    """The logging configuration, written once per process (the JVM reads it when it starts)."""
    fd, name = tempfile.mkstemp(prefix="qianmian-spark-log4j2-", suffix=".properties")
    with os.fdopen(fd, "w") as f:
        f.write(_LOG4J2)
    atexit.register(os.unlink, name)
    return Path(name)


def local_spark(cores: int = 2, memory: str = "2g", *, app_name: str = "qianmian") -> SparkSession:
    """A single-machine Spark session (``local[cores]``) set up for the feature engine.

    Session time zone UTC (the bank's timestamps are naive and must not be shifted), no web UI,
    no progress bars, errors-only logging, few shuffle partitions, Arrow transfers, ANSI SQL
    (bad casts and overflows fail loudly, as in DuckDB), and nothing downloaded. Driver memory
    only applies when this call starts the JVM; an existing session is reused.

    Parameters
    ----------
    cores : int
        Worker threads.
    memory : str
        Driver heap, e.g. ``"2g"``; results are collected into it, so give it roughly
        ``rows x features x 8`` bytes plus headroom.
    """
    if not isinstance(cores, int) or cores < 1:
        raise invalid_parameter("local_spark", "cores", "a positive int", cores)
    sql = _pyspark()
    java_options = f"-Duser.timezone=UTC -Dlog4j2.configurationFile=file:{_log4j2_file()}"
    conf = {
        "spark.master": f"local[{cores}]",
        "spark.app.name": app_name,
        "spark.driver.memory": memory,
        "spark.driver.maxResultSize": "0",  # the feature table is collected on purpose
        "spark.driver.extraJavaOptions": java_options,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
        "spark.sql.shuffle.partitions": str(max(4, 2 * cores)),
        "spark.default.parallelism": str(cores),
        "spark.sql.ansi.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    }
    builder = sql.SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pandas.*", category=FutureWarning)
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # runtime settings, in case getOrCreate returned a session started elsewhere
    for key in (
        "spark.sql.session.timeZone",
        "spark.sql.ansi.enabled",
        "spark.sql.shuffle.partitions",
        "spark.sql.execution.arrow.pyspark.enabled",
    ):
        spark.conf.set(key, conf[key])
    return spark


# ---- DuckDB SQL → Spark SQL, keeping DuckDB's meaning ------------------------------------------


def _keep_duckdb_meaning(node: exp.Expression) -> exp.Expression:
    """Rewrite one node of a DuckDB tree into a form whose Spark SQL means the same."""
    if isinstance(node, exp.DayOfWeekIso):
        # sqlglot writes (DAYOFWEEK(x) % 7) + 1, which makes Saturday 1; WEEKDAY is Monday = 0
        return exp.paren(
            exp.Add(
                this=exp.Anonymous(this="WEEKDAY", expressions=[node.this]),
                expression=exp.Literal.number(1),
            )
        )
    if isinstance(node, exp.DateDiff):
        unit = (node.unit.name if node.unit else "DAY").upper()
        if unit not in ("DAY", "DAYS"):
            raise SchemaError(
                f"date_diff('{unit.lower()}', ...) has no exact Spark equivalent in qianmian's "
                "Spark engine; write the feature with date_diff('day', ...)."
            )
        # DuckDB counts day boundaries crossed; Spark's 3-argument DATEDIFF counts whole
        # 24-hour periods, its 2-argument form counts calendar days (end first)
        return exp.Anonymous(
            this="DATEDIFF",
            expressions=[
                exp.cast(node.this.copy(), exp.DataType.Type.DATE),
                exp.cast(node.expression.copy(), exp.DataType.Type.DATE),
            ],
        )
    if isinstance(node, exp.ArgMax | exp.ArgMin) and not node.args.get("count"):
        # DuckDB's arg_max skips rows whose value is NULL; Spark's max_by returns that NULL
        value, order = node.this, node.expression
        order = exp.case().when(
            exp.Not(this=exp.Is(this=value.copy(), expression=exp.null())), order.copy()
        )
        return type(node)(this=value.copy(), expression=order)
    if (
        isinstance(node, exp.Count)
        and isinstance(node.this, exp.Distinct)
        and len(node.this.expressions) == 1
    ):
        # same count (NULLs ignored), but aggregated in one pass with the source's other
        # aggregates: Spark plans COUNT(DISTINCT) by grouping on (customer, value) first,
        # carrying every other aggregate through a shuffle of ~one row per customer and day
        (value,) = node.this.expressions
        return exp.Anonymous(
            this="SIZE", expressions=[exp.Anonymous(this="COLLECT_SET", expressions=[value.copy()])]
        )
    if isinstance(node, exp.Literal) and not node.is_string and any(c in node.name for c in ".eE"):
        # DuckDB reads 1.0 as DECIMAL but averages and divides it as DOUBLE; Spark keeps
        # DECIMAL(6,5) for an average, which rounds shares to 5 digits
        return exp.cast(node.copy(), exp.DataType.Type.DOUBLE)
    return node


def to_spark_sql(sql: str) -> str:
    """Transpile a DuckDB statement to Spark SQL with the same results.

    >>> to_spark_sql("SELECT isodow(ts) >= 6 FROM t")
    'SELECT (WEEKDAY(ts) + 1) >= 6 FROM t'
    """
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise SchemaError(f"The feature SQL does not parse as DuckDB SQL: {e}.") from e
    return tree.transform(_keep_duckdb_meaning).sql(dialect="spark")


def _result_schema(schema: pa.Schema) -> pa.Schema:
    """The DuckDB engine's Arrow schema for a Spark result (other columns keep their type)."""
    fields = []
    for field in schema:
        kind = _KEY_TYPES.get(field.name)
        if kind is None and field.name in FEATURES:
            kind = _ARROW_TYPES[FEATURES[field.name].type]
        fields.append(pa.field(field.name, kind or field.type))
    return pa.schema(fields)


class SparkFeatureEngine(FeatureEngine):
    """Runs the features on Spark over the bank's Parquet tables.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        For example :func:`local_spark`. Its session time zone should be UTC.
    data_dir : path
        Folder with one sub-folder of ``*.parquet`` files per table (``World.data_dir``);
        :data:`SOURCE_TABLES` must all be there.

    Each source table is registered as a temp view of its own name before each statement,
    so several engines may share one session.
    """

    dialect = "spark"

    def __init__(self, spark: SparkSession, data_dir: Path | str) -> None:
        self.spark = spark
        self.data_dir = Path(data_dir)
        self._tables = {name: self._read(name) for name in SOURCE_TABLES}
        self._check_time_zone()

    def _read(self, table: str) -> DataFrame:
        folder = self.data_dir / table
        if not any(folder.glob("*.parquet")):
            raise NotFoundError(
                f"Table '{table}' has no Parquet files in {folder}; the Spark engine reads "
                f"{', '.join(SOURCE_TABLES)} from data_dir. Generate or import the bank first."
            )
        return self.spark.read.option("pathGlobFilter", "*.parquet").parquet(str(folder))

    def _check_time_zone(self) -> None:
        """Zoned timestamps would be read in the session time zone: insist on UTC then."""
        zoned = [
            f"{t}.{f.name}"
            for t, df in self._tables.items()
            for f in df.schema.fields
            if f.dataType.typeName() == "timestamp"
        ]
        tz = self.spark.conf.get("spark.sql.session.timeZone")
        if zoned and tz != "UTC":
            raise ConfigError(
                f"Columns {', '.join(zoned)} are zoned timestamps and the Spark session time "
                f"zone is '{tz}', which would shift them; set spark.sql.session.timeZone=UTC."
            )

    def _run(self, sql: str) -> pa.Table:
        for name, df in self._tables.items():
            df.createOrReplaceTempView(name)
        result = self.spark.sql(sql).toArrow()
        return result.cast(_result_schema(result.schema))
