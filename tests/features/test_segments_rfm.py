"""RFM: quintile edges and ties, the 8-class and 11-class rules, and scores on the simulated bank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qianmian.errors import SchemaError
from qianmian.features.segments_rfm import (
    CLASSIC_GRID,
    CLASSIC_SEGMENTS,
    RFM_SEGMENTS,
    classic_segment,
    quintile_scores,
    rfm_scores,
    rfm_segment,
)


@pytest.mark.parametrize(
    ("values", "higher_is_better", "expected"),
    [
        (range(1, 11), True, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
        (range(1, 11), False, [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]),
        (range(1, 6), True, [1, 2, 3, 4, 5]),
        # a tie group straddling an edge takes the lower score; ties never split
        ([7, 7, 7, 7, 1], True, [2, 2, 2, 2, 1]),
        ([1, 1, 1, 1, 1], True, [1, 1, 1, 1, 1]),
        ([0, 0, 0, 5, 9], True, [1, 1, 1, 4, 5]),
        # missing is the worst value in either direction
        ([np.nan, 1, 2, 3, 4], True, [1, 2, 3, 4, 5]),
        ([np.nan, 1, 2, 3, 4], False, [1, 5, 4, 3, 2]),
        ([], True, []),
    ],
)
def test_quintile_edges(values, higher_is_better, expected):
    got = quintile_scores(np.asarray(list(values), dtype=float), higher_is_better=higher_is_better)
    assert got.tolist() == expected


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=200), st.randoms())
def test_quintiles_are_monotone_tie_safe_and_order_free(values, rnd):
    x = np.asarray(values, dtype=float)
    s = quintile_scores(x)
    assert s.min() >= 1 and s.max() <= 5
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(s[order]) >= 0)  # better value → never a lower score
    for v in np.unique(x):
        assert len(set(s[x == v])) == 1  # equal values share a score
    perm = list(range(len(x)))
    rnd.shuffle(perm)
    assert quintile_scores(x[perm]).tolist() == s[perm].tolist()
    assert quintile_scores(x, higher_is_better=False).tolist() == quintile_scores(-x).tolist()


@pytest.mark.parametrize(
    ("r", "f", "m", "zh", "en"),
    [
        (5, 5, 5, "重要价值客户", "High-value"),
        (4, 4, 4, "重要价值客户", "High-value"),
        (5, 1, 4, "重要发展客户", "High-value to develop"),
        (1, 5, 5, "重要保持客户", "High-value to keep"),
        (3, 3, 5, "重要挽留客户", "High-value to win back"),
        (4, 4, 1, "一般价值客户", "Regular value"),
        (4, 1, 2, "一般发展客户", "Regular to develop"),
        (1, 4, 3, "一般保持客户", "Regular to keep"),
        (3, 3, 3, "一般挽留客户", "Regular to win back"),  # 3 is the average: not high
        (1, 1, 1, "一般挽留客户", "Regular to win back"),
    ],
)
def test_eight_class_rules(r, f, m, zh, en):
    seg = rfm_segment(r, f, m)
    assert (seg.zh, seg.en) == (zh, en)


def test_eight_classes_are_all_distinct():
    assert len({s.zh for s in RFM_SEGMENTS.values()}) == 8
    assert len({s.en for s in RFM_SEGMENTS.values()}) == 8


@pytest.mark.parametrize(
    ("r", "f", "m", "en"),
    [
        (5, 5, 5, "Champions"),
        (4, 4, 3, "Champions"),  # FM = round-half-up(3.5) = 4
        (3, 5, 5, "Loyal"),
        (5, 3, 3, "Loyal"),
        (5, 2, 2, "Potential Loyalist"),
        (5, 1, 1, "New Customers"),
        (4, 1, 1, "Promising"),
        (3, 2, 2, "Need Attention"),
        (3, 1, 1, "About to Sleep"),
        (2, 3, 3, "At Risk"),
        (1, 5, 4, "Can't Lose Them"),
        (2, 1, 1, "Hibernating"),
        (1, 1, 1, "Lost"),
    ],
)
def test_classic_rules(r, f, m, en):
    assert classic_segment(r, f, m).en == en


def test_classic_grid_uses_every_segment_once_named():
    used = {key for row in CLASSIC_GRID for key in row}
    assert used == set(CLASSIC_SEGMENTS)
    assert all(s.zh for s in CLASSIC_SEGMENTS.values())


def test_rfm_scores_on_hand_made_rows():
    rows = pd.DataFrame(
        {
            "recency_days": [1, 2, 3, 4, 5, 6, 7, 8, 9, 366],
            "frequency_365d": [90, 80, 70, 60, 50, 40, 30, 20, 10, 0],
            "monetary_365d": [9e4, 8e4, 7e4, 6e4, 5e4, 4e4, 3e4, 2e4, 1e4, 0.0],
        },
        index=list("abcdefghij"),
    )
    out = rfm_scores(rows)
    assert list(out.index) == list("abcdefghij")
    assert out.loc["a", "rfm_code"] == "555" and out.loc["a", "rfm_segment"] == "重要价值客户"
    assert out.loc["a", "rfm_score"] == 15
    assert out.loc["j", ["rfm_r", "rfm_f", "rfm_m"]].tolist() == [1, 1, 1]
    assert out.loc["j", "rfm_segment"] == "一般挽留客户"
    assert out.loc["j", "rfm_classic"] == "Lost"


def test_no_spend_scores_lowest_even_with_odd_recency():
    rows = pd.DataFrame(
        {
            "recency_days": [1, 40, 80, 120, 200],  # the first has no purchases in a year
            "frequency_365d": [0, 5, 4, 3, 2],
            "monetary_365d": [0.0, 500.0, 400.0, 300.0, 200.0],
        }
    )
    out = rfm_scores(rows)
    assert out.loc[0, ["rfm_r", "rfm_f", "rfm_m"]].tolist() == [1, 1, 1]


def test_missing_rfm_features_is_a_clear_error():
    with pytest.raises(SchemaError, match="missing monetary_365d"):
        rfm_scores(pd.DataFrame({"recency_days": [1], "frequency_365d": [2]}))


def test_rfm_on_the_bank(feature_table: pa.Table):
    frame = feature_table.to_pandas()
    out = rfm_scores(frame)
    n = len(frame)
    # M is continuous: exact quintiles (±1 customer); F has few ties at the edges.
    assert np.allclose(out["rfm_m"].value_counts(normalize=True).sort_index(), 0.2, atol=0.002)
    assert np.allclose(out["rfm_f"].value_counts(normalize=True).sort_index(), 0.2, atol=0.03)
    no_spend = frame["frequency_365d"] == 0
    assert no_spend.any() and (out.loc[no_spend, "rfm_code"] == "111").all()
    assert set(out["rfm_segment"]) == {s.zh for s in RFM_SEGMENTS.values()}
    # R, F and M go together on a real book: all three high is far above independence (0.4³).
    assert (out["rfm_segment"] == "重要价值客户").sum() > 0.1 * n
