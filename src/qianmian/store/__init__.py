"""Stores: DuckDB (embedded default) and PostgreSQL behind one :class:`Store` interface.

Backends are registered here by the short name used in configuration (``store.type``) and
imported only when chosen, so the embedded default never needs a PostgreSQL driver.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from qianmian.store.base import Store, WriteMode

if TYPE_CHECKING:
    from qianmian.config import DuckDBStoreConfig, PostgresStoreConfig

__all__ = ["BACKENDS", "Store", "WriteMode", "open_store"]

BACKENDS: dict[str, str] = {
    "duckdb": "qianmian.store.duckdb:DuckDBStore",
    "postgres": "qianmian.store.postgres:PostgresStore",
}


def open_store(config: DuckDBStoreConfig | PostgresStoreConfig, *, workspace: Path) -> Store:
    """Open the store that ``config`` describes (its ``type`` names the backend)."""
    module_name, class_name = BACKENDS[config.type].split(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    return backend.from_config(config, workspace=workspace)
