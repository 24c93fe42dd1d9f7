"""Scores of every customer × offer × channel of a batch campaign, in a few model calls.

A batch campaign chooses among all its customers at once, so scoring them one request at a time
(the decision engine's path) would cost ~1 ms each. Here each model is called once per
(offer, channel) on the whole feature table: the matrix is prepared once and only the offer and
channel columns change between calls. Scores are the same numbers the engine's scorer computes
for one customer (both call the model's own ``predict_outcomes`` / ``predict_proba``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from qianmian.errors import ValidationError
from qianmian.models.datasets import prepare_features

__all__ = ["CandidateGrid", "propensity_grid", "uplift_grid"]


@dataclass(frozen=True)
class CandidateGrid:
    """Scores as arrays of shape (customers, offers, channels); NaN where not scored."""

    customer_ids: np.ndarray
    offers: tuple[str, ...]
    channels: tuple[str, ...]
    p_sent: np.ndarray
    p_held: np.ndarray | None = None

    @property
    def uplift(self) -> np.ndarray:
        if self.p_held is None:
            raise ValidationError("This grid holds response probabilities only, not uplift.")
        return self.p_sent - self.p_held


def _matrix(features: pd.DataFrame, names: Sequence[str], offer: str, channel: str) -> pd.DataFrame:
    frame = features.assign(offer_id=offer, channel=channel)
    return prepare_features(frame, names)


def _with(X: pd.DataFrame, column: str, value: str, categories: Sequence[str]) -> None:
    if column in X.columns:
        X[column] = pd.Categorical([value] * len(X), categories=list(categories))


def uplift_grid(
    model: Any,
    feature_names: Sequence[str],
    features: pd.DataFrame,
    offers: Sequence[str],
    channels: Sequence[str],
) -> CandidateGrid:
    """P(convert | held out) and P(convert | sent) from an uplift learner for every cell.

    ``features`` has one row per customer (``customer_id`` plus the model's customer features);
    the learner must read ``offer_id`` and ``channel`` (as ``qianmian train uplift`` trains it).
    """
    for name in ("offer_id", "channel"):
        if name not in feature_names:
            raise ValidationError(
                f"The uplift model does not read '{name}'; it cannot score a grid."
            )
    n = len(features)
    held = np.full((n, len(offers), len(channels)), np.nan)
    sent = np.full_like(held, np.nan)
    X = _matrix(features, feature_names, offers[0], channels[0])
    for i, offer in enumerate(offers):
        _with(X, "offer_id", offer, offers)
        for j, channel in enumerate(channels):
            _with(X, "channel", channel, X["channel"].cat.categories)
            mu = np.asarray(model.predict_outcomes(X), dtype=float)
            held[:, i, j], sent[:, i, j] = mu[:, 0], mu[:, 1]
    ids = features["customer_id"].to_numpy(np.int64)
    return CandidateGrid(ids, tuple(offers), tuple(channels), sent, held)


def propensity_grid(
    models: dict[str, tuple[Any, Sequence[str]]],
    features: pd.DataFrame,
    offers: Sequence[str],
    channels: Sequence[str],
    fallback_rate: dict[str, float],
) -> CandidateGrid:
    """P(convert | sent) from one propensity model per offer (``models[offer] = (model, names)``).

    An offer without a model (too few past conversions to train one) gets its past conversion
    rate among sent contacts, ``fallback_rate[offer]``, for every customer.
    """
    n = len(features)
    sent = np.full((n, len(offers), len(channels)), np.nan)
    for i, offer in enumerate(offers):
        if offer not in models:
            if offer not in fallback_rate:
                raise ValidationError(
                    f"offer '{offer}' has neither a propensity model nor a past conversion rate."
                )
            sent[:, i, :] = fallback_rate[offer]
            continue
        model, names = models[offer]
        X = _matrix(features, names, offer, channels[0])
        for j, channel in enumerate(channels):
            _with(X, "channel", channel, X["channel"].cat.categories)
            sent[:, i, j] = np.asarray(model.predict_proba(X), dtype=float)[:, 1]
    ids = features["customer_id"].to_numpy(np.int64)
    return CandidateGrid(ids, tuple(offers), tuple(channels), sent)
