"""A simulated bank with a marketing history, loaded into an embedded store, for model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from qianmian.config import load_settings
from qianmian.world import BANK_TABLES, World, WorldConfig


@pytest.fixture(scope="session")
def model_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """8,000 customers over 12 months with seven monthly campaign waves (read-only)."""
    ws = tmp_path_factory.mktemp("model-world")
    world = World.generate(WorldConfig(customers=8_000, months=12, seed=5), ws, workers=1)
    with load_settings(ws).build_store() as store:
        for name in BANK_TABLES:
            store.load_parquet(name, world.table_paths(name), mode="replace")
    return world


@pytest.fixture()
def model_store(model_world: World):
    """The world's store; tests must not modify the bank's tables."""
    with load_settings(model_world.workspace).build_store() as store:
        yield store


@pytest.fixture(scope="session")
def model_workspace(model_world: World) -> Path:
    return model_world.workspace
