"""What the uplift meta-learners share: default models, input checks, arms, propensities."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from numbers import Integral, Real
from types import ModuleType
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from qianmian.errors import ValidationError, invalid_parameter
from qianmian.models.uplift.metrics import _column

__all__ = ["LGBM_DEFAULTS", "default_learner", "default_propensity_learner"]

#: Modest LightGBM settings for the default outcome and effect models. Small trees with at least
#: 100 customers a leaf: uplift is a small difference between noisy outcomes, and on the synthetic
#: campaigns of the tests 7 leaves beat 15 for every learner (T-learner Qini 0.67 → 0.75).
LGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_child_samples": 100,
    "n_jobs": 2,
    "verbose": -1,
}


def _lightgbm() -> ModuleType:
    try:
        import lightgbm
    except ImportError as e:  # an optional dependency: the models extra
        raise ImportError(
            "The default uplift learner is LightGBM, which is not installed. Install it with "
            "`pip install 'qianmian[models]'`, or pass learner=<a scikit-learn estimator>."
        ) from e
    return lightgbm


def default_learner(binary: bool, random_state: int | None = 0) -> BaseEstimator:
    """LightGBM with :data:`LGBM_DEFAULTS`: a classifier for binary outcomes, else a regressor."""
    lgb = _lightgbm()
    model = lgb.LGBMClassifier if binary else lgb.LGBMRegressor
    return model(**LGBM_DEFAULTS, random_state=random_state)


def default_propensity_learner() -> Pipeline:
    """Logistic regression on mean-imputed, standardised numeric features."""
    return make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000))


def _fit(model: Any, X: Any, y: NDArray, w: NDArray | None) -> Any:
    """Fit with sample weights if any; a pipeline passes them to each step that takes them."""
    if w is None:
        return model.fit(X, y)
    if isinstance(model, Pipeline):
        steps = [(name, step) for name, step in model.steps if step not in (None, "passthrough")]
        weighted = {
            f"{n}__sample_weight": w for n, s in steps if has_fit_parameter(s, "sample_weight")
        }
        return model.fit(X, y, **weighted)
    return model.fit(X, y, sample_weight=w)


def _mean(model: Any, X: Any, binary: bool) -> NDArray[np.float64]:
    """Predicted outcome: the probability of ``y = 1`` for a classifier, else the prediction."""
    if binary:
        return np.asarray(model.predict_proba(X)[:, list(model.classes_).index(1)], np.float64)
    return np.asarray(model.predict(X), np.float64)


def _is_classifier(model: object) -> bool:
    """scikit-learn's own test, or for an estimator without its tags, having predict_proba."""
    try:
        return is_classifier(model)
    except AttributeError:
        return callable(getattr(model, "predict_proba", None))


def _check_estimator(owner: object, name: str, value: object, *, proba: bool = False) -> None:
    """``value`` is None or has fit and predict (and predict_proba if a classifier is needed)."""
    if value is None:
        return
    needs = ("fit", "predict_proba" if proba or _is_classifier(value) else "predict")
    if not all(callable(getattr(value, m, None)) for m in needs):
        raise invalid_parameter(
            owner, name, f"None or an estimator with {' and '.join(needs)}", value
        )


class _UpliftLearner(BaseEstimator, ABC):
    """Input checks, arms and prediction shapes shared by the meta-learners."""

    learner: Any
    control: Any
    random_state: Any
    _per_arm_outcomes = True  # a separate outcome model per arm: each arm needs both outcomes

    def fit(
        self, X: Any, treatment: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None
    ) -> Self:
        """Fit on a campaign's customers.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, n_features)
            Customer features before the campaign. DataFrames go to the learners unchanged.
        treatment : array-like of shape (n,)
            The arm of each customer: ``control`` or an offer label.
        y : array-like of shape (n,)
            Outcome: 0/1 when the learner is a classifier (the default for 0/1 ``y``).
        sample_weight : array-like of shape (n,), optional
            Non-negative weights, passed to every model fitted.

        Returns
        -------
        self
        """
        X, arm, y_, w = self._check_fit_input(X, treatment, y, sample_weight)
        self._fit(X, arm, y_, w)
        return self

    def predict(self, X: Any) -> NDArray[np.float64]:
        """Uplift of each offer: shape (n,) with one offer, (n, k) in ``treatments_`` order."""
        check_is_fitted(self)
        tau = self._uplift(self._check_features(X, reset=False))
        return tau[:, 0] if tau.shape[1] == 1 else tau

    def predict_outcomes(self, X: Any) -> NDArray[np.float64]:
        """Expected outcome in each arm, shape (n, 1 + k): control first, then ``treatments_``."""
        check_is_fitted(self)
        return self._outcomes(self._check_features(X, reset=False))

    # -- for subclasses ------------------------------------------------------------------------

    @abstractmethod
    def _fit(self, X: Any, arm: NDArray[np.int64], y: NDArray, w: NDArray | None) -> None:
        """Implemented by each learner."""

    @abstractmethod
    def _uplift(self, X: Any) -> NDArray[np.float64]:
        """Implemented by each learner."""

    @abstractmethod
    def _outcomes(self, X: Any) -> NDArray[np.float64]:
        """Implemented by each learner."""

    def _min_arm_rows(self) -> int:
        return 2

    def _check_params(self) -> None:
        _check_estimator(self, "learner", self.learner)

    # -- shared helpers ------------------------------------------------------------------------

    def _outcome_model(self) -> Any:
        if self.learner is None:
            return default_learner(self.binary_outcome_, self._seed)
        return clone(self.learner)

    def _check_features(self, X: Any, *, reset: bool) -> Any:
        if not isinstance(X, pd.DataFrame):
            X = check_array(X, dtype="numeric", ensure_all_finite="allow-nan", input_name="X")
        validate_data(self, X, reset=reset, skip_check_array=True)
        return X

    def _check_fit_input(
        self, X: Any, treatment: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None
    ) -> tuple[Any, NDArray[np.int64], NDArray[np.float64], NDArray[np.float64] | None]:
        self._check_params()
        self._seed = _seed(self, self.random_state)
        X = self._check_features(X, reset=True)
        n = len(X)
        treatments, arm = _arms(treatment, self.control, n)
        y_ = _column("y", y)
        if len(y_) != n:
            raise ValidationError(f"y has {len(y_)} rows but X has {n}.")
        binary = (
            bool(np.isin(y_, (0.0, 1.0)).all())
            if self.learner is None
            else _is_classifier(self.learner)
        )
        if binary and not np.isin(y_, (0.0, 1.0)).all():
            raise ValidationError(
                "y must hold only 0 and 1 when the learner is a classifier; use a regressor for other outcomes."
            )
        for j, label in enumerate((self.control, *treatments.tolist())):
            size = int((arm == j).sum())
            if size < self._min_arm_rows():
                raise ValidationError(
                    f"treatment {label!r} has {size} rows; every arm needs at least {self._min_arm_rows()}."
                )
            values = np.unique(y_[arm == j] if self._per_arm_outcomes else y_)
            if binary and len(values) < 2:
                where = (
                    f"among rows with treatment {label!r}"
                    if self._per_arm_outcomes
                    else "in every row"
                )
                raise ValidationError(
                    f"y is always {values[0]:g} {where}; a classifier needs both outcomes."
                )
        w = None if sample_weight is None else _weights(sample_weight, n)
        self.treatments_ = treatments
        self.binary_outcome_ = binary
        return X, arm, y_, w


def _arms(treatment: ArrayLike, control: object, n: int) -> tuple[NDArray, NDArray[np.int64]]:
    """The offers (sorted, control left out) and each row's arm: 0 = control, j = offer j."""
    labels = np.asarray(treatment, dtype=object)
    if labels.ndim != 1 or len(labels) != n:
        raise ValidationError(
            f"treatment must be one label per row of X ({n}); got shape {labels.shape}."
        )
    if pd.isna(labels).any():
        raise ValidationError(f"treatment is missing at row {int(np.argmax(pd.isna(labels)))}.")
    is_control = labels == control
    if not is_control.any():
        found = pd.unique(labels)[:5].tolist()
        raise ValidationError(
            f"treatment has no row labelled with the control value {control!r} "
            f"(labels found include {found}); pass control=<the holdout label>."
        )
    try:
        treatments = np.unique(labels[~is_control])
    except TypeError as e:
        raise ValidationError(
            "treatment labels must all be of one type (all str or all numbers)."
        ) from e
    if len(treatments) == 0:
        raise ValidationError("treatment has only control rows; at least one offer is needed.")
    arm = np.zeros(n, dtype=np.int64)
    arm[~is_control] = np.searchsorted(treatments, labels[~is_control]) + 1
    return treatments, arm


def _weights(sample_weight: ArrayLike, n: int) -> NDArray[np.float64]:
    w = _column("sample_weight", sample_weight)
    if len(w) != n:
        raise ValidationError(f"sample_weight has {len(w)} rows but X has {n}.")
    if (w < 0).any() or w.sum() <= 0:
        raise ValidationError("sample_weight must be non-negative with a positive sum.")
    return w


def _seed(owner: object, random_state: object) -> int | None:
    """An int seed for the models and folds of one fit (``None`` stays unseeded)."""
    if random_state is None:
        return None
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    raise invalid_parameter(owner, "random_state", "an int, a RandomState or None", random_state)


def _rows(X: Any, idx: NDArray[np.int64]) -> Any:
    return _safe_indexing(X, idx)


def _sub(w: NDArray | None, idx: NDArray[np.int64]) -> NDArray | None:
    return None if w is None else w[idx]


class _EffectLearner(_UpliftLearner):
    """Learners with a second stage (X, DR): effect models and the propensity of each offer."""

    effect_learner: Any
    propensity: Any
    propensity_learner: Any
    propensity_clip: Any

    def _check_params(self) -> None:
        super()._check_params()
        _check_estimator(self, "effect_learner", self.effect_learner)
        _check_estimator(self, "propensity_learner", self.propensity_learner, proba=True)
        clip = self.propensity_clip
        if not (isinstance(clip, Real) and not isinstance(clip, bool) and 0 <= float(clip) < 0.5):
            raise invalid_parameter(self, "propensity_clip", "a float in [0, 0.5)", clip)
        p = self.propensity
        if not (
            p is None or isinstance(p, Mapping) or (isinstance(p, Real) and not isinstance(p, bool))
        ):
            raise invalid_parameter(self, "propensity", "None, a float or a dict of floats", p)

    def _effect_model(self) -> Any:
        """The stage-two regressor: ``effect_learner``, else a regressor ``learner``, else LightGBM."""
        if self.effect_learner is not None:
            return clone(self.effect_learner)
        if self.learner is not None and is_regressor(self.learner):
            return clone(self.learner)
        return default_learner(False, self._seed)

    def _known_propensity(self) -> NDArray[np.float64] | None:
        """P(offer | offer or control) of each offer from the ``propensity`` parameter, if given.

        A float is the share of customers given each offer; a dict gives each offer's share; the
        control group has the rest.
        """
        p = self.propensity
        if p is None:
            return None
        names = self.treatments_.tolist()
        must = "a probability in (0, 1) per offer, leaving a share (sum < 1) to control"
        if isinstance(p, Mapping):
            if set(p) != set(names):
                raise invalid_parameter(self, "propensity", f"a dict with keys {names}", p)
            shares = np.array([p[name] for name in names], dtype=np.float64)
        else:
            shares = np.full(len(names), float(p))
        if not (np.all((shares > 0) & (shares < 1)) and shares.sum() < 1):
            raise invalid_parameter(self, "propensity", must, p)
        return shares / (shares + 1.0 - shares.sum())

    def _fit_propensity(self, X: Any, offered: NDArray, w: NDArray | None) -> Any:
        """A classifier of ``offered`` (1 = the offer, 0 = control) on the rows of ``X``."""
        model = clone(self.propensity_learner) if self.propensity_learner is not None else None
        return _fit(model or default_propensity_learner(), X, offered.astype(np.int64), w)

    def _propensity(self, j: int, model: Any, X: Any) -> NDArray[np.float64]:
        """Clipped P(offer ``j`` | offer ``j`` or control) for the rows of ``X``."""
        known = self._known_propensity()
        e = np.full(len(X), known[j]) if known is not None else _mean(model, X, True)
        return np.clip(e, self.propensity_clip, 1.0 - self.propensity_clip)
