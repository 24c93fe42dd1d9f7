"""PropensityClassifier: LightGBM with a time-ordered hold-out, early stopping and calibration."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from qianmian.errors import ConfigError, ValidationError
from qianmian.models.propensity import PropensityClassifier
from sklearn_contract import contract_checks


def _contract_params() -> list:
    # Row and column subsampling draw rows, not weight: a row of weight 2 is one draw, two
    # copies are two. With subsampling off (the first estimator) the check passes.
    weight_equivalence = pytest.mark.xfail(
        strict=True, reason="bagging draws rows, so weight 2 is not the same as two copies"
    )
    params = []
    for p in contract_checks(
        [
            PropensityClassifier(
                n_estimators=50, min_child_samples=1, subsample=1.0, colsample_bytree=1.0, n_jobs=1
            ),
            PropensityClassifier(
                n_estimators=50,
                min_child_samples=1,
                class_weight="balanced",
                calibration="sigmoid",
                n_jobs=1,
            ),
        ]
    ):
        if p.id.startswith(
            "PropensityClassifier-check_sample_weight_equivalence"
        ) and p.id.endswith("-1"):
            p = pytest.param(*p.values, id=p.id, marks=weight_equivalence)
        params.append(p)
    return params


@pytest.mark.parametrize(("estimator", "check"), _contract_params())
def test_sklearn_contract(estimator, check):
    check(estimator)


def _customers(
    n: int, seed: int = 0, base: float = -3.0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Customers with a known response probability: spend and the app channel raise it."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "spend": rng.gamma(2.0, 1.0, n),
            "tenure": rng.uniform(0, 10, n),
            "noise": rng.normal(size=n),
            "channel": pd.Categorical(rng.choice(["app", "branch", "sms"], n)),
        }
    )
    p = expit(base + 0.8 * X["spend"] - 0.15 * X["tenure"] + 1.2 * (X["channel"] == "app"))
    return X, (rng.random(n) < p).astype(int), p.to_numpy()


def _model(**params) -> PropensityClassifier:
    return PropensityClassifier(**{"n_jobs": 1, **params})


def test_holds_out_the_last_rows_for_early_stopping_and_calibration():
    X, y, _ = _customers(5_000)
    cut = 4_000
    auto = _model().fit(X, y)
    explicit = _model().fit(X.iloc[:cut], y[:cut], eval_set=(X.iloc[cut:], y[cut:]))
    assert auto.n_validation_ == explicit.n_validation_ == 1_000
    np.testing.assert_array_equal(auto.predict_proba(X), explicit.predict_proba(X))
    assert auto.best_iteration_ == explicit.best_iteration_ < 2_000
    assert auto.calibrator_ is not None


def test_recovers_the_true_ranking_and_importances():
    X, y, _ = _customers(8_000, seed=1)
    X_new, y_new, p_new = _customers(4_000, seed=2)
    model = _model().fit(X, y)
    auc = roc_auc_score(y_new, model.raw_margin(X_new))
    best_possible = roc_auc_score(y_new, p_new)  # 0.818 with the true probabilities
    assert auc > best_possible - 0.025, (auc, best_possible)  # 0.802 measured
    # the isotonic map's steps tie some customers, which costs a little AUC
    assert roc_auc_score(y_new, model.predict_proba(X_new)[:, 1]) > auc - 0.01
    importance = dict(zip(model.feature_names_in_, model.feature_importances_, strict=True))
    assert importance["spend"] > importance["tenure"] > importance["noise"]
    assert isinstance(model.booster_, lgb.Booster)
    assert model.booster_.feature_name() == ["spend", "tenure", "noise", "channel"]


def test_categorical_and_text_columns_go_to_lightgbm_as_categories():
    X, y, _ = _customers(3_000)
    X = X.assign(channel=X["channel"].astype(str), city_tier=np.where(y == 1, "一线", "三线"))
    model = _model().fit(X, y)
    assert model.categorical_features_ == ["channel", "city_tier"]
    assert list(model.feature_names_in_) == ["spend", "tenure", "noise", "channel", "city_tier"]
    assert model.lgbm_.booster_.pandas_categorical[0] == ["app", "branch", "sms"]
    new = X.head(3).assign(channel=["app", "wechat", None])  # an unseen value and a missing one
    assert model.predict_proba(new).shape == (3, 2)
    with pytest.raises(ValidationError, match="categorical columns channel, city_tier"):
        model.predict(X.to_numpy())


def test_numpy_input_and_string_labels():
    X, y, _ = _customers(3_000)
    labels = np.where(y == 1, "yes", "no")
    model = _model().fit(X[["spend", "tenure"]].to_numpy(), labels)
    assert model.classes_.tolist() == ["no", "yes"]
    assert not hasattr(model, "feature_names_in_") and model.n_features_in_ == 2
    assert set(model.predict(X[["spend", "tenure"]].to_numpy())) <= {"no", "yes"}


def test_small_data_trains_without_hold_out():
    X, y, _ = _customers(60)
    model = _model(n_estimators=30, min_child_samples=5).fit(X, y)
    assert model.n_validation_ == 0
    assert model.calibrator_ is None
    assert model.best_iteration_ == 30


def test_decision_function_agrees_with_predict_and_probability():
    X, y, _ = _customers(4_000)
    raw = _model(calibration=None).fit(X, y)
    np.testing.assert_allclose(expit(raw.decision_function(X)), raw.predict_proba(X)[:, 1])
    np.testing.assert_array_equal(raw.decision_function(X), raw.raw_margin(X))
    calibrated = _model(calibration="isotonic").fit(X, y)
    positive = calibrated.predict(X) == 1
    np.testing.assert_array_equal(calibrated.decision_function(X) > 0, positive)
    # the isotonic map is non-decreasing in the raw margin
    order = np.argsort(calibrated.raw_margin(X))
    assert (np.diff(calibrated.predict_proba(X)[order, 1]) >= -1e-12).all()


def test_class_weight_shifts_raw_probabilities_and_calibration_shifts_them_back():
    X, y, _ = _customers(10_000, base=-4.0)
    X_new, y_new, _ = _customers(5_000, seed=3, base=-4.0)
    raw = _model(class_weight="balanced", calibration=None).fit(X, y)
    calibrated = _model(class_weight="balanced").fit(X, y)
    rate = y_new.mean()
    assert raw.predict_proba(X_new)[:, 1].mean() > 3 * rate
    assert abs(calibrated.predict_proba(X_new)[:, 1].mean() - rate) < 0.3 * rate
    by_dict = _model(class_weight={0: 1.0, 1: 10.0}, calibration=None).fit(X, y)
    assert by_dict.predict_proba(X_new)[:, 1].mean() > 3 * rate


def test_same_seed_same_model():
    X, y, _ = _customers(3_000)
    a = _model(random_state=7).fit(X, y).predict_proba(X)
    b = _model(random_state=7).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"n_estimators": 0}, "'n_estimators' parameter of PropensityClassifier must be an int >= 1. Got 0"),
        ({"num_leaves": 1}, "'num_leaves' .* an int >= 2. Got 1"),
        ({"learning_rate": 0}, "'learning_rate' .* a float > 0. Got 0"),
        ({"subsample": 1.5}, r"'subsample' .* a float in \(0, 1\]. Got 1.5"),
        ({"reg_lambda": -1.0}, "'reg_lambda' .* a float >= 0"),
        ({"validation_fraction": 1.0}, r"'validation_fraction' .* a float in \[0, 1\)"),
        ({"class_weight": "even"}, "'class_weight' .* None, 'balanced' or a dict"),
        ({"class_weight": {"maybe": 2.0}}, r"'class_weight' .* keyed by the classes of y \[0, 1\]"),
        ({"calibration": "beta"}, "'calibration' .* one of 'isotonic', 'sigmoid' or None"),
        ({"importance_type": "cover"}, "'importance_type' .* one of 'gain', 'split'"),
        ({"n_jobs": 0}, "'n_jobs' .* a non-zero int"),
        ({"random_state": "seed"}, "'random_state' .* Got 'seed'"),
    ],
)  # fmt: skip
def test_invalid_parameters(params, pattern):
    X, y, _ = _customers(200)
    with pytest.raises(ConfigError, match=pattern):
        _model(**params).fit(X, y)


def test_invalid_data():
    X, y, _ = _customers(400)
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        _model().fit(X, np.arange(400) % 3)
    with pytest.raises(ValueError, match="needs both classes in y"):
        _model().fit(X, np.ones(400))
    with pytest.raises(ValidationError, match="eval_set holds only one class"):
        _model().fit(X, y, eval_set=(X, np.zeros(400)))
    with pytest.raises(ValidationError, match=r"labels \[7\] that are not in y"):
        _model().fit(X, y, eval_set=(X, np.full(400, 7)))
    with pytest.raises(ValidationError, match="must be a pair"):
        _model().fit(X, y, eval_set=[X])
    dated = X.assign(opened=pd.Timestamp("2026-01-01"))
    with pytest.raises(ValidationError, match="Column 'opened' has dtype datetime64"):
        _model().fit(dated, y)
