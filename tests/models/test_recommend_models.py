"""The recommenders' shared contract, and each one recovering a structure planted in its data."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from recommend_world import planted_interactions
from sklearn.base import clone

from qianmian.errors import ConfigError, NotFoundError, SchemaError, ValidationError
from qianmian.models.recommend import (
    RECOMMENDATION_COLUMNS,
    ALSRecommender,
    DeepFMRecommender,
    InteractionSplit,
    PopularityRecommender,
    Recommender,
    evaluate_split,
)

PAIRS, SIDE = planted_interactions()
PRODUCT_FEATURES = pd.DataFrame(
    {"product_type": ["card", "card", "wealth", "wealth", "insurance", "loan"]},
    index=pd.Index(list("ABCDEF"), name="product_id"),
)


def _small_deepfm(**kw: object) -> DeepFMRecommender:
    return DeepFMRecommender(max_epochs=15, batch_size=512, learning_rate=1e-2, **kw)  # type: ignore[arg-type]


MODELS = {
    "popularity": PopularityRecommender,
    "als": lambda: ALSRecommender(factors=4, regularization=1.0),
    "deepfm": _small_deepfm,
}


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request: pytest.FixtureRequest) -> Recommender:
    model = MODELS[request.param]()
    assert model.fit(PAIRS, SIDE) is model
    return model


def _held(customer_id: int) -> set[str]:
    return set(PAIRS.loc[PAIRS["customer_id"] == customer_id, "product_id"])


def test_recommendations_have_the_contract_shape(fitted: Recommender) -> None:
    customers = [5, 1, 3, 5]
    recs = fitted.recommend(customers, k=3)
    assert list(recs.columns) == list(RECOMMENDATION_COLUMNS)
    assert recs["customer_id"].drop_duplicates().tolist() == [5, 1, 3]
    for cid, group in recs.groupby("customer_id", sort=False):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert len(group) == min(3, 6 - len(_held(int(cid))))
        assert group["score"].is_monotonic_decreasing
        assert not set(group["product_id"]) & _held(int(cid))
        assert group["product_id"].is_unique


def test_exclude_held_false_may_recommend_held_products(fitted: Recommender) -> None:
    recs = fitted.recommend([1], k=6, exclude_held=False)
    assert set(recs["product_id"]) == set("ABCDEF")


def test_unknown_customer_still_gets_recommendations(fitted: Recommender) -> None:
    recs = fitted.recommend([999_999], k=2)
    assert len(recs) == 2 and recs["rank"].tolist() == [1, 2]


def test_same_seed_same_recommendations(fitted: Recommender) -> None:
    again = clone(fitted).fit(PAIRS, SIDE)
    ids = list(range(1, 60))
    pd.testing.assert_frame_equal(fitted.recommend(ids, k=3), again.recommend(ids, k=3))


def test_save_and_load_round_trip(fitted: Recommender, tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "model" / "rec.joblib")
    loaded = type(fitted).load(path)
    ids = list(range(1, 40))
    pd.testing.assert_frame_equal(fitted.recommend(ids, k=4), loaded.recommend(ids, k=4))
    other = (
        PopularityRecommender if not isinstance(fitted, PopularityRecommender) else ALSRecommender
    )
    with pytest.raises(SchemaError, match="load it with its own class"):
        other.load(path)
    with pytest.raises(NotFoundError, match="No saved recommender"):
        type(fitted).load(tmp_path / "missing.joblib")


def test_popularity_ranks_by_how_many_hold_each_product() -> None:
    model = PopularityRecommender().fit(PAIRS)
    counts = PAIRS["product_id"].value_counts()
    order = counts.sort_values(ascending=False, kind="stable").index.tolist()
    recs = model.recommend([999_999], k=6)
    assert recs["product_id"].tolist() == order
    assert recs["score"].tolist() == counts[order].astype(float).tolist()


def test_als_recovers_the_product_that_goes_with_the_anchor() -> None:
    """x customers holding only A should get B first, which popularity does not give them."""
    only_a = [c for c in SIDE.index[SIDE["segment"] == "x"] if _held(int(c)) == {"A"}]
    assert len(only_a) >= 20
    als_top = ALSRecommender(factors=4, regularization=1.0).fit(PAIRS).recommend(only_a, k=1)
    pop_top = PopularityRecommender().fit(PAIRS).recommend(only_a, k=1)
    assert (als_top["product_id"] == "B").mean() >= 0.9
    assert (pop_top["product_id"] == "B").mean() == 0.0


def test_deepfm_uses_side_features_for_customers_it_has_not_seen() -> None:
    """New customers (side features only) get their segment's products first."""
    rng = np.random.default_rng(5)
    new_ids = np.arange(10_001, 10_201)
    segment = np.where(rng.random(len(new_ids)) < 0.5, "x", "y")
    new_side = pd.DataFrame(
        {"segment": segment, "score": np.where(segment == "x", 1.0, -1.0)},
        index=pd.Index(new_ids, name="customer_id"),
    )
    model = _small_deepfm().fit(
        PAIRS, pd.concat([SIDE, new_side]), product_features=PRODUCT_FEATURES
    )
    top = model.recommend(new_ids, k=1).set_index("customer_id")["product_id"]
    expected = np.where(segment == "x", "A", "C")
    assert (top.loc[new_ids].to_numpy() == expected).mean() >= 0.95
    assert model.product_encoding_.categorical == ["product_type"]
    assert model.customer_encoding_.categorical == ["segment"]
    # Early stopping kept the epoch with the lowest validation loss.
    losses = [h["val_loss"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmin(losses)) + 1
    assert len(model.history_) <= 15


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (ALSRecommender(factors=0), "'factors' parameter of ALSRecommender must be a positive int"),
        (ALSRecommender(regularization=-1.0), "'regularization'"),
        (ALSRecommender(weighting="tfidf"), "one of 'bm25', 'confidence'"),
        (ALSRecommender(bm25_b=2.0), "'bm25_b'"),
        (ALSRecommender(random_state=None), "'random_state'"),  # type: ignore[arg-type]
        (DeepFMRecommender(embedding_dim=0), "'embedding_dim'"),
        (DeepFMRecommender(hidden_units=(32, 0)), "'hidden_units'"),
        (DeepFMRecommender(dropout=1.0), "'dropout'"),
        (DeepFMRecommender(learning_rate=0.0), "'learning_rate'"),
        (DeepFMRecommender(validation_fraction=0.9), "'validation_fraction'"),
        (DeepFMRecommender(n_threads=0), "'n_threads'"),
    ],
)
def test_bad_parameters_are_refused_at_fit(model: Recommender, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        model.fit(PAIRS)


@pytest.mark.parametrize("cls", [PopularityRecommender, ALSRecommender, DeepFMRecommender])
def test_bad_data_is_a_clear_error(cls: type[Recommender]) -> None:
    with pytest.raises(ValidationError, match="empty"):
        cls().fit(PAIRS.iloc[:0])
    with pytest.raises(ValidationError, match="product_id"):
        cls().fit(PAIRS[["customer_id"]])
    with pytest.raises(ConfigError, match="'k' parameter"):
        PopularityRecommender().fit(PAIRS).recommend([1], k=0)


def test_deepfm_side_features_must_be_one_row_per_customer() -> None:
    doubled = pd.concat([SIDE, SIDE.iloc[:3]])
    with pytest.raises(ValidationError, match="more than one row"):
        _small_deepfm().fit(PAIRS, doubled)
    with pytest.raises(ValidationError, match="side_features must be a DataFrame"):
        _small_deepfm().fit(PAIRS, SIDE.to_numpy())  # type: ignore[arg-type]


def test_deepfm_leaves_torch_threads_as_it_found_them() -> None:
    import torch

    before = torch.get_num_threads()
    model = _small_deepfm(n_threads=1).fit(PAIRS, SIDE)
    model.recommend([1, 2], k=2)
    assert torch.get_num_threads() == before


def test_saved_artifact_carries_provenance_and_metrics(tmp_path: Path) -> None:
    events = PAIRS.assign(ts=pd.Timestamp("2026-01-01") + pd.to_timedelta(PAIRS.index, "D"))
    model = ALSRecommender(factors=4).fit(events)
    path = model.save(tmp_path / "als.joblib", metrics={"ndcg@3": 0.3})
    provenance = joblib.load(path)["provenance"]
    assert provenance["kind"] == "qianmian.models.recommend.als.ALSRecommender"
    assert provenance["metrics"] == {"ndcg@3": 0.3}
    assert provenance["data_window"]["first_event"].startswith("2026-01-01")
    assert provenance["products"] == list("ABCDEF")
    assert {"qianmian", "python", "implicit", "numpy"} <= set(provenance["versions"])


def test_evaluating_a_split_without_targets_is_a_clear_error() -> None:
    empty = InteractionSplit(
        train=PAIRS, targets=PAIRS.iloc[:0], protocol="time", as_of=pd.Timestamp("2026-01-01")
    )
    with pytest.raises(ValidationError, match="no customer with a target"):
        evaluate_split(empty, {"popularity": PopularityRecommender()})
