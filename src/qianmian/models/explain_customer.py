"""One customer's scores from registered models, each with its top SHAP reasons in plain words.

The customer's features are computed as of a date (only data strictly before it); their peers
for "higher than 90% of peers" are a sample of all customers at the same date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from qianmian.data.schema.vocab import CONTACT_CHANNELS
from qianmian.errors import NotFoundError, ValidationError
from qianmian.features.compile import AsOf
from qianmian.features.engine import StoreFeatureEngine
from qianmian.models.datasets import prepare_features
from qianmian.models.explain import ReasonExplainer
from qianmian.models.pipeline import load_scorer
from qianmian.models.registry import ModelRegistry
from qianmian.store.base import Store

__all__ = ["CustomerExplanation", "explain_customer"]

_EXPLAINED = ("propensity", "churn", "ltv")
_PEERS = 5_000


@dataclass
class CustomerExplanation:
    label: str
    kind: str
    score: float
    as_of: datetime
    reasons: pd.DataFrame  # rank, feature, value, shap, percentile, text


def explain_customer(
    store: Store,
    registry: ModelRegistry,
    customer_id: int,
    *,
    models: Sequence[str] | None = None,
    channel: str = "app_push",
    as_of: str | datetime | None = None,
    lang: str = "zh",
    top: int = 3,
) -> list[CustomerExplanation]:
    """Score ``customer_id`` with ``models`` (default: every propensity, churn and LTV model)."""
    from qianmian.features.engine import latest_as_of

    if channel not in CONTACT_CHANNELS.values:
        raise ValidationError(
            f"channel '{channel}' is not one of {', '.join(CONTACT_CHANNELS.values)}."
        )
    names = list(models or [n for n in registry.names() if registry.card(n).kind in _EXPLAINED])
    if not names:
        raise NotFoundError(
            "No propensity, churn or LTV model is registered; run `qianmian train` first."
        )
    at = AsOf.of(as_of).at if as_of else latest_as_of(store)
    engine = StoreFeatureEngine(store)
    population = engine.build(at).to_pandas()
    me = population[population["customer_id"] == customer_id]
    if me.empty:
        raise NotFoundError(
            f"customer_id {customer_id} has no features as of {at:%Y-%m-%d} (unknown, or signed "
            "up later)."
        )
    peers = population.sample(min(len(population), _PEERS), random_state=0)
    out = []
    for name in names:
        model, card = load_scorer(registry, name, None)
        if card.kind not in _EXPLAINED:
            raise ValidationError(
                f"Model '{name}' is a {card.kind} model; explain scores propensity, churn or LTV."
            )
        rows = me.assign(channel=channel)
        X = prepare_features(rows, card.features)
        if card.kind == "ltv":
            score = float(model.predict(X)[0])
        else:
            score = float(model.predict_proba(X)[0, 1])
        explainer = ReasonExplainer(
            model, card.features, prepare_features(peers.assign(channel=channel), card.features)
        )
        reasons = explainer.explain(X.assign(customer_id=customer_id), k=top, lang=lang)
        out.append(CustomerExplanation(card.label, card.kind, score, at, reasons))
    return out
