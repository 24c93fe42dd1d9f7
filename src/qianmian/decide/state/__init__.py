"""Decision state: contact preferences, suppressions, caps, budgets and bandit statistics.

Backends are registered here by the short name used in configuration (``state.type``) and
imported only when chosen, so the embedded default never loads a Redis driver. The interface
and its records are in :mod:`qianmian.decide.state.base`.

>>> from qianmian.decide.configs import MemoryStateConfig
>>> state = open_decision_state(MemoryStateConfig())
>>> state.counter_values(["cap:1:d:2026-11-22"])
[0.0]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from qianmian.decide.configs import MemoryStateConfig, RedisStateConfig

if TYPE_CHECKING:
    from qianmian.decide.state.base import DecisionState
    from qianmian.decide.state.memory import MemoryDecisionState
    from qianmian.decide.state.redis import RedisDecisionState

__all__ = [
    "BACKENDS",
    "DecisionState",
    "MemoryDecisionState",
    "MemoryStateConfig",
    "RedisDecisionState",
    "RedisStateConfig",
    "open_decision_state",
]

BACKENDS: dict[str, str] = {
    "memory": "qianmian.decide.state.memory:MemoryDecisionState",
    "redis": "qianmian.decide.state.redis:RedisDecisionState",
}
_LAZY = {
    "DecisionState": "base",
    "MemoryDecisionState": "memory",
    "RedisDecisionState": "redis",
}


def open_decision_state(config: MemoryStateConfig | RedisStateConfig) -> DecisionState:
    """Open the decision state that ``config`` describes (its ``type`` names the backend)."""
    module_name, class_name = BACKENDS[config.type].split(":")
    backend: Any = getattr(importlib.import_module(module_name), class_name)
    state: DecisionState = backend.from_config(config)
    return state


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"qianmian.decide.state.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
