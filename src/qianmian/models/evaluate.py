"""Evaluate registered models on the latest closed period and write the model report.

For each model (its production version, else its latest) the latest period whose label window
has closed is rebuilt from the store, scored, and measured: AUC and calibration for propensity
and churn, Qini for uplift, error and ranking for LTV; the oracle's figures beside them on a
simulated bank; SHAP global importance; and the fairness of selecting the top-scored fifth by
age band, gender and city tier. Everything lands in one offline HTML page,
``<workspace>/reports/models.html``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from qianmian.analytics.html_report import write_html_report
from qianmian.errors import NotFoundError
from qianmian.models.calibration import reliability, reliability_figure
from qianmian.models.datasets import (
    contact_training_set,
    customer_training_set,
    prepare_features,
)
from qianmian.models.explain import ReasonExplainer, importance_figure
from qianmian.models.fairness import FairnessReport, fairness_report, sensitive_attributes
from qianmian.models.labels import CHURN_LABEL_SQL, revenue_label_sql
from qianmian.models.pipeline import load_scorer
from qianmian.models.registry import ModelCard, ModelRegistry
from qianmian.models.train import CHURN_HORIZON_DAYS
from qianmian.models.uplift.charts import qini_figure
from qianmian.models.uplift.metrics import perfect_qini_curve, qini_coefficient, qini_curve
from qianmian.store.base import Store

__all__ = ["EVALUATED_KINDS", "ModelEvaluation", "evaluate_models", "score_period"]

EVALUATED_KINDS = ("propensity", "churn", "ltv", "uplift")
SELECTED_SHARE = 0.2  # fairness: the top fifth by score is "selected" for the offer
_SHAP_SAMPLE = 2_000
MIN_FAIRNESS_GROUP = 100  # smaller groups are reported but too noisy to flag


@dataclass
class ModelEvaluation:
    """The figures of one evaluation run and where its report was written."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    fairness: dict[str, FairnessReport] = field(default_factory=dict)
    path: Path | None = None


def score_period(
    store: Store, card: ModelCard, model: Any, period: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model's rows for the period starting ``period`` (labels closed) with a ``score``."""
    if card.kind in ("propensity", "uplift"):
        offer = card.name.removeprefix("propensity-") if card.kind == "propensity" else None
        frame = contact_training_set(
            store,
            offers=[offer] if offer else None,
            start=period,
            end=period + timedelta(days=1),
        )
        if card.kind == "propensity":
            frame = frame[frame["treated"] == 1].reset_index(drop=True)
    elif card.kind == "churn":
        frame = customer_training_set(
            store, [period], CHURN_LABEL_SQL, horizon_days=CHURN_HORIZON_DAYS, fill=1.0
        )
        frame = frame[frame["frequency_90d"] > 0].reset_index(drop=True)
    else:
        horizon = int(card.params.get("horizon_days", 180))
        frame = customer_training_set(
            store, [period], revenue_label_sql(horizon), horizon_days=horizon
        )
    if card.kind == "uplift":
        frame = frame.assign(offer_id=pd.Categorical(frame["offer_id"]))
    X = prepare_features(frame, card.features)
    if card.kind in ("propensity", "churn"):
        frame["score"] = model.predict_proba(X)[:, 1]
    else:
        frame["score"] = np.asarray(model.predict(X), dtype=float).reshape(-1)
    return frame, X


def _latest_period(store: Store, card: ModelCard) -> date:
    test_dates = card.params.get("test_dates") or [card.as_of.isoformat()]
    return date.fromisoformat(test_dates[-1])


def evaluate_models(
    store: Store,
    workspace: Path,
    registry: ModelRegistry,
    names: Sequence[str] | None = None,
    *,
    world: Any = None,
    lang: str = "zh",
    progress: Callable[[int, int], None] | None = None,
) -> ModelEvaluation:
    """Score each model on its latest closed period and write ``reports/models.html``."""
    from qianmian.models.oracle import contact_truth

    cards = [
        registry.card(n)
        for n in (names or registry.names())
        if registry.card(n).kind in EVALUATED_KINDS
    ]
    if not cards:
        raise NotFoundError(
            "No propensity, churn, LTV or uplift model is registered; run `qianmian train` first."
        )
    customers = store.read("customers").to_pandas()
    out = ModelEvaluation()
    figures: list[go.Figure] = []
    for i, card in enumerate(cards, start=1):
        model, card = load_scorer(registry, card.name, card.version)
        period = _latest_period(store, card)
        frame, X = score_period(store, card, model, period)
        row: dict[str, Any] = {"model": card.label, "kind": card.kind, "period": str(period)}
        if card.kind in ("propensity", "churn"):
            label = "converted" if card.kind == "propensity" else "label"
            y = frame[label].to_numpy(int)
            rel = reliability(y, frame["score"].to_numpy())
            row |= {"auc": card.metrics.get("auc"), "ece": rel.ece, "brier": rel.brier}
            if world is not None and card.kind == "propensity":
                truth = contact_truth(world, store, frame)
                from sklearn.metrics import roc_auc_score

                row |= {"oracle_auc": float(roc_auc_score(y, truth["p_contacted"]))}
            figures.append(
                reliability_figure({card.label: rel}, title=f"校准 reliability — {card.label}")
            )
            cut = np.quantile(frame["score"], 1 - SELECTED_SHARE)
            sens = sensitive_attributes(customers, period).reindex(frame["customer_id"])
            report = fairness_report(
                y,
                (frame["score"] >= cut).to_numpy(int),
                sens.reset_index(drop=True),
                y_score=frame["score"].to_numpy(),
                min_group_size=MIN_FAIRNESS_GROUP,
            )
            out.fairness[card.label] = report
            row |= {"fairness_flags": len(report.flagged)}
            figures.append(report.figure().update_layout(title=f"公平性 fairness — {card.label}"))
        elif card.kind == "uplift":
            y = frame["converted"].to_numpy(int)
            t = frame["treated"].to_numpy(int)
            curves = {card.label: qini_curve(y, frame["score"], t)}
            row |= {"qini": qini_coefficient(y, frame["score"], t)}
            if world is not None:
                truth = contact_truth(world, store, frame)
                curves["oracle 真实增益"] = qini_curve(y, truth["uplift"].to_numpy(), t)
                row |= {"oracle_qini": qini_coefficient(y, truth["uplift"].to_numpy(), t)}
            figures.append(qini_figure(curves, perfect=perfect_qini_curve(y, t)))
        else:
            y = frame["label"].to_numpy(float)
            row |= {
                "mae": float(np.mean(np.abs(y - frame["score"]))),
                "spearman": float(pd.Series(y).corr(frame["score"], method="spearman")),
            }
        if card.kind != "uplift":
            sample = X.sample(min(len(X), _SHAP_SAMPLE), random_state=0)
            explainer = ReasonExplainer(model, card.features, sample)
            figures.append(
                importance_figure(explainer.importance(sample), lang=lang).update_layout(
                    title=f"特征重要性 SHAP importance — {card.label}"
                )
            )
        out.rows.append(row)
        if progress:
            progress(i, len(cards))
    table = pd.DataFrame(out.rows).to_html(index=False, float_format=lambda v: f"{v:,.4f}")
    out.path = write_html_report(
        workspace / "reports" / "models.html",
        "千面 · 模型评估 model evaluation",
        figures,
        key_figures={"模型 models": str(len(cards))},
        note="每个模型在最近一个已结束的观察期上重新打分。"
        "Each model is re-scored on its latest closed period.",
        sections_html=[table],
    )
    return out
