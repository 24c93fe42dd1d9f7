"""Need forecasting: each customer's spend per category group over the next 7 and 30 days.

A life event (a trip, a renovation, a baby, a car, a wedding) shows in the app — travel-deal
pages, searches for 装修贷 — weeks before it shows in spending; a sequence model over each
customer's daily spend and app activity can see the need coming.

* :mod:`~qianmian.models.forecast.sequences` — daily per-customer panels from the store,
  point in time (:func:`load_panel`, :func:`load_inputs`); the 13 category groups;
* :mod:`~qianmian.models.forecast.baselines` — :class:`SeasonalNaiveForecaster`,
  :class:`LightGBMNeedForecaster`;
* :mod:`~qianmian.models.forecast.lstm` — :class:`NeedForecaster` (PyTorch, CPU), with
  ``save`` / ``load``;
* :mod:`~qianmian.models.forecast.evaluate` — :func:`evaluate_need_forecast`: MAE against
  the baselines and the share of life events flagged before they show in spending.

Every forecaster has ``fit(store, origins, validation_origins=..., progress=...)`` and
``predict(store, as_of)`` returning one row per customer, category group and horizon
(``customer_id``, ``category``, ``horizon``, ``predicted_spend``).

Example (needs a generated bank, so it is not run as a doctest)::

    from qianmian.models.forecast import evaluate_need_forecast
    figures = evaluate_need_forecast(store, World(workspace))
    figures["mae"], figures["improvement_vs_seasonal_naive_pct"], figures["life_events"]
"""

from __future__ import annotations

from qianmian.models.forecast.base import FORECAST_COLUMNS, NeedForecasterBase
from qianmian.models.forecast.baselines import LightGBMNeedForecaster, SeasonalNaiveForecaster
from qianmian.models.forecast.evaluate import (
    EVENT_SPENDING,
    evaluate_need_forecast,
    life_event_detection,
    split_origins,
)
from qianmian.models.forecast.lstm import NeedForecaster
from qianmian.models.forecast.sequences import (
    APP_CHANNELS,
    CATEGORY_GROUPS,
    GROUP_NAMES,
    DailyPanel,
    SequenceWindow,
    load_inputs,
    load_panel,
)

__all__ = [
    "APP_CHANNELS",
    "CATEGORY_GROUPS",
    "EVENT_SPENDING",
    "FORECAST_COLUMNS",
    "GROUP_NAMES",
    "DailyPanel",
    "LightGBMNeedForecaster",
    "NeedForecaster",
    "NeedForecasterBase",
    "SeasonalNaiveForecaster",
    "SequenceWindow",
    "evaluate_need_forecast",
    "life_event_detection",
    "load_inputs",
    "load_panel",
    "split_origins",
]
