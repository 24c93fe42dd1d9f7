"""``qianmian simulate``: one campaign of the catalogue, run against the simulated bank under
one or more targeting policies, with results saved for reports and the dashboard.

The engine policy decides through a real :class:`~qianmian.decide.engine.DecisionEngine`
built from the workspace's settings, except that its contact state and online features are
in-process (a simulation must never touch the production Redis); its decisions and the
responses fed back are written to the workspace's decision log, so ``qianmian report
CAMPAIGN`` and the dashboard show the simulated campaign like a live one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from qianmian.campaigns.policies import (
    POLICY_NAMES,
    OraclePolicy,
    Policy,
    RandomPolicy,
    RfmPolicy,
    Wave,
    segment_offer_rates,
)
from qianmian.campaigns.sim_bank import SimBank, load_sim_bank
from qianmian.campaigns.sim_models import (
    RetrainingEnginePolicy,
    RetrainingUpliftPolicy,
    UpliftModelHolder,
    propensity_policy,
)
from qianmian.campaigns.simulate import PolicyRun, SimulationConfig, simulate_policy, summarise_runs
from qianmian.config import Settings
from qianmian.decide.catalogue import Catalogue
from qianmian.errors import NotFoundError, ValidationError
from qianmian.store.base import Store
from qianmian.world import World

__all__ = ["SimulationResult", "run_simulation", "simulation_dir"]

Progress = Callable[[str, int, int], None] | None


@dataclass
class SimulationResult:
    """Every policy's run, the summary table and what the models learnt along the way."""

    campaign_id: str
    runs: list[PolicyRun]
    summary: pd.DataFrame
    events: dict[str, list[str]]
    folder: Path


def simulation_dir(workspace: Path, campaign_id: str) -> Path:
    return Path(workspace) / "simulations" / campaign_id


def run_simulation(
    settings: Settings,
    store: Store,
    catalogue: Catalogue,
    campaign_id: str,
    config: SimulationConfig,
    *,
    policies: Sequence[str] = ("engine",),
    progress: Progress = None,
) -> SimulationResult:
    """Simulate ``campaign_id`` under each of ``policies`` (names of :data:`POLICY_NAMES`)."""
    unknown = [p for p in policies if p not in POLICY_NAMES]
    if unknown:
        raise ValidationError(f"policy {unknown[0]!r} is not one of {', '.join(POLICY_NAMES)}.")
    world = World(settings.workspace)
    bank = load_sim_bank(store, world, catalogue, campaign_id)
    folder = simulation_dir(settings.workspace, campaign_id)
    folder.mkdir(parents=True, exist_ok=True)
    runs: list[PolicyRun] = []
    for name in policies:
        policy = _policy(name, settings, store, catalogue, bank, config, folder)
        tick = (lambda done, total, n=name: progress(n, done, total)) if progress else None
        run = simulate_policy(bank, policy, config, progress=tick)
        engine = getattr(policy, "engine", None)
        if engine is not None:
            engine.log.flush()
        runs.append(run)
        run.contacts.to_parquet(folder / f"{name}-contacts.parquet", index=False)
        run.responses.to_parquet(folder / f"{name}-responses.parquet", index=False)
    summary = summarise_runs(runs)
    summary.to_csv(folder / "summary.csv")
    return SimulationResult(campaign_id, runs, summary, {r.policy: r.events for r in runs}, folder)


def _policy(
    name: str,
    settings: Settings,
    store: Store,
    catalogue: Catalogue,
    bank: SimBank,
    config: SimulationConfig,
    folder: Path,
) -> Policy:
    if name == "random":
        return RandomPolicy()
    if name == "rfm":
        from qianmian.features.segments_rfm import rfm_scores

        segments = pd.Series(
            rfm_scores(bank.features)["rfm_segment"].to_numpy(), index=bank.customer_ids
        )
        return RfmPolicy(bank.features, segment_offer_rates(bank.history, segments))
    if name == "propensity":
        return propensity_policy(bank, _propensity_models(settings, bank))
    if name == "oracle":
        return OraclePolicy(lambda wave: _true_uplift(bank, wave))
    base = _training_data(store) if config.retrain_every else None
    model, card = _uplift_model(settings)
    if name == "uplift":
        holder = UpliftModelHolder(
            bank, model, card, store=store, base_data=base, registry_dir=folder / "registry-uplift"
        )
        return RetrainingUpliftPolicy(holder)
    engine = _engine(settings, store, catalogue)
    holder = UpliftModelHolder(
        bank,
        model,
        card,
        store=store,
        base_data=base,
        registry_dir=folder / "registry-engine",
        on_change=lambda m, c: setattr(engine, "scorer", _guarded(settings, m, c)),
    )
    return RetrainingEnginePolicy(engine, bank.campaign.id, holder)


def _uplift_model(settings: Settings) -> tuple[Any, Any]:
    from qianmian.decide.engine_build import UPLIFT_MODEL
    from qianmian.models.pipeline import load_scorer
    from qianmian.models.registry import ModelRegistry

    registry = ModelRegistry.for_workspace(settings.workspace)
    try:
        return load_scorer(registry, UPLIFT_MODEL, "production")
    except NotFoundError as exc:
        raise NotFoundError(
            f"No production {UPLIFT_MODEL} model to simulate with ({exc}); run "
            "`qianmian train uplift --promote` first."
        ) from exc


def _propensity_models(settings: Settings, bank: SimBank) -> dict[str, tuple[Any, list[str]]]:
    from qianmian.models.pipeline import load_scorer
    from qianmian.models.registry import ModelRegistry

    registry = ModelRegistry.for_workspace(settings.workspace)
    out: dict[str, tuple[Any, list[str]]] = {}
    for offer in bank.offers:
        try:
            model, card = load_scorer(registry, f"propensity-{offer}", "production")
        except NotFoundError:
            continue  # too few past conversions to train one: the offer's past rate stands in
        out[offer] = (model, list(card.features))
    return out


def _training_data(store: Store) -> pd.DataFrame:
    from qianmian.models.datasets import contact_training_set

    return contact_training_set(store)


def _guarded(settings: Settings, model: Any, card: Any) -> Any:
    from qianmian.decide.scoring import UpliftModelScorer
    from qianmian.decide.scoring_guard import GuardedScorer

    decide = settings.decide
    return GuardedScorer(
        UpliftModelScorer(model, card),
        budget_ms=decide.model_budget_ms,
        failures=decide.breaker_failures,
        reset_seconds=decide.breaker_reset_seconds,
    )


def _engine(settings: Settings, store: Store, catalogue: Catalogue) -> Any:
    """The workspace's engine with in-process state and features, loaded from the store."""
    from qianmian.decide.configs import MemoryStateConfig
    from qianmian.decide.engine_build import build_engine, load_serving_state
    from qianmian.features.online.configs import MemoryOnlineConfig

    local = settings.model_copy(
        update={"state": MemoryStateConfig(), "online": MemoryOnlineConfig()}
    )
    engine = build_engine(local, store=store)
    engine.catalogue = catalogue
    load_serving_state(store, engine.state, engine.features)
    return engine


def _true_uplift(bank: SimBank, wave: Wave) -> Any:
    """The oracle's uplift of every allowed cell of the wave (no fatigue: its first contact)."""
    import numpy as np

    out = np.full(wave.allowed.shape, np.nan)
    ids = bank.customer_ids
    for j, channel in enumerate(wave.channels):
        cells = np.argwhere(wave.allowed[:, :, j])
        if not len(cells):
            continue
        rows = pd.DataFrame(
            {
                "customer_id": ids[cells[:, 0]],
                "offer_id": np.asarray(wave.offers)[cells[:, 1]],
                "channel": channel,
                "ts": pd.Timestamp(wave.ts),
            }
        )
        out[cells[:, 0], cells[:, 1], j] = bank.oracle.truth(rows)["uplift"].to_numpy()
    return out
