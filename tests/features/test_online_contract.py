"""The OnlineFeatureStore contract: one test body per behaviour, run against every backend.

The Redis backend needs a real Redis at 127.0.0.1:6379 (or ``QIANMIAN_TEST_REDIS_URL``). If none
answers, the session tries to start the local server; if it still cannot connect, every Redis
test fails with the reason — a missing Redis never passes as a skipped test.
"""

from __future__ import annotations

import gc
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from qianmian.config import load_settings
from qianmian.errors import StoreError, ValidationError
from qianmian.features.catalogue import CATEGORY_SLUGS, PAGE_FEATURES
from qianmian.features.engine import StoreFeatureEngine
from qianmian.features.online import MemoryOnlineStore, OnlineFeatureStore
from qianmian.features.online.redis import RedisOnlineStore

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.integration)]

AS_OF = datetime(2026, 8, 1)  # the feature_table fixture's as_of
# Events fall between AS_OF and LATER; the batch rebuilt at LATER must then equal the online
# vector for customers none of whose old rows leave a window in those 13 hours.
LATER = datetime(2026, 8, 1, 13)
EVENT_CUSTOMERS = 10
OnlineFactory = Callable[[], OnlineFeatureStore]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def open_online(request: pytest.FixtureRequest) -> Iterator[OnlineFactory]:
    """Open a handle on one fresh online store: every call reaches the same stored vectors
    (for Redis a new client each time, as another serving process would)."""
    opened: list[OnlineFeatureStore] = []
    shared = MemoryOnlineStore()

    def open_store() -> OnlineFeatureStore:
        if request.param == "memory":
            return shared
        store = RedisOnlineStore(
            request.getfixturevalue("redis_url"), key_prefix=request.getfixturevalue("redis_prefix")
        )
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def online(open_online: OnlineFactory) -> OnlineFeatureStore:
    """An empty online store of each backend in turn."""
    return open_online()


@pytest.fixture(scope="session")
def events_and_later_batch(
    feature_workspace: Path, feature_table: pa.Table, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[int, dict[str, Any]]]:
    """Events after AS_OF for a few customers, and their batch features rebuilt at LATER on a
    copy of the bank with those events appended (the original store is never written)."""
    snapshot = {r["customer_id"]: r for r in feature_table.to_pylist()}
    rng = np.random.default_rng(7)
    candidates = sorted(rng.choice(sorted(snapshot), 300, replace=False).tolist())
    tables = [
        "customers",
        "transactions",
        "app_events",
        "holdings",
        "statements",
        "loans",
        "contacts",
        "responses",
    ]
    with load_settings(feature_workspace).build_store() as bank:
        unchanged = StoreFeatureEngine(bank).build(LATER, customers=candidates).to_pylist()
        # customers whose vectors do not move between AS_OF and LATER without new events
        stable = [
            r["customer_id"]
            for r in unchanged
            if _features(r) == _features(snapshot[r["customer_id"]])
        ]
        chosen = _pick(stable, snapshot)
        id_list = ", ".join(map(str, chosen))
        rows = {
            t: bank.query(f"SELECT * FROM {t} WHERE customer_id IN ({id_list})") for t in tables
        }
        next_txn = bank.query("SELECT max(txn_id) AS m FROM transactions").column("m")[0].as_py()
        next_app = bank.query("SELECT max(event_id) AS m FROM app_events").column("m")[0].as_py()
    events = _events(chosen, next_txn + 1, next_app + 1, random.Random(11))
    with load_settings(tmp_path_factory.mktemp("online-later")).build_store() as copy:
        for t, data in rows.items():
            copy.write(t, data, mode="replace")
        for source in ("transactions", "app_events"):
            copy.write(source, pa.Table.from_pylist([e for _, s, e in events if s == source]))
        later = StoreFeatureEngine(copy).build(LATER, customers=chosen)
    return events, {r["customer_id"]: _features(r) for r in later.to_pylist()}


def _features(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("customer_id", "as_of")}


def _pick(stable: list[int], snapshot: dict[int, dict[str, Any]]) -> list[int]:
    """Stable customers with spend, plus one without any spend and one who never logs in."""
    assert len(stable) >= 3 * EVENT_CUSTOMERS, f"only {len(stable)} stable customers"
    idle = [c for c in stable if snapshot[c]["spend_90d"] == 0]
    no_login = [c for c in stable if snapshot[c]["logins_90d"] == 0]
    spenders = [c for c in stable if snapshot[c]["spend_90d"] > 0]
    return sorted({*idle[:1], *no_login[:1], *spenders[: EVENT_CUSTOMERS - 2]})


def _events(
    customers: list[int], txn_id: int, app_id: int, rng: random.Random
) -> list[tuple[str, str, dict[str, Any]]]:
    """(event id, source, row) for each customer: transactions of every kind, app events."""
    out = []
    cats, pages = list(CATEGORY_SLUGS), list(PAGE_FEATURES)
    for c in customers:
        for _ in range(rng.randint(3, 12)):
            ts = AS_OF + timedelta(minutes=rng.randint(5, 12 * 60 + 55))
            row = {
                "txn_id": txn_id,
                "customer_id": c,
                "ts": ts,
                "amount": round(rng.lognormvariate(5, 1.2), 2),
                "category": rng.choice(cats),
                "channel": rng.choice(["POS", "online", "QR"]),
            }
            out.append((f"txn-{txn_id}", "transactions", row))
            txn_id += 1
        for _ in range(rng.randint(2, 15)):
            ts = AS_OF + timedelta(minutes=rng.randint(5, 12 * 60 + 55))
            kind = rng.choice(["login", "page_view", "page_view", "search", "transfer_failure"])
            row = {
                "event_id": app_id,
                "customer_id": c,
                "ts": ts,
                "event_type": kind,
                "page": rng.choice(pages) if kind == "page_view" else None,
            }
            out.append((f"app-{app_id}", "app_events", row))
            app_id += 1
    rng.shuffle(out)  # the stream does not deliver in time order
    return out


def assert_vectors_equal(actual: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    assert actual is not None
    assert actual.keys() == expected.keys()
    wrong = {
        k: (actual[k], v)
        for k, v in expected.items()
        if not (
            math.isclose(actual[k], v, rel_tol=1e-9, abs_tol=1e-9)
            if isinstance(v, float) and isinstance(actual[k], float)
            else actual[k] == v and type(actual[k]) is type(v)
        )
    }
    assert not wrong, f"(online, batch) differ: {wrong}"


def small_table(n: int, value: float, as_of: datetime, start: int = 1) -> pa.Table:
    """``n`` customers whose every feature equals ``value``."""
    ids = pa.array(range(start, start + n), pa.int64())
    cols = {"spend_7d": value, "spend_30d": value, "spend_90d": value, "monetary_90d": value}
    return pa.table(
        {
            "customer_id": ids,
            "as_of": pa.array([as_of] * n, pa.timestamp("us")),
            **{k: pa.array(np.full(n, v)) for k, v in cols.items()},
        }
    )


def txn(customer: int, amount: float, minutes: int = 30, **extra: Any) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "ts": AS_OF + timedelta(minutes=minutes),
        "amount": amount,
        "category": "餐饮",
        "channel": "QR",
        **extra,
    }


# -- load and get ------------------------------------------------------------------------------


def test_get_returns_the_batch_row_for_every_customer(
    online: OnlineFeatureStore, feature_table: pa.Table
) -> None:
    assert online.load(feature_table) == feature_table.num_rows
    rows = feature_table.to_pylist()

    got = online.get_many([r["customer_id"] for r in rows])

    assert got == [_features(r) for r in rows]  # exact: values, types and None
    assert online.get(rows[17]["customer_id"]) == _features(rows[17])
    assert online.as_of() == AS_OF


def test_read_gives_the_vector_and_its_snapshot_time_together(
    online: OnlineFeatureStore, feature_table: pa.Table
) -> None:
    assert online.read(1) == (None, None)  # nothing loaded yet
    online.load(feature_table)
    row = feature_table.to_pylist()[5]
    assert online.read(row["customer_id"]) == (_features(row), AS_OF)
    assert online.read(-5) == (None, AS_OF)


def test_unknown_customer_is_none(online: OnlineFeatureStore, feature_table: pa.Table) -> None:
    online.load(feature_table)
    known = feature_table.column("customer_id")[0].as_py()

    assert online.get(-5) is None
    assert [v is None for v in online.get_many([known, -5, 10**12])] == [False, True, True]
    assert online.apply_event("e1", "transactions", txn(-5, 10.0)) == "unknown_customer"
    assert online.get(-5) is None


def test_an_empty_store_serves_nothing(online: OnlineFeatureStore) -> None:
    assert online.as_of() is None
    assert online.get(1) is None
    assert online.get_many([1, 2]) == [None, None]
    assert online.apply_event("e1", "transactions", txn(1, 10.0)) == "no_snapshot"


# -- events ------------------------------------------------------------------------------------


def test_events_give_the_batch_features_recomputed_later(
    online: OnlineFeatureStore, feature_table: pa.Table, events_and_later_batch: Any
) -> None:
    events, later = events_and_later_batch
    online.load(feature_table)
    before = {c: online.get(c) for c in later}

    outcomes = {online.apply_event(eid, source, row) for eid, source, row in events}

    assert outcomes == {"applied"}
    for customer, expected in later.items():
        assert_vectors_equal(online.get(customer), expected)
    moved = {k for c in later for k, v in later[c].items() if before[c][k] != v}
    assert len(moved) > 60, f"the events moved only {sorted(moved)}"


def test_apply_events_equals_applying_them_one_by_one(
    online: OnlineFeatureStore,
    feature_table: pa.Table,
    events_and_later_batch: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("qianmian.features.online.redis.APPLY_BATCH", 50)  # several script calls
    events, later = events_and_later_batch
    known = next(iter(later))
    batch = [
        *events[:40],
        events[3],  # redelivered within the batch
        ("gone", "transactions", txn(-5, 10.0)),
        ("old", "transactions", txn(known, 50.0, minutes=-1)),
        *events[40:],
        events[-1],
    ]
    reference = MemoryOnlineStore()
    reference.load(feature_table)
    expected = [reference.apply_event(*item) for item in batch]
    online.load(feature_table)

    outcomes = online.apply_events(batch)

    assert outcomes == expected
    assert outcomes.count("applied") == len(events)
    assert {"duplicate", "unknown_customer", "before_snapshot"} <= set(outcomes)
    for customer, expected_vector in later.items():
        assert_vectors_equal(online.get(customer), expected_vector)
    assert online.apply_events(events[:5]) == ["duplicate"] * 5
    assert online.apply_events([]) == []


def test_apply_events_refuses_a_bad_batch_whole(
    online: OnlineFeatureStore, feature_table: pa.Table
) -> None:
    assert online.apply_events([("e1", "transactions", txn(1, 5.0))]) == ["no_snapshot"]
    online.load(feature_table)
    customer = feature_table.column("customer_id")[2].as_py()
    base = online.get(customer)
    batch = [
        ("good", "transactions", txn(customer, 70.0)),
        ("bad", "transactions", {**txn(1, 1.0), "ts": None}),
    ]

    with pytest.raises(ValidationError, match=r"Event bad .* needs its time"):
        online.apply_events(batch)  # type: ignore[arg-type]

    assert online.get(customer) == base
    assert online.apply_events(batch[:1]) == ["applied"]


def test_a_repeated_event_id_is_applied_once(
    online: OnlineFeatureStore, feature_table: pa.Table
) -> None:
    online.load(feature_table)
    customer = feature_table.column("customer_id")[3].as_py()
    base = online.get(customer)
    assert base is not None

    first = online.apply_event("42", "transactions", txn(customer, 80.0))
    again = online.apply_event("42", "transactions", txn(customer, 80.0))
    as_int = online.apply_event(42, "transactions", txn(customer, 80.0))  # same text id

    assert (first, again, as_int) == ("applied", "duplicate", "duplicate")
    got = online.get(customer)
    assert got is not None
    assert got["txn_count_7d"] == base["txn_count_7d"] + 1
    assert got["spend_7d"] == pytest.approx(base["spend_7d"] + 80.0)


def test_events_before_the_snapshot_are_left_to_the_batch(
    online: OnlineFeatureStore, feature_table: pa.Table
) -> None:
    online.load(feature_table)
    customer = feature_table.column("customer_id")[5].as_py()
    base = online.get(customer)

    outcome = online.apply_event("old", "transactions", txn(customer, 50.0, minutes=-1))

    assert outcome == "before_snapshot"
    assert online.get(customer) == base


def test_concurrent_events_lose_no_increment(
    open_online: OnlineFactory, feature_table: pa.Table
) -> None:
    open_online().load(feature_table)
    customers = feature_table.column("customer_id").to_pylist()[:2]
    base = {c: open_online().get(c) for c in customers}
    threads, per_thread = 8, 150
    errors: list[BaseException] = []

    def send(k: int) -> None:
        store = open_online()  # a handle per thread (a client per thread for Redis)
        try:
            for i in range(per_thread):
                c = customers[i % 2]
                event = txn(c, 0.5, minutes=1 + i, channel="online")
                assert store.apply_event(f"t{k}-{i}", "transactions", event) == "applied"
                store.apply_event(f"t{k}-{i}", "transactions", event)  # redelivered: no effect
        except BaseException as e:  # surfaced below, in the test's thread
            errors.append(e)

    pool = [threading.Thread(target=send, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()

    assert not errors, errors[0]
    for c in customers:
        got, b = open_online().get(c), base[c]
        assert got is not None and b is not None
        n = threads * per_thread // 2
        assert got["txn_count_7d"] == b["txn_count_7d"] + n
        assert got["frequency_365d"] == b["frequency_365d"] + n
        assert got["spend_7d"] == b["spend_7d"] + 0.5 * n  # halves add exactly
        assert got["spend_dining_90d"] == b["spend_dining_90d"] + 0.5 * n


# -- reload ------------------------------------------------------------------------------------


def test_reload_switches_atomically(open_online: OnlineFactory) -> None:
    old, new = small_table(500, 1.0, AS_OF), small_table(500, 2.0, AS_OF + timedelta(days=1))
    writer = open_online()
    writer.load(old)
    assert writer.apply_event("e1", "transactions", txn(1, 5.0)) == "applied"
    stop, seen, mixed = threading.Event(), set(), []

    def read() -> None:
        store, rng = open_online(), random.Random(1)
        while not stop.is_set():
            for v in store.get_many(rng.sample(range(2, 501), 20)):
                assert v is not None
                values = set(v.values())
                seen.update(values)
                if len(values) != 1:
                    mixed.append(v)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for table in (new, old, new, old, new):
        writer.load(table)
    stop.set()
    for t in readers:
        t.join()

    assert not mixed, f"a reader saw a vector from two snapshots: {mixed[0]}"
    assert seen == {1.0, 2.0}
    assert writer.as_of() == AS_OF + timedelta(days=1)
    assert open_online().get(1) == {
        k: 2.0 for k in ("spend_7d", "spend_30d", "spend_90d", "monetary_90d")
    }  # old events dropped
    assert writer.apply_event("e1", "transactions", txn(1, 5.0)) == "before_snapshot"


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda t: t.drop_columns(["customer_id"]), "no 'customer_id' column"),
        (lambda t: pa.concat_tables([t, t.slice(0, 1)]), "more than one row for customer_id"),
        (
            lambda t: small_table(3, 1.0, AS_OF).set_column(
                1, "as_of", pa.array([AS_OF, AS_OF, LATER], pa.timestamp("us"))
            ),
            "one non-empty as_of",
        ),
        (lambda t: t.append_column("tags", pa.array([[1]] * t.num_rows)), "'tags' has type"),
        (lambda t: t.slice(0, 0), "empty"),
    ],
)
def test_a_bad_table_is_refused_and_the_snapshot_kept(
    online: OnlineFeatureStore, change: Callable[[pa.Table], pa.Table], pattern: str
) -> None:
    good = small_table(3, 1.0, AS_OF)
    online.load(good)

    with pytest.raises(ValidationError, match=pattern):
        online.load(change(good))

    assert online.get(2) == {
        "spend_7d": 1.0,
        "spend_30d": 1.0,
        "spend_90d": 1.0,
        "monetary_90d": 1.0,
    }


@pytest.mark.parametrize(
    ("source", "event", "pattern"),
    [
        ("loans", txn(1, 5.0), "source 'loans'"),
        ("transactions", {"customer_id": 1, "amount": 5.0}, "needs its time"),
        ("transactions", {**txn(1, 5.0), "ts": "yesterday"}, "not a time"),
        ("transactions", {**txn(1, 5.0), "customer_id": None}, "must be an integer"),
        ("transactions", {**txn(1, 5.0), "amount": float("nan")}, "finite number"),
        ("transactions", {**txn(1, 5.0), "amount": "5"}, "finite number"),
    ],
)
def test_a_bad_event_is_a_clear_error(
    online: OnlineFeatureStore, source: str, event: dict[str, Any], pattern: str
) -> None:
    online.load(small_table(3, 1.0, AS_OF))

    with pytest.raises(ValidationError, match=pattern):
        online.apply_event("e1", source, event)  # type: ignore[arg-type]


# -- latency -----------------------------------------------------------------------------------


def test_get_p99_is_under_2_ms(online: OnlineFeatureStore, feature_table: pa.Table) -> None:
    online.load(feature_table)
    ids = feature_table.column("customer_id").to_pylist()
    for i, c in enumerate(ids[:500]):  # some customers have events since as_of
        online.apply_event(f"e{i}", "transactions", txn(c, 12.5))
    rng = random.Random(3)
    sample = [rng.choice(ids) for _ in range(2_000)]
    for c in sample[:200]:  # warm up connections and caches
        online.get(c)

    def p99_ms() -> float:
        times = []
        for c in sample:
            t0 = time.perf_counter()
            online.get(c)
            times.append(time.perf_counter() - t0)
        return float(np.percentile(times, 99)) * 1e3

    # Best of five rounds: the guard is for the code, not for a neighbour's burst of CPU. The
    # test session's own heap (the simulated bank) is frozen out of the collector's scans, as a
    # service does after start-up (gc.freeze); the collector still runs for new objects.
    gc.collect()
    gc.freeze()
    try:
        rounds = []
        for _ in range(5):
            rounds.append(p99_ms())
            if rounds[-1] < 2.0:
                break
    finally:
        gc.unfreeze()
    assert min(rounds) < 2.0, f"p99 of get is {min(rounds):.3f} ms (rounds: {rounds})"


# -- Redis only --------------------------------------------------------------------------------


def test_redis_down_is_a_store_error_naming_the_url() -> None:
    store = RedisOnlineStore("redis://user:secret@127.0.0.1:1/0", timeout_seconds=0.5)

    with pytest.raises(StoreError, match=r"redis://\*\*\*@127\.0\.0\.1:1/0 cannot be reached"):
        store.get(1)
    with pytest.raises(StoreError, match="cannot be reached") as caught:
        store.load(small_table(2, 1.0, AS_OF))
    assert "secret" not in str(caught.value)
    assert isinstance(caught.value, ConnectionError)


@pytest.mark.integration
def test_redis_keeps_only_the_served_version(redis_url: str, redis_prefix: str) -> None:
    import redis

    store = RedisOnlineStore(redis_url, key_prefix=redis_prefix)
    store.load(small_table(50, 1.0, AS_OF))
    store.apply_event("e1", "transactions", txn(3, 5.0))
    store.load(small_table(40, 2.0, AS_OF))

    client = redis.Redis.from_url(redis_url)
    keys = {k.decode() for k in client.scan_iter(match=f"{redis_prefix}:*")}
    versions = {k.split(":")[2] for k in keys if k.split(":")[2].startswith("v")}
    assert versions == {f"v{client.get(f'{redis_prefix}:current').decode()}"}
    assert len(keys) == 40 + 3  # vectors, meta, current, seq
    store.close()
