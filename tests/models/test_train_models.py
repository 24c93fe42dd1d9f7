"""Training each kind of model from the store: time split, metrics, registry, oracle, reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qianmian.errors import ModelCompatibilityError, ValidationError
from qianmian.models.datasets import contact_training_set
from qianmian.models.oracle import contact_truth, oracle_comparison
from qianmian.models.pipeline import load_scorer, register_trained
from qianmian.models.registry import ModelRegistry
from qianmian.models.train import train_churn, train_ltv, train_propensity, train_uplift

OFFER = "OF-TRAVEL-CASHBACK"  # the offer with the most conversions in a small bank


@pytest.fixture(scope="module")
def contacts(model_world):
    from qianmian.config import load_settings

    with load_settings(model_world.workspace).build_store() as store:
        return contact_training_set(store)


@pytest.fixture(scope="module")
def propensity(model_world, contacts):
    from qianmian.config import load_settings

    with load_settings(model_world.workspace).build_store() as store:
        return train_propensity(store, OFFER, data=contacts)


def test_propensity_trains_on_earlier_periods_and_tests_on_the_last(propensity, contacts):
    split = propensity.split
    assert max(split.train_dates) + pd.Timedelta(days=30) <= min(split.validation_dates)
    assert max(split.validation_dates) < min(split.test_dates)
    assert (propensity.test["as_of"] == split.test_dates[-1]).all()
    assert (propensity.test["offer_id"] == OFFER).all() and (propensity.test["treated"] == 1).all()
    m = propensity.metrics
    assert m["auc"] > 0.6, m
    # calibrated: the mean score is close to the observed rate of the test period
    assert abs(m["mean_score"] - m["base_rate"]) < 0.5 * m["base_rate"] + 0.01, m


def test_the_oracle_scores_the_same_test_contacts(model_world, model_store, propensity):
    cmp = oracle_comparison(model_world, model_store, propensity)
    assert cmp["auc"] == pytest.approx(propensity.metrics["auc"])
    assert 0.6 < cmp["oracle_auc"] <= 1.0
    assert cmp["auc_gap"] == pytest.approx(cmp["oracle_auc"] - cmp["auc"])


def test_contact_truth_counts_fatigue_as_the_draw_did(model_world, model_store, contacts):
    rows = contacts.iloc[:2000]
    truth = contact_truth(model_world, model_store, rows)
    assert truth.index.equals(rows.index)
    assert ((truth["p_contacted"] >= 0) & (truth["p_contacted"] <= 1)).all()
    # conversions happen far more where the oracle says they are likely
    hi = truth["p_contacted"] > truth["p_contacted"].quantile(0.9)
    assert rows.loc[hi, "converted"].mean() > 2 * rows.loc[~hi, "converted"].mean()


def test_registered_propensity_loads_and_scores_identically(tmp_path, propensity):
    registry = ModelRegistry(tmp_path / "registry")
    card = register_trained(registry, propensity)
    assert card.kind == "propensity" and card.key_metric == "auc"
    assert card.params["test_dates"] == [propensity.split.test_dates[-1].date().isoformat()]
    registry.promote(card.name, card.version)
    model, loaded = load_scorer(registry, card.name)
    from qianmian.models.datasets import prepare_features

    X = prepare_features(propensity.test, loaded.features)
    assert np.allclose(model.predict_proba(X)[:, 1], propensity.test["score"])


def test_a_model_whose_features_changed_is_refused(tmp_path, propensity):
    registry = ModelRegistry(tmp_path / "registry")
    card = register_trained(registry, propensity)
    with pytest.raises(ModelCompatibilityError, match=card.name):
        registry.load(card.name, card.version, expect_schema=[("recency_days", "int")])


def test_churn_model_separates_the_customers_who_go_quiet(model_store):
    churn = train_churn(model_store)
    assert churn.metrics["auc"] > 0.8, churn.metrics
    assert (churn.test["frequency_90d"] > 0).all()
    assert 0 < churn.metrics["base_rate"] < 0.5


def test_ltv_model_ranks_value_better_than_the_mean(model_store):
    ltv = train_ltv(model_store)
    assert ltv.params["horizon_days"] in (90, 180, 365)
    assert ltv.metrics["spearman"] > 0.5, ltv.metrics
    assert ltv.metrics["mae"] < ltv.metrics["mae_mean_baseline"]


def test_uplift_learner_is_scored_against_the_oracle(model_world, model_store, contacts):
    uplift = train_uplift(model_store, learner="t", data=contacts)
    assert set(uplift.test["treated"]) == {0, 1}
    cmp = oracle_comparison(model_world, model_store, uplift)
    assert cmp["oracle_qini"] > 0
    assert np.isfinite(cmp["qini"]) and cmp["qini_share_of_oracle"] == pytest.approx(
        cmp["qini"] / cmp["oracle_qini"]
    )


def test_unknown_learner_is_a_clear_error(model_store, contacts):
    with pytest.raises(Exception, match="learner"):
        train_uplift(model_store, learner="z", data=contacts)  # type: ignore[arg-type]


def test_offer_without_contacts_is_a_clear_error(model_store, contacts):
    with pytest.raises(ValidationError, match="OF-NOPE"):
        train_propensity(model_store, "OF-NOPE", data=contacts)
