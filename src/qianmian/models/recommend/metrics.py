"""Top-k ranking metrics with binary relevance: recall@k and NDCG@k.

For a customer with relevant (target) set ``T`` and recommendations ``r_1 … r_k``:

- ``recall@k = |{r_1 … r_k} ∩ T| / |T|``
- ``DCG@k = Σ_i [r_i ∈ T] / log2(i + 1)``, ``IDCG@k = Σ_{i ≤ min(k, |T|)} 1 / log2(i + 1)``,
  ``NDCG@k = DCG@k / IDCG@k``

Both are averaged over the customers with at least one target; a customer with targets and no
recommendations scores 0. NDCG@k agrees with :func:`sklearn.metrics.ndcg_score` (``k=k``) when
the recommended products carry distinct scores (the tests check it).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from qianmian.errors import ValidationError, invalid_parameter
from qianmian.models.recommend.base import is_int

__all__ = ["ndcg_at_k", "ranking_metrics", "recall_at_k"]


def _check(recommendations: pd.DataFrame, targets: pd.DataFrame) -> None:
    for name, frame, cols in (
        ("recommendations", recommendations, ("customer_id", "rank", "product_id")),
        ("targets", targets, ("customer_id", "product_id")),
    ):
        missing = [c for c in cols if c not in getattr(frame, "columns", ())]
        if missing:
            raise ValidationError(f"{name} lack the column(s) {', '.join(missing)}.")


def _hits(recommendations: pd.DataFrame, targets: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per customer with targets: number of targets, and the ranks (≤ k) that hit one."""
    if not is_int(k) or k < 1:
        raise invalid_parameter("ranking_metrics", "k", "a positive int", k)
    truth = targets[["customer_id", "product_id"]].drop_duplicates()
    top = recommendations.loc[recommendations["rank"] <= k, ["customer_id", "product_id", "rank"]]
    hit = top.merge(truth, on=["customer_id", "product_id"], how="inner")
    n_targets = truth.groupby("customer_id").size().rename("n_targets")
    gain = (1.0 / np.log2(hit["rank"].to_numpy(float) + 1.0)).astype(float)
    per = (
        pd.DataFrame({"customer_id": hit["customer_id"].to_numpy(), "hits": 1.0, "dcg": gain})
        .groupby("customer_id")[["hits", "dcg"]]
        .sum()
    )
    return n_targets.to_frame().join(per, how="left").fillna({"hits": 0.0, "dcg": 0.0})


def recall_at_k(recommendations: pd.DataFrame, targets: pd.DataFrame, k: int) -> float:
    """Mean recall@k over customers with at least one target.

    >>> recs = pd.DataFrame({"customer_id": [1, 1, 2, 2], "rank": [1, 2, 1, 2],
    ...                      "product_id": ["A", "B", "C", "D"]})
    >>> targets = pd.DataFrame({"customer_id": [1, 1, 2], "product_id": ["B", "E", "X"]})
    >>> recall_at_k(recs, targets, 2)
    0.25
    """
    _check(recommendations, targets)
    per = _hits(recommendations, targets, k)
    if per.empty:
        return float("nan")
    return float((per["hits"] / per["n_targets"]).mean())


def ndcg_at_k(recommendations: pd.DataFrame, targets: pd.DataFrame, k: int) -> float:
    """Mean NDCG@k (binary relevance) over customers with at least one target.

    >>> recs = pd.DataFrame({"customer_id": [1, 1], "rank": [1, 2], "product_id": ["A", "B"]})
    >>> round(ndcg_at_k(recs, pd.DataFrame({"customer_id": [1], "product_id": ["B"]}), 2), 4)
    0.6309
    """
    _check(recommendations, targets)
    per = _hits(recommendations, targets, k)
    if per.empty:
        return float("nan")
    ideal_n = np.minimum(per["n_targets"].to_numpy(int), k)
    discounts = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))
    idcg = discounts[ideal_n - 1]
    return float((per["dcg"].to_numpy(float) / idcg).mean())


def ranking_metrics(
    recommendations: pd.DataFrame, targets: pd.DataFrame, ks: Iterable[int] = (3, 5)
) -> dict[str, float]:
    """``{"recall@k": ..., "ndcg@k": ...}`` for each ``k`` in ``ks``."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(recommendations, targets, k)
        out[f"ndcg@{k}"] = ndcg_at_k(recommendations, targets, k)
    return out
