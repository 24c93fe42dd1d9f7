"""``train recommend`` and ``train forecast``: measured against baselines, then registered."""

from __future__ import annotations

from qianmian.models.registry import ModelRegistry
from qianmian.models.train_sequences import train_need_forecaster, train_recommender


def test_recommender_is_compared_and_registered(tmp_path, model_store):
    registry = ModelRegistry(tmp_path / "registry")
    result = train_recommender(model_store, registry, promote=True)
    assert set(result.comparison["model"]) == {"popularity", "als", "deepfm"}
    card = result.card
    assert card.kind == "recommend" and card.stage == "production"
    assert card.metrics["ndcg@3"] > card.metrics["popularity_ndcg@3"]
    model, _ = registry.load(card.name)
    recs = model.recommend([1, 2, 3], k=3)
    assert set(recs.columns) >= {"customer_id", "rank", "product_id", "score"}


def test_need_forecaster_is_compared_and_registered(tmp_path, model_store, model_world):
    from qianmian.models.forecast import NeedForecaster

    registry = ModelRegistry(tmp_path / "registry")
    result = train_need_forecaster(
        model_store,
        registry,
        world=model_world,
        lstm=NeedForecaster(max_epochs=3, samples_per_epoch=20_000),
        origin_step_days=28,
    )
    names = set(result.comparison["model"])
    assert {"seasonal_naive", "lightgbm", "lstm"} <= names
    card = result.card
    assert card.metrics["lstm_mae_30d"] < card.metrics["seasonal_naive_mae_30d"]
    model, _ = registry.load(card.name, card.version)
    assert isinstance(model, NeedForecaster)
