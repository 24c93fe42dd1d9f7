"""Uplift meta-learners: S, T, X and doubly robust (DR), over any scikit-learn-like learner.

Each learner estimates, for every customer, how much an offer changes the outcome compared
with the control (holdout) group: ``E[y | x, offer] - E[y | x, control]``, the *uplift*. A
campaign then targets the customers with the largest uplift and leaves alone the "sleeping
dogs" whose uplift is negative.

* :class:`SLearner` — one model with the offer as extra input columns.
* :class:`TLearner` — one model per arm (control and each offer); uplift is the difference.
* :class:`XLearner` — T-learner outcomes, then models of the imputed effects, blended by the
  propensity (Künzel et al., 2019).
* :class:`DRLearner` — a regression of cross-fitted doubly robust (AIPW) pseudo-outcomes on
  ``x`` (Kennedy, 2023).

The interface is CausalML's: ``fit(X, treatment, y)`` with a ``treatment`` column of labels in
which one value (``control``) marks the control group, one or several offers, and ``predict(X)``
giving the uplift of each offer in the order of ``treatments_``. CausalML itself is not used: it
brings xgboost and a CUDA wheel for four short algorithms. Outcome models are LightGBM by default
(:func:`default_learner`); any scikit-learn estimator can stand in. A classifier (binary ``y``)
predicts probabilities, so uplift is in percentage points; a regressor works on any ``y`` such
as spend. ``sample_weight`` goes to every model fitted. The ``fit`` signature is not
scikit-learn's ``fit(X, y)``, so scikit-learn's cross-validation helpers do not apply; ``clone``,
``get_params`` and ``set_params`` do.

Example (LightGBM fits take a second or two, so not run as a doctest)::

    from qianmian.models.uplift import DRLearner
    model = DRLearner(propensity={"cashback": 0.4, "points": 0.4}).fit(X, offer, applied)
    model.treatments_        # array(['cashback', 'points'], dtype=object)
    model.predict(X_new)     # (n, 2): uplift of each offer against the holdout
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.model_selection import StratifiedKFold

from qianmian.errors import invalid_parameter
from qianmian.models.uplift._base import (
    LGBM_DEFAULTS,
    _EffectLearner,
    _fit,
    _mean,
    _rows,
    _sub,
    _UpliftLearner,
    default_learner,
    default_propensity_learner,
)

__all__ = [
    "LGBM_DEFAULTS",
    "DRLearner",
    "SLearner",
    "TLearner",
    "XLearner",
    "default_learner",
    "default_propensity_learner",
]


class SLearner(_UpliftLearner):
    """One outcome model over the features plus one 0/1 column per offer.

    Parameters
    ----------
    learner : estimator or None, default=None
        Outcome model (see the module docstring); it must be able to use the offer columns,
        which trees learn only if they split on them — with weak effects an S-learner tends to
        shrink uplift towards zero.
    control : str or number, default="control"
        The ``treatment`` label of the control (holdout) group.
    random_state : int, RandomState or None, default=0
        Seeds the default LightGBM model.

    Attributes
    ----------
    treatments_ : ndarray of shape (k,)
        The offers, in the column order of ``predict``.
    binary_outcome_ : bool
        Whether outcomes are modelled as probabilities of ``y = 1``.
    model_ : estimator
        The fitted outcome model; its last ``k`` input columns are the offer indicators.
    n_features_in_, feature_names_in_
    """

    _per_arm_outcomes = False  # one model for all arms: both outcomes overall suffice

    def __init__(self, learner: Any = None, *, control: Any = "control", random_state: Any = 0):
        self.learner = learner
        self.control = control
        self.random_state = random_state

    def _design(self, X: Any, arm: NDArray[np.int64]) -> Any:
        """``X`` with one indicator column per offer (all zero for control)."""
        k = len(self.treatments_)
        ind = (arm[:, None] == np.arange(1, k + 1)[None, :]).astype(np.float64)
        if isinstance(X, pd.DataFrame):
            names = [f"__offer_{j}__" for j in range(k)]
            return pd.concat([X, pd.DataFrame(ind, columns=names, index=X.index)], axis=1)
        return np.hstack([X, ind])

    def _fit(self, X: Any, arm: NDArray[np.int64], y: NDArray, w: NDArray | None) -> None:
        self.model_ = _fit(self._outcome_model(), self._design(X, arm), y, w)

    def _outcomes(self, X: Any) -> NDArray[np.float64]:
        n = len(X)
        arms = range(len(self.treatments_) + 1)
        cols = [
            _mean(self.model_, self._design(X, np.full(n, j)), self.binary_outcome_) for j in arms
        ]
        return np.column_stack(cols)

    def _uplift(self, X: Any) -> NDArray[np.float64]:
        mu = self._outcomes(X)
        return mu[:, 1:] - mu[:, :1]


class TLearner(_UpliftLearner):
    """One outcome model per arm; uplift is an offer's prediction minus control's.

    Parameters
    ----------
    learner : estimator or None, default=None
        Outcome model, cloned for each arm (see the module docstring).
    control : str or number, default="control"
        The ``treatment`` label of the control (holdout) group.
    random_state : int, RandomState or None, default=0
        Seeds the default LightGBM models.

    Attributes
    ----------
    treatments_ : ndarray of shape (k,)
    binary_outcome_ : bool
    models_ : list of estimators
        Outcome models: control first, then one per offer in ``treatments_`` order.
    n_features_in_, feature_names_in_
    """

    def __init__(self, learner: Any = None, *, control: Any = "control", random_state: Any = 0):
        self.learner = learner
        self.control = control
        self.random_state = random_state

    def _fit(self, X: Any, arm: NDArray[np.int64], y: NDArray, w: NDArray | None) -> None:
        self.models_ = []
        for j in range(len(self.treatments_) + 1):
            idx = np.flatnonzero(arm == j)
            self.models_.append(_fit(self._outcome_model(), _rows(X, idx), y[idx], _sub(w, idx)))

    def _outcomes(self, X: Any) -> NDArray[np.float64]:
        return np.column_stack([_mean(m, X, self.binary_outcome_) for m in self.models_])

    def _uplift(self, X: Any) -> NDArray[np.float64]:
        mu = self._outcomes(X)
        return mu[:, 1:] - mu[:, :1]


class XLearner(_EffectLearner):
    """T-learner outcomes, models of each group's imputed effect, blended by the propensity.

    For an offer ``t``: outcome models ``mu_0`` (control) and ``mu_t``; effect models ``tau_1``
    of ``y - mu_0(x)`` on the offer's customers and ``tau_0`` of ``mu_t(x) - y`` on control's;
    uplift ``e(x) tau_0(x) + (1 - e(x)) tau_1(x)`` with ``e(x)`` the propensity of ``t`` against
    control. Strong when the arms differ in size, such as a small holdout.

    Parameters
    ----------
    learner : estimator or None, default=None
        Outcome model (see the module docstring).
    effect_learner : regressor or None, default=None
        Effect model. ``None``: ``learner`` if it is a regressor, else a LightGBM regressor.
    propensity : float, dict or None, default=None
        Known assignment shares of a randomised campaign: a float is the share given each offer,
        a dict maps each offer to its share; control has the rest. ``None``: estimated by
        ``propensity_learner`` on each offer's and control's customers.
    propensity_learner : classifier or None, default=None
        ``None``: :func:`default_propensity_learner` (logistic regression; numeric features).
    propensity_clip : float in [0, 0.5), default=0.01
        Estimated propensities are clipped to ``[clip, 1 - clip]``.
    control : str or number, default="control"
    random_state : int, RandomState or None, default=0

    Attributes
    ----------
    treatments_ : ndarray of shape (k,)
    binary_outcome_ : bool
    outcome_models_ : list of estimators
        Control first, then one per offer.
    effect_models_ : list of (estimator, estimator)
        ``(tau_0, tau_1)`` per offer.
    propensity_models_ : list of classifiers or None
        Per offer; ``None`` when ``propensity`` is given.
    n_features_in_, feature_names_in_
    """

    def __init__(
        self,
        learner: Any = None,
        *,
        effect_learner: Any = None,
        propensity: Any = None,
        propensity_learner: Any = None,
        propensity_clip: float = 0.01,
        control: Any = "control",
        random_state: Any = 0,
    ):
        self.learner = learner
        self.effect_learner = effect_learner
        self.propensity = propensity
        self.propensity_learner = propensity_learner
        self.propensity_clip = propensity_clip
        self.control = control
        self.random_state = random_state

    def _fit(self, X: Any, arm: NDArray[np.int64], y: NDArray, w: NDArray | None) -> None:
        known = self._known_propensity()
        binary = self.binary_outcome_
        idx = [np.flatnonzero(arm == j) for j in range(len(self.treatments_) + 1)]
        rows = [_rows(X, i) for i in idx]
        self.outcome_models_ = [
            _fit(self._outcome_model(), rows[j], y[i], _sub(w, i)) for j, i in enumerate(idx)
        ]
        mu_0 = self.outcome_models_[0]
        self.effect_models_: list[tuple[Any, Any]] = []
        self.propensity_models_: list[Any] | None = None if known is not None else []
        for j in range(1, len(idx)):
            mu_t = self.outcome_models_[j]
            imputed_t = y[idx[j]] - _mean(mu_0, rows[j], binary)
            imputed_0 = _mean(mu_t, rows[0], binary) - y[idx[0]]
            tau_1 = _fit(self._effect_model(), rows[j], imputed_t, _sub(w, idx[j]))
            tau_0 = _fit(self._effect_model(), rows[0], imputed_0, _sub(w, idx[0]))
            self.effect_models_.append((tau_0, tau_1))
            if self.propensity_models_ is not None:
                both = np.concatenate([idx[0], idx[j]])
                self.propensity_models_.append(
                    self._fit_propensity(_rows(X, both), arm[both] == j, _sub(w, both))
                )

    def _uplift(self, X: Any) -> NDArray[np.float64]:
        cols = []
        for j, (tau_0, tau_1) in enumerate(self.effect_models_):
            models = self.propensity_models_
            e = self._propensity(j, None if models is None else models[j], X)
            cols.append(e * tau_0.predict(X) + (1.0 - e) * tau_1.predict(X))
        return np.column_stack(cols).astype(np.float64)

    def _outcomes(self, X: Any) -> NDArray[np.float64]:
        return np.column_stack([_mean(m, X, self.binary_outcome_) for m in self.outcome_models_])


class DRLearner(_EffectLearner):
    """Doubly robust learner: a regression of cross-fitted AIPW pseudo-outcomes.

    For an offer ``t`` against control, on ``cv`` folds of their customers, outcome models
    ``mu_0, mu_t`` and the propensity ``e`` are fitted on the other folds and give each held-out
    customer the pseudo-outcome ``mu_t - mu_0 + T (y - mu_t) / e - (1 - T) (y - mu_0) / (1 - e)``
    (``T`` = 1 for the offer); its mean given ``x`` is the uplift if either the outcome models
    or the propensity are right. The effect model regresses it on ``x``.

    Parameters
    ----------
    learner, effect_learner, propensity, propensity_learner, propensity_clip
        As for :class:`XLearner`.
    cv : int >= 2, default=3
        Cross-fitting folds (stratified by arm and, for 0/1 ``y``, outcome).
    control : str or number, default="control"
    random_state : int, RandomState or None, default=0
        Seeds the folds and the default LightGBM models.

    Attributes
    ----------
    treatments_ : ndarray of shape (k,)
    binary_outcome_ : bool
    outcome_models_ : list of list of (estimator, estimator)
        ``(mu_0, mu_t)`` of each fold, per offer.
    propensity_models_ : list of list of classifiers, or None
        Per offer and fold; ``None`` when ``propensity`` is given.
    effect_models_ : list of estimators
        One per offer.
    n_features_in_, feature_names_in_
    """

    def __init__(
        self,
        learner: Any = None,
        *,
        effect_learner: Any = None,
        propensity: Any = None,
        propensity_learner: Any = None,
        propensity_clip: float = 0.01,
        cv: int = 3,
        control: Any = "control",
        random_state: Any = 0,
    ):
        self.learner = learner
        self.effect_learner = effect_learner
        self.propensity = propensity
        self.propensity_learner = propensity_learner
        self.propensity_clip = propensity_clip
        self.cv = cv
        self.control = control
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        if not (isinstance(self.cv, Integral) and not isinstance(self.cv, bool) and self.cv >= 2):
            raise invalid_parameter(self, "cv", "an int >= 2", self.cv)

    def _min_arm_rows(self) -> int:
        return max(2, int(self.cv))

    def _fit(self, X: Any, arm: NDArray[np.int64], y: NDArray, w: NDArray | None) -> None:
        known = self._known_propensity()
        self.outcome_models_: list[list[tuple[Any, Any]]] = []
        self.effect_models_: list[Any] = []
        self.propensity_models_: list[list[Any]] | None = None if known is not None else []
        folds = StratifiedKFold(int(self.cv), shuffle=True, random_state=self._seed)
        for j in range(1, len(self.treatments_) + 1):
            pair = np.flatnonzero((arm == 0) | (arm == j))
            offered = (arm[pair] == j).astype(np.float64)
            strata = 2 * offered + (y[pair] if self.binary_outcome_ else 0.0)
            psi = np.empty(len(pair))
            fold_models, fold_propensities = [], []
            for train, test in folds.split(np.zeros(len(pair)), strata):
                fitted = []
                for group in (0.0, 1.0):
                    i = pair[train[offered[train] == group]]
                    fitted.append(_fit(self._outcome_model(), _rows(X, i), y[i], _sub(w, i)))
                prop = None
                if known is None:
                    i = pair[train]
                    prop = self._fit_propensity(_rows(X, i), offered[train], _sub(w, i))
                    fold_propensities.append(prop)
                x_test, t, y_test = _rows(X, pair[test]), offered[test], y[pair[test]]
                m0, m1 = (_mean(m, x_test, self.binary_outcome_) for m in fitted)
                e = self._propensity(j - 1, prop, x_test)
                psi[test] = m1 - m0 + t * (y_test - m1) / e - (1 - t) * (y_test - m0) / (1 - e)
                fold_models.append((fitted[0], fitted[1]))
            self.outcome_models_.append(fold_models)
            if self.propensity_models_ is not None:
                self.propensity_models_.append(fold_propensities)
            self.effect_models_.append(
                _fit(self._effect_model(), _rows(X, pair), psi, _sub(w, pair))
            )

    def _uplift(self, X: Any) -> NDArray[np.float64]:
        return np.column_stack([m.predict(X) for m in self.effect_models_]).astype(np.float64)

    def _outcomes(self, X: Any) -> NDArray[np.float64]:
        """Fold models averaged; control's over every offer's folds."""
        binary = self.binary_outcome_
        per_offer = [
            np.mean([[_mean(m, X, binary) for m in pair] for pair in folds], axis=0)
            for folds in self.outcome_models_
        ]  # each (2, n): control, offer
        control = np.mean([p[0] for p in per_offer], axis=0)
        return np.column_stack([control, *[p[1] for p in per_offer]])
