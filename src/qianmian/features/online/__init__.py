"""The online feature store: one customer's features, fast, for live decisions.

Served from a precomputed batch table plus the events since its ``as_of`` (see
:mod:`qianmian.features.online.base` for the exact semantics). Backends are registered here by
the short name used in configuration (``online.type``) and imported only when chosen, so the
embedded default never needs a Redis driver. Importing this package loads only the pydantic
configurations; the store classes load on first use.

>>> store = open_online_store(MemoryOnlineConfig())
>>> store.as_of() is None
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from qianmian.features.online.configs import MemoryOnlineConfig, OnlineConfig, RedisOnlineConfig

if TYPE_CHECKING:
    from qianmian.features.online.base import EventOutcome, EventSource, OnlineFeatureStore
    from qianmian.features.online.memory import MemoryOnlineStore
    from qianmian.features.online.redis import RedisOnlineStore
    from qianmian.features.online.updates import UpdatePlan

__all__ = [
    "BACKENDS",
    "EventOutcome",
    "EventSource",
    "MemoryOnlineConfig",
    "MemoryOnlineStore",
    "OnlineConfig",
    "OnlineFeatureStore",
    "RedisOnlineConfig",
    "RedisOnlineStore",
    "UpdatePlan",
    "open_online_store",
]

BACKENDS: dict[str, str] = {
    "memory": "qianmian.features.online.memory:MemoryOnlineStore",
    "redis": "qianmian.features.online.redis:RedisOnlineStore",
}
_LAZY = {
    "EventOutcome": "base",
    "EventSource": "base",
    "OnlineFeatureStore": "base",
    "MemoryOnlineStore": "memory",
    "RedisOnlineStore": "redis",
    "UpdatePlan": "updates",
}


def open_online_store(config: MemoryOnlineConfig | RedisOnlineConfig) -> OnlineFeatureStore:
    """Open the online store that ``config`` describes (its ``type`` names the backend)."""
    module_name, class_name = BACKENDS[config.type].split(":")
    backend: Any = getattr(importlib.import_module(module_name), class_name)
    store: OnlineFeatureStore = backend.from_config(config)
    return store


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"qianmian.features.online.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
