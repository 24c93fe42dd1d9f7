"""Evaluating need forecasts: the time split, life-event detection, and the figures end to end."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from forecast_world import TEST_AS_OF, forecast_world, hand_panel, workspace_store

from qianmian.errors import ConfigError, ValidationError
from qianmian.models.forecast import (
    GROUP_NAMES,
    LightGBMNeedForecaster,
    NeedForecaster,
    evaluate_need_forecast,
    life_event_detection,
    split_origins,
)
from qianmian.models.forecast.evaluate import _life_events_frame
from qianmian.world import World


def test_split_origins_keeps_every_target_window_before_the_next_part() -> None:
    origins, val, test = split_origins(
        date(2025, 11, 1), date(2026, 11, 1), lookback_days=91, longest_horizon=30
    )
    assert test == date(2026, 10, 2)
    assert val == date(2026, 9, 2)
    assert origins[-1] == date(2026, 8, 3)
    assert origins[0] >= date(2025, 11, 1) + timedelta(days=91)
    assert origins[0] - timedelta(days=7) < date(2025, 11, 1) + timedelta(days=91)
    assert {(b - a).days for a, b in itertools.pairwise(origins)} == {7}
    assert max(origins) + timedelta(days=30) <= val
    assert val + timedelta(days=30) <= test


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"test_as_of": date(2026, 10, 5)}, "needs 30 days of data after it"),
        ({"lookback_days": 300}, "Not enough history"),
    ],
)
def test_split_origins_errors(kwargs: dict, pattern: str) -> None:
    params = {"lookback_days": 91, "longest_horizon": 30, **kwargs}
    with pytest.raises(ValidationError, match=pattern):
        split_origins(date(2025, 11, 1), date(2026, 11, 1), **params)


def test_life_event_detection_on_a_hand_made_case() -> None:
    # 40 days of lookback, 30 of horizon; as_of is day 40.
    start = date(2026, 1, 1)
    as_of = start + timedelta(days=40)
    panel = hand_panel(
        {
            (0, 50, "travel"): 3_000.0,  # customer 1: a trip booked inside the horizon ...
            (1, 10, "travel"): 2_000.0,  # customer 2: ... but this one already booked before
            (1, 55, "travel"): 2_000.0,
            (2, 45, "home"): 9_000.0,  # customer 3: renovation starts in the horizon
            (3, 60, "jewellery"): 500.0,  # customer 4: jewellery, wedding far away
        },
        customers=4,
        days=70,
        start=start,
    )
    day = np.datetime64(as_of, "D")
    events = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "event": ["travel", "travel", "renovation", "wedding"],
            "day": [day + 25, day + 20, day + 15, day + 300],
        }
    )
    travel, home = GROUP_NAMES.index("travel"), GROUP_NAMES.index("home")
    flags_travel = np.zeros((4, len(GROUP_NAMES)))
    flags_travel[0, travel] = 4_000.0
    flags_travel[2, home] = 0.0
    ids = panel.customer_id
    result = life_event_detection(
        events,
        panel,
        as_of,
        lookback_days=40,
        horizon=30,
        forecasts={"model": (ids, flags_travel), "nothing": (ids, np.zeros_like(flags_travel))},
        top_share=0.25,
    )
    assert result["eligible"] == {
        "travel": 1,
        "renovation": 1,
        "new_baby": 0,
        "car_purchase": 0,
        "wedding": 0,
    }
    assert result["detected"]["model"]["travel"] == 1.0
    assert result["detected"]["model"]["renovation"] == 0.0
    assert result["detected"]["model"]["all"] == 0.5
    assert np.isnan(result["detected"]["model"]["wedding"])
    assert result["detected"]["nothing"]["all"] == 0.0
    # 52 customer × group cells, one of which (customer 2's travel) has spend already.
    assert result["flagged_share"]["model"] == pytest.approx(1 / 51)
    assert result["lift"]["model"] == pytest.approx(0.5 * 51)
    assert np.isnan(result["lift"]["nothing"])
    with pytest.raises(ValidationError, match="not for the panel's customers"):
        life_event_detection(
            events,
            panel,
            as_of,
            lookback_days=40,
            horizon=30,
            forecasts={"model": (ids[::-1], flags_travel)},
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return forecast_world(tmp_path_factory)


def test_life_events_are_read_from_a_world_or_a_table(world: World) -> None:
    from_world = _life_events_frame(world)
    from_table = _life_events_frame(world.table("life_events").to_pandas())
    pd.testing.assert_frame_equal(from_world, from_table)
    assert set(from_world["event"]) <= {
        "travel",
        "renovation",
        "new_baby",
        "car_purchase",
        "wedding",
    }
    with pytest.raises(ConfigError, match="world_or_life_events"):
        _life_events_frame([1, 2, 3])
    with pytest.raises(ValidationError, match="lack column"):
        _life_events_frame(pd.DataFrame({"customer_id": [1]}))


@pytest.fixture(scope="module")
def figures(world: World) -> dict:
    calls: list[tuple[int, int]] = []
    with workspace_store(world.workspace) as store:
        result = evaluate_need_forecast(
            store,
            world,
            origin_step_days=14,
            lstm=NeedForecaster(hidden_size=32, max_epochs=4, samples_per_epoch=20_000),
            lightgbm=LightGBMNeedForecaster(n_estimators=80, max_train_rows=20_000),
            progress=lambda done, total: calls.append((done, total)),
        )
    result["_progress"] = calls
    return result


def test_figures_cover_every_model_and_horizon(figures: dict) -> None:
    assert figures["test_as_of"] == TEST_AS_OF.isoformat()
    assert figures["customers"] > 2_500
    for model in ("seasonal_naive", "lightgbm", "lstm", "zero"):
        assert set(figures["mae"][model]) == {"7d", "30d"}
        assert all(np.isfinite(v) and v > 0 for v in figures["mae"][model].values())
        assert set(figures["mae_by_category"][model]["30d"]) == set(GROUP_NAMES)
    assert set(figures["improvement_vs_seasonal_naive_pct"]) == {"lightgbm", "lstm", "zero"}
    val = date.fromisoformat(figures["validation_as_of"])
    assert max(date.fromisoformat(d) for d in figures["train_origins"]) + timedelta(30) <= val
    assert val + timedelta(days=30) <= TEST_AS_OF
    calls = figures["_progress"]
    assert calls[-1][0] == calls[-1][1] == 26 + 4
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_lstm_beats_seasonal_naive_by_at_least_15_percent(figures: dict) -> None:
    gain = figures["improvement_vs_seasonal_naive_pct"]["lstm"]
    assert gain["7d"] >= 15.0
    assert gain["30d"] >= 15.0


def test_life_events_seen_before_spending(figures: dict) -> None:
    events = figures["life_events"]
    assert sum(events["eligible"].values()) >= 10
    assert events["detected"]["seasonal_naive"]["all"] == 0.0
    assert events["flagged_share"]["seasonal_naive"] == 0.0
    for model in ("lightgbm", "lstm", "lstm_spend_probability"):
        assert events["flagged_share"][model] <= events["top_share"] + 0.01
    # Measured on this bank with these small models: LightGBM 36 %, the LSTM's need
    # probability 32 % (lift 3.2) of 22 events; the briefly trained LSTM's median flags none.
    assert events["detected"]["lightgbm"]["all"] > 0.15
    assert events["detected"]["lstm_spend_probability"]["all"] > 0.15
    assert events["lift"]["lstm_spend_probability"] > 1.5
