"""RFM segmentation: quintile scores for recency, frequency and monetary value, and named segments.

Scores
------
Each of R, F and M is a quintile score from 1 (worst) to 5 (best) over the customers scored
together (usually every customer as of one date):

* **R** on ``recency_days`` — fewer days since the last purchase is better;
* **F** on ``frequency_365d`` — more purchases in the last year is better;
* **M** on ``monetary_365d`` — more spend in the last year is better.

A customer's score is ``1 + floor(5 * b / n)``, where ``b`` is the number of customers strictly
worse than them and ``n`` the number scored. Equal values therefore always share a score (the
lower one a tie group straddles), the result does not depend on row order, and ten distinct
values score ``1 1 2 2 3 3 4 4 5 5``. Customers with no spend in the last year (no
``frequency_365d``) get R = F = M = 1 whatever else the row says. Missing values count as the
worst value. ``rfm_score`` is R + F + M (3-15) and ``rfm_code`` the three digits, e.g. ``"545"``.

Named segments
--------------
The primary scheme (stored as ``rfm_segment``) is the eight-class RFM model widely used in Chinese
retail banking and e-commerce: each of R, F and M is *high* when its score is above the average
score of 3 (that is 4 or 5, the top two quintiles) and *low* otherwise, and the eight
combinations are named as in :data:`RFM_SEGMENTS` (重要 = high M, 价值/发展/保持/挽留 from R and
F). The eleven classic English segments (Champions … Lost) are available as a second scheme, read
from a grid of R against FM = round-half-up of (F + M) / 2 in :data:`CLASSIC_GRID`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qianmian.errors import SchemaError

__all__ = [
    "CLASSIC_GRID",
    "CLASSIC_SEGMENTS",
    "RFM_COLUMNS",
    "RFM_HIGH_SCORE",
    "RFM_SEGMENTS",
    "RfmSegment",
    "classic_segment",
    "quintile_scores",
    "rfm_scores",
    "rfm_segment",
]

RFM_COLUMNS = ("recency_days", "frequency_365d", "monetary_365d")
RFM_HIGH_SCORE = 4  # "high" = above the average quintile score of 3


@dataclass(frozen=True)
class RfmSegment:
    """A named RFM segment: key, Chinese and English names, and its rule in words."""

    key: str
    zh: str
    en: str
    rule: str


# (R high, F high, M high) → segment. 重要 (important) = high monetary value.
RFM_SEGMENTS: dict[tuple[bool, bool, bool], RfmSegment] = {
    (True, True, True): RfmSegment("important_value", "重要价值客户", "High-value", "R↑ F↑ M↑"),
    (True, False, True): RfmSegment(
        "important_develop", "重要发展客户", "High-value to develop", "R↑ F↓ M↑"
    ),
    (False, True, True): RfmSegment(
        "important_keep", "重要保持客户", "High-value to keep", "R↓ F↑ M↑"
    ),
    (False, False, True): RfmSegment(
        "important_winback", "重要挽留客户", "High-value to win back", "R↓ F↓ M↑"
    ),
    (True, True, False): RfmSegment("general_value", "一般价值客户", "Regular value", "R↑ F↑ M↓"),
    (True, False, False): RfmSegment(
        "general_develop", "一般发展客户", "Regular to develop", "R↑ F↓ M↓"
    ),
    (False, True, False): RfmSegment("general_keep", "一般保持客户", "Regular to keep", "R↓ F↑ M↓"),
    (False, False, False): RfmSegment(
        "general_winback", "一般挽留客户", "Regular to win back", "R↓ F↓ M↓"
    ),
}

CLASSIC_SEGMENTS: dict[str, RfmSegment] = {
    s.key: s
    for s in (
        RfmSegment("champions", "冠军客户", "Champions", "R 4-5, FM 4-5"),
        RfmSegment("loyal", "忠诚客户", "Loyal", "R 3-5, FM 3; R 3, FM 4-5"),
        RfmSegment("potential_loyalist", "潜在忠诚客户", "Potential Loyalist", "R 4-5, FM 2"),
        RfmSegment("new_customers", "新客户", "New Customers", "R 5, FM 1"),
        RfmSegment("promising", "有潜力客户", "Promising", "R 4, FM 1"),
        RfmSegment("need_attention", "需要关注客户", "Need Attention", "R 3, FM 2"),
        RfmSegment("about_to_sleep", "即将沉睡客户", "About to Sleep", "R 3, FM 1; R 2, FM 2"),
        RfmSegment("at_risk", "流失风险客户", "At Risk", "R 2, FM 3-5; R 1, FM 3"),
        RfmSegment("cant_lose", "不能失去的客户", "Can't Lose Them", "R 1, FM 4-5"),
        RfmSegment("hibernating", "休眠客户", "Hibernating", "R 2, FM 1; R 1, FM 2"),
        RfmSegment("lost", "流失客户", "Lost", "R 1, FM 1"),
    )
}

# CLASSIC_GRID[R - 1][FM - 1] → classic segment key; R rows from 1 (worst) to 5 (best).
CLASSIC_GRID: tuple[tuple[str, ...], ...] = (
    ("lost", "hibernating", "at_risk", "cant_lose", "cant_lose"),
    ("hibernating", "about_to_sleep", "at_risk", "at_risk", "at_risk"),
    ("about_to_sleep", "need_attention", "loyal", "loyal", "loyal"),
    ("promising", "potential_loyalist", "loyal", "champions", "champions"),
    ("new_customers", "potential_loyalist", "loyal", "champions", "champions"),
)


def quintile_scores(values: pd.Series | np.ndarray, *, higher_is_better: bool = True) -> np.ndarray:
    """Quintile scores 1-5 of ``values``; equal values share a score; NaN scores as the worst.

    Parameters
    ----------
    values : array-like of shape (n,)
    higher_is_better : bool
        ``False`` for recency (fewer days is better).

    Returns
    -------
    ndarray of int64, shape (n,)

    Examples
    --------
    >>> quintile_scores([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).tolist()
    [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    >>> quintile_scores([3, 1, 30, 3, 9], higher_is_better=False).tolist()
    [3, 5, 1, 3, 2]
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    key = x if higher_is_better else -x
    key = np.where(np.isnan(key), -np.inf, key)  # missing = worst
    ordered = np.sort(key)
    worse = np.searchsorted(ordered, key, side="left")  # customers strictly worse
    return (1 + (5 * worse) // n).astype(np.int64)


def rfm_segment(r: int, f: int, m: int) -> RfmSegment:
    """The eight-class segment of one customer's scores (high = score of 4 or 5).

    >>> rfm_segment(5, 2, 4).zh
    '重要发展客户'
    """
    return RFM_SEGMENTS[(r >= RFM_HIGH_SCORE, f >= RFM_HIGH_SCORE, m >= RFM_HIGH_SCORE)]


def classic_segment(r: int, f: int, m: int) -> RfmSegment:
    """The classic eleven-class segment: R against FM = round-half-up of (F + M) / 2.

    >>> classic_segment(1, 5, 4).en
    "Can't Lose Them"
    """
    fm = (f + m + 1) // 2
    return CLASSIC_SEGMENTS[CLASSIC_GRID[r - 1][fm - 1]]


def rfm_scores(features: pd.DataFrame) -> pd.DataFrame:
    """R, F, M scores, the combined score and both named segments of every customer.

    Parameters
    ----------
    features : DataFrame
        One row per customer with ``recency_days``, ``frequency_365d`` and ``monetary_365d``
        (as built by :class:`~qianmian.features.engine.StoreFeatureEngine`).

    Returns
    -------
    DataFrame
        Same index as ``features``: ``rfm_r``, ``rfm_f``, ``rfm_m`` (1-5), ``rfm_score``
        (3-15), ``rfm_code`` (e.g. ``"545"``), ``rfm_segment`` and ``rfm_segment_en`` (the
        eight-class model), ``rfm_classic`` and ``rfm_classic_zh`` (the eleven-class model).

    Examples
    --------
    >>> rows = pd.DataFrame({"recency_days": [2, 200, 366, 5, 40],
    ...                      "frequency_365d": [40, 3, 0, 12, 30],
    ...                      "monetary_365d": [9e4, 800.0, 0.0, 2e4, 500.0]})
    >>> rfm_scores(rows)[["rfm_code", "rfm_segment"]].values.tolist()
    [['555', '重要价值客户'], ['223', '一般挽留客户'], ['111', '一般挽留客户'], ['434', '重要发展客户'], ['342', '一般保持客户']]
    """
    missing = [c for c in RFM_COLUMNS if c not in features.columns]
    if missing:
        raise SchemaError(
            f"RFM scoring needs the features {', '.join(RFM_COLUMNS)}; missing "
            f"{', '.join(missing)}. Build them with StoreFeatureEngine first."
        )
    r = quintile_scores(features["recency_days"].to_numpy(float), higher_is_better=False)
    f = quintile_scores(features["frequency_365d"].to_numpy(float))
    m = quintile_scores(features["monetary_365d"].to_numpy(float))
    no_spend = ~(features["frequency_365d"].fillna(0).to_numpy(float) > 0)
    r, f, m = (np.where(no_spend, 1, s) for s in (r, f, m))
    eight = [rfm_segment(*t) for t in zip(r, f, m, strict=True)]
    eleven = [classic_segment(*t) for t in zip(r, f, m, strict=True)]
    return pd.DataFrame(
        {
            "rfm_r": r,
            "rfm_f": f,
            "rfm_m": m,
            "rfm_score": r + f + m,
            "rfm_code": [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)],
            "rfm_segment": [s.zh for s in eight],
            "rfm_segment_en": [s.en for s in eight],
            "rfm_classic": [s.en for s in eleven],
            "rfm_classic_zh": [s.zh for s in eleven],
        },
        index=features.index,
    )
