"""Qini charts as Plotly figures."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike

from qianmian.errors import ValidationError

__all__ = ["qini_figure"]


def qini_figure(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    *,
    perfect: tuple[ArrayLike, ArrayLike] | None = None,
    title: str = "Qini 曲线 / Qini curve",
    x_title: str = "目标客户数 customers targeted",
    y_title: str = "增量响应 incremental responders",
) -> go.Figure:
    """A Qini chart: one line per model, the random line, and optionally the perfect curve.

    Parameters
    ----------
    curves : mapping of name to (x, y)
        Curves from :func:`~qianmian.models.uplift.metrics.qini_curve` (or
        :func:`~qianmian.models.uplift.metrics.uplift_curve`), in legend order.
    perfect : (x, y), optional
        :func:`~qianmian.models.uplift.metrics.perfect_qini_curve`, drawn dotted.
    title, x_title, y_title : str
        Texts of the chart.

    Returns
    -------
    plotly.graph_objects.Figure
        The random line joins ``(0, 0)`` to the end of each curve (one line when the curves end at
        the same point, as curves of one data set do).

    Examples
    --------
    >>> fig = qini_figure({"T-learner": ([0, 1, 2], [0.0, 1.0, 1.5])})
    >>> [trace.name for trace in fig.data]
    ['T-learner', 'random']
    """
    if not curves:
        raise ValidationError("curves is empty; pass at least one named (x, y) curve.")
    fig = go.Figure()
    ends: list[tuple[float, float]] = []
    for name, (x, y) in curves.items():
        xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if xs.ndim != 1 or xs.shape != ys.shape or len(xs) == 0:
            raise ValidationError(
                f"curve {name!r} needs x and y of one equal, non-zero length; "
                f"got shapes {xs.shape} and {ys.shape}."
            )
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=str(name)))
        if (xs[-1], ys[-1]) not in ends:
            ends.append((float(xs[-1]), float(ys[-1])))
    if perfect is not None:
        px, py = (np.asarray(v, dtype=float) for v in perfect)
        fig.add_trace(
            go.Scatter(
                x=px, y=py, mode="lines", name="perfect", line={"dash": "dot", "color": "gray"}
            )
        )
    for n, (x_end, y_end) in enumerate(ends):
        fig.add_trace(
            go.Scatter(
                x=[0.0, x_end],
                y=[0.0, y_end],
                mode="lines",
                name="random" if len(ends) == 1 else f"random {n + 1}",
                line={"dash": "dash", "color": "black"},
            )
        )
    fig.update_layout(
        title=title, xaxis_title=x_title, yaxis_title=y_title, legend={"orientation": "h"}
    )
    return fig
