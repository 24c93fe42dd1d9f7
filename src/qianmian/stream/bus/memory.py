"""The embedded event bus: a stream in this process's memory, shared by its threads.

Keeps the same semantics as Redis Streams with one consumer group (see
:mod:`qianmian.stream.bus.base`): messages get increasing ids (``"1-0"``, ``"2-0"`` ...); a
read hands out idle pending messages first (reclaimed from whichever consumer holds them, as
XAUTOCLAIM does), then new ones; a message stays pending until acknowledged. Events are kept
as JSON bytes and decoded on every delivery, so a consumer that changes a delivered dict
cannot change what a redelivery sees, and anything that Redis could not carry fails here too.

Nothing survives the process: the embedded default serves demos and single-process setups;
use the Redis bus for events that must outlive a restart. Acknowledged messages are trimmed
beyond ``max_length`` (never pending or undelivered ones); the processed ledger and the dead
letters are kept whole.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from qianmian.errors import invalid_parameter
from qianmian.stream.bus import check_read, encode_events
from qianmian.stream.bus.base import BusStatus, DeadLetter, Delivery, EventBus
from qianmian.stream.configs import MemoryBusConfig

__all__ = ["MemoryEventBus"]

_CHINA = timezone(timedelta(hours=8))


@dataclass(slots=True)
class _Pending:
    consumer: str
    delivered_at: float  # time.monotonic() of the last delivery
    attempts: int


class MemoryEventBus(EventBus):
    """In-process :class:`~qianmian.stream.bus.base.EventBus` (thread-safe).

    Parameters
    ----------
    reclaim_idle_ms : int
        A pending message idle this long (ms) is handed to the next consumer that reads.
    max_length : int
        Acknowledged messages beyond this many are forgotten, oldest first.

    Examples
    --------
    >>> bus = MemoryEventBus(reclaim_idle_ms=0)
    >>> ids = bus.publish([{"event_id": "a"}, {"event_id": "b"}])
    >>> [d.event["event_id"] for d in bus.read("c1", count=1)]
    ['a']
    >>> [(d.event["event_id"], d.attempts) for d in bus.read("c2")]  # "a" reclaimed at once
    [('a', 2), ('b', 1)]
    >>> bus.ack(ids), bus.status().pending
    (2, 0)
    """

    def __init__(self, *, reclaim_idle_ms: int = 30_000, max_length: int = 1_000_000) -> None:
        if isinstance(reclaim_idle_ms, bool) or not isinstance(reclaim_idle_ms, int):
            raise invalid_parameter(self, "reclaim_idle_ms", "an int ≥ 0", reclaim_idle_ms)
        if reclaim_idle_ms < 0:
            raise invalid_parameter(self, "reclaim_idle_ms", "an int ≥ 0", reclaim_idle_ms)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise invalid_parameter(self, "max_length", "a positive int", max_length)
        self.reclaim_idle_ms = reclaim_idle_ms
        self.max_length = max_length
        self._ready = threading.Condition()  # guards everything below; notified on publish
        self._messages: dict[str, bytes] = {}  # message id → event JSON, oldest first
        self._new: deque[str] = deque()  # ids never delivered, oldest first
        self._pending: dict[str, _Pending] = {}
        self._consumers: set[str] = set()
        self._processed: set[str] = set()
        self._dead: list[DeadLetter] = []
        self._sequence = 0

    @classmethod
    def from_config(cls, config: MemoryBusConfig) -> MemoryEventBus:
        return cls()

    def publish(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        encoded = encode_events(events)
        with self._ready:
            ids = []
            for blob in encoded:
                self._sequence += 1
                message_id = f"{self._sequence}-0"
                self._messages[message_id] = blob
                self._new.append(message_id)
                ids.append(message_id)
            self._trim()
            self._ready.notify_all()
        return ids

    def read(self, consumer: str, *, count: int = 500, block_ms: int = 100) -> list[Delivery]:
        check_read(consumer, count, block_ms)
        deadline = time.monotonic() + block_ms / 1000
        with self._ready:
            self._consumers.add(consumer)
            out = self._reclaim(consumer, count)
            if not out:  # like XREADGROUP BLOCK: wait for new messages only
                while not self._new and (left := deadline - time.monotonic()) > 0:
                    self._ready.wait(left)
            now = time.monotonic()
            while self._new and len(out) < count:
                message_id = self._new.popleft()
                self._pending[message_id] = _Pending(consumer, now, 1)
                out.append(Delivery(message_id, orjson.loads(self._messages[message_id]), 1))
        return out

    def ack(self, message_ids: Sequence[str]) -> int:
        with self._ready:
            done = sum(self._pending.pop(str(m), None) is not None for m in message_ids)
            self._trim()
        return done

    def mark_processed(self, event_ids: Sequence[str]) -> None:
        with self._ready:
            self._processed.update(str(e) for e in event_ids)

    def processed(self, event_ids: Sequence[str]) -> list[bool]:
        with self._ready:
            return [str(e) in self._processed for e in event_ids]

    def dead_letter(self, deliveries: Sequence[tuple[Delivery, str]]) -> None:
        now = datetime.now(_CHINA).replace(tzinfo=None)
        letters = [
            DeadLetter(d.message_id, orjson.loads(encode_events([d.event])[0]), str(reason), now)
            for d, reason in deliveries
        ]
        with self._ready:
            self._dead.extend(letters)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._ready:
            return self._dead[::-1][: max(limit, 0)]

    def status(self) -> BusStatus:
        with self._ready:
            consumers = dict.fromkeys(sorted(self._consumers), 0)
            for p in self._pending.values():
                consumers[p.consumer] += 1
            return BusStatus(
                length=len(self._messages),
                lag=len(self._new),
                pending=len(self._pending),
                dead_letters=len(self._dead),
                processed=len(self._processed),
                consumers=consumers,
            )

    # -- internals (the caller holds the lock) ---------------------------------------------------

    def _reclaim(self, consumer: str, count: int) -> list[Delivery]:
        """Pending messages idle ``reclaim_idle_ms`` or more, now ``consumer``'s."""
        now = time.monotonic()
        idle = self.reclaim_idle_ms / 1000
        out: list[Delivery] = []
        for message_id, p in self._pending.items():  # in id order, as XAUTOCLAIM scans
            if len(out) >= count:
                break
            if now - p.delivered_at >= idle:
                p.consumer, p.delivered_at, p.attempts = consumer, now, p.attempts + 1
                event = orjson.loads(self._messages[message_id])
                out.append(Delivery(message_id, event, p.attempts))
        return out

    def _trim(self) -> None:
        """Forget the oldest acknowledged messages beyond ``max_length``."""
        while len(self._messages) > self.max_length:
            oldest = next(iter(self._messages))
            if oldest in self._pending or (self._new and self._new[0] == oldest):
                return  # never forget a message not yet done with
            del self._messages[oldest]
