"""Configuration of the event bus backends (one pydantic class per backend).

Kept apart from the backends, with nothing heavier than pydantic imported, so that
:mod:`qianmian.config` can name them without loading redis-py.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

__all__ = ["MemoryBusConfig", "RedisBusConfig", "StreamConfig"]


class MemoryBusConfig(BaseModel):
    """Embedded event bus: a queue in the serving process (``qianmian serve`` consumes it)."""

    type: Literal["memory"] = "memory"


class RedisBusConfig(BaseModel):
    """Event bus on Redis Streams, with a consumer group shared by ``qianmian stream run``s."""

    type: Literal["redis"]
    url: str = Field("redis://127.0.0.1:6379/0", description="redis:// or rediss:// URL")
    key_prefix: str = Field(
        "qianmian:stream",
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of the stream, dead-letter and ledger keys",
    )
    group: str = Field("qianmian", pattern=r"^[A-Za-z0-9_.:-]+$", description="Consumer group")
    max_length: int = Field(
        5_000_000, ge=1_000, description="Approximate cap on the stream's length (XADD MAXLEN ~)"
    )
    reclaim_idle_ms: int = Field(
        30_000, ge=100, description="Pending entries idle this long are reclaimed (XAUTOCLAIM)"
    )
    timeout_seconds: float = Field(2.0, gt=0, description="Connect and command timeout")


StreamConfig = Annotated[MemoryBusConfig | RedisBusConfig, Field(discriminator="type")]
