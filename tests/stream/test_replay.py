"""Replay: the stored bank's events as stream events, in time order, published at a chosen speed."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from qianmian.config import load_settings
from qianmian.errors import ValidationError
from qianmian.store.base import Store
from qianmian.stream import replay as replay_module
from qianmian.stream.events import event_to_online, parse_event
from qianmian.stream.replay import count_simulated_events, replay, simulated_events
from qianmian.world import BANK_TABLES, World, WorldConfig

T0 = datetime(2026, 4, 20, 9, 0)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """400 customers over 4 months (read-only)."""
    ws = tmp_path_factory.mktemp("replay-bank")
    world = World.generate(WorldConfig(customers=400, months=4, seed=2), ws, workers=1)
    bank = load_settings(ws).build_store()
    for name in BANK_TABLES:
        bank.load_parquet(name, world.table_paths(name), mode="replace")
    yield bank
    bank.close()


class RecordingBus:
    """Records each publish call: the events and the (fake or real) clock's time."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.calls: list[tuple[float, list[str]]] = []
        self.clock = clock

    def publish(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        self.calls.append((self.clock(), [e["event_id"] for e in events]))
        return [str(i) for i in range(len(events))]


class FakeClock:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def paced(*offsets: float) -> list[dict[str, Any]]:
    return [
        {"event_id": f"e{i}", "ts": (T0 + timedelta(seconds=s)).isoformat()}
        for i, s in enumerate(offsets)
    ]


# -- simulated events --------------------------------------------------------------------------


def test_simulated_events_are_the_stored_rows_in_time_order(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "PAGE_ROWS", 37)  # many pages, ties across page edges
    start, end = datetime(2026, 2, 10), datetime(2026, 2, 16)

    events = list(simulated_events(store, start, end))

    params = {"s": start, "e": end}
    txns = store.query(
        "SELECT txn_id, amount, category FROM transactions WHERE ts >= $s AND ts < $e", params
    ).to_pylist()
    apps = store.query(
        "SELECT event_id, event_type, page, search_query FROM app_events WHERE ts >= $s "
        "AND ts < $e AND event_type IN ('login', 'page_view', 'search', 'transfer_failure')",
        params,
    ).to_pylist()
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids)) == len(txns) + len(apps) > 500
    assert set(ids) == {f"txn-{r['txn_id']}" for r in txns} | {f"app-{r['event_id']}" for r in apps}
    assert count_simulated_events(store, start, end) == len(events)
    times = [datetime.fromisoformat(e["ts"]) for e in events]
    assert times == sorted(times) and start <= times[0] and times[-1] < end
    assert {e["type"] for e in events} >= {"transaction", "login", "page_view", "search"}
    by_id = {f"txn-{r['txn_id']}": r for r in txns} | {f"app-{r['event_id']}": r for r in apps}
    for raw in events:  # every event is valid and counts as the stored row does
        source, row = event_to_online(parse_event(raw)) or (None, {})
        stored = by_id[raw["event_id"]]
        if source == "transactions":
            assert (row["amount"], row["category"]) == (stored["amount"], stored["category"])
        else:
            assert source == "app_events"
            got = (row["event_type"], row["page"], row["search_query"])
            assert got == (stored["event_type"], stored["page"], stored["search_query"])


def test_a_window_that_ends_before_it_starts_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match=r"ends .* before it starts"):
        list(simulated_events(store, datetime(2026, 2, 10), datetime(2026, 2, 10)))


# -- publishing --------------------------------------------------------------------------------


def test_speed_zero_publishes_in_batches_without_waiting() -> None:
    bus, clock, progress = RecordingBus(), FakeClock(), []
    events = paced(*range(0, 3600, 300))  # an hour of events

    n = replay(
        bus, events, speed=0, batch_size=5, clock=clock, sleep=clock.sleep, progress=progress.append
    )

    assert n == 12
    assert [ids for _, ids in bus.calls] == [
        [f"e{i}" for i in range(0, 5)],
        [f"e{i}" for i in range(5, 10)],
        ["e10", "e11"],
    ]
    assert progress == [5, 10, 12] and clock.slept == []


@pytest.mark.parametrize(
    ("speed", "offsets", "expected"),
    [
        # (published at, event ids): each event once its scaled time has come
        (1, (0, 0, 2, 5), [(0, ["e0", "e1"]), (2, ["e2"]), (5, ["e3"])]),
        (60, (0, 60, 90, 600), [(0, ["e0"]), (1, ["e1"]), (1.5, ["e2"]), (10, ["e3"])]),
        (60, (0, 10, 20), [(0, ["e0"]), (10 / 60, ["e1"]), (20 / 60, ["e2"])]),
    ],
)
def test_a_speed_paces_events_by_their_time(
    speed: float, offsets: tuple[float, ...], expected: list[tuple[float, list[str]]]
) -> None:
    clock = FakeClock()
    bus = RecordingBus(clock)

    replay(bus, paced(*offsets), speed=speed, clock=clock, sleep=clock.sleep)

    got = [(round(at - 100.0, 6), ids) for at, ids in bus.calls]
    assert got == [(round(t, 6), ids) for t, ids in expected]


def test_a_simulated_minute_takes_half_a_second_at_speed_120() -> None:
    bus = RecordingBus()
    started = time.monotonic()

    replay(bus, paced(0, 20, 40, 60), speed=120)

    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.5
    gaps = [b[0] - a[0] for a, b in zip(bus.calls, bus.calls[1:], strict=False)]
    assert all(0.12 < g < 0.5 for g in gaps), gaps


@pytest.mark.parametrize(
    ("speed", "events", "pattern"),
    [
        (-1, paced(0), "0 .* or more; got -1"),
        (float("nan"), paced(0), "number of 0 or more"),
        ("fast", paced(0), "number of 0 or more"),
        (60, [{"event_id": "x", "ts": "yesterday"}], "ts 'yesterday'.*not a time"),
        (60, [{"event_id": "x"}], "Event 'x' has no ts"),
    ],
)
def test_bad_replay_arguments_are_clear_errors(
    speed: Any, events: list[dict[str, Any]], pattern: str
) -> None:
    with pytest.raises(ValidationError, match=pattern):
        replay(RecordingBus(), events, speed=speed)
