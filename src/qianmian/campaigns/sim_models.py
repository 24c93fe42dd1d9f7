"""The model-based policies of a simulation, and their retraining on schedule.

:class:`UpliftModelHolder` keeps the current uplift model of one policy (the uplift policy and
the full engine each learn from their own contacts), scores the wave's grid with it (cached per
model version: features do not change during a campaign) and retrains it from the bank's past
contacts plus the campaign's contacts whose outcome window has closed. A retrained model is
registered in the simulation's own registry (never the workspace's production one) and handed
to whoever uses it — the engine's scorer, behind the same guard as in serving.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from qianmian.campaigns.bulk_scoring import CandidateGrid, propensity_grid, uplift_grid
from qianmian.campaigns.engine_policy import EnginePolicy
from qianmian.campaigns.policies import GridPolicy, Wave
from qianmian.campaigns.sim_bank import SimBank
from qianmian.models.pipeline import register_trained
from qianmian.models.registry import ModelCard, ModelRegistry
from qianmian.store.base import Store

__all__ = [
    "RetrainingEnginePolicy",
    "RetrainingUpliftPolicy",
    "UpliftModelHolder",
    "propensity_policy",
]


class UpliftModelHolder:
    """One policy's current uplift model: its grid of scores, and retraining."""

    def __init__(
        self,
        bank: SimBank,
        model: Any,
        card: ModelCard,
        *,
        store: Store,
        base_data: pd.DataFrame | None,
        registry_dir: Path,
        on_change: Callable[[Any, ModelCard], None] | None = None,
    ) -> None:
        self.bank = bank
        self.model, self.card = model, card
        self._store = store
        self._base = base_data
        self._registry = ModelRegistry(registry_dir)
        self._on_change = on_change
        self._grid: CandidateGrid | None = None

    def grid(self, wave: Wave) -> CandidateGrid:
        if self._grid is None:
            self._grid = uplift_grid(
                self.model, self.card.features, self.bank.features, wave.offers, wave.channels
            )
        return self._grid

    def retrain(self, closed: pd.DataFrame, at: datetime) -> str:
        """Retrain on the past contacts plus ``closed`` campaign contacts; say what happened."""
        from qianmian.models.train import train_uplift

        if closed.empty or self._base is None:
            return (
                f"{at:%Y-%m-%d}: no campaign contact has a closed 30-day window yet; not retrained"
            )
        rows = closed.merge(self.bank.features, on="customer_id", how="inner")
        rows = rows.assign(
            as_of=pd.to_datetime(rows["ts"]).dt.normalize(),
            treated=(~rows["is_holdout"].astype(bool)).astype(int),
            complained=0,
        )
        data = pd.concat([self._base, rows[self._base.columns]], ignore_index=True)
        data = data.sort_values(["ts", "contact_id"], kind="stable").reset_index(drop=True)
        trained = train_uplift(self._store, data=data, learner="s")
        card = register_trained(self._registry, trained)
        self.model, self.card, self._grid = trained.model, card, None
        if self._on_change is not None:
            self._on_change(trained.model, card)
        return (
            f"{at:%Y-%m-%d}: retrained {card.label} on {len(data):,} contacts "
            f"({len(rows):,} from this campaign); test Qini {trained.metrics['qini']:.3f}"
        )


class RetrainingUpliftPolicy(GridPolicy):
    """增益模型: greedy on uplift, its model retrained on schedule."""

    def __init__(self, holder: UpliftModelHolder) -> None:
        super().__init__("uplift", holder.grid, uplift=True)
        self.retrain = holder.retrain


class RetrainingEnginePolicy(EnginePolicy):
    """千面引擎 whose scorer is retrained on schedule (and whose bandit learns every wave)."""

    def __init__(self, engine: Any, campaign_id: str, holder: UpliftModelHolder) -> None:
        super().__init__(engine, campaign_id, holder.grid)
        self.retrain = holder.retrain


def propensity_policy(bank: SimBank, models: dict[str, tuple[Any, list[str]]]) -> GridPolicy:
    """响应模型: greedy on P(convert | contacted) from one propensity model per offer.

    Offers without a model are scored with their past conversion rate among sent contacts.
    """
    sent = bank.history[~bank.history["is_holdout"].astype(bool)]
    rates = sent.groupby("offer_id")["converted"].mean().to_dict()
    cache: dict[str, CandidateGrid] = {}

    def grid(wave: Wave) -> CandidateGrid:
        if "grid" not in cache:
            cache["grid"] = propensity_grid(
                models, bank.features, wave.offers, wave.channels, rates
            )
        return cache["grid"]

    return GridPolicy("propensity", grid, uplift=False)
