"""The need-forecast baselines on hand-made panels: seasonal-naive and LightGBM."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from forecast_world import hand_panel
from sklearn.exceptions import NotFittedError

from qianmian.errors import ConfigError, ValidationError
from qianmian.models.forecast.base import FORECAST_COLUMNS, forecast_frame
from qianmian.models.forecast.baselines import (
    LightGBMNeedForecaster,
    SeasonalNaiveForecaster,
    lag_features,
)
from qianmian.models.forecast.sequences import APP_CHANNELS, GROUP_NAMES, DailyPanel

START = date(2026, 1, 1)
AS_OF = START + timedelta(days=40)  # the panel's end


def test_seasonal_naive_repeats_the_window_just_before() -> None:
    panel = hand_panel(
        {
            (0, 39, "dining"): 10.0,  # yesterday
            (0, 33, "dining"): 20.0,  # 7 days before: inside both windows
            (0, 32, "dining"): 40.0,  # 8 days before: only in the 30-day window
            (0, 10, "dining"): 80.0,  # 30 days before: inside
            (0, 9, "dining"): 160.0,  # 31 days before: outside
            (1, 20, "travel"): 5_000.0,
        }
    )
    ids, f = SeasonalNaiveForecaster((7, 30)).fit_panel(panel, []).predict_panel(panel, AS_OF)
    assert ids.tolist() == [1, 2]
    assert f.shape == (2, 2, 13)
    assert f[0, :, 0].tolist() == [30.0, 150.0]
    assert f[1, :, GROUP_NAMES.index("travel")].tolist() == [0.0, 5_000.0]
    assert f.sum() == 30 + 150 + 5_000


def test_forecast_frame_is_long_and_ordered() -> None:
    values = np.arange(2 * 2 * 13, dtype=float).reshape(2, 2, 13)
    frame = forecast_frame(np.array([7, 9]), values, (7, 30))
    assert tuple(frame.columns) == FORECAST_COLUMNS
    assert len(frame) == 52
    row = frame[(frame.customer_id == 9) & (frame.horizon == 30) & (frame.category == "travel")]
    assert row.predicted_spend.item() == values[1, 1, 4]


def test_lag_features_on_a_hand_made_window() -> None:
    panel = hand_panel({(0, 39, "dining"): 10.0, (0, 20, "dining"): 5.0, (1, 0, "baby"): 3.0})
    panel.app[1, 38, APP_CHANNELS.index("page_baby_deals")] = 2
    x = lag_features(panel.inputs(AS_OF, 40))
    assert x.loc[0, "spend_dining_7d"] == 10.0
    assert x.loc[0, "spend_dining_30d"] == 15.0
    assert x.loc[0, "days_dining"] == 2
    assert x.loc[0, "since_dining"] == 1  # yesterday
    assert x.loc[1, "since_baby"] == 40
    assert x.loc[0, "since_travel"] == 41  # never within the lookback
    assert x.loc[1, "app_page_baby_deals_7d"] == 2
    assert x.loc[1, "spend_baby_40d"] == 3.0 and x.loc[1, "spend_baby_30d"] == 0.0


def _steady_panel(customers: int = 400, days: int = 120) -> tuple[DailyPanel, np.ndarray]:
    """Everyone spends the same amount on dining every day (a different amount each)."""
    rng = np.random.default_rng(3)
    daily = rng.uniform(10, 100, customers).astype(np.float32)
    panel = hand_panel({}, customers=customers, days=days, start=START)
    panel.spend[:, :, 0] = daily[:, None]
    return panel, daily


def test_lightgbm_learns_a_steady_spender() -> None:
    panel, daily = _steady_panel()
    origins = [START + timedelta(days=d) for d in range(40, 60, 5)]
    model = LightGBMNeedForecaster(
        (7, 30), lookback_days=30, n_estimators=60, min_child_samples=10
    ).fit_panel(panel, origins, validation_origins=[START + timedelta(days=90)])
    _, f = model.predict_panel(panel, START + timedelta(days=90))
    assert f.shape == (400, 2, 13)
    for i, days in enumerate((7, 30)):
        truth = days * daily
        assert np.median(np.abs(f[:, i, 0] / truth - 1)) < 0.02
        assert np.abs(f[:, i, 0] - truth).sum() / truth.sum() < 0.03
    assert np.abs(f[:, :, 1:]).max() < 1e-6
    assert len(model.models_) == 2 and len(model.models_[0]) == 13


def test_lightgbm_refuses_training_targets_that_reach_validation() -> None:
    panel, _ = _steady_panel()
    model = LightGBMNeedForecaster(lookback_days=30, n_estimators=5)
    with pytest.raises(ValidationError, match="past the first validation origin"):
        model.fit_panel(
            panel,
            [START + timedelta(days=70)],
            validation_origins=[START + timedelta(days=80)],
        )


def test_lightgbm_not_fitted() -> None:
    panel, _ = _steady_panel()
    with pytest.raises(NotFittedError):
        LightGBMNeedForecaster().predict_panel(panel, START + timedelta(days=100))


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"n_jobs": 4}, "n_jobs"),
        ({"lookback_days": 1}, "lookback_days"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"max_train_rows": 0}, "max_train_rows"),
        ({"horizons": (7, 7)}, "horizons"),
        ({"horizons": ()}, "horizons"),
    ],
)
def test_lightgbm_bad_parameters(params: dict, name: str) -> None:
    panel, _ = _steady_panel()
    with pytest.raises(ConfigError, match=f"'{name}' parameter of LightGBMNeedForecaster"):
        LightGBMNeedForecaster(**params).fit_panel(panel, [START + timedelta(days=40)])


def test_origins_must_be_a_list_of_dates() -> None:
    panel, _ = _steady_panel()
    with pytest.raises(ConfigError, match="'origins' parameter"):
        LightGBMNeedForecaster(lookback_days=30).fit_panel(panel, [])
    with pytest.raises(ValidationError, match="not a date"):
        LightGBMNeedForecaster(lookback_days=30).fit_panel(panel, ["soon"])
