"""Optuna search of PropensityClassifier's parameters by validation AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from qianmian.errors import ConfigError
from qianmian.models.propensity import PropensityClassifier
from qianmian.models.tuning import DEFAULT_SEARCH, tune_propensity


def _periods(n: int = 3_000, seed: int = 0):
    """A training and a later validation period with an interaction trees must find."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"x{i}" for i in range(6)])
    logit = -2.0 + 1.5 * X["x0"] * (X["x1"] > 0) + 0.8 * X["x2"] - 0.5 * X["x3"] ** 2
    y = (rng.random(n) < expit(logit)).astype(int)
    cut = int(n * 0.7)
    return X.iloc[:cut], y[:cut], X.iloc[cut:], y[cut:]


def _validation_auc(params, X_train, y_train, X_val, y_val) -> float:
    model = PropensityClassifier(**{**params, "calibration": None})
    model.fit(X_train, y_train, eval_set=(X_val, y_val))
    return float(roc_auc_score(y_val, model.predict_proba(X_val)[:, 1]))


def test_returns_usable_params_at_least_as_good_as_the_defaults():
    X_train, y_train, X_val, y_val = _periods()
    done = []
    params = tune_propensity(
        X_train,
        y_train,
        X_val,
        y_val,
        n_trials=12,
        seed=0,
        fixed={"n_jobs": 1},
        progress=lambda k, n: done.append((k, n)),
    )
    assert done == [(k, 12) for k in range(1, 13)]
    assert set(DEFAULT_SEARCH) | {"n_estimators", "random_state", "n_jobs"} == set(params)
    assert 7 <= params["num_leaves"] <= 127 and 0.01 <= params["learning_rate"] <= 0.2
    assert 1 <= params["n_estimators"] < 2_000
    tuned = _validation_auc(params, X_train, y_train, X_val, y_val)
    default = _validation_auc({"n_jobs": 1, "random_state": 0}, X_train, y_train, X_val, y_val)
    # The defaults are trial 0, so the result is never worse; here the search finds better
    # (measured: 0.802 against 0.792).
    assert tuned >= default, (tuned, default)
    PropensityClassifier(**params).fit(X_train, y_train)  # accepted as they are


def test_same_seed_same_search():
    X_train, y_train, X_val, y_val = _periods(1_500, seed=1)
    a = tune_propensity(X_train, y_train, X_val, y_val, n_trials=3, seed=5, fixed={"n_jobs": 1})
    b = tune_propensity(X_train, y_train, X_val, y_val, n_trials=3, seed=5, fixed={"n_jobs": 1})
    assert a == b


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n_trials": 0}, "'n_trials' parameter of tune_propensity must be an int >= 1. Got 0"),
        ({"timeout": -1}, "'timeout' .* a number of seconds > 0"),
        ({"seed": "a"}, "'seed' .* an int"),
        ({"fixed": {"num_leaves": 8}}, r"'fixed' .* free of the searched parameters \(drop \['num_leaves'\]\)"),
    ],
)  # fmt: skip
def test_invalid_arguments(kwargs, pattern):
    X_train, y_train, X_val, y_val = _periods(300)
    with pytest.raises(ConfigError, match=pattern):
        tune_propensity(X_train, y_train, X_val, y_val, **kwargs)
