"""Uplift modelling: who buys *because* of an offer, and how well a model finds them.

* :mod:`~qianmian.models.uplift.learners` — :class:`SLearner`, :class:`TLearner`,
  :class:`XLearner`, :class:`DRLearner` over any scikit-learn-like learner (LightGBM by default),
  one or several offers against a control group;
* :mod:`~qianmian.models.uplift.metrics` — Qini and uplift curves, Qini coefficient, AUUC,
  uplift at k;
* :mod:`~qianmian.models.uplift.charts` — the Qini chart (Plotly).
"""

from __future__ import annotations

from qianmian.models.uplift.charts import qini_figure
from qianmian.models.uplift.learners import (
    LGBM_DEFAULTS,
    DRLearner,
    SLearner,
    TLearner,
    XLearner,
    default_learner,
    default_propensity_learner,
)
from qianmian.models.uplift.metrics import (
    arm_vs_control,
    auuc,
    perfect_qini_curve,
    perfect_uplift_curve,
    qini_auc,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
    uplift_curve,
)

__all__ = [
    "LGBM_DEFAULTS",
    "DRLearner",
    "SLearner",
    "TLearner",
    "XLearner",
    "arm_vs_control",
    "auuc",
    "default_learner",
    "default_propensity_learner",
    "perfect_qini_curve",
    "perfect_uplift_curve",
    "qini_auc",
    "qini_coefficient",
    "qini_curve",
    "qini_figure",
    "uplift_at_k",
    "uplift_curve",
]
