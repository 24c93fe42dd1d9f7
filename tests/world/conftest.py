from __future__ import annotations

import pytest

from qianmian.world import World, WorldConfig


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A 6,000-customer bank over 12 months, shared by the world tests (read-only)."""
    ws = tmp_path_factory.mktemp("world")
    return World.generate(WorldConfig(customers=6_000, months=12, seed=11), ws, workers=1)
