"""A small simulated bank, its features and a promoted uplift model, for decision-engine tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qianmian.config import load_settings
from qianmian.decide.catalogue import Catalogue, starter_catalogue
from qianmian.decide.engine import DecisionEngine
from qianmian.decide.log.sqlite import SQLiteDecisionLog
from qianmian.decide.profiles import load_customer_states
from qianmian.decide.scoring import UpliftModelScorer
from qianmian.decide.scoring_guard import GuardedScorer
from qianmian.decide.state.base import DecisionState
from qianmian.features.online import MemoryOnlineStore
from qianmian.features.tags import TagLibrary
from small_bank import STATE_BACKENDS, SmallBank, build_small_bank, open_state

DecideWorld = SmallBank  # the fixture's type


@pytest.fixture(scope="session")
def decide_world(tmp_path_factory: pytest.TempPathFactory) -> SmallBank:
    """1,500 customers over 8 months (read-only; ~5 s with the model)."""
    ws = tmp_path_factory.mktemp("decide-world")
    return build_small_bank(ws, customers=1_500, months=8, seed=5)


EngineFactory = Callable[..., DecisionEngine]


@pytest.fixture(params=STATE_BACKENDS)
def state_backend(request: pytest.FixtureRequest) -> Iterator[DecisionState]:
    """A fresh, empty decision state on each backend (Redis under a throwaway prefix)."""
    state = open_state(request)
    yield state
    state.close()


@pytest.fixture()
def make_engine(
    decide_world: DecideWorld, tmp_path: Path, state_backend: DecisionState
) -> Iterator[EngineFactory]:
    """Build engines over the world: the state backend under test (memory, Redis), a fresh
    SQLite log, the promoted model."""
    opened: list[DecisionEngine] = []

    def make(
        *,
        catalogue: Catalogue | None = None,
        state=None,
        log=None,
        scorer="model",
        exploration: bool = True,
        language: str = "en",
        seed: int = 0,
    ) -> DecisionEngine:
        online = MemoryOnlineStore()
        online.load(decide_world.features)
        state = state if state is not None else state_backend
        # each engine gets its own copy of the bank: tests write preference changes to it
        bank = tmp_path / f"bank{len(opened)}.duckdb"
        shutil.copy(decide_world.workspace / "qianmian.duckdb", bank)
        store = load_settings(
            decide_world.workspace, store={"type": "duckdb", "path": bank}
        ).build_store()
        load_customer_states(store, state)
        if scorer == "model":
            model = UpliftModelScorer.from_registry(decide_world.registry)
            scorer = GuardedScorer(model, budget_ms=500, failures=3, reset_seconds=60)
        engine = DecisionEngine(
            catalogue=catalogue or starter_catalogue(),
            state=state,
            log=log if log is not None else SQLiteDecisionLog(tmp_path / f"log{len(opened)}.db"),
            features=online,
            scorer=scorer,
            scorer_reason=None if scorer is not None else "no model registered (test)",
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
