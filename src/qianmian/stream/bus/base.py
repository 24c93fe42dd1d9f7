"""The :class:`EventBus` interface: events in, delivered at least once, acknowledged after work.

Semantics, stated plainly:

* :meth:`EventBus.publish` appends raw events (JSON-compatible dicts, validated later by the
  consumer) and returns their message ids, in order.
* :meth:`EventBus.read` gives a consumer of the group up to ``count`` messages: first its own
  pending ones that idled ``reclaim_idle_ms`` or more under *any* consumer of the group (a
  consumer that died: XAUTOCLAIM), then new ones. A message stays pending until
  :meth:`ack`; a consumer that dies before acknowledging leaves it to be reclaimed. Delivery
  is therefore **at least once**; ``Delivery.attempts`` counts deliveries.
* The **processed ledger** (:meth:`mark_processed`, :meth:`processed`) records event ids whose
  effects are complete; a consumer marks them *after* its work and *before* acknowledging, so
  a redelivered event that is already in the ledger is acknowledged without being redone.
* **Dead letters** keep events that cannot be processed (invalid, unknown customer ...) with
  the reason; they are never dropped silently.

Backends: :class:`~qianmian.stream.bus.memory.MemoryEventBus` (in-process, the embedded
default) and :class:`~qianmian.stream.bus.redis.RedisEventBus` (Redis Streams); the same
contract tests run on both. Backend failures raise :class:`~qianmian.errors.StoreError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["BusStatus", "DeadLetter", "Delivery", "EventBus"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to a consumer: its bus id, the raw event, and how often delivered."""

    message_id: str
    event: dict[str, Any]
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that could not be processed, and why."""

    message_id: str
    event: dict[str, Any]
    reason: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class BusStatus:
    """What ``qianmian stream status`` shows."""

    length: int  # messages kept in the stream
    lag: int  # messages not yet delivered to the group
    pending: int  # delivered, not yet acknowledged
    dead_letters: int
    processed: int  # event ids in the processed ledger
    consumers: dict[str, int]  # consumer name -> its pending messages


class EventBus(ABC):
    """A stream of events with one consumer group, a processed ledger and dead letters."""

    @abstractmethod
    def publish(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        """Append events; their message ids, in order."""

    @abstractmethod
    def read(self, consumer: str, *, count: int = 500, block_ms: int = 100) -> list[Delivery]:
        """Up to ``count`` messages for ``consumer``: reclaimed idle ones first, then new."""

    @abstractmethod
    def ack(self, message_ids: Sequence[str]) -> int:
        """Acknowledge messages (done with); how many were pending."""

    @abstractmethod
    def mark_processed(self, event_ids: Sequence[str]) -> None:
        """Record event ids whose effects are complete."""

    @abstractmethod
    def processed(self, event_ids: Sequence[str]) -> list[bool]:
        """Whether each event id is in the processed ledger."""

    @abstractmethod
    def dead_letter(self, deliveries: Sequence[tuple[Delivery, str]]) -> None:
        """Keep (delivery, reason) pairs as dead letters (the caller then acknowledges them)."""

    @abstractmethod
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The most recent dead letters, newest first."""

    @abstractmethod
    def status(self) -> BusStatus:
        """Length, lag, pending, dead letters, ledger size, pending per consumer."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections."""

    def __enter__(self) -> EventBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
