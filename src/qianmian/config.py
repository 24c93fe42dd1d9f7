"""Settings: the one place that reads the environment and chooses backends.

Values come, highest priority first, from keyword arguments, ``QIANMIAN_*`` environment
variables (nested with ``__``, e.g. ``QIANMIAN_STORE__TYPE=postgres``), the workspace's
``qianmian.toml``, then the defaults below. The default is fully embedded: a workspace folder
holding Parquet files and a DuckDB database, no server.

>>> s = Settings(workspace="demo-ws")
>>> s.store.type
'duckdb'
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from qianmian.decide.configs import (
    DecideConfig,
    LogConfig,
    MemoryStateConfig,
    SQLiteLogConfig,
    StateConfig,
)
from qianmian.errors import ConfigError
from qianmian.features.online.configs import MemoryOnlineConfig, OnlineConfig
from qianmian.service.configs import ServiceConfig
from qianmian.stream.configs import MemoryBusConfig, StreamConfig

if TYPE_CHECKING:
    from qianmian.decide.log.base import DecisionLog
    from qianmian.decide.state.base import DecisionState
    from qianmian.features.online.base import OnlineFeatureStore
    from qianmian.store.base import Store
    from qianmian.stream.bus.base import EventBus

__all__ = ["DuckDBStoreConfig", "PostgresStoreConfig", "Settings", "load_settings"]

DEFAULT_WORKSPACE = Path("qianmian-workspace")
CONFIG_FILE_NAME = "qianmian.toml"
_toml_file: ContextVar[Path | None] = ContextVar("qianmian_toml_file", default=None)


class DuckDBStoreConfig(BaseModel):
    """Embedded store: one DuckDB file in the workspace."""

    type: Literal["duckdb"] = "duckdb"
    path: Path | None = Field(
        None, description="Database file; default <workspace>/qianmian.duckdb"
    )
    threads: int | None = Field(None, ge=1, description="DuckDB worker threads; default all cores")
    memory_limit: str | None = Field(None, description="DuckDB memory limit, e.g. '4GB'")


class PostgresStoreConfig(BaseModel):
    """Production store: tables in a PostgreSQL schema."""

    type: Literal["postgres"]
    dsn: str = Field(
        "postgresql://postgres@127.0.0.1:5432/postgres", description="libpq connection string"
    )
    db_schema: str = Field(
        "qianmian",
        pattern=r"^[a-z_][a-z0-9_]*$",
        description="PostgreSQL schema holding qianmian's tables",
    )


StoreConfig = Annotated[DuckDBStoreConfig | PostgresStoreConfig, Field(discriminator="type")]


class Settings(BaseSettings):
    """Everything that varies between installations. Build backends with the ``build_*`` methods."""

    model_config = SettingsConfigDict(
        env_prefix="QIANMIAN_", env_nested_delimiter="__", extra="forbid"
    )

    workspace: Path = Field(DEFAULT_WORKSPACE, description="Folder holding data and state")
    store: StoreConfig = Field(default_factory=lambda: DuckDBStoreConfig())
    online: OnlineConfig = Field(default_factory=lambda: MemoryOnlineConfig())
    state: StateConfig = Field(default_factory=lambda: MemoryStateConfig())
    decision_log: LogConfig = Field(default_factory=lambda: SQLiteLogConfig())
    decide: DecideConfig = Field(default_factory=DecideConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    stream: StreamConfig = Field(default_factory=lambda: MemoryBusConfig())
    language: Literal["zh", "en"] = Field("zh", description="Language of labels and copy")
    bank_name: str = Field("千面银行", description="Bank name used in copy and SMS signatures")
    public_data: Path | None = Field(
        None,
        description="Folder of the public datasets (UCI bank marketing, BankChurners, ...); "
        "default: <repository>/../shared/data",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _toml_file.get()
        if toml_path is not None and toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def data_dir(self) -> Path:
        """Where generated and exported Parquet files live."""
        return self.workspace / "data"

    def build_store(self) -> Store:
        """Open the configured store (the backend module is imported only when chosen)."""
        from qianmian.store import open_store

        return open_store(self.store, workspace=self.workspace)

    def build_online_store(self) -> OnlineFeatureStore:
        """Open the configured online feature store (in-process by default, or Redis)."""
        from qianmian.features.online import open_online_store

        return open_online_store(self.online)

    def build_event_bus(self) -> EventBus:
        """Open the configured event bus (in-process by default, or Redis Streams)."""
        from qianmian.stream.bus import open_event_bus

        return open_event_bus(self.stream)

    def build_decision_state(self) -> DecisionState:
        """Open the configured decision state (in-process by default, or Redis)."""
        from qianmian.decide.state import open_decision_state

        return open_decision_state(self.state)

    def build_decision_log(self) -> DecisionLog:
        """Open the configured decision log (SQLite in the workspace by default, or PostgreSQL)."""
        from qianmian.decide.log import open_decision_log

        return open_decision_log(self.decision_log, workspace=self.workspace)


def load_settings(workspace: Path | str | None = None, **overrides: object) -> Settings:
    """Build :class:`Settings` for ``workspace``, reading ``<workspace>/qianmian.toml`` if present.

    Invalid values raise :class:`~qianmian.errors.ConfigError` naming the setting.
    """
    ws = (
        Path(workspace)
        if workspace is not None
        else Path(os.environ.get("QIANMIAN_WORKSPACE", DEFAULT_WORKSPACE))
    )
    token = _toml_file.set(ws / CONFIG_FILE_NAME)
    try:
        kwargs = dict(overrides)
        if workspace is not None:
            kwargs["workspace"] = ws
        return Settings(**kwargs)  # type: ignore[arg-type]
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"The setting '{where}' is invalid: {first['msg']}. Check QIANMIAN_* environment "
            f"variables and {ws / CONFIG_FILE_NAME}."
        ) from e
    finally:
        _toml_file.reset(token)
