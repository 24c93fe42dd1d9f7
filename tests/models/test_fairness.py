"""Fairness report: equal to Fairlearn and to a hand count, trips on planted bias, quiet when fair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from qianmian.data.schema.vocab import CITY_TIERS
from qianmian.errors import ConfigError, SchemaError, ValidationError
from qianmian.models.fairness import AGE_BANDS, fairness_report, sensitive_attributes
from qianmian.world import World, WorldConfig

AS_OF = "2026-08-01"


@pytest.fixture(scope="module")
def world_customers(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The customers table of a small simulated bank."""
    ws: Path = tmp_path_factory.mktemp("fairness-world")
    world = World.generate(WorldConfig(customers=1_500, months=1, seed=8), ws, workers=1)
    return world.table("customers").to_pandas()


def _population(n: int = 20_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Synthetic customers (adults of every age band, both genders, all tiers) and outcomes."""
    rng = np.random.default_rng(seed)
    born = pd.Timestamp(AS_OF) - pd.to_timedelta(rng.uniform(18.01, 80, n) * 365.25, unit="D")
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "birth_date": born.date,
            "gender": rng.choice(["M", "F"], n),
            "city_tier": rng.choice(list(CITY_TIERS.values), n),
        }
    )
    y_true = rng.binomial(1, 0.3, n)
    noise = rng.normal(size=n)
    return sensitive_attributes(customers, AS_OF), y_true, noise


def test_a_tiny_example_equals_a_hand_count_and_fairlearn():
    y_true = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    y_pred = np.array([1, 0, 1, 0, 1, 0, 0, 0])
    score = np.array([0.9, 0.4, 0.6, 0.1, 0.8, 0.2, 0.3, 0.1])
    sensitive = pd.DataFrame({"group": ["A"] * 4 + ["B"] * 4})
    report = fairness_report(y_true, y_pred, sensitive, y_score=score)
    table = report["group"].groups
    # A: 2 of 4 selected, 1 of 2 positives found, 1 of 2 negatives selected
    # B: 1 of 4 selected, its 1 positive found, none of 3 negatives selected
    assert table.loc["A"].to_dict() == {
        "count": 4,
        "selection_rate": 0.5,
        "tpr": 0.5,
        "fpr": 0.5,
        "auc": 0.75,  # positives 0.9, 0.4 vs negatives 0.6, 0.1: 3 of 4 pairs ordered
    }
    assert table.loc["B"].to_dict() == {
        "count": 4,
        "selection_rate": 0.25,
        "tpr": 1.0,
        "fpr": 0.0,
        "auc": 1.0,
    }
    assert report["group"].demographic_parity_ratio == 0.5  # 0.25 / 0.5
    assert report["group"].equalized_odds_difference == 0.5  # max(|0.5-1|, |0.5-0|)
    groups = sensitive["group"]
    assert report["group"].demographic_parity_ratio == demographic_parity_ratio(
        y_true, y_pred, sensitive_features=groups
    )
    assert report["group"].equalized_odds_difference == equalized_odds_difference(
        y_true, y_pred, sensitive_features=groups
    )
    assert report["group"].dp_flag and report["group"].eo_flag
    assert report.overall["selection_rate"] == 3 / 8 and report.overall["count"] == 8


def test_group_tables_equal_fairlearn_on_a_population():
    sensitive, y_true, noise = _population(n=2_000)
    y_pred = (noise + y_true > 0.8).astype(int)
    report = fairness_report(y_true, y_pred, sensitive, y_score=noise + y_true)
    for attribute in ("age_band", "gender", "city_tier"):
        frame = MetricFrame(
            metrics={"sr": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=sensitive[attribute],
        )
        ours = report[attribute].groups.sort_index()
        np.testing.assert_allclose(ours["selection_rate"], frame.by_group["sr"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours["tpr"], frame.by_group["tpr"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours["fpr"], frame.by_group["fpr"], rtol=0, atol=1e-12)
        assert ours["count"].sum() == 2_000
        assert report[attribute].demographic_parity_ratio == pytest.approx(
            demographic_parity_ratio(y_true, y_pred, sensitive_features=sensitive[attribute]),
            abs=1e-12,
        )
        assert report[attribute].equalized_odds_difference == pytest.approx(
            equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive[attribute]),
            abs=1e-12,
        )
    assert list(report["age_band"].groups.index) == list(AGE_BANDS)  # natural order
    assert list(report["city_tier"].groups.index) == list(CITY_TIERS.values)


def test_a_fair_model_is_not_flagged():
    sensitive, y_true, noise = _population()
    random_model = np.random.default_rng(1).binomial(1, 0.4, len(y_true))
    report = fairness_report(y_true, random_model, sensitive)
    assert report.passed, report.flagged
    # a model that uses the outcome the same way in every group is fair too
    informed = (noise + 1.5 * y_true > 1.0).astype(int)
    report = fairness_report(y_true, informed, sensitive, y_score=noise + 1.5 * y_true)
    assert report.passed, report.flagged
    assert min(a.demographic_parity_ratio for a in report.attributes) > 0.85
    assert max(a.equalized_odds_difference for a in report.attributes) < 0.07


@pytest.mark.parametrize(("attribute", "group"), [("age_band", "65+"), ("city_tier", "四线及以下")])
def test_a_planted_bias_trips_the_flags(attribute, group):
    sensitive, y_true, _ = _population()
    rate = np.where(sensitive[attribute].to_numpy() == group, 0.1, 0.45)
    biased = np.random.default_rng(2).binomial(1, rate)
    report = fairness_report(y_true, biased, sensitive)
    target = report[attribute]
    assert target.dp_flag and target.eo_flag
    assert target.demographic_parity_ratio == pytest.approx(0.1 / 0.45, abs=0.05)
    assert target.groups["selection_rate"].idxmin() == group
    others = [a for a in report.attributes if a.attribute != attribute]
    assert not any(a.dp_flag or a.eo_flag for a in others)
    assert len(report.flagged) == 2
    assert report.flagged[0].startswith(f"{attribute}: demographic-parity ratio 0.2")
    lowest = target.groups.loc[group, "selection_rate"]
    assert f"selection rate {group} {lowest:.3f} vs" in report.flagged[0]


def test_a_biased_model_on_the_simulated_banks_customers(world_customers):
    sensitive = sensitive_attributes(world_customers, AS_OF)
    assert set(sensitive.columns) == {"age_band", "gender", "city_tier"}
    assert sensitive.index.is_unique and len(sensitive) == len(world_customers)
    assert set(sensitive["age_band"]) <= {*AGE_BANDS, "<18"}
    assert set(sensitive["city_tier"]) <= set(CITY_TIERS.values)
    # ages counted by hand for a few customers
    for row in world_customers.head(20).itertuples():
        born = pd.Timestamp(row.birth_date)
        age = 2026 - born.year - ((born.month, born.day) > (8, 1))
        band = next(b for b in AGE_BANDS if _in_band(age, b))
        assert sensitive.loc[row.customer_id, "age_band"] == band
    rng = np.random.default_rng(4)
    y_true = rng.binomial(1, 0.3, len(sensitive))
    old = sensitive["age_band"].isin(["55-64", "65+"]).to_numpy()
    selected = rng.binomial(1, np.where(old, 0.05, 0.5))
    report = fairness_report(y_true, selected, sensitive)
    assert report["age_band"].dp_flag and not report.passed


def _in_band(age: int, band: str) -> bool:
    low, _, high = band.partition("-")
    return age >= int(low.rstrip("+")) and (not high or age <= int(high))


def test_sensitive_attributes_at_the_band_edges():
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5, 6, 7],
            "birth_date": pd.to_datetime(
                [
                    "2002-08-01",
                    "2002-08-02",
                    "2001-08-01",
                    "1961-08-01",
                    "1961-08-02",
                    None,
                    "2010-01-01",
                ]
            ),
            "gender": ["M", "F", None, "M", "F", "M", "F"],
            "city_tier": ["一线", "二线", "三线", None, "新一线", "一线", "二线"],
        }
    )
    got = sensitive_attributes(customers, AS_OF)
    assert got["age_band"].tolist() == ["18-24", "18-24", "25-34", "65+", "55-64", "unknown", "<18"]
    assert got.loc[3, "gender"] == "unknown" and got.loc[4, "city_tier"] == "unknown"
    assert sensitive_attributes(customers, AS_OF, ["gender"]).columns.tolist() == ["gender"]
    with pytest.raises(SchemaError, match="no column city_tier"):
        sensitive_attributes(customers.drop(columns="city_tier"), AS_OF)


def test_small_groups_can_be_left_out_of_the_comparison():
    sensitive, y_true, _ = _population(n=3_000)
    sensitive = sensitive.copy()
    sensitive.iloc[:5, sensitive.columns.get_loc("gender")] = "unknown"
    y_pred = np.random.default_rng(3).binomial(1, 0.4, len(y_true))
    y_pred[:5] = 0  # a tiny group nobody selected
    strict = fairness_report(y_true, y_pred, sensitive)
    assert strict["gender"].dp_flag and strict["gender"].demographic_parity_ratio == 0.0
    lenient = fairness_report(y_true, y_pred, sensitive, min_group_size=30)
    assert lenient["gender"].excluded == ("unknown",) and not lenient["gender"].dp_flag
    kept = sensitive["gender"].to_numpy() != "unknown"
    assert lenient["gender"].demographic_parity_ratio == pytest.approx(
        demographic_parity_ratio(
            y_true[kept], y_pred[kept], sensitive_features=sensitive["gender"][kept]
        ),
        abs=1e-12,
    )
    assert "not compared: unknown" in lenient.to_markdown()


def test_frame_markdown_and_figure():
    sensitive, y_true, noise = _population(n=4_000)
    rate = np.where(sensitive["age_band"].to_numpy() == "65+", 0.1, 0.45)
    report = fairness_report(
        y_true, np.random.default_rng(2).binomial(1, rate), sensitive, y_score=noise
    )
    frame = report.to_frame()
    assert len(frame) == 6 + 2 + 5
    assert {"attribute", "group", "count", "selection_rate", "tpr", "fpr", "auc"} <= set(frame)
    assert frame.loc[frame["attribute"] == "age_band", "dp_flag"].all()
    text = report.to_markdown()
    assert "## Fairness report" in text and "### city_tier" in text
    assert "| age_band | 0." in text and "⚠ age_band: demographic-parity ratio" in text
    fig = report.figure()
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    ages = fig.data[0]
    assert list(ages.x) == list(AGE_BANDS)
    line = fig.layout.shapes[0].y0
    assert line == pytest.approx(0.8 * max(ages.y))
    assert ages.marker.color[-1] == "#d62728" and ages.marker.color[0] == "#1f77b4"


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"y_pred": [0, 2, 1, 0]}, ValidationError, r"y_pred must hold only 0 and 1. Got \[2\]"),
        ({"y_true": [0, 1, 1]}, ValidationError, "the same, non-zero number of rows"),
        ({"y_score": [0.1, 0.2]}, ValidationError, "'y_score': 2"),
        ({"sensitive": pd.DataFrame(index=range(4))}, ValidationError, "one column per attr"),
        ({"dp_threshold": 1.2}, ConfigError, r"'dp_threshold' parameter .* in \(0, 1\]"),
        ({"eo_threshold": -0.1}, ConfigError, r"'eo_threshold' parameter"),
        ({"min_group_size": 0}, ConfigError, r"'min_group_size' parameter"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, error, pattern):
    args = {
        "y_true": [0, 1, 1, 0],
        "y_pred": [0, 1, 0, 0],
        "sensitive": pd.DataFrame({"gender": ["M", "F", "M", "F"]}),
    }
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        fairness_report(args.pop("y_true"), args.pop("y_pred"), args.pop("sensitive"), **args)
