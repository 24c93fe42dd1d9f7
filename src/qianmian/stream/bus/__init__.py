"""The event bus: events in, delivered at least once to a consumer group, acknowledged after work.

Backends are registered here by the short name used in configuration (``stream.type``) and
imported only when chosen, so the embedded default never needs a Redis driver; the semantics
every backend keeps are in :mod:`qianmian.stream.bus.base`.

>>> from qianmian.stream.configs import MemoryBusConfig
>>> bus = open_event_bus(MemoryBusConfig())
>>> bus.publish([{"type": "login", "event_id": "l-1", "customer_id": 7, "ts": "2026-11-11"}])
['1-0']
>>> [d.event["event_id"] for d in bus.read("consumer-1")]
['l-1']
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from qianmian.errors import ValidationError, invalid_parameter
from qianmian.stream.configs import MemoryBusConfig, RedisBusConfig

if TYPE_CHECKING:
    from qianmian.stream.bus.base import BusStatus, DeadLetter, Delivery, EventBus
    from qianmian.stream.bus.memory import MemoryEventBus
    from qianmian.stream.bus.redis import RedisEventBus

__all__ = [
    "BACKENDS",
    "BusStatus",
    "DeadLetter",
    "Delivery",
    "EventBus",
    "MemoryEventBus",
    "RedisEventBus",
    "check_read",
    "encode_events",
    "open_event_bus",
]

BACKENDS: dict[str, str] = {
    "memory": "qianmian.stream.bus.memory:MemoryEventBus",
    "redis": "qianmian.stream.bus.redis:RedisEventBus",
}
_LAZY = {
    "BusStatus": "base",
    "DeadLetter": "base",
    "Delivery": "base",
    "EventBus": "base",
    "MemoryEventBus": "memory",
    "RedisEventBus": "redis",
}


def open_event_bus(config: MemoryBusConfig | RedisBusConfig) -> EventBus:
    """Open the event bus that ``config`` describes (its ``type`` names the backend)."""
    module_name, class_name = BACKENDS[config.type].split(":")
    backend: Any = getattr(importlib.import_module(module_name), class_name)
    bus: EventBus = backend.from_config(config)
    return bus


def encode_events(events: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """Each event as JSON bytes, the form every backend keeps them in.

    Raises
    ------
    ValidationError
        If an event is not a mapping or holds a value JSON cannot carry.

    Examples
    --------
    >>> encode_events([{"type": "login", "customer_id": 7}])
    [b'{"type":"login","customer_id":7}']
    """
    if isinstance(events, Mapping | str | bytes):
        raise ValidationError(
            "publish takes a list of events (dicts); wrap a single event in a list."
        )
    out = []
    for i, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise ValidationError(
                f"Event {i} of the batch is a {type(event).__name__}, not a JSON object (dict)."
            )
        try:
            out.append(orjson.dumps(event))
        except TypeError as e:  # orjson.JSONEncodeError is a TypeError
            raise ValidationError(
                f"Event {i} of the batch cannot be stored as JSON ({e}); send JSON-compatible "
                "values (text, numbers, booleans, lists, objects; times as ISO text)."
            ) from e
    return out


def check_read(consumer: str, count: int, block_ms: int) -> None:
    """Check the arguments of :meth:`EventBus.read <qianmian.stream.bus.base.EventBus.read>`.

    Every backend refuses the same bad arguments with the same :class:`~qianmian.errors.ConfigError`.
    """
    if not isinstance(consumer, str) or not consumer.strip():
        raise invalid_parameter("EventBus.read", "consumer", "a non-empty name", consumer)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise invalid_parameter("EventBus.read", "count", "a positive int", count)
    if isinstance(block_ms, bool) or not isinstance(block_ms, int) or block_ms < 0:
        raise invalid_parameter("EventBus.read", "block_ms", "an int ≥ 0", block_ms)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"qianmian.stream.bus.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
