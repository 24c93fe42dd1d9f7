"""Reliability of predicted probabilities: table, ECE, Brier, log loss and the diagram."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy.special import expit

from qianmian.errors import ConfigError, ValidationError
from qianmian.models.calibration import ReliabilityReport, reliability, reliability_figure
from qianmian.models.propensity import PropensityClassifier


def _honest(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities skewed low, as for marketing responses, and outcomes drawn from them."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.0, 8.0, n)
    return (rng.random(n) < p).astype(int), p


def test_a_calibrated_predictor_has_a_small_ece():
    y, p = _honest(50_000)
    report = reliability(y, p)
    assert report.ece < 0.02, report.summary()
    assert list(report.table.columns) == [
        "bin_low",
        "bin_high",
        "mean_predicted",
        "observed_rate",
        "count",
    ]
    assert len(report.table) == 10 and report.table["count"].sum() == 50_000
    assert report.table["count"].between(4_999, 5_001).all()  # quantile bins: equal counts
    assert report.table["mean_predicted"].is_monotonic_increasing
    assert report.base_rate == pytest.approx(y.mean())
    assert report.mean_predicted == pytest.approx(p.mean())


@pytest.mark.parametrize(
    ("distort", "min_ece"),
    [
        (lambda p: np.sqrt(p), 0.15),  # over-confident about responders: says 30% where 9% respond
        (lambda p: p / 3, 0.05),  # under-predicts everyone
        (lambda p: expit(3 * (np.log(p / (1 - p)) + 2.0)), 0.08),  # far too sharp
    ],
)
def test_a_distorted_predictor_is_caught(distort, min_ece):
    y, p = _honest(50_000)
    honest = reliability(y, p)
    distorted = reliability(y, distort(p))
    assert distorted.ece > min_ece, distorted.summary()
    assert distorted.ece > 5 * honest.ece
    assert distorted.brier > honest.brier and distorted.log_loss > honest.log_loss


def test_scores_of_a_coin_flip_are_known():
    y = np.array([0, 1] * 500)
    report = reliability(y, np.full(1_000, 0.5), n_bins=5)
    assert report.brier == pytest.approx(0.25)
    assert report.log_loss == pytest.approx(math.log(2))
    assert report.ece == pytest.approx(0.0)
    assert len(report.table) == 1  # all predictions fall in one bin


def test_uniform_bins_span_zero_to_one():
    y, p = _honest(10_000)
    report = reliability(y, p, n_bins=4, strategy="uniform")
    assert report.table["bin_low"].iloc[0] == 0.0
    assert report.table["bin_high"].tolist() == [0.25, 0.5, 0.75, 1.0][: len(report.table)]
    assert report.strategy == "uniform"


def _campaign(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"spend": rng.gamma(2.0, 1.0, n), "logins": rng.poisson(3.0, n)})
    p = expit(-4.5 + 0.7 * X["spend"] + 0.2 * X["logins"])
    return X, (rng.random(n) < p).astype(int)


def test_isotonic_calibration_repairs_class_weighting():
    """Balanced weights push raw probabilities far above the ~11% response rate; the isotonic
    map fitted on the classifier's own hold-out brings them back, measured on later customers."""
    X, y = _campaign(12_000, seed=0)
    X_later, y_later = _campaign(6_000, seed=1)
    common = {"class_weight": "balanced", "n_jobs": 1}
    raw = PropensityClassifier(calibration=None, **common).fit(X, y)
    iso = PropensityClassifier(calibration="isotonic", **common).fit(X, y)
    sig = PropensityClassifier(calibration="sigmoid", **common).fit(X, y)
    ece_raw = reliability(y_later, raw.predict_proba(X_later)[:, 1]).ece
    ece_iso = reliability(y_later, iso.predict_proba(X_later)[:, 1]).ece
    ece_sig = reliability(y_later, sig.predict_proba(X_later)[:, 1]).ece
    assert ece_raw > 0.1, ece_raw
    assert ece_iso < 0.02 and ece_iso < ece_raw / 5, (ece_iso, ece_raw)
    assert ece_sig < 0.03, ece_sig


def test_reliability_figure():
    y, p = _honest(5_000)
    reports = {"honest": reliability(y, p), "sqrt": reliability(y, np.sqrt(p))}
    fig = reliability_figure(reports)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert names[0] == "完美校准 perfect"
    assert any(n.startswith("honest (ECE") for n in names)
    assert any(n.startswith("sqrt (ECE") for n in names)
    assert sum(isinstance(t, go.Bar) for t in fig.data) == 2
    single = reliability_figure(reports["honest"])
    assert len(single.data) == 3
    with pytest.raises(ValidationError, match="at least one ReliabilityReport"):
        reliability_figure({})


@pytest.mark.parametrize(
    ("y", "p", "kwargs", "error", "pattern"),
    [
        ([0, 1], [0.2, 0.8], {"n_bins": 1}, ConfigError, "'n_bins' parameter of reliability must be an int >= 2"),
        ([0, 1], [0.2, 0.8], {"strategy": "kmeans"}, ConfigError, "'strategy' .* Got 'kmeans'"),
        ([0, 1], [0.2, 1.2], {}, ValidationError, r"probabilities in \[0, 1\]"),
        ([0, 1], [0.2, np.nan], {}, ValidationError, "without NaN"),
        ([0, 2], [0.2, 0.8], {}, ValidationError, "must hold 0/1 outcomes"),
        ([0, 1, 1], [0.2, 0.8], {}, ValueError, "inconsistent numbers of samples"),
        ([], [], {}, ValidationError, "y_true is empty"),
    ],
)  # fmt: skip
def test_invalid_input(y, p, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        reliability(np.asarray(y), np.asarray(p, dtype=float), **kwargs)


def test_summary_reads_well():
    y, p = _honest(2_000)
    report = reliability(y, p)
    assert isinstance(report, ReliabilityReport)
    assert report.summary().startswith("calibration on 2,000 rows (10 quantile bins): ECE 0.0")
