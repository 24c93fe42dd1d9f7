"""recall@k and NDCG@k: a hand-computed example, agreement with scikit-learn, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from qianmian.errors import ConfigError, ValidationError
from qianmian.models.recommend import ndcg_at_k, ranking_metrics, recall_at_k


def _recs(lists: dict[int, list[str]]) -> pd.DataFrame:
    rows = [(c, r + 1, p) for c, ps in lists.items() for r, p in enumerate(ps)]
    return pd.DataFrame(rows, columns=["customer_id", "rank", "product_id"])


def _targets(sets: dict[int, list[str]]) -> pd.DataFrame:
    rows = [(c, p) for c, ps in sets.items() for p in ps]
    return pd.DataFrame(rows, columns=["customer_id", "product_id"])


def test_hand_computed_example() -> None:
    # Customer 1: hits at ranks 1 and 3 of two targets; customer 2: one target at rank 2;
    # customer 3: a target never recommended; customer 4: recommended, no target (not counted).
    recs = _recs({1: ["A", "B", "C"], 2: ["A", "B", "C"], 3: ["A", "B", "C"], 4: ["A", "B", "C"]})
    targets = _targets({1: ["A", "C"], 2: ["B"], 3: ["Z"]})
    log2 = math.log2
    ndcg1 = (1 / log2(2) + 1 / log2(4)) / (1 / log2(2) + 1 / log2(3))
    ndcg2 = (1 / log2(3)) / 1.0
    assert ndcg_at_k(recs, targets, 3) == pytest.approx((ndcg1 + ndcg2 + 0.0) / 3)
    assert recall_at_k(recs, targets, 3) == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    # At k=2 customer 1 has one of two targets, customer 2 still hits.
    assert recall_at_k(recs, targets, 2) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    ndcg1_k2 = 1.0 / (1 / log2(2) + 1 / log2(3))
    assert ndcg_at_k(recs, targets, 2) == pytest.approx((ndcg1_k2 + ndcg2) / 3)
    # At k=1 only customer 1 hits.
    assert ranking_metrics(recs, targets, (1,)) == pytest.approx(
        {"recall@1": 0.5 / 3, "ndcg@1": 1 / 3}
    )


def test_customer_with_targets_and_no_recommendations_scores_zero() -> None:
    recs = _recs({1: ["A"]})
    targets = _targets({1: ["A"], 2: ["A"]})
    assert recall_at_k(recs, targets, 5) == pytest.approx(0.5)
    assert ndcg_at_k(recs, targets, 5) == pytest.approx(0.5)


def test_no_targets_gives_nan() -> None:
    recs = _recs({1: ["A"]})
    empty = _targets({})
    assert math.isnan(recall_at_k(recs, empty, 3))
    assert math.isnan(ndcg_at_k(recs, empty, 3))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_ndcg_matches_sklearn(seed: int, k: int) -> None:
    """Distinct scores over 8 products: ranking the top-k equals sklearn's ndcg_score(k=k)."""
    rng = np.random.default_rng(seed)
    n_customers, products = 40, np.array(list("ABCDEFGH"))
    scores = rng.random((n_customers, len(products)))
    relevant = rng.random((n_customers, len(products))) < 0.25
    relevant[np.arange(n_customers), rng.integers(0, len(products), n_customers)] = True
    order = np.argsort(-scores, axis=1)[:, :k]
    recs = _recs({c: list(products[order[c]]) for c in range(n_customers)})
    targets = _targets({c: list(products[relevant[c]]) for c in range(n_customers)})
    expected = ndcg_score(relevant.astype(int), scores, k=k)
    assert ndcg_at_k(recs, targets, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("recs", "targets", "k", "error", "match"),
    [
        (_recs({1: ["A"]}), _targets({1: ["A"]}), 0, ConfigError, "'k' parameter"),
        (_recs({1: ["A"]}), _targets({1: ["A"]}), 2.0, ConfigError, "positive int"),
        (
            _recs({1: ["A"]}).drop(columns="rank"),
            _targets({1: ["A"]}),
            3,
            ValidationError,
            "recommendations lack the column",
        ),
        (_recs({1: ["A"]}), pd.DataFrame({"customer_id": [1]}), 3, ValidationError, "targets"),
    ],
)
def test_bad_input_is_a_clear_error(
    recs: pd.DataFrame, targets: pd.DataFrame, k: object, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        ndcg_at_k(recs, targets, k)  # type: ignore[arg-type]
