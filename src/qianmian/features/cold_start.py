"""Cold start: the likely segment and starter features of a customer with no history yet.

A new customer has only what the application form asked (:data:`REGISTRATION_FEATURES`): age,
gender, occupation, city tier, monthly income — used only as the band ticked on the form
(:data:`INCOME_BANDS`), the acquisition channel, and marital status and number of children, which
Chinese credit-card applications ask (婚姻状况, 子女/供养人数) and which the bank therefore holds
from day one. :class:`ColdStartModel` learns, on established customers, how those answers map to
the segment the customer is in now, and offers as *starter features* the average of the
``n_neighbors`` established customers whose answers are closest.

How well this works on the simulated bank is measured by
:func:`qianmian.features.cold_start_eval.evaluate_cold_start`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from qianmian.errors import ConfigError, SchemaError, invalid_parameter
from qianmian.features.segments_prepare import build_preparation, feature_kind, with_composites

__all__ = [
    "INCOME_BANDS",
    "REGISTRATION_FEATURES",
    "STARTER_FEATURES",
    "ColdStartModel",
    "income_band",
]

REGISTRATION_FEATURES: tuple[str, ...] = (
    "age",
    "gender",
    "occupation",
    "city_tier",
    "monthly_income",
    "registration_channel",
    "children",
    "is_married",
)
# Monthly income bands (CNY) as on a typical application form; the band is a category.
INCOME_BANDS: tuple[int, ...] = (5_000, 8_000, 12_000, 20_000, 50_000)
STARTER_FEATURES: tuple[str, ...] = (
    "monetary_90d",
    "frequency_90d",
    "avg_ticket_90d",
    "share_dining_90d",
    "share_supermarket_90d",
    "share_ecommerce_90d",
    "share_trip_90d",
    "share_family_90d",
    "share_online_90d",
    "logins_30d",
    "views_wealth_list_30d",
    "holds_wealth",
    "wealth_balance",
    "utilisation_avg_3m",
)
_METHODS = ("forest", "knn")


def income_band(monthly_income: pd.Series | np.ndarray) -> np.ndarray:
    """The form's income band of each monthly income (missing → ``"unknown"``).

    >>> income_band(np.array([4800.0, 8000.0, 61000.0, np.nan])).tolist()
    ['<5k', '8k-12k', '50k+', 'unknown']
    """
    x = np.asarray(monthly_income, dtype=float)
    edges = np.asarray(INCOME_BANDS, dtype=float)
    labels = [f"<{edges[0] / 1000:.0f}k"]
    labels += [f"{a / 1000:.0f}k-{b / 1000:.0f}k" for a, b in itertools.pairwise(edges)]
    labels += [f"{edges[-1] / 1000:.0f}k+"]
    out = np.asarray(labels, dtype=object)[np.searchsorted(edges, np.nan_to_num(x), "right")]
    return np.where(np.isnan(x), "unknown", out).astype(object)


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


class ColdStartModel(ClassifierMixin, BaseEstimator):
    """Segment and starter features of new customers from their registration data.

    Parameters
    ----------
    method : {"forest", "knn"}, default="forest"
        ``"forest"``: a random forest on the encoded answers; ``"knn"``: the majority segment of
        the ``n_neighbors`` most similar established customers.
    n_neighbors : int >= 1, default=50
        Neighbours averaged for starter features (and voting, with ``"knn"``).
    n_estimators : int >= 1, default=300
    min_samples_leaf : int >= 1, default=10
        Forest leaves hold at least this many customers (smooths rare answer combinations).
    registration_features : sequence of str or None, default=REGISTRATION_FEATURES
        Columns of ``X`` used as answers; ``None`` uses every column of ``X``.
        ``monthly_income`` enters as its band.
    starter_features : sequence of str or None, default=STARTER_FEATURES
        Columns averaged over neighbours (those present in the training ``X``).
    random_state : int, RandomState or None, default=0

    Attributes
    ----------
    classes_ : ndarray
    classifier_ : Pipeline
        Encoding and the classifier.
    neighbours_ : Pipeline
        Encoding and a :class:`~sklearn.neighbors.NearestNeighbors` index of training customers.
    starter_columns_ : list of str
    starter_values_ : ndarray of shape (n_training, n_starter)
    n_features_in_, feature_names_in_
        The answer columns read.

    Examples
    --------
    >>> X = pd.DataFrame({"age": [25, 27, 62, 65] * 10, "occupation": ["企业白领"] * 20 +
    ...                   ["退休"] * 20, "monetary_90d": [9000.0, 8000.0, 900.0, 1000.0] * 10})
    >>> model = ColdStartModel(registration_features=["age", "occupation"], n_neighbors=5)
    >>> model = model.fit(X, ["白领", "白领", "退休", "退休"] * 10)
    >>> model.predict(pd.DataFrame({"age": [26], "occupation": ["企业白领"]})).tolist()
    ['白领']
    """

    def __init__(
        self,
        method: str = "forest",
        n_neighbors: int = 50,
        n_estimators: int = 300,
        min_samples_leaf: int = 10,
        registration_features: Sequence[str] | None = REGISTRATION_FEATURES,
        starter_features: Sequence[str] | None = STARTER_FEATURES,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.method = method
        self.n_neighbors = n_neighbors
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.registration_features = registration_features
        self.starter_features = starter_features
        self.random_state = random_state

    def _invalid(self, name: str, must: str) -> ConfigError:
        return invalid_parameter(self, name, must, getattr(self, name))

    def _check_params(self) -> None:
        if self.method not in _METHODS:
            raise self._invalid("method", "one of 'forest', 'knn'")
        for name in ("n_neighbors", "n_estimators", "min_samples_leaf"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise self._invalid(name, "a positive int")
        for name in ("registration_features", "starter_features"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, str)
                or not isinstance(value, Sequence)
                or not all(isinstance(c, str) for c in value)
            ):
                raise self._invalid(name, "a sequence of feature names or None")
        rs = self.random_state
        if not (rs is None or _is_int(rs) or isinstance(rs, np.random.RandomState)):
            raise self._invalid("random_state", "an int, a numpy RandomState or None")

    def _answers(self, X: Any, *, reset: bool) -> pd.DataFrame:
        """The registration answers of ``X`` as a frame, income as its band."""
        if isinstance(X, pd.DataFrame):
            cols = list(self.registration_features or X.columns)
            missing = [c for c in cols if c not in X.columns]
            if missing:
                raise SchemaError(
                    f"{type(self).__name__} needs the registration fields {', '.join(missing)}, "
                    "which X lacks."
                )
            data = X[cols]
            validate_data(self, data, reset=reset, skip_check_array=True)
            numeric = data.select_dtypes(include=["number", "bool"])
            if numeric.shape[1]:
                check_array(numeric, ensure_all_finite="allow-nan", dtype=None, estimator=self)
            if not all(isinstance(c, str) for c in data.columns):
                data = data.set_axis([f"x{i}" for i in range(data.shape[1])], axis=1)
        else:
            if self.registration_features is not None:
                raise SchemaError(
                    f"{type(self).__name__}(registration_features=...) names columns, so X "
                    "must be a pandas DataFrame (or set registration_features=None)."
                )
            array = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan")
            names = getattr(self, "feature_names_in_", None)
            cols = list(names) if names is not None else [f"x{i}" for i in range(array.shape[1])]
            data = pd.DataFrame(array, columns=cols)
        if "monthly_income" in data.columns and self.registration_features is not None:
            data = data.assign(monthly_income=income_band(data["monthly_income"]))
        return data

    def fit(self, X: Any, y: Any) -> ColdStartModel:
        """Learn from established customers: answers (and starter features) ``X``, segments ``y``.

        Parameters
        ----------
        X : DataFrame of shape (n_customers, n_columns)
            Registration fields, plus the starter features to average.
        y : array-like of shape (n_customers,)
            Each customer's current segment (label or name).

        Returns
        -------
        self
        """
        self._check_params()
        answers = self._answers(X, reset=True)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None; "
                "give each customer's current segment."
            )
        y = column_or_1d(y, warn=True)
        check_consistent_length(answers, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        kinds = [(c, feature_kind(c, answers[c].dtype)) for c in answers.columns]
        if "monthly_income" in answers.columns and self.registration_features is not None:
            kinds = [(c, "category" if c == "monthly_income" else k) for c, k in kinds]
        if self.method == "forest":
            learner: Any = RandomForestClassifier(
                n_estimators=self.n_estimators,
                min_samples_leaf=self.min_samples_leaf,
                random_state=self.random_state,
                n_jobs=1,
            )
        else:
            learner = KNeighborsClassifier(n_neighbors=min(self.n_neighbors, len(answers)))
        self.classifier_ = Pipeline([("encode", build_preparation(kinds)), ("learner", learner)])
        self.classifier_.fit(answers, y)
        self.neighbours_ = Pipeline(
            [
                ("encode", build_preparation(kinds)),
                ("index", NearestNeighbors(n_neighbors=min(self.n_neighbors, len(answers)))),
            ]
        ).fit(answers)
        if isinstance(X, pd.DataFrame) and self.starter_features is not None:
            frame = with_composites(X, [c for c in self.starter_features if c not in X.columns])
            self.starter_columns_ = [c for c in self.starter_features if c in frame.columns]
            values = frame[self.starter_columns_].apply(pd.to_numeric, errors="coerce")
            self.starter_values_ = values.to_numpy(dtype=float)
        else:
            self.starter_columns_ = []
            self.starter_values_ = np.empty((len(answers), 0))
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The most likely segment of each new customer."""
        check_is_fitted(self)
        return self.classifier_.predict(self._answers(X, reset=False))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each segment (columns in ``classes_`` order)."""
        check_is_fitted(self)
        return self.classifier_.predict_proba(self._answers(X, reset=False))

    def predict_starter(self, X: Any) -> pd.DataFrame:
        """Mean of the nearest established customers' starter features, per new customer.

        Returns
        -------
        DataFrame of shape (n_samples, len(starter_columns_))
            Index as ``X`` (when a DataFrame); missing values skipped in the mean.
        """
        check_is_fitted(self)
        answers = self._answers(X, reset=False)
        encoded = self.neighbours_[:-1].transform(answers)
        _, idx = self.neighbours_[-1].kneighbors(encoded)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all neighbours missing → NaN
            values = np.nanmean(self.starter_values_[idx], axis=1)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(values, columns=self.starter_columns_, index=index)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
