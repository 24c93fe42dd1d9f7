"""Train the two models that do not read the tabular feature catalogue: the product recommender
(customer × product interactions) and the need forecaster (daily spend and app sequences).

Each first measures itself against its baselines on a time split ending at the latest data (the
figures registered with it), then refits on everything up to now, which is what is registered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd

from qianmian.features.engine import latest_as_of
from qianmian.models.registry import ModelCard, ModelRegistry
from qianmian.store.base import Store

__all__ = ["SequenceModelResult", "train_need_forecaster", "train_recommender"]

RECOMMEND_HORIZON_DAYS = 92


@dataclass
class SequenceModelResult:
    card: ModelCard
    comparison: pd.DataFrame  # one row per model (ours and the baselines)


def train_recommender(
    store: Store,
    registry: ModelRegistry,
    *,
    horizon_days: int = RECOMMEND_HORIZON_DAYS,
    promote: bool = False,
) -> SequenceModelResult:
    """Compare popularity, ALS and DeepFM on the last ``horizon_days``; register DeepFM refitted
    on all interactions up to now."""
    from qianmian.models.recommend import (
        DeepFMRecommender,
        customer_side_features,
        evaluate_recommenders,
        load_interactions,
        product_side_features,
    )

    now = latest_as_of(store)
    cutoff = now - timedelta(days=horizon_days)
    comparison = evaluate_recommenders(store, cutoff, horizon_days, k=(3, 5))
    by_model = comparison.set_index("model").to_dict(orient="index")
    ours, popular = by_model["deepfm"], by_model["popularity"]
    events = load_interactions(store)
    model = DeepFMRecommender().fit(
        events,
        customer_side_features(store, now),
        product_features=product_side_features(store),
    )
    card = registry.register(
        model,
        name="recommend-deepfm",
        kind="recommend",
        features=["customer_id", "product_id", "weight"],
        schema=[("customer_id", "int"), ("product_id", "string"), ("weight", "float")],
        training_window=(pd.Timestamp(events["ts"].min()).date(), now.date()),
        metrics={
            **{str(k): float(v) for k, v in ours.items() if str(k).startswith(("ndcg", "recall"))},
            **{
                f"popularity_{k}": float(v) for k, v in popular.items() if str(k).startswith("ndcg")
            },
        },
        target=f"products newly taken up within {horizon_days} days (time split at {cutoff:%Y-%m-%d})",
        as_of=now.date(),
        key_metric="ndcg@3",
        requires=["torch"],
        description="DeepFM over holdings, loans and campaign responses with side features",
    )
    if promote:
        card = registry.promote(card.name, card.version)
    return SequenceModelResult(card, comparison)


def train_need_forecaster(
    store: Store,
    registry: ModelRegistry,
    *,
    world: Any,
    promote: bool = False,
    lstm: Any = None,
    progress: Callable[[int, int], None] | None = None,
    **evaluate_options: Any,
) -> SequenceModelResult:
    """Compare the LSTM with seasonal-naive and LightGBM on the latest closed 30 days; register
    the LSTM trained for that comparison (its training origins all precede the test window).

    ``world`` is the simulated bank (or its ``life_events`` table): the share of life events
    detected before they show in spending is part of the figures. ``evaluate_options`` go to
    :func:`~qianmian.models.forecast.evaluate_need_forecast` (e.g. ``origin_step_days``).
    """
    from qianmian.models.forecast import NeedForecaster, evaluate_need_forecast

    lstm = lstm or NeedForecaster()
    figures = evaluate_need_forecast(store, world, lstm=lstm, progress=progress, **evaluate_options)
    rows = [
        {"model": name, **{f"mae_{h}": v for h, v in by_h.items()}}
        for name, by_h in figures["mae"].items()
    ]
    comparison = pd.DataFrame(rows)
    metrics = {f"{r['model']}_{k}": float(v) for r in rows for k, v in r.items() if k != "model"}
    for name, by_h in figures["improvement_vs_seasonal_naive_pct"].items():
        for h, value in by_h.items():
            metrics[f"{name}_improvement_vs_seasonal_naive_pct_{h}"] = float(value)
    for key, value in figures["life_events"].items():
        inner = value if isinstance(value, dict) else {"": value}
        for sub, v in inner.items():
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                metrics[f"life_events_{key}{'_' + sub if sub else ''}"] = float(v)
    metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}  # e.g. lift of no flags
    card = registry.register(
        lstm,
        name="need-forecast-lstm",
        kind="forecast",
        features=["transactions", "app_events"],
        schema=[("transactions", "table"), ("app_events", "table")],
        training_window=(
            pd.Timestamp(figures["train_origins"][0]).date(),
            pd.Timestamp(figures["train_origins"][-1]).date(),
        ),
        metrics=metrics,
        target="spend per category group over the next 7 and 30 days",
        as_of=pd.Timestamp(figures["test_as_of"]).date(),
        requires=["torch"],
        description="LSTM over daily spend and app activity (see models/forecast)",
    )
    if promote:
        card = registry.promote(card.name, card.version)
    return SequenceModelResult(card, comparison)
