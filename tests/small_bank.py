"""A small simulated bank for engine and stream tests: its store, latest features and a promoted
uplift-s model, built once per session by the fixtures of tests/decide and tests/stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from qianmian.config import load_settings
from qianmian.decide.state.base import DecisionState
from qianmian.decide.state.memory import MemoryDecisionState
from qianmian.decide.state.redis import RedisDecisionState
from qianmian.features.engine import StoreFeatureEngine, latest_as_of
from qianmian.models.pipeline import register_trained
from qianmian.models.registry import ModelRegistry
from qianmian.models.train import train_uplift
from qianmian.world import BANK_TABLES, World, WorldConfig

# Small trees that always see the sent indicator, so the S-learner's uplift is not all zero.
FAST_PARAMS = {"n_estimators": 60, "min_child_samples": 20, "num_leaves": 15, "colsample_bytree": 1}
STATE_BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.integration)]


@dataclass(frozen=True)
class SmallBank:
    """A generated bank in an embedded store, its latest features and a promoted uplift-s."""

    workspace: Path
    as_of: datetime
    features: pa.Table
    registry: ModelRegistry


def build_small_bank(workspace: Path, *, customers: int, months: int, seed: int) -> SmallBank:
    """Generate the bank into ``workspace``, load its store, build features, promote uplift-s."""
    world = World.generate(
        WorldConfig(customers=customers, months=months, seed=seed), workspace, workers=1
    )
    with load_settings(workspace).build_store() as store:
        for name in BANK_TABLES:
            store.load_parquet(name, world.table_paths(name), mode="replace")
        as_of = latest_as_of(store)
        features = StoreFeatureEngine(store).build(as_of)
        trained = train_uplift(store, learner="s", base_params=FAST_PARAMS)
    registry = ModelRegistry.for_workspace(workspace)
    card = register_trained(registry, trained)
    registry.promote(card.name, card.version)
    return SmallBank(workspace, as_of, features, registry)


def open_state(request: pytest.FixtureRequest) -> DecisionState:
    """A fresh, empty decision state for the fixture's param (Redis under a throwaway prefix)."""
    if request.param == "memory":
        return MemoryDecisionState()
    url = request.getfixturevalue("redis_url")
    return RedisDecisionState(url, key_prefix=request.getfixturevalue("redis_prefix"))
