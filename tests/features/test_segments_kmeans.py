"""CustomerSegmenter: the scikit-learn contract, parameters, k choice, determinism and names."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from threadpoolctl import threadpool_limits

from qianmian.errors import ConfigError, SchemaError
from qianmian.features.segments_kmeans import SEGMENT_FEATURES, CustomerSegmenter
from qianmian.features.segments_names import name_segments, profile_stats, segment_profiles
from sklearn_contract import contract_checks


@pytest.fixture(autouse=True)
def _one_thread():
    """KMeans' OpenMP threads crawl when other test runs share the cores; one is plenty here."""
    with threadpool_limits(1):
        yield


# The generic contract runs with features=None (every column of a numeric array); the
# named-feature path needs a DataFrame of catalogue features and is tested below.
@pytest.mark.parametrize(
    ("estimator", "check"),
    contract_checks(
        [
            CustomerSegmenter(features=None, n_clusters=3, n_init=2),
            CustomerSegmenter(features=None, k_range=(2, 4), n_init=2),
        ]
    ),
)
def test_sklearn_contract(estimator, check):
    check(estimator)


def _customers(groups: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Synthetic customers with the default features, one well-separated group per key."""
    rng = np.random.default_rng(seed)
    parts = []
    for group, n in groups.items():
        f = pd.DataFrame(
            {
                "customer_id": 0,
                "recency_days": rng.integers(3, 8, n),
                "frequency_90d": rng.poisson(12, n),
                "monetary_90d": rng.lognormal(np.log(6000), 0.15, n),
                "avg_ticket_90d": rng.lognormal(np.log(500), 0.15, n),
                "share_travel_90d": 0.04,
                "share_hotel_90d": 0.02,
                "share_airline_90d": 0.02,
                "share_baby_90d": 0.01,
                "share_education_90d": 0.01,
                "share_ecommerce_90d": 0.12,
                "share_supermarket_90d": 0.08,
                "share_dining_90d": 0.1,
                "logins_30d": 2,
                "views_wealth_list_30d": 0,
                "wealth_balance": 0.0,
                "age": rng.integers(30, 45, n),
                "monthly_income": 9000.0,
                "occupation": "企业白领",
                "children": 1,
                "group": group,
            }
        )
        if group == "high_spend":
            f["monetary_90d"] *= 20
            f["avg_ticket_90d"] *= 5
            f["frequency_90d"] = rng.poisson(50, n)
            f["monthly_income"] = 40_000.0
        elif group == "dormant":
            f["recency_days"] = rng.integers(150, 366, n)
            f[["frequency_90d", "monetary_90d"]] = 0
            f["avg_ticket_90d"] = np.nan
            share_cols = [c for c in f.columns if c.startswith("share_")]
            f[share_cols] = np.nan
        elif group == "travel":
            f[["share_travel_90d", "share_hotel_90d", "share_airline_90d"]] = [0.3, 0.2, 0.15]
        elif group == "ecommerce":
            f["share_ecommerce_90d"] = 0.7
        elif group == "retired":
            f["age"] = rng.integers(62, 75, n)
            f["occupation"] = "退休"
        parts.append(f)
    out = pd.concat(parts, ignore_index=True)
    out["customer_id"] = np.arange(1, len(out) + 1)
    return out


@pytest.mark.parametrize(
    ("group", "name_zh", "name_en"),
    [
        ("high_spend", "高价值客户", "High-value"),
        ("dormant", "沉睡客户", "Dormant"),
        ("travel", "差旅达人", "Frequent travellers"),
        ("ecommerce", "网购达人", "Online shoppers"),
        ("retired", "退休人群", "Retirees"),
    ],
)
def test_names_come_from_the_profile(synthetic_fit, group, name_zh, name_en):
    frame, seg = synthetic_fit
    labels = seg.labels_[frame["group"] == group]
    assert len(set(labels)) == 1, "each synthetic group is its own cluster"
    name = seg.segment_names_[labels[0]]
    assert (name.zh, name.en) == (name_zh, name_en)
    assert name.description_zh.startswith("平均月消费 ¥")


@pytest.fixture(scope="module")
def synthetic_fit() -> tuple[pd.DataFrame, CustomerSegmenter]:
    frame = _customers(
        {
            "base": 400,
            "high_spend": 60,
            "dormant": 80,
            "travel": 120,
            "ecommerce": 120,
            "retired": 100,
        }
    )
    with threadpool_limits(1):
        return frame, CustomerSegmenter(n_clusters=6, n_init=4).fit(frame)


def test_synthetic_names_are_unique_and_base_is_mainstream(synthetic_fit):
    _, seg = synthetic_fit
    names = [n.zh for n in seg.segment_names_]
    assert len(set(names)) == len(names) == 6
    assert seg.segment_names_[0].zh == "大众客户"  # the largest, most ordinary group: label 0


def test_equal_clusters_get_a_numbered_name():
    frame = _customers({"base": 100, "high_spend": 50})
    pop = profile_stats(frame)
    twin = pd.concat([frame, frame.assign(customer_id=frame["customer_id"] + 10_000)])
    labels = np.r_[np.zeros(100), np.full(50, 1), np.full(100, 2), np.full(50, 3)].astype(int)
    names = name_segments(segment_profiles(twin, labels), pop)
    assert [names[c].zh for c in range(4)] == [
        "长尾客户",
        "高价值客户",
        "长尾客户·2",
        "高价值客户·2",
    ]


def test_choose_k_by_silhouette_on_obvious_blobs():
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]])
    X = np.vstack([c + rng.normal(0, 0.5, (60, 2)) for c in centres])
    seg = CustomerSegmenter(features=None, k_range=(2, 7), random_state=0).fit(X)
    assert seg.n_clusters_ == 4
    assert set(seg.silhouette_scores_) == set(range(2, 8))
    best = max(round(s, 3) for s in seg.silhouette_scores_.values())
    assert round(seg.silhouette_, 3) == best
    assert np.bincount(seg.labels_).tolist() == [60, 60, 60, 60]


def test_k_ties_go_to_the_smaller_k(monkeypatch):
    import qianmian.features.segments_kmeans as mod

    monkeypatch.setattr(mod, "silhouette_score", lambda Z, labels, **kw: 0.25)
    X = np.random.default_rng(0).normal(size=(50, 3))
    assert CustomerSegmenter(features=None, k_range=(3, 6)).fit(X).n_clusters_ == 3


@pytest.fixture(scope="module")
def bank_fit(feature_table: pa.Table) -> tuple[pd.DataFrame, CustomerSegmenter]:
    frame = feature_table.to_pandas()
    with threadpool_limits(1):
        return frame, CustomerSegmenter(random_state=0).fit(frame)


def test_same_data_and_seed_give_identical_segments(bank_fit):
    frame, first = bank_fit
    again = CustomerSegmenter(random_state=0).fit(frame)
    assert again.n_clusters_ == first.n_clusters_
    np.testing.assert_array_equal(again.labels_, first.labels_)
    np.testing.assert_array_equal(again.cluster_centers_, first.cluster_centers_)
    assert again.segment_names_ == first.segment_names_
    np.testing.assert_array_equal(first.predict(frame), first.labels_)


def test_segments_on_the_bank_are_named_sized_and_ordered(bank_fit):
    frame, seg = bank_fit
    assert 4 <= seg.n_clusters_ <= 10
    table = seg.describe()
    assert table["size"].sum() == len(frame)
    assert table["size"].is_monotonic_decreasing  # label 0 is the largest segment
    assert table["name_zh"].is_unique and table["name_en"].is_unique
    assert all(re.search(r"[一-鿿]", n) for n in table["name_zh"])
    names = dict(zip(table["name_zh"], table["cluster"], strict=True))
    assert "沉睡客户" in names and "高价值客户" in names
    prof = seg.profiles_
    assert prof.loc[names["沉睡客户"], "dormant_share"] > 0.5
    assert prof.loc[names["高价值客户"], "monthly_spend"] >= 1.5 * prof["monthly_spend"].mean()


def test_predict_and_transform_accept_extra_and_reordered_columns(bank_fit):
    frame, seg = bank_fit
    shuffled = frame[frame.columns[::-1]].head(50)
    np.testing.assert_array_equal(seg.predict(shuffled), seg.labels_[:50])
    assert seg.transform(shuffled).shape == (50, seg.n_clusters_)
    assert seg.names_of([0, 1], lang="en").tolist() == [
        seg.segment_names_[0].en,
        seg.segment_names_[1].en,
    ]


_ROWS = _customers({"base": 30})


@pytest.mark.parametrize(
    ("params", "X", "error", "pattern"),
    [
        ({"n_clusters": 0}, _ROWS, ConfigError,
         "The 'n_clusters' parameter of CustomerSegmenter must be a positive int or None. "
         "Got 0 instead."),
        ({"n_clusters": 2.5}, _ROWS, ConfigError, "'n_clusters' .* Got 2.5 instead"),
        ({"n_clusters": True}, _ROWS, ConfigError, "'n_clusters' .* Got True instead"),
        ({"n_clusters": 31}, _ROWS, ConfigError,
         r"must be at most the number of customers \(n_samples=30\). Got 31 instead"),
        ({"k_range": (1, 4)}, _ROWS, ConfigError,
         r"The 'k_range' parameter .* must be a pair of ints \(low, high\) with 2 <= low <= "
         r"high. Got \(1, 4\) instead."),
        ({"k_range": (6, 4)}, _ROWS, ConfigError, r"'k_range' .* Got \(6, 4\) instead"),
        ({"k_range": 5}, _ROWS, ConfigError, "'k_range' .* Got 5 instead"),
        ({"k_range": (40, 50)}, _ROWS, ConfigError,
         r"some k below the number of customers \(n_samples=30\). Got \(40, 50\) instead"),
        ({"features": "age"}, _ROWS, ConfigError, "'features' .* Got 'age' instead"),
        ({"features": []}, _ROWS, ConfigError, r"'features' .* Got \[\] instead"),
        ({"features": ["age", "age"]}, _ROWS, ConfigError, "distinct feature names"),
        ({"silhouette_sample": 10}, _ROWS, ConfigError,
         "'silhouette_sample' .* must be an int of at least 100. Got 10 instead"),
        ({"n_init": 0}, _ROWS, ConfigError, "'n_init' .* must be a positive int. Got 0"),
        ({"random_state": "seed"}, _ROWS, ConfigError, "'random_state' .* Got 'seed' instead"),
        ({"features": ["age", "spend_99d"]}, _ROWS, SchemaError,
         "needs the features spend_99d, which X lacks"),
        ({}, _ROWS[["age"]].to_numpy(), SchemaError, "X must be a pandas DataFrame"),
        ({}, _ROWS.head(1), ValueError, "1 sample"),
    ],
)  # fmt: skip
def test_invalid_parameters_and_input(params, X, error, pattern):
    with pytest.raises(error, match=pattern):
        CustomerSegmenter(**params).fit(X)


def test_init_stores_parameters_unchanged():
    features = ["age", "monetary_90d"]
    seg = CustomerSegmenter(n_clusters=-3, k_range="x", features=features)  # type: ignore[arg-type]
    assert seg.n_clusters == -3 and seg.k_range == "x" and seg.features is features
    assert CustomerSegmenter().features == SEGMENT_FEATURES
