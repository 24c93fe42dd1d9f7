"""Benchmark: online feature store latency for a million customers, embedded and Redis.

Loads a snapshot of N customers (default 1,000,000) with every catalogue feature into each
backend, then measures, single-threaded: ``get(customer_id)`` for random customers (p50, p99,
max), ``apply_event`` for random transactions and app events, and ``get`` again for customers
that have events since the snapshot (vector plus accumulators). Baselines measured in the same
run: a raw dict lookup (for the embedded store) and a raw Redis ``GET`` of a small key (for
Redis), each made just before every measured call; ratios are against them. The goal is a p99 under 2 ms for ``get`` on both backends.

The snapshot is **synthetic**: an Arrow table with the catalogue's columns and types (counts,
amounts, shares, booleans, strings, some NULLs) generated with numpy, because simulating and
featurising a 1M-customer bank takes far longer than the store itself (see bench_world.py).
Latency does not depend on the values, only on the column count and types, which are real.

    python bench/bench_online_features.py [--customers 1000000] [--gets 20000]
        [--events 5000] [--backends memory,redis] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import resource
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from qianmian.features.catalogue import CATEGORY_SLUGS, FEATURES, PAGE_FEATURES
from qianmian.features.online import MemoryOnlineStore, OnlineFeatureStore
from qianmian.features.online.redis import RedisOnlineStore

AS_OF = datetime(2026, 8, 1)
STRINGS = {
    "gender": ["男", "女"],
    "city_tier": ["一线", "新一线", "二线", "三线", "四线及以下"],
    "occupation": ["白领", "公务员", "教师", "医生", "个体经营", "学生", "退休"],
    "registration_channel": ["网点", "App", "信用卡中心", "合作渠道"],
    "lifecycle_stage": ["new", "growing", "mature", "declining", "dormant"],
}


def synthetic_features(n: int, seed: int = 0) -> pa.Table:
    """``n`` customers with every catalogue feature, typed as the batch engine types them."""
    rng = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {
        "customer_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "as_of": pa.array(np.full(n, np.datetime64(AS_OF, "us"))),
    }
    for name, f in FEATURES.items():
        nullable = f.default is None and f.source not in ("customers",)
        mask = rng.random(n) < 0.1 if nullable else None
        if f.type == "float":
            values = np.round(rng.lognormal(6, 1.5, n), 2)
            if name.startswith("share_") or name.startswith("utilisation"):
                values = rng.random(n)
            cols[name] = pa.array(values, mask=mask)
        elif f.type == "int":
            cols[name] = pa.array(rng.poisson(8, n).astype(np.int64), mask=mask)
        elif f.type == "bool":
            cols[name] = pa.array(rng.random(n) < 0.3, mask=mask)
        else:
            choices = np.array(STRINGS.get(name, ["a", "b", "c"]), dtype=object)
            cols[name] = pa.array(choices[rng.integers(0, len(choices), n)], pa.string())
    return pa.table(cols)


def random_event(rng: random.Random, n: int, k: int) -> tuple[str, str, dict[str, Any]]:
    ts = AS_OF + timedelta(minutes=rng.randint(1, 600))
    customer = rng.randint(1, n)
    if rng.random() < 0.5:
        row = {
            "customer_id": customer,
            "ts": ts,
            "amount": round(rng.lognormvariate(5, 1), 2),
            "category": rng.choice(list(CATEGORY_SLUGS)),
            "channel": rng.choice(["POS", "online", "QR"]),
        }
        return f"t{k}", "transactions", row
    kind = rng.choice(["login", "page_view", "search", "transfer_failure"])
    page = rng.choice(list(PAGE_FEATURES)) if kind == "page_view" else None
    row = {"customer_id": customer, "ts": ts, "event_type": kind, "page": page}
    return f"a{k}", "app_events", row


def latencies(
    call: Callable[[Any], object], args: Sequence[Any], baseline: Callable[[], object]
) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds per call, and per baseline call made just before each one.

    Interleaving the two exposes both to the same moments of CPU contention (this machine is
    shared), so their ratio is fair even when the absolute tail is not.
    """
    for a in args[: min(500, len(args))]:  # warm up connections and caches
        baseline()
        call(a)
    ours, base = np.empty(len(args)), np.empty(len(args))
    # As a service does after start-up, keep the long-lived heap out of the collector's scans
    # (gc.freeze); the collector still runs for the objects each call creates.
    gc.collect()
    gc.freeze()
    try:
        for i, a in enumerate(args):
            t0 = time.perf_counter()
            baseline()
            t1 = time.perf_counter()
            call(a)
            t2 = time.perf_counter()
            base[i], ours[i] = t1 - t0, t2 - t1
    finally:
        gc.unfreeze()
    return ours * 1e3, base * 1e3


def row(label: str, ms: np.ndarray, baseline: np.ndarray) -> str:
    p50, p99, top = np.percentile(ms, 50), np.percentile(ms, 99), ms.max()
    b50, b99 = np.percentile(baseline, 50), np.percentile(baseline, 99)
    return (
        f"  {label:<30} p50 {p50:7.3f}  p99 {p99:7.3f}  max {top:7.3f} ms"
        f"  | baseline p50 {b50:6.3f} p99 {b99:6.3f} | ratio p50 {p50 / b50:6.1f}x"
        f" p99 {p99 / b99:5.1f}x"
    )


def bench_backend(
    name: str,
    store: OnlineFeatureStore,
    table: pa.Table,
    args: argparse.Namespace,
    baseline: Callable[[], object],
) -> None:
    n = table.num_rows
    t0 = time.perf_counter()
    store.load(table)
    seconds = time.perf_counter() - t0
    print(f"{name}: load {n:,} customers x {table.num_columns - 2} features in {seconds:.1f} s")
    rng = random.Random(args.seed)
    ids = [rng.randint(1, n) for _ in range(args.gets)]
    print(row("get (no events)", *latencies(store.get, ids, baseline)))
    events = [random_event(rng, n, k) for k in range(args.events)]
    print(row("apply_event", *latencies(lambda e: store.apply_event(*e), events, baseline)))
    touched = [e[2]["customer_id"] for e in events]
    print(row("get (customers with events)", *latencies(store.get, touched, baseline)))
    batches = [[rng.randint(1, n) for _ in range(100)] for _ in range(max(args.gets // 100, 50))]
    print(row("get_many (100 customers)", *latencies(store.get_many, batches, baseline)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--gets", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--backends", default="memory,redis")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    table = synthetic_features(args.customers, args.seed)
    seconds = time.perf_counter() - t0
    print(
        f"synthetic snapshot: {table.num_rows:,} customers, {table.num_columns - 2} features, "
        f"{table.nbytes / 1e9:.2f} GB as Arrow, built in {seconds:.1f} s"
    )
    backends = args.backends.split(",")
    rng = random.Random(args.seed + 1)

    if "memory" in backends:
        lookup = {i: (i, float(i)) for i in range(1, args.customers + 1)}
        keys = itertools.cycle([rng.randint(1, args.customers) for _ in range(10_000)])
        print("memory baseline: a raw dict lookup of a random customer in a dict of all of them")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        bench_backend("memory", MemoryOnlineStore(), table, args, lambda: lookup.get(next(keys)))
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024**2
        print(f"  peak memory grew by {rss:.2f} GB")
        del lookup

    if "redis" in backends:
        import redis

        client = redis.Redis.from_url(args.redis_url)
        prefix = f"qianmian:bench:{uuid.uuid4().hex[:8]}"
        small = f"{prefix}:small"
        client.set(small, b"0123456789")
        print("redis baseline: a raw redis-py GET of a 10-byte key (same server, own client)")
        used0 = int(client.info("memory")["used_memory"])
        store = RedisOnlineStore(args.redis_url, key_prefix=prefix)
        try:
            bench_backend("redis", store, table, args, lambda: client.get(small))
            used = (int(client.info("memory")["used_memory"]) - used0) / 1e9
            print(f"  Redis memory grew by {used:.2f} GB")
        finally:
            keys = []
            for k in client.scan_iter(match=f"{prefix}:*", count=10_000):
                keys.append(k)
                if len(keys) >= 10_000:
                    client.unlink(*keys)
                    keys.clear()
            if keys:
                client.unlink(*keys)
            store.close()


if __name__ == "__main__":
    main()
