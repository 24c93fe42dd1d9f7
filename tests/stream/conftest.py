"""A small simulated bank, its features and a promoted uplift model, for stream tests.

The bank is built by ``tests/small_bank.py``, as ``tests/decide/conftest.py``'s is (fixtures
there are not visible here), smaller: 800 customers over 8 months, about 3 s.
"""

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

StreamWorld = SmallBank  # the fixture's type


@pytest.fixture(scope="session")
def stream_world(tmp_path_factory: pytest.TempPathFactory) -> SmallBank:
    """800 customers over 8 months (read-only)."""
    ws = tmp_path_factory.mktemp("stream-world")
    return build_small_bank(ws, customers=800, months=8, seed=5)


StreamEngineFactory = Callable[..., DecisionEngine]


@pytest.fixture(params=STATE_BACKENDS)
def stream_state(request: pytest.FixtureRequest) -> Iterator[DecisionState]:
    """A fresh, empty decision state on each backend (Redis under a throwaway prefix)."""
    state = open_state(request)
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
