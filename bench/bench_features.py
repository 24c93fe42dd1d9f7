"""Benchmark: customer features on a simulated bank of 1M customers, DuckDB and PySpark.

In one run, on the same data and the same as-of time:

(a) baseline — one hand-written DuckDB query computing RFM (recency, frequency and monetary
    over 90 and 365 days);
(b) the feature engine computing exactly those five features: ratio baseline / engine
    (goal ≥ 0.8);
(c) the engine computing the whole catalogue: seconds and customers/s;
(d) the whole catalogue on PySpark local[2] reading the Parquet files: seconds, ratio to DuckDB
    and a parity check of the two results;
(e) peak memory of this process (DuckDB runs inside it) per phase, and of Spark's JVM.

    python bench/bench_features.py [--customers 1000000] [--workspace DIR] [--no-spark]

``--workspace`` keeps the generated bank (and its DuckDB store) in DIR and reuses it when run
again with the same size, so only the first run pays for generation (~75 s at 1M).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qianmian.config import load_settings
from qianmian.features.catalogue import FEATURES
from qianmian.features.compile import AsOf
from qianmian.features.definition import SOURCES
from qianmian.features.engine import StoreFeatureEngine
from qianmian.store.base import Store
from qianmian.world import World, WorldConfig

RFM = ["recency_days", "frequency_90d", "monetary_90d", "frequency_365d", "monetary_365d"]
SOURCE_TABLES = sorted({s.table for s in SOURCES.values()})
SEED = 7


def baseline_rfm_sql(as_of: AsOf) -> str:
    """The RFM query an analyst would write by hand (same results as the engine)."""
    return f"""
    WITH spend AS (
        SELECT customer_id,
               max(ts) AS last_ts,
               count(*) FILTER (WHERE ts >= {as_of.ts(90)}) AS frequency_90d,
               sum(amount) FILTER (WHERE ts >= {as_of.ts(90)}) AS monetary_90d,
               count(*) AS frequency_365d,
               sum(amount) AS monetary_365d
        FROM transactions
        WHERE ts < {as_of.ts()} AND ts >= {as_of.ts(365)}
        GROUP BY customer_id
    )
    SELECT c.customer_id,
           {as_of.ts()} AS as_of,
           coalesce(date_diff('day', CAST(s.last_ts AS DATE), {as_of.day()}), 366)
               AS recency_days,
           coalesce(s.frequency_90d, 0) AS frequency_90d,
           coalesce(s.monetary_90d, 0) AS monetary_90d,
           coalesce(s.frequency_365d, 0) AS frequency_365d,
           coalesce(s.monetary_365d, 0) AS monetary_365d
    FROM customers c LEFT JOIN spend s ON s.customer_id = c.customer_id
    WHERE c.signup_date < {as_of.day()}
    ORDER BY c.customer_id
    """


# -- memory ------------------------------------------------------------------------------------


def reset_peak_rss() -> float:
    """Restart this process's peak-RSS counter (Linux) so that a phase's peak can be read;
    return the peak so far in GB (getrusage's figure, which the reset also restarts)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return peak


def peak_rss_gb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a live process, in GB; NaN where /proc is missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


def jvm_pid(spark) -> int | None:
    """Spark's driver JVM: the process PySpark launched, or its java child."""
    proc = getattr(getattr(spark.sparkContext, "_gateway", None), "proc", None)
    if proc is None:
        return None
    pid = proc.pid
    try:  # spark-submit may leave a shell in between
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    comm = Path(f"/proc/{pid}/comm").read_text().strip() if Path(f"/proc/{pid}").exists() else ""
    return int(children[0]) if comm != "java" and children else pid


# -- helpers -----------------------------------------------------------------------------------


def timed(fn: Callable[[], pa.Table]) -> tuple[float, pa.Table]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def open_bank(args: argparse.Namespace) -> tuple[World, float | None]:
    """The bank in the workspace, generated unless one of the same size is already there."""
    manifest = args.workspace / "world" / "manifest.json"
    if manifest.is_file():
        config = json.loads(manifest.read_text())["config"]
        if config["customers"] == args.customers and config["months"] == args.months:
            return World(args.workspace), None
    t0 = time.perf_counter()
    world = World.generate(
        WorldConfig(customers=args.customers, months=args.months, seed=SEED),
        args.workspace,
        workers=args.workers,
    )
    return world, time.perf_counter() - t0


def load_store(world: World, store: Store) -> float | None:
    """Load the source tables into DuckDB unless they are there already; seconds or None."""
    rows = world.manifest["rows"]
    if all(store.has_table(t) and store.count(t) == rows[t] for t in SOURCE_TABLES):
        return None
    t0 = time.perf_counter()
    for name in SOURCE_TABLES:
        store.load_parquet(name, world.table_paths(name), mode="replace")
    return time.perf_counter() - t0


def same_values(left: pa.Table, right: pa.Table, rtol: float = 1e-9) -> int:
    """Cells that differ (floats beyond ``rtol``); both tables sorted by customer_id."""
    if left.column_names != right.column_names or left.num_rows != right.num_rows:
        return -1
    bad = 0
    for name in left.column_names:
        a, b = left.column(name), right.column(name)
        if pa.types.is_floating(a.type):
            x = a.to_numpy(zero_copy_only=False)
            y = b.to_numpy(zero_copy_only=False)
            nan = np.isnan(x) & np.isnan(y)
            bad += int((~nan & ~np.isclose(x, y, rtol=rtol, atol=0.0)).sum())
        else:
            both_null = pc.and_(pc.is_null(a), pc.is_null(b))
            differ = pc.invert(pc.fill_null(pc.equal(a, b), False))
            bad += int(pc.sum(pc.and_not(differ, both_null).cast(pa.int64())).as_py() or 0)
    return bad


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<46}{value:>16}  {note}")


# -- the run ---------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2, help="processes generating the bank")
    ap.add_argument(
        "--workspace",
        "--keep",
        type=Path,
        help="generate the bank here and keep it; reused when run again with the same size",
    )
    ap.add_argument("--repeat", type=int, default=5, help="runs of the RFM queries (median)")
    ap.add_argument("--spark-cores", type=int, default=2)
    ap.add_argument("--spark-memory", default="6g", help="Spark driver heap")
    ap.add_argument("--no-spark", action="store_true")
    args = ap.parse_args()
    keep = args.workspace is not None
    args.workspace = args.workspace or Path(tempfile.mkdtemp(prefix="qm-bench-features-"))
    load1 = os.getloadavg()[0]
    try:
        world, generated = open_bank(args)
        rows = world.manifest["rows"]
        # the first day of the bank's last month: a year of history before it
        end = date.fromisoformat(world.manifest["config"]["end"])
        as_of = AsOf.of((end.replace(day=1) - timedelta(days=1)).replace(day=1))
        print(
            f"simulated bank: {args.customers:,} customers, {args.months} months; "
            f"{rows['transactions']:,} transactions, {rows['app_events']:,} app events; "
            f"as_of {as_of.at:%Y-%m-%d}"
        )
        print(
            f"  generation: {'reused ' + str(args.workspace) if generated is None else f'{generated:.1f} s'}"
        )

        # ---- DuckDB ------------------------------------------------------------------------
        overall = reset_peak_rss()
        with load_settings(args.workspace).build_store() as store:
            loaded = load_store(world, store)
            print(f"  DuckDB load: {'already loaded' if loaded is None else f'{loaded:.1f} s'}")
            engine = StoreFeatureEngine(store)
            baseline_sql = baseline_rfm_sql(as_of)
            base_times, rfm_times = [], []
            for _ in range(args.repeat):  # interleaved, so both see the same machine
                t, base = timed(lambda: store.query(baseline_sql))
                base_times.append(t)
                t, rfm = timed(lambda: engine.build(as_of.at, features=RFM))
                rfm_times.append(t)
            rfm_differ = same_values(base.cast(rfm.schema), rfm)
            full_times = []
            for _ in range(2):
                t, full = timed(lambda: engine.build(as_of.at))
                full_times.append(t)
        duck_peak = peak_rss_gb()
        customers_out = full.num_rows

        # ---- Spark -------------------------------------------------------------------------
        spark_figures = None
        if not args.no_spark:
            from qianmian.features.spark import SparkFeatureEngine, local_spark

            del rfm, base
            overall = max(overall, reset_peak_rss())
            t0 = time.perf_counter()
            spark = local_spark(cores=args.spark_cores, memory=args.spark_memory)
            started = time.perf_counter() - t0
            pid = jvm_pid(spark)
            try:
                spark_engine = SparkFeatureEngine(spark, world.data_dir)
                # warm-up: the JVM compiles the same aggregation code on a few customers
                few = full.column("customer_id").to_pylist()[:: max(1, customers_out // 1000)]
                warm, _ = timed(lambda: spark_engine.build(as_of.at, customers=few))
                spark_time, spark_full = timed(lambda: spark_engine.build(as_of.at))
                differ = same_values(spark_full, full)
                jvm_peak = peak_rss_gb(pid) if pid else float("nan")
            finally:
                spark.stop()
            spark_figures = (started, warm, spark_time, differ, peak_rss_gb(), jvm_peak)

        # ---- figures -----------------------------------------------------------------------
        base_t, rfm_t = statistics.median(base_times), statistics.median(rfm_times)
        full_t = min(full_times)
        print(f"figures (machine load average {load1:.1f} at start, {os.getloadavg()[0]:.1f} now):")
        row(
            "(a) baseline: hand-written RFM SQL (DuckDB)",
            f"{base_t:.2f} s",
            f"median of {args.repeat}",
        )
        row("(b) engine: the 5 RFM features (DuckDB)", f"{rfm_t:.2f} s", f"median of {args.repeat}")
        row(
            "    ratio baseline / engine (goal ≥ 0.8)",
            f"{base_t / rfm_t:.2f}",
            "same values" if rfm_differ == 0 else f"{rfm_differ} cells differ!",
        )
        row(
            f"(c) engine: full catalogue, {len(FEATURES)} features",
            f"{full_t:.2f} s",
            f"{customers_out / full_t:,.0f} customers/s; best of 2 "
            f"({', '.join(f'{t:.1f}' for t in full_times)})",
        )
        row(
            "    source rows/s (transactions+app events)",
            f"{(rows['transactions'] + rows['app_events']) / full_t:,.0f}",
        )
        if spark_figures:
            started, warm, spark_time, differ, _, _ = spark_figures
            row("(d) Spark session start", f"{started:.1f} s")
            row("    Spark warm-up (catalogue, ~1,000 customers)", f"{warm:.1f} s")
            row(
                f"    Spark local[{args.spark_cores}]: full catalogue from Parquet",
                f"{spark_time:.1f} s",
                f"{customers_out / spark_time:,.0f} customers/s",
            )
            row(
                "    ratio Spark time / DuckDB time",
                f"{spark_time / full_t:.1f}",
                "same values as DuckDB" if differ == 0 else f"{differ} cells differ!",
            )
        print("peak memory:")
        overall = max(overall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
        row("(e) this process, whole run (getrusage)", f"{overall:.2f} GB")
        row("    DuckDB phase (load + queries, in process)", f"{duck_peak:.2f} GB")
        if spark_figures:
            row("    Spark phase, Python side (Arrow result)", f"{spark_figures[4]:.2f} GB")
            row("    Spark phase, driver JVM (child process)", f"{spark_figures[5]:.2f} GB")
        if generated is not None and world.report is not None:
            row("    generation workers (largest)", f"{world.report.peak_worker_rss_gb:.2f} GB")
    finally:
        if not keep:
            shutil.rmtree(args.workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
