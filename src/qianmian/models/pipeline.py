"""From a trained model to a registered one: the card's schema, key metric and window.

The CLI and the demo call :func:`register_trained` after any ``train_*`` function of
:mod:`qianmian.models.train`; :func:`load_scorer` is how later parts (the decision engine, the
``explain`` command) get a promoted model together with the features it needs.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from qianmian.models.registry import ModelCard, ModelRegistry, catalogue_schema, schema_hash
from qianmian.models.train import TrainedModel

__all__ = ["KEY_METRICS", "NON_CATALOGUE_TYPES", "load_scorer", "register_trained"]

KEY_METRICS = {"propensity": "auc", "churn": "auc", "ltv": "spearman", "uplift": "qini"}
# Model inputs that describe the contact rather than the customer (not in the catalogue).
NON_CATALOGUE_TYPES = {"channel": "string", "offer_id": "string"}


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if _is_json(v)}


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


def register_trained(
    registry: ModelRegistry, trained: TrainedModel, *, extra_metrics: dict[str, float] | None = None
) -> ModelCard:
    """Register ``trained`` as the next candidate version of its name."""
    split = trained.split
    return registry.register(
        trained.model,
        name=trained.name,
        kind=trained.kind,
        features=trained.features,
        training_window=trained.training_window,
        metrics={**trained.metrics, **(extra_metrics or {})},
        dtypes=NON_CATALOGUE_TYPES,
        target=trained.target,
        params={
            **_jsonable(trained.params),
            "validation_dates": [d.date().isoformat() for d in split.validation_dates],
            "test_dates": [d.date().isoformat() for d in split.test_dates],
        },
        as_of=split.test_dates[-1].date(),
        key_metric=KEY_METRICS.get(trained.kind),
        requires=["lightgbm", "scikit-learn"],
        description=split.describe(),
    )


def load_scorer(
    registry: ModelRegistry,
    name: str,
    version: int | Literal["latest", "production"] | None = "production",
) -> tuple[Any, ModelCard]:
    """A registered model and its card, refused if today's catalogue no longer matches it."""
    card = registry.card(name, version)
    expected = schema_hash(catalogue_schema(card.features, NON_CATALOGUE_TYPES))
    return registry.load(name, card.version, expect_schema_hash=expected)
