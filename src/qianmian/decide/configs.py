"""Configuration of the decision engine and its backends (one pydantic class per backend).

Kept apart from the backends, with nothing heavier than pydantic imported, so that
:mod:`qianmian.config` can name them without loading redis-py or psycopg.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ArbitrationConfig",
    "DecideConfig",
    "LogConfig",
    "MemoryStateConfig",
    "PostgresLogConfig",
    "RedisStateConfig",
    "SQLiteLogConfig",
    "StateConfig",
]


class MemoryStateConfig(BaseModel):
    """Embedded decision state: caps, budgets and preferences in the serving process."""

    type: Literal["memory"] = "memory"


class RedisStateConfig(BaseModel):
    """Decision state in Redis, shared by every serving process (atomic Lua scripts)."""

    type: Literal["redis"]
    url: str = Field("redis://127.0.0.1:6379/0", description="redis:// or rediss:// URL")
    key_prefix: str = Field(
        "qianmian:decide",
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every key this state writes",
    )
    timeout_seconds: float = Field(0.5, gt=0, description="Connect and command timeout")


StateConfig = Annotated[MemoryStateConfig | RedisStateConfig, Field(discriminator="type")]


class SQLiteLogConfig(BaseModel):
    """Embedded decision log: one SQLite file in the workspace."""

    type: Literal["sqlite"] = "sqlite"
    path: Path | None = Field(None, description="Database file; default <workspace>/decisions.db")


class PostgresLogConfig(BaseModel):
    """Production decision log: tables in a PostgreSQL schema."""

    type: Literal["postgres"]
    dsn: str = Field(
        "postgresql://postgres@127.0.0.1:5432/postgres", description="libpq connection string"
    )
    db_schema: str = Field(
        "qianmian_log",
        pattern=r"^[a-z_][a-z0-9_]*$",
        description="PostgreSQL schema holding the decision log",
    )
    batch_size: int = Field(200, ge=1, description="Decisions written per batch")
    flush_seconds: float = Field(0.2, gt=0, description="Longest a decision waits to be written")


LogConfig = Annotated[SQLiteLogConfig | PostgresLogConfig, Field(discriminator="type")]


class ArbitrationConfig(BaseModel):
    """Which factors of the expected incremental value rank offers (all by default)."""

    use_uplift: bool = Field(True, description="Rank by uplift; False: by response propensity")
    use_value: bool = Field(True, description="Weigh by conversion value; False: every one is 1")
    use_cost: bool = Field(True, description="Subtract contact and incentive cost")
    use_weights: bool = Field(True, description="Apply the offer and campaign weights (levers)")


class DecideConfig(BaseModel):
    """How live decisions are made."""

    catalogue: Path | None = Field(
        None,
        description="Offer catalogue YAML file or folder; default: the one loaded in the store",
    )
    model_budget_ms: float = Field(
        30.0, gt=0, description="Longest the models may take before rules decide"
    )
    breaker_failures: int = Field(
        5, ge=1, description="Consecutive model failures that open the circuit breaker"
    )
    breaker_reset_seconds: float = Field(
        30.0, gt=0, description="How long an open breaker waits before trying the model again"
    )
    exploration: bool = Field(True, description="Thompson sampling over offers (else greedy)")
    arbitration: ArbitrationConfig = Field(default_factory=ArbitrationConfig)
    retry_seconds: float = Field(
        1.0,
        ge=0,
        description="After the decision state or live features fail, how long decisions skip "
        "them (deciding as if down) before trying again",
    )
    bandit_cache_seconds: float = Field(
        1.0, ge=0, description="How long a serving process reuses the bandit's counts (0: never)"
    )
    seed: int | None = Field(None, description="Seed of the bandit's draws (None: fresh entropy)")
