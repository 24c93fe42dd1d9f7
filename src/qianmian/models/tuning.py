"""Hyper-parameter search for :class:`~qianmian.models.propensity.PropensityClassifier` (Optuna).

:func:`tune_propensity` searches tree shape, learning rate and regularisation with Optuna's TPE
sampler, each trial trained on the training period with early stopping on the validation period
and scored by validation AUC. The first trial is always the default parameters, so the result is
never worse than the defaults on the validation period. The validation period is used for both
early stopping and choosing, so its AUC is optimistic: confirm on a later test period.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from qianmian.errors import invalid_parameter
from qianmian.models.propensity import PropensityClassifier

__all__ = ["DEFAULT_SEARCH", "tune_propensity"]

# The defaults of PropensityClassifier for the searched parameters (the first trial).
DEFAULT_SEARCH: dict[str, float | int] = {
    "num_leaves": 31,
    "learning_rate": 0.05,
    "min_child_samples": 50,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


def _suggest(trial: Any) -> dict[str, float | int]:
    return {
        "num_leaves": trial.suggest_int("num_leaves", 7, 127, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 300, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
    }


def tune_propensity(
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    *,
    n_trials: int = 30,
    timeout: float | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    fixed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Best :class:`PropensityClassifier` parameters by validation AUC.

    Parameters
    ----------
    X_train, y_train
        The training period (rows in time order).
    X_val, y_val
        A later validation period: early stopping and the AUC that is maximised.
    n_trials : int >= 1, default=30
    timeout : float, optional
        Stop starting new trials after this many seconds.
    seed : int, default=0
        Seed of the TPE sampler and of LightGBM: the same seed gives the same search.
    progress : callable, optional
        Called as ``progress(done, n_trials)`` after each trial.
    fixed : dict, optional
        Parameters held fixed in every trial (e.g. ``{"n_jobs": 1, "class_weight": "balanced"}``).

    Returns
    -------
    dict
        The searched parameters of the best trial plus ``n_estimators`` (the trees early stopping
        kept, with 10% headroom) and ``fixed``, ready for ``PropensityClassifier(**params)``.

    Examples
    --------
    ::

        params = tune_propensity(X_train, y_train, X_val, y_val, n_trials=50)
        model = PropensityClassifier(**params).fit(X_train, y_train, eval_set=(X_val, y_val))
    """
    import optuna  # the models extra

    if not isinstance(n_trials, Integral) or isinstance(n_trials, bool) or n_trials < 1:
        raise invalid_parameter("tune_propensity", "n_trials", "an int >= 1", n_trials)
    if timeout is not None and (not isinstance(timeout, Real) or timeout <= 0):
        raise invalid_parameter("tune_propensity", "timeout", "a number of seconds > 0", timeout)
    if not isinstance(seed, Integral) or isinstance(seed, bool):
        raise invalid_parameter("tune_propensity", "seed", "an int", seed)
    clash = sorted(set(fixed or {}) & set(DEFAULT_SEARCH))
    if clash:
        raise invalid_parameter(
            "tune_propensity", "fixed", f"free of the searched parameters (drop {clash})", fixed
        )
    base = {"random_state": seed, "calibration": None, **dict(fixed or {})}
    trees: dict[int, int] = {}

    def objective(trial: Any) -> float:
        params = _suggest(trial)
        model = PropensityClassifier(**base, **params)
        model.fit(X_train, y_train, eval_set=(X_val, y_val))
        trees[trial.number] = model.best_iteration_
        score = model.predict_proba(X_val)[:, 1]
        return float(roc_auc_score(np.asarray(y_val).ravel() == model.classes_[1], score))

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.enqueue_trial(DEFAULT_SEARCH)
        callbacks = []
        if progress is not None:
            callbacks.append(lambda s, _t: progress(len(s.trials), n_trials))
        study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=callbacks)
    finally:
        optuna.logging.set_verbosity(previous)
    best = study.best_trial
    n_estimators = max(1, int(trees[best.number] * 1.1))
    return {"random_state": seed, **dict(fixed or {}), **best.params, "n_estimators": n_estimators}
