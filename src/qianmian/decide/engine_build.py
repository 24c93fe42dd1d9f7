"""Wiring a :class:`~qianmian.decide.engine.DecisionEngine` from settings, and readying it to serve.

:func:`build_engine` opens the configured decision state, decision log and online feature
store, takes the catalogue (the file named in settings, else the latest revision saved in the
store, else the shipped starter catalogue) and the promoted uplift model (a missing or
incompatible model is not an error: decisions then fall back to rules and say why).

:func:`load_serving_state` fills the state and the online store from the store: every
customer's contact preferences and holdings, and the features as of the latest day (the
``customer_features`` table if it holds that day, else built now). In-process backends start
empty, so ``qianmian serve`` calls it at start; Redis keeps what was loaded, so a restart can
skip it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qianmian.decide.arbitration import ArbitrationSettings
from qianmian.decide.catalogue import Catalogue, load_catalogue, starter_catalogue
from qianmian.decide.catalogue_store import CatalogueRepository
from qianmian.decide.engine import DecisionEngine
from qianmian.decide.feedback import replay_preference_changes, with_preferences
from qianmian.decide.profiles import customer_batches, customer_states
from qianmian.decide.scoring import load_scorer_or_reason
from qianmian.decide.scoring_guard import GuardedScorer
from qianmian.errors import QianmianError

if TYPE_CHECKING:
    from qianmian.config import Settings
    from qianmian.decide.state.base import DecisionState
    from qianmian.features.online.base import OnlineFeatureStore
    from qianmian.store.base import Store

__all__ = ["UPLIFT_MODEL", "LoadReport", "build_engine", "current_catalogue", "load_serving_state"]

logger = logging.getLogger(__name__)
UPLIFT_MODEL = "uplift-s"


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What :func:`load_serving_state` loaded."""

    customers: int
    feature_rows: int
    as_of: str


def current_catalogue(settings: Settings, store: Store | None) -> Catalogue:
    """The catalogue decisions use: settings' file, else the store's latest, else the starter."""
    if settings.decide.catalogue is not None:
        return load_catalogue(settings.decide.catalogue)
    if store is not None:
        saved = CatalogueRepository(store).current()
        if saved is not None:
            return saved
    return starter_catalogue()


def build_engine(
    settings: Settings, *, store: Store | None = None, model: str = UPLIFT_MODEL
) -> DecisionEngine:
    """A ready engine over the configured backends (the store is used for the catalogue only)."""
    from qianmian.features.tags import TagLibrary
    from qianmian.models.registry import ModelRegistry

    decide = settings.decide
    scorer, reason = load_scorer_or_reason(ModelRegistry.for_workspace(settings.workspace), model)
    guarded = (
        GuardedScorer(
            scorer,
            budget_ms=decide.model_budget_ms,
            failures=decide.breaker_failures,
            reset_seconds=decide.breaker_reset_seconds,
        )
        if scorer is not None
        else None
    )
    return DecisionEngine(
        catalogue=current_catalogue(settings, store),
        state=settings.build_decision_state(),
        log=settings.build_decision_log(),
        features=settings.build_online_store(),
        scorer=guarded,
        scorer_reason=reason,
        tags=TagLibrary.load(),
        arbitration=ArbitrationSettings(**decide.arbitration.model_dump()),
        exploration=decide.exploration,
        language=settings.language,
        bank_name=settings.bank_name,
        seed=decide.seed,
        store=store,
        bandit_cache_seconds=decide.bandit_cache_seconds,
        retry_seconds=decide.retry_seconds,
    )


def needs_loading(state: DecisionState, features: OnlineFeatureStore) -> bool:
    """True when the online store holds no snapshot yet (a fresh in-process or Redis backend)."""
    try:
        return features.as_of() is None
    except QianmianError:
        return True


def load_serving_state(
    store: Store,
    state: DecisionState,
    features: OnlineFeatureStore,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    customer_id: int | None = None,
) -> LoadReport:
    """Load every customer's (or one customer's) contact state and latest features."""
    from qianmian.features.engine import FEATURE_TABLE, StoreFeatureEngine, latest_as_of

    as_of = latest_as_of(store)
    table = None
    if customer_id is not None:
        table = StoreFeatureEngine(store).build(as_of, customers=[customer_id])
        rows = features.load(table) if table.num_rows else 0  # unknown: the engine says so
        mine = [
            with_preferences(store)(c)
            for c in customer_states(store)
            if c.customer_id == customer_id
        ]
        state.load_customers(mine)
        replay_preference_changes(store, state)
        return LoadReport(customers=len(mine), feature_rows=rows, as_of=f"{as_of:%Y-%m-%d}")
    if store.has_table(FEATURE_TABLE):
        stored = store.query(f'SELECT * FROM "{FEATURE_TABLE}" WHERE as_of = $t', {"t": as_of})
        if stored.num_rows:
            table = stored
    if table is None:
        if progress:
            progress("features", 0, 1)
        table = StoreFeatureEngine(store).build(as_of)
    if progress:
        progress("features", 1, 1)
    rows = features.load(table)
    # Customers are written with their stored preference changes applied: writing the store's
    # own columns first and replaying after would show other serving processes sharing the
    # state an opted-out customer as opted in until the replay. The replay then applies what
    # was recorded while loading.
    preferences, customers = with_preferences(store), 0
    total = store.count("customers") if progress and store.has_table("customers") else 0
    for batch in customer_batches(store):
        customers += state.load_customers([preferences(c) for c in batch])
        if progress:
            progress("customers", customers, total)
    replay_preference_changes(store, state)
    return LoadReport(customers=customers, feature_rows=rows, as_of=f"{as_of:%Y-%m-%d}")
