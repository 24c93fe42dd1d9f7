"""One contract for every event bus: the same tests on the in-process bus and on Redis Streams."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from qianmian.errors import ConfigError, StoreError, ValidationError
from qianmian.stream.bus import open_event_bus
from qianmian.stream.bus.base import Delivery, EventBus
from qianmian.stream.bus.memory import MemoryEventBus
from qianmian.stream.bus.redis import RedisEventBus
from qianmian.stream.configs import MemoryBusConfig, RedisBusConfig

RECLAIM_MS = 200
OpenBus = Callable[..., EventBus]


def events(n: int, start: int = 0, prefix: str = "e") -> list[dict[str, Any]]:
    return [
        {"type": "login", "event_id": f"{prefix}-{i}", "customer_id": 1 + i, "ts": "2026-11-11"}
        for i in range(start, start + n)
    ]


def ids_of(deliveries: list[Delivery]) -> list[str]:
    return [d.event["event_id"] for d in deliveries]


def order_key(message_id: str) -> tuple[int, int]:
    ms, seq = message_id.split("-")
    return int(ms), int(seq)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def open_bus(request: pytest.FixtureRequest) -> Iterator[OpenBus]:
    """Opens the bus as a process would: the in-process bus is one object (shared by the
    process's threads); each Redis bus is a new client of the same stream, like a new process."""
    opened: list[EventBus] = []

    def open_(reclaim_idle_ms: int = 30_000) -> EventBus:
        bus: EventBus
        if request.param == "memory":
            if opened:
                return opened[0]
            bus = MemoryEventBus(reclaim_idle_ms=reclaim_idle_ms)
        else:
            bus = RedisEventBus(
                request.getfixturevalue("redis_url"),
                key_prefix=request.getfixturevalue("redis_prefix"),
                reclaim_idle_ms=reclaim_idle_ms,
            )
        opened.append(bus)
        return bus

    yield open_
    for bus in opened:
        bus.close()


def test_publish_read_ack_in_order(open_bus: OpenBus) -> None:
    bus = open_bus()
    ids = bus.publish(events(5))
    assert len(set(ids)) == 5 and ids == sorted(ids, key=order_key)
    first = bus.read("c1", count=3, block_ms=0)
    assert [d.message_id for d in first] == ids[:3]
    assert ids_of(first) == ["e-0", "e-1", "e-2"]
    assert first[0].event == events(1)[0] and {d.attempts for d in first} == {1}
    rest = bus.read("c1", count=10, block_ms=0)
    assert [d.message_id for d in rest] == ids[3:]
    assert bus.read("c1", block_ms=0) == []
    assert bus.ack(ids[:2]) == 2
    assert bus.ack(ids) == 3  # the first two were done with already
    assert bus.ack(ids) == 0  # acknowledging twice changes nothing
    assert bus.ack(["999999-0"]) == 0
    assert bus.status().pending == 0


def test_an_empty_read_waits_and_a_publish_wakes_it(open_bus: OpenBus) -> None:
    bus = open_bus()
    started = time.monotonic()
    assert bus.read("c1", block_ms=150) == []
    assert time.monotonic() - started >= 0.12
    publisher = threading.Timer(0.1, lambda: open_bus().publish(events(1)))
    publisher.start()
    started = time.monotonic()
    got = bus.read("c1", block_ms=1500)
    publisher.join()
    assert ids_of(got) == ["e-0"]
    assert time.monotonic() - started < 1.2


def test_a_dead_consumers_messages_go_to_another_after_the_idle_time(open_bus: OpenBus) -> None:
    dying = open_bus(RECLAIM_MS)
    ids = dying.publish(events(5))
    held = dying.read("dies", count=3, block_ms=0)  # read, never acknowledged
    assert ids_of(held) == ["e-0", "e-1", "e-2"]
    survivor = open_bus(RECLAIM_MS)
    early = survivor.read("lives", count=1, block_ms=0)
    assert ids_of(early) == ["e-3"]  # the held ones are not idle yet: only new ones
    survivor.ack([early[0].message_id])
    time.sleep(RECLAIM_MS / 1000 + 0.05)
    got = survivor.read("lives", count=10, block_ms=0)
    # reclaimed first (in id order, second delivery), then what was never delivered
    assert [(d.message_id, d.attempts) for d in got] == [
        (ids[0], 2),
        (ids[1], 2),
        (ids[2], 2),
        (ids[4], 1),
    ]
    assert ids_of(got) == ["e-0", "e-1", "e-2", "e-4"]
    status = survivor.status()
    assert status.pending == 4 and status.consumers == {"dies": 0, "lives": 4}
    assert survivor.ack(ids) == 4
    assert survivor.status().pending == 0


def test_reclaim_respects_count_and_counts_every_delivery(open_bus: OpenBus) -> None:
    bus = open_bus(RECLAIM_MS)
    ids = bus.publish(events(4))
    assert len(bus.read("a", count=4, block_ms=0)) == 4
    time.sleep(RECLAIM_MS / 1000 + 0.05)
    assert [(d.message_id, d.attempts) for d in bus.read("b", count=3, block_ms=0)] == [
        (i, 2) for i in ids[:3]
    ]
    assert [(d.message_id, d.attempts) for d in bus.read("b", count=3, block_ms=0)] == [(ids[3], 2)]
    time.sleep(RECLAIM_MS / 1000 + 0.05)  # "b" died too: a third delivery
    again = bus.read("c", count=10, block_ms=0)
    assert sorted((d.message_id, d.attempts) for d in again) == [(i, 3) for i in ids]


def test_the_processed_ledger(open_bus: OpenBus) -> None:
    bus = open_bus()
    assert bus.processed(["a", "b"]) == [False, False]
    assert bus.processed([]) == []
    bus.mark_processed(["a", "b"])
    bus.mark_processed(["b"])  # marking again changes nothing
    bus.mark_processed([])
    assert bus.processed(["a", "x", "b", "a"]) == [True, False, True, True]
    assert open_bus().processed(["a"]) == [True]  # every process sees the same ledger
    assert bus.status().processed == 2
    many = [f"id-{i}" for i in range(2_500)]  # more than one round trip's batch
    bus.mark_processed(many)
    assert bus.processed(many) == [True] * 2_500


def test_dead_letters_keep_the_event_and_the_reason(open_bus: OpenBus) -> None:
    bus = open_bus()
    bus.publish(events(3))
    first, second, _ = bus.read("c1", block_ms=0)
    bus.dead_letter([(first, "event login: 'customer_id' must be greater than 0; got 0")])
    bus.dead_letter([(second, "customer 2 is unknown")])
    bus.dead_letter([])
    bus.ack([first.message_id, second.message_id])  # dead letters outlive acknowledgement
    letters = bus.dead_letters()
    assert [(x.message_id, x.event, x.reason) for x in letters] == [
        (second.message_id, second.event, "customer 2 is unknown"),
        (first.message_id, first.event, "event login: 'customer_id' must be greater than 0; got 0"),
    ]
    now = datetime.now(timezone(timedelta(hours=8))).replace(tzinfo=None)
    assert all(abs(x.ts - now) < timedelta(minutes=1) for x in letters)  # naive China time
    assert [x.message_id for x in bus.dead_letters(limit=1)] == [second.message_id]
    assert bus.dead_letters(limit=0) == []
    assert bus.status().dead_letters == 2


def test_status_numbers(open_bus: OpenBus) -> None:
    bus = open_bus()
    empty = bus.status()
    assert (empty.length, empty.lag, empty.pending, empty.dead_letters, empty.processed) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert empty.consumers == {}
    ids = bus.publish(events(10))
    assert bus.status().lag == 10
    bus.read("a", count=4, block_ms=0)
    bus.read("b", count=3, block_ms=0)
    bus.ack(ids[:2])
    bus.mark_processed(["e-0", "e-1"])
    status = bus.status()
    assert (status.length, status.lag, status.pending, status.processed) == (10, 3, 5, 2)
    assert status.consumers == {"a": 2, "b": 3}


def test_deliveries_are_copies(open_bus: OpenBus) -> None:
    bus = open_bus(RECLAIM_MS)
    source = events(1)
    bus.publish(source)
    source[0]["customer_id"] = -1  # the caller's dict changes after publishing
    delivery = bus.read("a", block_ms=0)[0]
    assert delivery.event["customer_id"] == 1
    delivery.event["customer_id"] = -2  # the consumer's copy changes
    time.sleep(RECLAIM_MS / 1000 + 0.05)
    assert bus.read("b", block_ms=0)[0].event["customer_id"] == 1


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([{"event_id": "a", "tags": {"set", "of", "tags"}}], "Event 0 .* as JSON"),
        ([{"event_id": "a"}, "not a dict"], "Event 1 of the batch is a str"),
        ({"event_id": "a"}, "a list of events"),
    ],
)
def test_bad_batches_are_refused_whole(open_bus: OpenBus, batch: Any, message: str) -> None:
    bus = open_bus()
    with pytest.raises(ValidationError, match=message):
        bus.publish(batch)
    assert bus.status().length == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"count": 0}, "count"), ({"block_ms": -1}, "block_ms"), ({"count": True}, "count")],
)
def test_bad_read_arguments(open_bus: OpenBus, kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' parameter of EventBus.read"):
        open_bus().read("c1", **kwargs)
    with pytest.raises(ConfigError, match="'consumer' parameter"):
        open_bus().read(" ")


def test_concurrent_publishers_are_delivered_exactly_once(open_bus: OpenBus) -> None:
    publishers, batches, size = 4, 5, 50
    start = threading.Barrier(publishers)
    published: list[list[str]] = [[] for _ in range(publishers)]

    def publish(p: int) -> None:
        bus = open_bus()
        start.wait()
        for b in range(batches):
            published[p] += bus.publish(events(size, b * size, prefix=f"p{p}"))

    threads = [threading.Thread(target=publish, args=(p,)) for p in range(publishers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [m for ids in published for m in ids]
    assert len(set(all_ids)) == publishers * batches * size
    assert all(ids == sorted(ids, key=order_key) for ids in published)  # each in its order

    delivered: list[list[Delivery]] = [[], []]

    def consume(c: int) -> None:
        bus = open_bus()
        while batch := bus.read(f"consumer-{c}", count=64, block_ms=0):
            delivered[c] += batch
            bus.ack([d.message_id for d in batch])

    consumers = [threading.Thread(target=consume, args=(c,)) for c in range(2)]
    for t in consumers:
        t.start()
    for t in consumers:
        t.join()
    got = [d.event["event_id"] for part in delivered for d in part]
    expected = {f"p{p}-{i}" for p in range(publishers) for i in range(batches * size)}
    assert len(got) == len(expected) and set(got) == expected  # each once
    assert all(d.attempts == 1 for part in delivered for d in part)
    status = open_bus().status()
    assert (status.pending, status.lag, status.length) == (0, 0, len(expected))


def test_open_event_bus_builds_the_configured_backend() -> None:
    assert isinstance(open_event_bus(MemoryBusConfig()), MemoryEventBus)


# -- backend specifics ---------------------------------------------------------------------------


def test_memory_forgets_only_acknowledged_messages_beyond_its_length() -> None:
    bus = MemoryEventBus(max_length=3)
    ids = bus.publish(events(5))
    assert bus.status().length == 5  # none acknowledged: all kept
    first = bus.read("c1", count=4, block_ms=0)
    bus.ack([d.message_id for d in first[:2]])
    assert bus.status().length == 3  # e-0 and e-1 forgotten
    bus.ack([d.message_id for d in first[2:]])
    assert bus.status().length == 3  # still the length allowed
    assert ids_of(bus.read("c1", block_ms=0)) == ["e-4"]
    assert bus.ack(ids) == 1


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"reclaim_idle_ms": -1}, "reclaim_idle_ms"), ({"max_length": 0}, "max_length")],
)
@pytest.mark.parametrize("backend", [MemoryEventBus, RedisEventBus])
def test_bad_backend_parameters(backend: type, kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' parameter of {backend.__name__}"):
        backend(**kwargs)


@pytest.mark.integration
def test_redis_from_config(redis_url: str, redis_prefix: str) -> None:
    config = RedisBusConfig(
        type="redis", url=redis_url, key_prefix=redis_prefix, group="g1", max_length=2_000
    )
    with open_event_bus(config) as bus:
        assert isinstance(bus, RedisEventBus)
        assert (bus.group, bus.max_length, bus.reclaim_idle_ms) == ("g1", 2_000, 30_000)
        bus.publish(events(1))
        assert ids_of(bus.read("c1", block_ms=0)) == ["e-0"]


@pytest.mark.integration
def test_redis_errors_name_the_url_without_its_password() -> None:
    bus = RedisEventBus("redis://qm:s3cret@127.0.0.1:1/0", timeout_seconds=0.2)
    for call in (
        lambda: bus.publish(events(1)),
        lambda: bus.read("c1"),
        lambda: bus.status(),
        lambda: bus.processed(["a"]),
    ):
        with pytest.raises(StoreError) as info:
            call()
        assert "s3cret" not in str(info.value) and "127.0.0.1:1" in str(info.value)


@pytest.mark.integration
def test_redis_recreates_the_group_after_the_stream_is_deleted(
    redis_url: str, redis_prefix: str
) -> None:
    import redis

    bus = RedisEventBus(redis_url, key_prefix=redis_prefix)
    bus.publish(events(2))
    assert len(bus.read("c1", block_ms=0)) == 2
    redis.Redis.from_url(redis_url).delete(f"{redis_prefix}:events")  # a flush
    bus.publish(events(1, start=7))
    assert ids_of(bus.read("c1", block_ms=0)) == ["e-7"]


@pytest.mark.integration
def test_redis_lag_is_counted_when_redis_cannot_tell(redis_url: str, redis_prefix: str) -> None:
    import redis

    bus = RedisEventBus(redis_url, key_prefix=redis_prefix)
    ids = bus.publish(events(6))
    bus.read("c1", count=2, block_ms=0)
    client = redis.Redis.from_url(redis_url)
    client.xdel(f"{redis_prefix}:events", ids[4])  # a hole after the last delivered entry
    assert client.xinfo_groups(f"{redis_prefix}:events")[0]["lag"] is None
    assert bus.status().lag == 3


@pytest.mark.integration
def test_redis_keeps_an_entry_that_is_not_an_event(redis_url: str, redis_prefix: str) -> None:
    import redis

    bus = RedisEventBus(redis_url, key_prefix=redis_prefix)
    redis.Redis.from_url(redis_url).xadd(f"{redis_prefix}:events", {"e": b"not json"})
    (delivery,) = bus.read("c1", block_ms=0)
    assert delivery.event == {"_unreadable": "not json"}  # for the consumer to dead-letter
