"""Shared fixtures: a small simulated bank loaded into an embedded store, and its features."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from qianmian.config import load_settings
from qianmian.features.engine import StoreFeatureEngine
from qianmian.store.base import Store
from qianmian.world import BANK_TABLES, World, WorldConfig

AS_OF = "2026-08-01"


@pytest.fixture(scope="session")
def feature_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """4,000 customers over 12 months (read-only: do not write into its workspace)."""
    ws = tmp_path_factory.mktemp("feature-world")
    world = World.generate(WorldConfig(customers=4_000, months=12, seed=21), ws, workers=1)
    with load_settings(ws).build_store() as store:
        for name in BANK_TABLES:
            store.load_parquet(name, world.table_paths(name), mode="replace")
    return world


@pytest.fixture(scope="session")
def feature_workspace(feature_world: World) -> Path:
    return feature_world.workspace


@pytest.fixture()
def feature_store(feature_workspace: Path):
    """The world's store (DuckDB); tests must not modify the bank's tables."""
    with load_settings(feature_workspace).build_store() as store:
        yield store


@pytest.fixture(scope="session")
def feature_table(feature_workspace: Path) -> pa.Table:
    """All catalogue features as of AS_OF."""
    with load_settings(feature_workspace).build_store() as store:
        return StoreFeatureEngine(store).build(AS_OF)


def copy_store(src: Store, dst: Store, tables: list[str]) -> None:
    """Copy tables between stores (for tests that need to modify data)."""
    for t in tables:
        dst.write(t, src.read(t), mode="replace")
