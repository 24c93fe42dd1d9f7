"""KMeans customer segments with human names: :class:`CustomerSegmenter`.

The default input (:data:`SEGMENT_FEATURES`) is what a marketer segments on — how recently, how
often and how much a customer spends now (90-day windows, so a customer of three months is
comparable with one of ten years), what they spend it on, how they use the app and wealth
products, and two profile figures (age, income). Stocks that grow with tenure (wealth balance,
credit limit, loans ever taken) are left out, so that a customer of three months can land in any
segment; they still appear in the segment profiles. Each feature is transformed by its kind
(:mod:`qianmian.features.segments_prepare`: ``log1p`` for money and counts, standardised).

Choosing k
----------
With ``n_clusters=None`` every k in ``k_range`` is fitted and scored by the silhouette
coefficient on a fixed random sample of ``silhouette_sample`` customers (the same sample for
every k, drawn from ``random_state``); scores are rounded to three decimals and the best wins,
ties going to the smaller k. Clusters are then numbered by size, largest first, and named from
their profiles (:mod:`qianmian.features.segments_names`).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from qianmian.errors import ConfigError, SchemaError, invalid_parameter
from qianmian.features.segments_names import name_segments, profile_stats, segment_profiles
from qianmian.features.segments_prepare import (
    build_preparation,
    expand_features,
    feature_kind,
    with_composites,
)

__all__ = ["SEGMENT_FEATURES", "CustomerSegmenter"]

SEGMENT_FEATURES: tuple[str, ...] = (
    # behaviour: recency, frequency, money, ticket size
    "recency_days",
    "frequency_90d",
    "monetary_90d",
    "avg_ticket_90d",
    # what the money goes on
    "share_trip_90d",
    "share_family_90d",
    "share_ecommerce_90d",
    "share_supermarket_90d",
    "share_dining_90d",
    # app and wealth engagement (interest, not balances: a balance is a stock that grows with
    # tenure, so it would set every new customer apart and defeat cold start)
    "logins_30d",
    "views_wealth_list_30d",
    # profile
    "age",
    "monthly_income",
)


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


class CustomerSegmenter(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator
):
    """KMeans segments of customers, with k chosen by silhouette and clusters named in zh and en.

    Parameters
    ----------
    n_clusters : int >= 1 or None, default=None
        Number of segments; ``None`` chooses k from ``k_range`` by silhouette. (1 is allowed, as
        in KMeans, and puts everyone in one segment.)
    k_range : tuple (low, high), default=(4, 10)
        Inclusive range of k tried when ``n_clusters`` is None (k stays below n_samples).
    features : sequence of str or None, default=SEGMENT_FEATURES
        Catalogue features (or composites such as ``share_trip_90d``) to cluster on; ``X`` must
        then be a DataFrame holding them. ``None`` clusters on every column of ``X``.
    silhouette_sample : int >= 100, default=2000
        Customers sampled (with ``random_state``) to compute silhouette scores.
    n_init : int >= 1, default=10
        KMeans restarts per k; the best inertia is kept.
    random_state : int, RandomState or None, default=0
        Seeds KMeans and the silhouette sample: the same data and seed give the same segments.

    Attributes
    ----------
    n_clusters_ : int
        The k used.
    labels_ : ndarray of shape (n_samples,)
        Segment of each training customer (0 is the largest segment).
    cluster_centers_ : ndarray of shape (n_clusters_, n_prepared)
        Centres in the prepared (scaled) space.
    silhouette_ : float
        Silhouette of the chosen k on the sample.
    silhouette_scores_ : dict of int to float
        Silhouette of every k tried.
    inertia_ : float
    profiles_ : DataFrame
        Profile figures per segment (:func:`~qianmian.features.segments_names.segment_profiles`).
    population_profile_ : Series
        The same figures over every training customer.
    segment_names_ : list of SegmentName
        Name of each segment, by label.
    pipeline_ : Pipeline
        The fitted preparation and KMeans steps.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Columns read from ``X`` (composites expanded to their parts).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"monetary_90d": np.r_[rng.lognormal(7, 0.3, 90),
    ...                                         rng.lognormal(11, 0.3, 10)],
    ...                   "frequency_90d": np.r_[rng.poisson(5, 90), rng.poisson(40, 10)],
    ...                   "age": rng.integers(20, 60, 100)})
    >>> seg = CustomerSegmenter(n_clusters=2, features=None).fit(X)
    >>> [n.zh for n in seg.segment_names_]
    ['大众客户', '高价值客户']
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        k_range: tuple[int, int] = (4, 10),
        features: Sequence[str] | None = SEGMENT_FEATURES,
        silhouette_sample: int = 2000,
        n_init: int = 10,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.features = features
        self.silhouette_sample = silhouette_sample
        self.n_init = n_init
        self.random_state = random_state

    # ---- parameters and input ---------------------------------------------------------------
    def _invalid(self, name: str, must: str) -> ConfigError:
        return invalid_parameter(self, name, must, getattr(self, name))

    def _check_features_param(self) -> None:
        f = self.features
        if f is None:
            return
        if isinstance(f, str) or not isinstance(f, Sequence) or not f:
            raise self._invalid("features", "a non-empty sequence of feature names or None")
        if not all(isinstance(c, str) for c in f) or len(set(f)) != len(f):
            raise self._invalid("features", "a sequence of distinct feature names (str)")

    def _check_params(self, n_samples: int) -> list[int]:
        """Validate the other parameters; return the k values to try."""
        if self.n_clusters is not None:
            if not _is_int(self.n_clusters) or self.n_clusters < 1:
                raise self._invalid("n_clusters", "a positive int or None")
            if self.n_clusters > n_samples:
                raise self._invalid(
                    "n_clusters", f"at most the number of customers (n_samples={n_samples})"
                )
        k = self.k_range
        if not (
            isinstance(k, tuple | list)
            and len(k) == 2
            and all(_is_int(v) for v in k)
            and 2 <= k[0] <= k[1]
        ):
            raise self._invalid("k_range", "a pair of ints (low, high) with 2 <= low <= high")
        if not _is_int(self.silhouette_sample) or self.silhouette_sample < 100:
            raise self._invalid("silhouette_sample", "an int of at least 100")
        if not _is_int(self.n_init) or self.n_init < 1:
            raise self._invalid("n_init", "a positive int")
        rs = self.random_state
        if not (rs is None or _is_int(rs) or isinstance(rs, np.random.RandomState)):
            raise self._invalid("random_state", "an int, a numpy RandomState or None")
        if self.n_clusters is not None:
            return [int(self.n_clusters)]
        ks = list(range(int(k[0]), min(int(k[1]), n_samples - 1) + 1))
        if not ks:
            raise self._invalid(
                "k_range",
                f"a range with some k below the number of customers (n_samples={n_samples})",
            )
        return ks

    def _input(self, X: Any, *, reset: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The model's input frame (composites added) and the frame to profile clusters on."""
        if isinstance(X, pd.DataFrame):
            if self.features is not None:
                columns = expand_features(self.features)
                missing = [c for c in columns if c not in X.columns]
                if missing:
                    raise SchemaError(
                        f"{type(self).__name__} needs the features {', '.join(missing)}, "
                        "which X lacks. Build them with StoreFeatureEngine (or set features)."
                    )
                data = X[columns]
            else:
                data = X
            validate_data(self, data, reset=reset, skip_check_array=True)
            numeric = data.select_dtypes(include=["number", "bool"])
            if numeric.shape[1]:
                check_array(
                    numeric, ensure_all_finite="allow-nan", dtype=None,
                    ensure_min_samples=2 if reset else 1, estimator=self,
                )  # fmt: skip
            elif len(data) < (2 if reset else 1):
                raise ValueError(f"Found n_samples={len(data)}; {type(self).__name__} needs 2.")
            if not all(isinstance(c, str) for c in data.columns):
                data = data.set_axis([f"x{i}" for i in range(data.shape[1])], axis=1)
            raw = X
        else:
            if self.features is not None:
                raise SchemaError(
                    f"{type(self).__name__}(features=...) names columns, so X must be a pandas "
                    "DataFrame; pass one, or set features=None to use every column of an array."
                )
            array = validate_data(
                self, X, reset=reset, ensure_all_finite="allow-nan",
                ensure_min_samples=2 if reset else 1,
            )  # fmt: skip
            names = getattr(self, "feature_names_in_", None)
            columns = list(names) if names is not None else [f"x{i}" for i in range(array.shape[1])]
            data = raw = pd.DataFrame(array, columns=columns)
        if self.features is not None:
            data = with_composites(data, self.features)[list(self.features)]
        return data, raw

    # ---- fitting ------------------------------------------------------------------------------
    def fit(self, X: Any, y: object = None) -> CustomerSegmenter:
        """Fit the segments on customer features ``X`` (one row per customer).

        Parameters
        ----------
        X : DataFrame of shape (n_customers, n_columns)
            Feature table (e.g. from :class:`~qianmian.features.engine.StoreFeatureEngine`);
            extra columns are ignored by the model but used to profile and name segments.
        y : ignored

        Returns
        -------
        self
        """
        self._check_features_param()
        data, raw = self._input(X, reset=True)
        candidates = self._check_params(len(data))
        rng = check_random_state(self.random_state)
        kmeans_seed, sample_seed = (int(s) for s in rng.randint(np.iinfo(np.int32).max, size=2))
        kinds = [(c, feature_kind(c, data[c].dtype)) for c in data.columns]
        prepare = build_preparation(kinds)
        Z = prepare.fit_transform(data)
        sample = self.silhouette_sample if len(Z) > self.silhouette_sample else None
        fits: dict[int, KMeans] = {}
        scores: dict[int, float] = {}
        for k in candidates:
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=kmeans_seed).fit(Z)
            fits[k] = km
            n_labels = len(np.unique(km.labels_))
            scores[k] = (
                float(silhouette_score(Z, km.labels_, sample_size=sample, random_state=sample_seed))
                if 2 <= n_labels < len(Z)
                else float("nan")
                if k == 1
                else -1.0
            )
        rounded = {k: round(s, 3) if s == s else -np.inf for k, s in scores.items()}
        k = min(k for k, s in rounded.items() if s == max(rounded.values()))
        km = fits[k]
        # Number clusters by size, largest first (ties keep KMeans' order).
        order = np.argsort(-np.bincount(km.labels_, minlength=k), kind="stable")
        relabel = np.empty(k, dtype=np.int64)
        relabel[order] = np.arange(k)
        km.cluster_centers_ = km.cluster_centers_[order]
        km.labels_ = relabel[km.labels_].astype(np.int32)

        self.pipeline_ = Pipeline([("prepare", prepare), ("kmeans", km)])
        self.n_clusters_ = k
        self.labels_ = km.labels_
        self.cluster_centers_ = km.cluster_centers_
        self.inertia_ = float(km.inertia_)
        self.silhouette_scores_ = scores
        self.silhouette_ = scores[k]
        self.profiles_ = segment_profiles(raw, self.labels_)
        self.population_profile_ = profile_stats(raw)
        names = name_segments(self.profiles_, self.population_profile_)
        self.segment_names_ = [names[c] for c in range(k)]
        return self

    # ---- using a fitted segmenter -------------------------------------------------------------
    def predict(self, X: Any) -> np.ndarray:
        """Segment of each customer in ``X``: ndarray of int, shape (n_samples,)."""
        check_is_fitted(self)
        data, _ = self._input(X, reset=False)
        return self.pipeline_.predict(data).astype(np.int32)

    def transform(self, X: Any) -> np.ndarray:
        """Distance of each customer to each segment centre: ndarray (n_samples, n_clusters_)."""
        check_is_fitted(self)
        data, _ = self._input(X, reset=False)
        return self.pipeline_.transform(data)

    def names_of(self, labels: np.ndarray | Sequence[int], *, lang: str = "zh") -> np.ndarray:
        """Segment names (``lang`` "zh" or "en") of cluster ``labels``."""
        check_is_fitted(self)
        table = np.array(
            [n.zh if lang == "zh" else n.en for n in self.segment_names_], dtype=object
        )
        return table[np.asarray(labels, dtype=np.int64)]

    def describe(self) -> pd.DataFrame:
        """One row per segment: label, names, size, share and the one-line profile."""
        check_is_fitted(self)
        sizes = self.profiles_["size"].reindex(range(self.n_clusters_), fill_value=0.0)
        rows = [
            {
                "cluster": c,
                "name_zh": n.zh,
                "name_en": n.en,
                "size": int(sizes.iloc[c]),
                "share": float(sizes.iloc[c] / max(sizes.sum(), 1.0)),
                "description_zh": n.description_zh,
                "description_en": n.description_en,
            }
            for c, n in enumerate(self.segment_names_)
        ]
        return pd.DataFrame(rows)

    @property
    def _n_features_out(self) -> int:
        return self.n_clusters_

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing shares mean "no spend" and are imputed
        return tags
