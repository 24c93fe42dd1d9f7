"""Benchmark: generate a simulated bank of 1M customers (12 months) on this machine.

Prints rows, seconds, rows/s and peak memory per table family, and, as the baseline measured in
the same run, the throughput of merely writing the same number of i.i.d. random transaction rows
(same schema) to Parquet: the ratio shows what the simulation costs over writing the bytes.

    python bench/bench_world.py [--customers 1000000] [--workers 2]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from qianmian.data.schema import table
from qianmian.world import World, WorldConfig


def peak_rss_gb() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest child, in GB."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    return me, kids


def baseline_write(rows: int, folder: Path, chunk: int = 2_000_000) -> float:
    """Seconds to write ``rows`` random transactions (same schema) to Parquet."""
    rng = np.random.default_rng(0)
    schema = table("transactions").arrow_schema
    cats = pa.array(table("transactions").field("category").enum)
    t0 = time.perf_counter()
    for k, start in enumerate(range(0, rows, chunk)):
        n = min(chunk, rows - start)
        data = pa.table(
            {
                "txn_id": np.arange(start, start + n, dtype=np.int64) + 1,
                "customer_id": rng.integers(1, 1_000_000, n),
                "ts": (
                    np.datetime64("2025-11-01T00:00:00", "us")
                    + rng.integers(0, 365 * 86_400, n).astype("timedelta64[s]")
                ),
                "amount": np.round(rng.lognormal(5, 1, n), 2),
                "category": pa.DictionaryArray.from_arrays(
                    pa.array(rng.integers(0, len(cats), n).astype(np.int32)), cats
                ).dictionary_decode(),
                "mcc": pa.array(np.full(n, "5812")),
                "merchant_id": rng.integers(1, 30_000, n),
                "channel": pa.array(np.full(n, "POS")),
                "city": pa.array(np.full(n, "北京")),
            },
            schema=schema,
        )
        pq.write_table(data, folder / f"part-{k:05d}.parquet", compression="snappy")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="keep the generated workspace here")
    args = ap.parse_args()
    ws = args.keep or Path(tempfile.mkdtemp(prefix="qm-bench-world-"))
    try:
        t0 = time.perf_counter()
        world = World.generate(
            WorldConfig(customers=args.customers, months=args.months, seed=7),
            ws,
            workers=args.workers,
        )
        seconds = time.perf_counter() - t0
        rows = world.manifest["rows"]
        total = sum(rows[t] for t in rows)
        me, kids = peak_rss_gb()
        print(
            f"simulated bank: {args.customers:,} customers, {args.months} months, "
            f"{args.workers} workers"
        )
        for name, n in sorted(rows.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<22}{n:>14,} rows")
        print(f"  {'total':<22}{total:>14,} rows")
        print(f"seconds: {seconds:.1f}")
        print(f"rows/s (all tables): {total / seconds:,.0f}")
        print(f"transactions/s: {rows['transactions'] / seconds:,.0f}")
        worker = world.report.peak_worker_rss_gb if world.report else kids
        print(
            f"peak memory: main {me:.2f} GB, largest worker {worker:.2f} GB "
            f"(at most {me + args.workers * worker:.2f} GB together)"
        )
        base_dir = ws / "_baseline"
        base_dir.mkdir()
        base = baseline_write(rows["transactions"], base_dir)
        print(
            f"baseline (write {rows['transactions']:,} random transaction rows to Parquet, "
            f"1 process): {base:.1f} s, {rows['transactions'] / base:,.0f} rows/s"
        )
        print(
            f"ratio: simulated transactions/s ÷ baseline rows/s = "
            f"{(rows['transactions'] / seconds) / (rows['transactions'] / base):.2f}"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(ws, ignore_errors=True)


if __name__ == "__main__":
    main()
