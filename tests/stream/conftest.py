"""A small simulated bank, its features and a promoted uplift model, for stream tests.

Built the way ``tests/decide/conftest.py`` builds its world and engines (fixtures there are not
visible here), smaller: 800 customers over 8 months, about 3 s.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from qianmian.config import load_settings
from qianmian.decide.catalogue import Catalogue, starter_catalogue
from qianmian.decide.engine import DecisionEngine
from qianmian.decide.log.sqlite import SQLiteDecisionLog
from qianmian.decide.profiles import load_customer_states
from qianmian.decide.scoring import UpliftModelScorer
from qianmian.decide.scoring_guard import GuardedScorer
from qianmian.decide.state.base import DecisionState
from qianmian.decide.state.memory import MemoryDecisionState
from qianmian.decide.state.redis import RedisDecisionState
from qianmian.features.engine import StoreFeatureEngine, latest_as_of
from qianmian.features.online import MemoryOnlineStore
from qianmian.features.tags import TagLibrary
from qianmian.models.pipeline import register_trained
from qianmian.models.registry import ModelRegistry
from qianmian.models.train import train_uplift
from qianmian.world import BANK_TABLES, World, WorldConfig

# Small trees that always see the sent indicator, so the S-learner's uplift is not all zero.
FAST_PARAMS = {"n_estimators": 60, "min_child_samples": 20, "num_leaves": 15, "colsample_bytree": 1}


@dataclass(frozen=True)
class StreamWorld:
    """A generated bank in an embedded store, its latest features and a promoted uplift-s."""

    workspace: Path
    as_of: datetime
    features: pa.Table
    registry: ModelRegistry


@pytest.fixture(scope="session")
def stream_world(tmp_path_factory: pytest.TempPathFactory) -> StreamWorld:
    """800 customers over 8 months (read-only)."""
    ws = tmp_path_factory.mktemp("stream-world")
    world = World.generate(WorldConfig(customers=800, months=8, seed=5), ws, workers=1)
    with load_settings(ws).build_store() as store:
        for name in BANK_TABLES:
            store.load_parquet(name, world.table_paths(name), mode="replace")
        as_of = latest_as_of(store)
        features = StoreFeatureEngine(store).build(as_of)
        trained = train_uplift(store, learner="s", base_params=FAST_PARAMS)
    registry = ModelRegistry.for_workspace(ws)
    card = register_trained(registry, trained)
    registry.promote(card.name, card.version)
    return StreamWorld(ws, as_of, features, registry)


StreamEngineFactory = Callable[..., DecisionEngine]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def stream_state(request: pytest.FixtureRequest) -> Iterator[DecisionState]:
    """A fresh, empty decision state on each backend (Redis under a throwaway prefix)."""
    if request.param == "memory":
        state: DecisionState = MemoryDecisionState()
    else:
        url = request.getfixturevalue("redis_url")
        state = RedisDecisionState(url, key_prefix=request.getfixturevalue("redis_prefix"))
    yield state
    state.close()


@pytest.fixture()
def make_stream_engine(
    stream_world: StreamWorld, tmp_path: Path, stream_state: DecisionState
) -> Iterator[StreamEngineFactory]:
    """Build engines over the world: the state backend under test (or ``state``), a fresh
    SQLite log, the promoted model (``model=False``: none, the rules decide)."""
    opened: list[DecisionEngine] = []

    def make(
        *,
        catalogue: Catalogue | None = None,
        state: DecisionState | None = None,
        model: bool = True,
        exploration: bool = True,
        language: str = "en",
        seed: int = 0,
    ) -> DecisionEngine:
        online = MemoryOnlineStore()
        online.load(stream_world.features)
        state = state if state is not None else stream_state
        # each engine gets its own copy of the bank: tests write preference changes to it
        bank = tmp_path / f"bank{len(opened)}.duckdb"
        shutil.copy(stream_world.workspace / "qianmian.duckdb", bank)
        store = load_settings(
            stream_world.workspace, store={"type": "duckdb", "path": bank}
        ).build_store()
        load_customer_states(store, state)
        scorer = None
        if model:
            uplift = UpliftModelScorer.from_registry(stream_world.registry)
            scorer = GuardedScorer(uplift, budget_ms=500, failures=3, reset_seconds=60)
        engine = DecisionEngine(
            catalogue=catalogue or starter_catalogue(),
            state=state,
            log=SQLiteDecisionLog(tmp_path / f"log{len(opened)}.db"),
            features=online,
            scorer=scorer,
            scorer_reason=None if model else "no model (test): rules decide",
            tags=TagLibrary.load(),
            exploration=exploration,
            language=language,
            seed=seed,
            store=store,
        )
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.log.close()
        if engine.store is not None:
            engine.store.close()
