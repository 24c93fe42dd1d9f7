"""Propensity: the calibrated probability that a customer responds, from LightGBM.

:class:`PropensityClassifier` is a scikit-learn classifier over
:class:`lightgbm.LGBMClassifier`. It holds out the **last** rows of the training data (rows are
taken to be in time order: the oldest first) to stop boosting when the validation log-loss stops
improving, then fits a calibration map on that same held-out part, so that
:meth:`~PropensityClassifier.predict_proba` returns probabilities that match observed rates even
when the classes were re-weighted for training.

The quality of the probabilities is measured with :func:`qianmian.models.calibration.reliability`;
hyper-parameters can be searched with :func:`qianmian.models.tuning.tune_propensity`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from qianmian.errors import ConfigError, ValidationError, invalid_parameter

__all__ = ["MIN_VALIDATION_CLASS_ROWS", "PropensityClassifier"]

# The held-out part is used (early stopping and calibration) only when it has at least this many
# rows of each class: fewer cannot rank trees reliably, and an isotonic map fitted on them is
# mostly noise.
MIN_VALIDATION_CLASS_ROWS = 10
_CALIBRATIONS = ("isotonic", "sigmoid")
_IMPORTANCE_TYPES = ("gain", "split")


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _rows(X: pd.DataFrame | np.ndarray, index: slice | np.ndarray) -> Any:
    return X.iloc[index] if isinstance(X, pd.DataFrame) else X[index]


class _MarginModel(ClassifierMixin, BaseEstimator):
    """A fitted LightGBM model seen through its raw margin, the input of the calibration map.

    Used frozen, inside :class:`~sklearn.frozen.FrozenEstimator`.
    """

    def __init__(self, lgbm: lgb.LGBMClassifier) -> None:
        self.lgbm = lgbm

    def fit(self, X: Any, y: Any) -> _MarginModel:
        """Nothing to learn: the wrapped model is already fitted."""
        return self

    @property
    def classes_(self) -> np.ndarray:
        return np.array([0, 1])

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(self.lgbm.predict(X, raw_score=True), dtype=float)

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.lgbm.predict_proba(X), dtype=float)

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.lgbm.predict(X))


class PropensityClassifier(ClassifierMixin, BaseEstimator):
    """Binary propensity model: LightGBM with early stopping and a calibration map.

    Rows of ``X`` must be in **time order** (oldest first). Without an explicit ``eval_set``,
    :meth:`fit` trains on the first ``1 - validation_fraction`` of the rows and holds out the last
    ``validation_fraction`` — never a random split, which would let the model learn from the
    future of the customers it is validated on. The held-out part serves for early stopping and
    then for calibration (so it is slightly optimistic as a test set: measure on later data).

    Small data degrades gracefully: when the held-out part has fewer than
    :data:`MIN_VALIDATION_CLASS_ROWS` rows of either class (or the training part lacks a class),
    the model is trained on all rows for ``n_estimators`` trees, without early stopping and without
    calibration (``n_validation_ == 0``, ``calibrator_ is None``).

    Parameters
    ----------
    n_estimators : int >= 1, default=2000
        The most trees; early stopping usually stops well before.
    learning_rate : float > 0, default=0.05
    num_leaves : int >= 2, default=31
    max_depth : int, default=-1
        ``-1`` for no limit.
    min_child_samples : int >= 1, default=50
        Fewest rows in a leaf.
    subsample : float in (0, 1], default=0.8
        Share of rows drawn (without replacement) for each tree.
    colsample_bytree : float in (0, 1], default=0.8
        Share of features drawn for each tree.
    reg_alpha, reg_lambda : float >= 0, default=0.0, 1.0
        L1 and L2 penalties on leaf values.
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes in training (``"balanced"``: inversely proportional to their
        frequencies). Re-weighting shifts the raw probabilities; calibration shifts them back.
    calibration : {"isotonic", "sigmoid"} or None, default="isotonic"
        Map from the raw margin to a probability, fitted on the held-out part with
        :class:`~sklearn.calibration.CalibratedClassifierCV` over the frozen booster. ``None``
        returns LightGBM's own probabilities.
    validation_fraction : float in [0, 1), default=0.2
        Share of the last rows held out when no ``eval_set`` is given (``0``: none held out).
    early_stopping_rounds : int >= 1, default=50
        Stop when the validation log-loss (weighted by ``class_weight`` as in training) has not
        improved for this many trees.
    importance_type : {"gain", "split"}, default="gain"
        What :attr:`feature_importances_` measures.
    n_jobs : int, default=2
        LightGBM threads. On a busy machine ``1`` is often faster for small data.
    random_state : int, RandomState or None, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels; the second is the "positive" one.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string column names.
    categorical_features_ : list of str
        DataFrame columns passed to LightGBM as categorical (category, object and string dtypes).
    lgbm_ : lightgbm.LGBMClassifier
        The fitted LightGBM model (labels encoded as 0/1).
    booster_ : lightgbm.Booster
    best_iteration_ : int
        Trees used for prediction.
    n_validation_ : int
        Rows used for early stopping and calibration (0 when skipped).
    calibrator_ : CalibratedClassifierCV or None
        Margin → probability map; ``None`` when not calibrated.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"spend": rng.gamma(2.0, 500.0, 2000), "channel": pd.Categorical(
    ...     rng.choice(["app", "branch"], 2000))})
    >>> y = rng.random(2000) < np.where(X["channel"] == "app", 0.3, 0.05)
    >>> model = PropensityClassifier(n_estimators=200, n_jobs=1).fit(X, y)
    >>> model.predict_proba(X.head(2)).shape
    (2, 2)
    >>> model.n_validation_, model.categorical_features_
    (400, ['channel'])
    """

    def __init__(
        self,
        n_estimators: int = 2000,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        max_depth: int = -1,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_alpha: float = 0.0,
        reg_lambda: float = 1.0,
        class_weight: str | Mapping[Any, float] | None = None,
        calibration: str | None = "isotonic",
        validation_fraction: float = 0.2,
        early_stopping_rounds: int = 50,
        importance_type: str = "gain",
        n_jobs: int = 2,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_alpha = reg_alpha
        self.reg_lambda = reg_lambda
        self.class_weight = class_weight
        self.calibration = calibration
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.importance_type = importance_type
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- parameters and input ------------------------------------------------------------------

    def _invalid(self, name: str, must: str) -> ConfigError:
        return invalid_parameter(self, name, must, getattr(self, name))

    def _check_params(self) -> None:
        for name, low in (
            ("n_estimators", 1),
            ("num_leaves", 2),
            ("min_child_samples", 1),
            ("early_stopping_rounds", 1),
        ):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise self._invalid(name, f"an int >= {low}")
        if not _is_int(self.max_depth):
            raise self._invalid("max_depth", "an int (-1 for no limit)")
        if not _is_int(self.n_jobs) or self.n_jobs == 0:
            raise self._invalid("n_jobs", "a non-zero int")
        if not _is_real(self.learning_rate) or not self.learning_rate > 0:
            raise self._invalid("learning_rate", "a float > 0")
        for name in ("subsample", "colsample_bytree"):
            value = getattr(self, name)
            if not _is_real(value) or not 0 < value <= 1:
                raise self._invalid(name, "a float in (0, 1]")
        for name in ("reg_alpha", "reg_lambda"):
            value = getattr(self, name)
            if not _is_real(value) or not value >= 0:
                raise self._invalid(name, "a float >= 0")
        vf = self.validation_fraction
        if not _is_real(vf) or not 0 <= vf < 1:
            raise self._invalid("validation_fraction", "a float in [0, 1)")
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, Mapping)):
            raise self._invalid("class_weight", "None, 'balanced' or a dict of class weights")
        if self.calibration is not None and self.calibration not in _CALIBRATIONS:
            raise self._invalid("calibration", "one of 'isotonic', 'sigmoid' or None")
        if self.importance_type not in _IMPORTANCE_TYPES:
            raise self._invalid("importance_type", "one of 'gain', 'split'")
        rs = self.random_state
        if not (rs is None or _is_int(rs) or isinstance(rs, np.random.RandomState)):
            raise self._invalid("random_state", "an int, a numpy RandomState or None")

    def _features(self, X: Any, *, reset: bool) -> pd.DataFrame | np.ndarray:
        """Validated features: a DataFrame (text columns as categories) or a float array."""
        if not isinstance(X, pd.DataFrame):
            if not reset and getattr(self, "categorical_features_", []):
                raise ValidationError(
                    f"{type(self).__name__} was fitted on a DataFrame with the categorical "
                    f"columns {', '.join(self.categorical_features_)}; pass a DataFrame."
                )
            array: np.ndarray = validate_data(
                self, X, reset=reset, ensure_all_finite="allow-nan", dtype=np.float64
            )
            if reset:
                self.categorical_features_: list[str] = []
            return array
        validate_data(self, X, reset=reset, skip_check_array=True)
        if X.shape[0] == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is "
                f"required by {type(self).__name__}."
            )
        text, numeric = [], []
        for col in X.columns:
            dtype = X[col].dtype
            if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
                continue
            if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
                text.append(col)
            elif pd.api.types.is_numeric_dtype(dtype):
                numeric.append(col)
            else:
                raise ValidationError(
                    f"Column {col!r} has dtype {dtype}, which {type(self).__name__} cannot use; "
                    "convert it to numbers (e.g. days since a date) or to a category."
                )
        # Scoring is a hot path: no copy of the frame unless text must become categories, and
        # infinities are looked for column by column (scikit-learn's check then names them).
        if any(np.isinf(X[c].to_numpy(dtype=float, na_value=np.nan)).any() for c in numeric):
            check_array(X[numeric], ensure_all_finite="allow-nan", dtype=None, estimator=self)
        frame = X
        if text:
            frame = X.copy(deep=False)
            frame[text] = frame[text].astype("category")
        if reset:
            self.categorical_features_ = [
                str(c) for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)
            ]
        return frame

    def _labels(self, y: Any, n_rows: int) -> np.ndarray:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y = column_or_1d(y, warn=True)
        check_consistent_length(np.empty(n_rows), y)
        check_classification_targets(y)
        return y

    # -- fitting -------------------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        sample_weight: Any = None,
    ) -> PropensityClassifier:
        """Train on time-ordered rows; stop early and calibrate on a held-out part.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows in time order, oldest first. Categorical (and text) DataFrame columns enter
            LightGBM as categorical features; missing values are allowed.
        y : array-like of shape (n_samples,)
            Two distinct labels.
        eval_set : (X_val, y_val), optional
            An explicit validation set (later in time than ``X``) for early stopping and
            calibration; then all of ``X`` is used for training. It must hold both classes.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        self._check_params()
        features = self._features(X, reset=True)
        y = self._labels(y, features.shape[0])
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(
                "Only binary classification is supported. The type of the target is "
                f"{y_type}; {type(self).__name__} needs y with exactly two classes."
            )
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(
                f"{type(self).__name__} needs both classes in y, but y holds only one class: "
                f"{self.classes_.tolist()}."
            )
        target = (y == self.classes_[1]).astype(np.int64)
        weight = None if sample_weight is None else _check_sample_weight(sample_weight, features)
        val_part: tuple[Any, np.ndarray, np.ndarray | None] | None
        if eval_set is not None:
            fit_part, val_part = (features, target, weight), self._eval_part(eval_set)
        else:
            fit_part, val_part = self._time_split(features, target, weight)
        self.n_validation_ = 0 if val_part is None else len(val_part[1])
        self.lgbm_ = self._train(fit_part, val_part)
        self.booster_ = self.lgbm_.booster_
        self.best_iteration_ = int(self.lgbm_.best_iteration_ or self.booster_.num_trees())
        self.calibrator_ = None
        if val_part is not None and self.calibration is not None:
            self.calibrator_ = self._calibrate(val_part)
        return self

    def _eval_part(self, eval_set: Any) -> tuple[Any, np.ndarray, None]:
        if not isinstance(eval_set, tuple | list) or len(eval_set) != 2:
            raise ValidationError(
                f"eval_set of {type(self).__name__}.fit must be a pair (X_val, y_val); got "
                f"{type(eval_set).__name__}."
            )
        X_val = self._features(eval_set[0], reset=False)
        y_val = self._labels(eval_set[1], X_val.shape[0])
        unknown = sorted(set(np.unique(y_val).tolist()) - set(self.classes_.tolist()))
        if unknown:
            raise ValidationError(
                f"y_val of eval_set holds labels {unknown} that are not in y "
                f"({self.classes_.tolist()})."
            )
        target = (y_val == self.classes_[1]).astype(np.int64)
        if target.min() == target.max():
            raise ValidationError(
                "y_val of eval_set holds only one class; early stopping and calibration need "
                "both. Use a longer validation period."
            )
        return X_val, target, None

    def _time_split(
        self, X: Any, y: np.ndarray, weight: np.ndarray | None
    ) -> tuple[
        tuple[Any, np.ndarray, np.ndarray | None], tuple[Any, np.ndarray, np.ndarray | None] | None
    ]:
        """First rows for training, the last ``validation_fraction`` held out — when usable."""
        n_val = int(len(y) * self.validation_fraction)
        cut = len(y) - n_val
        held, kept = y[cut:], y[:cut]
        usable = (
            n_val > 0
            and min(held.sum(), n_val - held.sum()) >= MIN_VALIDATION_CLASS_ROWS
            and 0 < kept.sum() < len(kept)
        )
        if not usable:
            return (X, y, weight), None
        w_fit = None if weight is None else weight[:cut]
        w_val = None if weight is None else weight[cut:]
        return (_rows(X, slice(0, cut)), kept, w_fit), (_rows(X, slice(cut, None)), held, w_val)

    def _train(
        self,
        fit_part: tuple[Any, np.ndarray, np.ndarray | None],
        val_part: tuple[Any, np.ndarray, np.ndarray | None] | None,
    ) -> lgb.LGBMClassifier:
        model = lgb.LGBMClassifier(
            objective="binary",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            max_depth=self.max_depth,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1 else 0,
            colsample_bytree=self.colsample_bytree,
            reg_alpha=self.reg_alpha,
            reg_lambda=self.reg_lambda,
            class_weight=self._encoded_class_weight(),
            importance_type=self.importance_type,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            verbose=-1,
        )
        X_fit, y_fit, w_fit = fit_part
        if val_part is None:
            return model.fit(X_fit, y_fit, sample_weight=w_fit)
        X_val, y_val, w_val = val_part
        if model.class_weight is not None:
            # The validation loss counts the classes as training does, or it would stop early.
            by_class = compute_sample_weight(model.class_weight, y_val)
            w_val = by_class if w_val is None else w_val * by_class
        return model.fit(
            X_fit,
            y_fit,
            sample_weight=w_fit,
            eval_X=(X_val,),
            eval_y=(y_val,),
            eval_sample_weight=None if w_val is None else [w_val],
            eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )

    def _encoded_class_weight(self) -> str | dict[int, float] | None:
        """``class_weight`` keyed by the 0/1 codes LightGBM sees."""
        if not isinstance(self.class_weight, Mapping):
            return self.class_weight
        if set(self.class_weight) - set(self.classes_.tolist()):
            raise self._invalid(
                "class_weight", f"a dict keyed by the classes of y {self.classes_.tolist()}"
            )
        return {k: float(self.class_weight.get(c, 1.0)) for k, c in enumerate(self.classes_)}

    def _calibrate(
        self, val_part: tuple[Any, np.ndarray, np.ndarray | None]
    ) -> CalibratedClassifierCV:
        X_val, y_val, w_val = val_part
        calibrator = CalibratedClassifierCV(
            FrozenEstimator(_MarginModel(self.lgbm_)), method=self.calibration
        )
        with warnings.catch_warnings():
            # The booster is frozen on purpose: the weights are for the calibration map only.
            warnings.filterwarnings("ignore", message="Since FrozenEstimator does not appear")
            return calibrator.fit(X_val, y_val, sample_weight=w_val)

    # -- prediction ----------------------------------------------------------------------------

    def raw_margin(self, X: Any) -> np.ndarray:
        """LightGBM's raw margin (log-odds before calibration) of the positive class.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return np.asarray(self.lgbm_.predict(self._features(X, reset=False), raw_score=True))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probability of each class (columns in ``classes_`` order).

        With ``calibration="isotonic"`` the probability is a non-decreasing step function of
        the margin, so customers with different margins may share one probability.

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        check_is_fitted(self)
        features = self._features(X, reset=False)
        if self.calibrator_ is None:
            return np.asarray(self.lgbm_.predict_proba(features), dtype=float)
        return np.asarray(self.calibrator_.predict_proba(features), dtype=float)

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of the calibrated probability of the positive class.

        Without calibration this is :meth:`raw_margin`. With it, it is the calibrated
        probability on the log-odds scale (probabilities clipped to [1e-12, 1 - 1e-12]), so that
        ``decision_function(X) > 0`` exactly when :meth:`predict` says the positive class, as
        scikit-learn expects.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        if self.calibrator_ is None:
            return self.raw_margin(X)
        return np.asarray(logit(np.clip(self.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)))

    def predict(self, X: Any) -> np.ndarray:
        """The more probable class of each row (the first class on a tie)."""
        proba = self.predict_proba(X)
        return self.classes_[(proba[:, 1] > 0.5).astype(int)]

    @property
    def feature_importances_(self) -> np.ndarray:
        """Importance of each feature (``importance_type``) over the trees used, in column order."""
        check_is_fitted(self)
        return np.asarray(
            self.booster_.feature_importance(
                importance_type=self.importance_type, iteration=self.best_iteration_
            ),
            dtype=float,
        )

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags
