"""The stream processor: events → online features, responses and trigger offers, at least once.

The same tests run with the in-process backends and with Redis (event bus, online features and
decision state on Redis Streams / Redis), over a small simulated bank whose feature snapshot is
taken three days before its last day, so that there are events after it to stream.
"""

from __future__ import annotations

import gc
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from qianmian.config import Settings, load_settings
from qianmian.decide.catalogue import starter_catalogue
from qianmian.decide.control import control_period, in_control
from qianmian.decide.engine import DecisionEngine
from qianmian.decide.feedback import now_china
from qianmian.decide.log.sqlite import SQLiteDecisionLog
from qianmian.decide.profiles import load_customer_states
from qianmian.decide.state.base import DecisionState
from qianmian.decide.state.memory import MemoryDecisionState
from qianmian.decide.state.redis import RedisDecisionState
from qianmian.errors import StoreError
from qianmian.features.engine import StoreFeatureEngine, latest_as_of
from qianmian.features.online import MemoryOnlineStore, OnlineFeatureStore
from qianmian.features.online.redis import RedisOnlineStore
from qianmian.features.tags import TagLibrary
from qianmian.service.keys import ApiKeyStore
from qianmian.service.serving import server_app
from qianmian.store.base import Store
from qianmian.stream.bus.base import EventBus
from qianmian.stream.bus.memory import MemoryEventBus
from qianmian.stream.bus.redis import RedisEventBus
from qianmian.stream.processor import EVENT_TIME, StreamProcessor
from qianmian.stream.replay import replay, simulated_events
from qianmian.stream.triggers import TriggerSet
from qianmian.world import BANK_TABLES, World, WorldConfig

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.integration)]
TABLES = ("customers", "transactions", "app_events", "holdings", "statements", "loans")
TABLES += ("contacts", "responses")


@dataclass(frozen=True)
class Bank:
    """A simulated bank, its features three days before its end, and a coupon customer."""

    workspace: Path
    store: Store
    as_of: datetime
    snapshot: pa.Table
    customer: int  # a card holder reachable by push, outside the instalment campaign's control


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bank]:
    """3,000 customers over 6 months (read-only; ~2 s): enough for every event type in a day."""
    ws = tmp_path_factory.mktemp("processor-bank")
    world = World.generate(WorldConfig(customers=3_000, months=6, seed=11), ws, workers=1)
    store = load_settings(ws).build_store()
    for name in BANK_TABLES:
        store.load_parquet(name, world.table_paths(name), mode="replace")
    as_of = latest_as_of(store) - timedelta(days=3)
    snapshot = StoreFeatureEngine(store).build(as_of)
    state = MemoryDecisionState()
    load_customer_states(store, state)
    moment = as_of + timedelta(hours=14)

    def reachable(row: dict[str, Any]) -> bool:
        contact = state.customer(row["customer_id"])
        return (
            contact is not None
            and "app_push" in contact.consents
            and not contact.marketing_opt_out
            and (row["n_cards"] or 0) >= 1
            and (row["credit_score"] or 0) >= 650
            and not in_control(row["customer_id"], "CP-INST-BIG", control_period(moment), 0.1)
        )

    customer = next(r["customer_id"] for r in snapshot.to_pylist() if reachable(r))
    yield Bank(ws, store, as_of, snapshot, customer)
    store.close()


@dataclass
class Stream:
    """A bus and an engine over one set of backends, and a way to make processors."""

    bus: EventBus
    engine: DecisionEngine
    triggers: TriggerSet
    now: datetime  # "now" for the processors: 5 s after the test events' time

    def processor(self, **kwargs: Any) -> StreamProcessor:
        kwargs.setdefault("clock", lambda: self.now)
        return StreamProcessor(self.bus, self.engine, self.triggers, **kwargs)


@pytest.fixture(params=BACKENDS)
def stream(request: pytest.FixtureRequest, bank: Bank, tmp_path: Path) -> Iterator[Stream]:
    """A fresh bus, online store and decision state (in process, or on Redis) over the bank."""
    online: OnlineFeatureStore
    state: DecisionState
    bus: EventBus
    if request.param == "memory":
        online, state, bus = MemoryOnlineStore(), MemoryDecisionState(), MemoryEventBus()
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        online = RedisOnlineStore(url, key_prefix=f"{prefix}:online")
        state = RedisDecisionState(url, key_prefix=f"{prefix}:state")
        bus = RedisEventBus(url, key_prefix=f"{prefix}:stream")
    online.load(bank.snapshot)
    load_customer_states(bank.store, state)
    engine = DecisionEngine(
        catalogue=starter_catalogue(),
        state=state,
        log=SQLiteDecisionLog(tmp_path / "decisions.db"),
        features=online,
        scorer=None,
        scorer_reason="no model (test): rules decide",
        tags=TagLibrary.load(),
        exploration=False,
        language="en",
        seed=0,
        store=bank.store,
    )
    triggers = TriggerSet.load(catalogue=engine.catalogue)
    yield Stream(bus, engine, triggers, at(bank, seconds=5))
    engine.log.close()
    for part in (bus, online, state):
        part.close()


def at(bank: Bank, seconds: int = 0) -> datetime:
    """A moment on the day after the snapshot (the test events' time)."""
    return bank.as_of + timedelta(hours=14, seconds=seconds)


def home_purchase(bank: Bank, event_id: str = "pos-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "transaction",
        "event_id": event_id,
        "customer_id": bank.customer,
        "ts": at(bank).isoformat(),
        "amount": 6000.0,
        "category": "家装",
        "channel": "POS",
        **extra,
    }


def offers_logged(engine: DecisionEngine, customer: int) -> list[str | None]:
    return engine.log.decisions(customer_id=customer).column("offer_id").to_pylist()


# -- triggers ----------------------------------------------------------------------------------


def test_a_big_home_purchase_fires_the_instalment_coupon(stream: Stream, bank: Bank) -> None:
    before = stream.engine.features.get(bank.customer)
    assert before is not None
    stream.bus.publish([home_purchase(bank)])

    report = stream.processor().step()

    assert (report.read, report.processed, report.fired, report.offers) == (1, 1, 1, 1)
    assert offers_logged(stream.engine, bank.customer) == ["OF-INST-12"]
    decision = stream.engine.log.decisions(customer_id=bank.customer).to_pylist()[0]
    assert decision["event_type"] == "transaction"
    assert decision["request_id"] == "pos-1:big_home_purchase_instalment"
    after = stream.engine.features.get(bank.customer)
    assert after is not None
    assert after["spend_home_30d"] == pytest.approx(before["spend_home_30d"] + 6000.0)
    assert stream.bus.processed(["pos-1"]) == [True]
    status = stream.bus.status()
    assert (status.pending, status.lag, status.dead_letters) == (0, 0, 0)
    assert len(report.latencies_ms) == 1 and 0 <= report.latencies_ms[0] <= 5000  # ≤ now − ts


def test_an_event_published_twice_makes_one_offer(stream: Stream, bank: Bank) -> None:
    before = stream.engine.features.get(bank.customer)
    assert before is not None
    processor = stream.processor()
    stream.bus.publish([home_purchase(bank), home_purchase(bank)])  # twice in one batch
    first = processor.step()
    stream.bus.publish([home_purchase(bank)])  # and again after it was processed
    again = processor.step()

    assert (first.processed, first.duplicates, first.offers) == (1, 1, 1)
    assert (again.processed, again.duplicates, again.fired) == (0, 1, 0)
    assert offers_logged(stream.engine, bank.customer) == ["OF-INST-12"]
    after = stream.engine.features.get(bank.customer)
    assert after is not None
    assert after["txn_count_7d"] == before["txn_count_7d"] + 1
    assert stream.bus.status().pending == 0


def test_a_stale_event_fires_nothing(stream: Stream, bank: Bank) -> None:
    stream.bus.publish([home_purchase(bank)])
    late = at(bank, seconds=600)  # the trigger's time-to-live is 300 s

    report = stream.processor(clock=lambda: late).step()

    assert (report.processed, report.stale, report.fired) == (1, 1, 0)
    assert offers_logged(stream.engine, bank.customer) == []


def test_a_failure_before_the_ack_redelivers_and_still_makes_one_offer(
    stream: Stream, bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer dies after its offer, before acknowledging; another reclaims the batch."""
    before = stream.engine.features.get(bank.customer)
    assert before is not None
    stream.bus.publish([home_purchase(bank)])

    def down(event_ids: object) -> None:
        raise StoreError("the ledger is down (test)")

    with monkeypatch.context() as patch:
        patch.setattr(stream.bus, "mark_processed", down)
        with pytest.raises(StoreError, match="ledger is down"):
            stream.processor(consumer="dies").step()
    assert stream.bus.status().pending == 1  # left for redelivery
    patch_reclaim(stream.bus)

    report = stream.processor(consumer="survivor").step()

    assert (report.read, report.processed, report.repeated, report.offers) == (1, 1, 1, 0)
    assert offers_logged(stream.engine, bank.customer) == ["OF-INST-12"]
    after = stream.engine.features.get(bank.customer)
    assert after is not None
    assert after["txn_count_7d"] == before["txn_count_7d"] + 1  # counted once
    assert stream.bus.status().pending == 0
    assert stream.bus.processed(["pos-1"]) == [True]


def patch_reclaim(bus: EventBus) -> None:
    """Reclaim pending messages at once (a dead consumer's, in tests)."""
    bus.reclaim_idle_ms = 0  # type: ignore[attr-defined]


# -- dead letters and responses ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": -5}, r"'amount' must be greater than 0; got -5"),
        ({"category": "赌博"}, r"'category' must be a spending category"),
        ({"type": "wire"}, r"'type' must be one of transaction, login"),
        ({"customer_id": None}, r"'customer_id'"),
        ({"customer_id": 99_999_999}, r"unknown customer: customer_id 99999999"),
    ],
)
def test_a_bad_event_is_dead_lettered_with_the_reason(
    stream: Stream, bank: Bank, change: dict[str, Any], reason: str
) -> None:
    stream.bus.publish([home_purchase(bank, "bad-1", **change), home_purchase(bank, "ok-1")])

    report = stream.processor().step()

    assert (report.read, report.dead, report.processed) == (2, 1, 1)
    letters = stream.bus.dead_letters()
    assert len(letters) == 1
    assert letters[0].event["event_id"] == "bad-1"
    assert re.search(reason, letters[0].reason), letters[0].reason
    assert stream.bus.status().pending == 0  # acknowledged, never silently dropped
    assert offers_logged(stream.engine, bank.customer) == ["OF-INST-12"]  # the good one


def test_a_trigger_that_cannot_decide_dead_letters_its_event(stream: Stream, bank: Bank) -> None:
    broken = TriggerSet.from_yaml(
        """
version: 1
triggers:
  - id: gone_offer
    name_zh: 已下架权益
    name_en: A withdrawn offer
    description_zh: 测试
    description_en: test
    on: [transaction]
    when: event_amount > 0
    offers: [OF-WITHDRAWN]
"""
    )  # checked against no catalogue: the offer is gone from the engine's
    stream.bus.publish([home_purchase(bank)])

    report = StreamProcessor(stream.bus, stream.engine, broken, clock=lambda: stream.now).step()

    assert (report.dead, report.processed, report.fired) == (1, 0, 0)
    letter = stream.bus.dead_letters()[0]
    assert letter.reason.startswith("trigger failed:") and "OF-WITHDRAWN" in letter.reason
    assert stream.bus.status().pending == 0


def test_a_response_event_is_recorded_once(stream: Stream, bank: Bank) -> None:
    processor = stream.processor()
    stream.bus.publish([home_purchase(bank)])
    processor.step()
    decision = stream.engine.log.decisions(customer_id=bank.customer).to_pylist()[0]
    response = {
        "type": "response",
        "event_id": "resp-1",
        "customer_id": bank.customer,
        "ts": at(bank, seconds=60).isoformat(),
        "decision_id": decision["decision_id"],
        "offer_id": "OF-INST-12",
        "response_type": "clicked",
    }
    unknown = {**response, "event_id": "resp-2", "decision_id": "no-such-decision"}
    stream.bus.publish([response, unknown, response])

    report = processor.step()

    assert (report.responses, report.duplicates, report.dead) == (1, 1, 1)
    recorded = stream.engine.log.responses(customer_id=bank.customer).to_pylist()
    assert [(r["response_id"], r["response_type"]) for r in recorded] == [("resp-1", "clicked")]
    assert recorded[0]["decision_id"] == decision["decision_id"]
    assert "no-such-decision" in stream.bus.dead_letters()[0].reason


# -- running -----------------------------------------------------------------------------------


def test_run_stops_after_idle_steps_or_when_told(stream: Stream, bank: Bank) -> None:
    stream.bus.publish([home_purchase(bank, f"pos-{i}") for i in range(7)])
    seen: list[int] = []

    totals = stream.processor(batch_size=3).run(
        max_idle_steps=2, block_ms=10, progress=lambda t: seen.append(t.read)
    )

    assert (totals.read, totals.processed, totals.steps) == (7, 7, 5)  # 3 + 3 + 1, two idle
    assert seen == [3, 6, 7, 7, 7]
    assert totals.offers == 1  # the cooldown holds the other six
    stop = threading.Event()
    worker = threading.Thread(target=lambda: stream.processor().run(stop=stop, block_ms=10))
    worker.start()
    stop.set()
    worker.join(timeout=10)
    assert not worker.is_alive()


# -- online / batch parity ---------------------------------------------------------------------


@dataclass(frozen=True)
class ParityDay:
    """A day of stored events after the snapshot, and the batch features rebuilt after it."""

    start: datetime
    end: datetime
    expected: dict[int, dict[str, Any]]  # comparable customers → batch vector at ``end``
    with_events: set[int]


@pytest.fixture(scope="module")
def parity_day(bank: Bank, tmp_path_factory: pytest.TempPathFactory) -> ParityDay:
    """Comparable customers are those whose batch vector would not move between the snapshot
    and ``end`` without the day's events (no old row leaves a window, no statement is issued
    ...), found by rebuilding on a copy of their rows without that day.

    ``end`` is the day's last second rather than the next midnight: day counts (tenure,
    "days since") would move for every customer at midnight, and online features keep them
    until the next batch (see :mod:`qianmian.features.online.base`)."""
    start, end = bank.as_of, bank.as_of + timedelta(days=1, seconds=-1)
    events = list(simulated_events(bank.store, start, end))
    with_events = {e["customer_id"] for e in events}
    others = [c for c in bank.snapshot.column("customer_id").to_pylist() if c not in with_events]
    candidates = sorted(with_events | set(others[:100]))
    ids = ", ".join(map(str, candidates))
    snapshot = {r["customer_id"]: features_of(r) for r in bank.snapshot.to_pylist()}
    with load_settings(tmp_path_factory.mktemp("parity-copy")).build_store() as copy:
        for t in TABLES:
            sql = f"SELECT * FROM {t} WHERE customer_id IN ({ids})"
            if t in ("transactions", "app_events"):
                sql += " AND ts < $start"
            copy.write(t, bank.store.query(sql, {"start": start}), mode="replace")
        unmoved = StoreFeatureEngine(copy).build(end, customers=candidates).to_pylist()
    stable = [r["customer_id"] for r in unmoved if features_of(r) == snapshot[r["customer_id"]]]
    later = StoreFeatureEngine(bank.store).build(end, customers=stable).to_pylist()
    expected = {r["customer_id"]: features_of(r) for r in later}
    return ParityDay(start, end, expected, with_events & set(expected))


def features_of(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("customer_id", "as_of")}


def test_online_features_after_a_replayed_day_equal_the_batch_rebuilt(
    stream: Stream, bank: Bank, parity_day: ParityDay
) -> None:
    assert len(parity_day.with_events) >= 30, "too few comparable customers with events"
    published = replay(
        stream.bus, simulated_events(bank.store, parity_day.start, parity_day.end), speed=0
    )

    totals = stream.processor(clock=EVENT_TIME).run(max_idle_steps=1, block_ms=10)

    assert totals.read == published and totals.processed == published
    assert totals.dead == 0 and stream.bus.status().pending == 0
    snapshot = {r["customer_id"]: features_of(r) for r in bank.snapshot.to_pylist()}
    moved = set()
    for customer, expected in parity_day.expected.items():
        online = stream.engine.features.get(customer)
        assert online is not None
        wrong = {k: (online[k], v) for k, v in expected.items() if not same(online[k], v)}
        assert not wrong, f"customer {customer}: (online, batch) differ: {wrong}"
        moved |= {k for k, v in online.items() if v != snapshot[customer][k]}
    assert len(moved) > 40, f"the day's events moved only {sorted(moved)}"


def same(online: Any, batch: Any) -> bool:
    if isinstance(batch, float) and isinstance(online, float):
        return math.isclose(online, batch, rel_tol=1e-9, abs_tol=1e-9)
    return bool(online == batch and type(online) is type(batch))


# -- the server's embedded consumer ------------------------------------------------------------


@pytest.mark.parametrize("stream", ["memory"], indirect=True)
def test_the_server_consumes_what_post_events_publishes(
    stream: Stream, bank: Bank, tmp_path: Path
) -> None:
    settings = Settings(workspace=tmp_path)  # stream.type "memory": the server consumes
    key = ApiKeyStore(tmp_path / "api_keys.json").create("bank-pos", "engineer")
    before = stream.engine.features.get(bank.customer)
    assert before is not None
    event = home_purchase(bank, "srv-1", ts=now_china().isoformat(timespec="seconds"))
    app = server_app(settings, stream.engine, bus=stream.bus)
    gc.unfreeze()  # server_app froze the heap for a long-lived server; not in a test session

    with TestClient(app) as client:
        answer = client.post("/v1/events", json=event, headers={"X-API-Key": key})
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 10
        while not stream.bus.processed(["srv-1"])[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        consumer = app.state.consumer
    assert stream.bus.processed(["srv-1"]) == [True]
    assert not consumer._thread.is_alive()  # stopped and joined at shutdown
    after = stream.engine.features.get(bank.customer)
    assert after is not None and after["txn_count_7d"] == before["txn_count_7d"] + 1
    with SQLiteDecisionLog(tmp_path / "decisions.db") as log:  # flushed at shutdown
        decided = log.decisions(customer_id=bank.customer).to_pylist()
    assert [d["request_id"] for d in decided] == ["srv-1:big_home_purchase_instalment"]
