"""Configuration of the online feature store backends (one pydantic class per backend).

Kept apart from the backends, with nothing heavier than pydantic imported, so that
:mod:`qianmian.config` can name them without loading Arrow, sqlglot or redis-py.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

__all__ = ["MemoryOnlineConfig", "OnlineConfig", "RedisOnlineConfig"]


class MemoryOnlineConfig(BaseModel):
    """Embedded online store: feature vectors in the serving process's memory."""

    type: Literal["memory"] = "memory"


class RedisOnlineConfig(BaseModel):
    """Online store in Redis, shared by every serving process."""

    type: Literal["redis"]
    url: str = Field("redis://127.0.0.1:6379/0", description="redis:// or rediss:// URL")
    key_prefix: str = Field(
        "qianmian:online",
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every key this store writes",
    )
    timeout_seconds: float = Field(2.0, gt=0, description="Connect and command timeout")


OnlineConfig = Annotated[MemoryOnlineConfig | RedisOnlineConfig, Field(discriminator="type")]
