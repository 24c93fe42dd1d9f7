"""How customer features become the numbers KMeans clusters: one transform per kind of feature.

=========  ==========================================================  =========================
kind       features                                                    transform
=========  ==========================================================  =========================
log        money, counts, days (``monetary_90d``, ``logins_30d``,      ``log1p`` (negatives → 0,
           ``recency_days``, ``wealth_balance``, ``monthly_income``)   missing → 0), standardised
share      ``share_*`` and the composites below                        missing (no spend) → 0,
                                                                       standardised
ratio      ``spend_trend_*``                                           ``log`` of the ratio
                                                                       clipped to [0.1, 10],
                                                                       missing → 0 (no change),
                                                                       standardised
number     other numbers (``age``, ``children``, ``credit_score``)     missing → median,
                                                                       standardised
flag       booleans (``holds_wealth``)                                 0/1, not scaled
category   strings (``occupation``, ``city_tier``)                     one-hot, unknown → zeros
=========  ==========================================================  =========================

Composites are sums of catalogue shares, so that a family of related categories counts once rather
than three times: ``share_trip_90d`` (travel + hotel + airline) and ``share_family_90d`` (mother
and baby + education). Money is logged because spend is heavy-tailed (a few customers spend
100 times the median) and standardised so that no feature dominates by its unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from qianmian.features.catalogue import FEATURES

__all__ = [
    "COMPOSITES",
    "KINDS",
    "build_preparation",
    "expand_features",
    "feature_kind",
    "with_composites",
]

KINDS = ("log", "share", "ratio", "number", "flag", "category")

COMPOSITES: dict[str, tuple[str, ...]] = {
    "share_trip_90d": ("share_travel_90d", "share_hotel_90d", "share_airline_90d"),
    "share_family_90d": ("share_baby_90d", "share_education_90d"),
}

_LOG_PREFIXES = (
    "monetary_",
    "frequency_",
    "spend_",
    "txn_count_",
    "avg_ticket_",
    "max_ticket_",
    "active_days_",
    "logins_",
    "views_",
    "page_views_",
    "searches_",
    "transfer_failures_",
    "loans_",
    "loan_principal_",
    "instalments_",
    "revolving_balance_",
)
_LOG_NAMES = frozenset(
    {
        "recency_days",
        "days_since_login",
        "tenure_days",
        "wealth_balance",
        "total_credit_limit",
        "monthly_income",
    }
)


def feature_kind(name: str, dtype: Any = None) -> str:
    """The kind of transform ``name`` gets (see the module docstring).

    Catalogue features are known by name; other columns by their ``dtype`` (numbers → ``number``,
    booleans → ``flag``, anything else → ``category``).

    >>> feature_kind("monetary_90d"), feature_kind("share_trip_90d"), feature_kind("occupation")
    ('log', 'share', 'category')
    """
    if name in COMPOSITES or name.startswith("share_"):
        return "share"
    if name.startswith("spend_trend_"):
        return "ratio"
    definition = FEATURES.get(name)
    if definition is not None:
        if definition.type == "string":
            return "category"
        if definition.type == "bool":
            return "flag"
        if name in _LOG_NAMES or name.startswith(_LOG_PREFIXES):
            return "log"
        return "number"
    if dtype is not None and pd.api.types.is_bool_dtype(dtype):
        return "flag"
    if dtype is None or pd.api.types.is_numeric_dtype(dtype):
        return "number"
    return "category"


def expand_features(features: Iterable[str]) -> list[str]:
    """The columns a list of features reads: composites replaced by their parts, in order.

    >>> expand_features(["age", "share_family_90d"])
    ['age', 'share_baby_90d', 'share_education_90d']
    """
    out: list[str] = []
    for name in features:
        for col in COMPOSITES.get(name, (name,)):
            if col not in out:
                out.append(col)
    return out


def with_composites(frame: pd.DataFrame, features: Iterable[str]) -> pd.DataFrame:
    """``frame`` plus the composites among ``features`` whose parts it holds (NaN if all parts are)."""
    extra = {
        name: frame[list(COMPOSITES[name])].sum(axis=1, min_count=1)
        for name in features
        if name in COMPOSITES
        and name not in frame.columns
        and all(c in frame.columns for c in COMPOSITES[name])
    }
    return frame.assign(**extra) if extra else frame


def _log1p_nonnegative(x: np.ndarray) -> np.ndarray:
    """``log1p`` of money and counts; missing and negative values count as 0."""
    x = np.asarray(x, dtype=float)
    return np.log1p(np.clip(np.nan_to_num(x, nan=0.0), 0.0, None))


def _fill_zero(x: np.ndarray) -> np.ndarray:
    """A missing share means no spend in the window: 0."""
    return np.nan_to_num(np.asarray(x, dtype=float), nan=0.0)


def _log_ratio(x: np.ndarray) -> np.ndarray:
    """Log of a growth ratio clipped to [0.1, 10]; a missing ratio (nothing before) is 1."""
    x = np.asarray(x, dtype=float)
    return np.log(np.clip(np.nan_to_num(x, nan=1.0), 0.1, 10.0))


def _as_float(x: np.ndarray) -> np.ndarray:
    """Booleans as 0/1; missing flags as 0."""
    return np.nan_to_num(np.asarray(x, dtype=float), nan=0.0)


def _step(kind: str) -> Pipeline:
    if kind == "log":
        return make_pipeline(
            FunctionTransformer(_log1p_nonnegative, feature_names_out="one-to-one"),
            StandardScaler(),
        )
    if kind == "share":
        return make_pipeline(
            FunctionTransformer(_fill_zero, feature_names_out="one-to-one"), StandardScaler()
        )
    if kind == "ratio":
        return make_pipeline(
            FunctionTransformer(_log_ratio, feature_names_out="one-to-one"), StandardScaler()
        )
    if kind == "number":
        return make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
        )
    if kind == "flag":
        return make_pipeline(FunctionTransformer(_as_float, feature_names_out="one-to-one"))
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value="(missing)"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )


def build_preparation(kinds: Sequence[tuple[str, str]]) -> ColumnTransformer:
    """An unfitted transformer for ``(column, kind)`` pairs; the output has columns in kind order."""
    groups: dict[str, list[str]] = {k: [] for k in KINDS}
    for column, kind in kinds:
        groups[kind].append(column)
    return ColumnTransformer(
        [(kind, _step(kind), cols) for kind, cols in groups.items() if cols],
        remainder="drop",
        verbose_feature_names_out=False,
    )
