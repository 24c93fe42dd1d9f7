"""Calibration: do predicted probabilities match observed rates?

A propensity feeds expected-value arithmetic (probability × margin − cost), so a score that ranks
well but says 30% where 10% respond misallocates budget. :func:`reliability` bins the predictions,
compares each bin's mean prediction with its observed rate (scikit-learn's
:func:`~sklearn.calibration.calibration_curve`) and summarises with the expected calibration
error (ECE), the Brier score and the log loss; :func:`reliability_figure` draws the diagram.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.utils.validation import check_consistent_length, column_or_1d

from qianmian.errors import ValidationError, invalid_parameter

__all__ = ["ReliabilityReport", "reliability", "reliability_figure"]

_STRATEGIES = ("quantile", "uniform")


@dataclass(frozen=True)
class ReliabilityReport:
    """Calibration of one set of predicted probabilities against 0/1 outcomes.

    Attributes
    ----------
    table : DataFrame
        One row per non-empty bin: ``bin_low``, ``bin_high`` (edges), ``mean_predicted``,
        ``observed_rate``, ``count``.
    ece : float
        Expected calibration error: the count-weighted mean of
        ``|observed_rate - mean_predicted|`` over bins.
    max_gap : float
        The largest ``|observed_rate - mean_predicted|`` of a bin.
    brier : float
        Brier score (mean squared error of the probability).
    log_loss : float
    base_rate : float
        Share of positive outcomes.
    mean_predicted : float
        Mean predicted probability (equal to ``base_rate`` when calibrated in the large).
    n : int
    strategy : str
        ``"quantile"`` (equal-count bins) or ``"uniform"`` (equal-width bins).
    """

    table: pd.DataFrame
    ece: float
    max_gap: float
    brier: float
    log_loss: float
    base_rate: float
    mean_predicted: float
    n: int
    strategy: str

    def summary(self) -> str:
        return (
            f"calibration on {self.n:,} rows ({len(self.table)} {self.strategy} bins): "
            f"ECE {self.ece:.4f}, max gap {self.max_gap:.4f}, Brier {self.brier:.4f}, "
            f"log-loss {self.log_loss:.4f}; mean predicted {self.mean_predicted:.2%} vs "
            f"observed {self.base_rate:.2%}"
        )


def _bin_edges(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    # The edges calibration_curve uses, so that the counts line up with its rates.
    if strategy == "quantile":
        return np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)
    return np.linspace(0.0, 1.0, n_bins + 1)


def reliability(
    y_true: Any, p: Any, n_bins: int = 10, strategy: str = "quantile"
) -> ReliabilityReport:
    """Reliability table, ECE, Brier score and log loss of probabilities ``p``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Outcomes as 0/1 or booleans.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1, in [0, 1].
    n_bins : int >= 2, default=10
    strategy : {"quantile", "uniform"}, default="quantile"
        Equal-count bins (robust when most probabilities are small, as for marketing responses)
        or equal-width bins.

    Returns
    -------
    ReliabilityReport

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.0, 0.3, 20_000)
    >>> report = reliability(rng.random(20_000) < p, p)
    >>> report.ece < 0.01, len(report.table)
    (True, 10)
    """
    if not isinstance(n_bins, Integral) or isinstance(n_bins, bool) or n_bins < 2:
        raise invalid_parameter("reliability", "n_bins", "an int >= 2", n_bins)
    if strategy not in _STRATEGIES:
        raise invalid_parameter("reliability", "strategy", "one of 'quantile', 'uniform'", strategy)
    y = column_or_1d(y_true)
    prob = column_or_1d(p).astype(float)
    check_consistent_length(y, prob)
    if len(y) == 0:
        raise ValidationError("reliability needs at least one prediction; y_true is empty.")
    if not np.isin(y, [0, 1]).all():
        raise ValidationError(
            f"y_true of reliability must hold 0/1 outcomes; got values {np.unique(y)[:5].tolist()}."
        )
    if np.isnan(prob).any() or prob.min() < 0 or prob.max() > 1:
        raise ValidationError("p of reliability must hold probabilities in [0, 1], without NaN.")
    y = y.astype(int)
    observed, predicted = calibration_curve(y, prob, n_bins=n_bins, strategy=strategy, pos_label=1)
    edges = _bin_edges(prob, n_bins, strategy)
    counts = np.bincount(np.searchsorted(edges[1:-1], prob), minlength=n_bins)
    filled = counts > 0
    table = pd.DataFrame(
        {
            "bin_low": edges[:-1][filled],
            "bin_high": edges[1:][filled],
            "mean_predicted": predicted,
            "observed_rate": observed,
            "count": counts[filled],
        }
    )
    gaps = np.abs(table["observed_rate"] - table["mean_predicted"]).to_numpy()
    return ReliabilityReport(
        table=table,
        ece=float(np.sum(gaps * table["count"].to_numpy()) / len(y)),
        max_gap=float(gaps.max()),
        brier=float(brier_score_loss(y, prob, pos_label=1)),
        log_loss=float(log_loss(y, prob, labels=[0, 1])),
        base_rate=float(y.mean()),
        mean_predicted=float(prob.mean()),
        n=len(y),
        strategy=strategy,
    )


def reliability_figure(
    reports: ReliabilityReport | Mapping[str, ReliabilityReport],
    title: str = "校准曲线 / Reliability diagram",
) -> go.Figure:
    """Reliability diagram: observed rate against mean prediction per bin, with bin sizes below.

    Parameters
    ----------
    reports : ReliabilityReport or mapping of name → ReliabilityReport
        One curve per report (e.g. ``{"raw": ..., "isotonic": ...}``).
    title : str

    Returns
    -------
    plotly.graph_objects.Figure
    """
    named = {"model": reports} if isinstance(reports, ReliabilityReport) else dict(reports)
    if not named:
        raise ValidationError("reliability_figure needs at least one ReliabilityReport.")
    top = max(
        max(r.table["mean_predicted"].max(), r.table["observed_rate"].max()) for r in named.values()
    )
    top = float(min(1.0, top * 1.05 + 0.01))
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.05
    )
    fig.add_trace(
        go.Scatter(
            x=[0, top],
            y=[0, top],
            mode="lines",
            line={"dash": "dash", "color": "grey"},
            name="完美校准 perfect",
        ),
        row=1,
        col=1,
    )
    for name, r in named.items():
        t = r.table
        fig.add_trace(
            go.Scatter(
                x=t["mean_predicted"],
                y=t["observed_rate"],
                mode="lines+markers",
                name=f"{name} (ECE {r.ece:.3f})",
                customdata=t[["count"]].to_numpy(),
                hovertemplate="预测 predicted %{x:.3f}<br>实际 observed %{y:.3f}"
                "<br>客户数 n=%{customdata[0]:,}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Bar(x=t["mean_predicted"], y=t["count"], name=f"{name} n", showlegend=False),
            row=2,
            col=1,
        )
    fig.update_layout(title=title, barmode="group", legend={"x": 0.01, "y": 0.99})
    fig.update_yaxes(title_text="实际响应率 observed rate", range=[0, top], row=1, col=1)
    fig.update_yaxes(title_text="客户数 n", row=2, col=1)
    fig.update_xaxes(title_text="平均预测概率 mean predicted probability", row=2, col=1)
    return fig
