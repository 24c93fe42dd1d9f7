"""The LSTM need forecaster: predictions, determinism, persistence, parameters."""

from __future__ import annotations

import pickle
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from forecast_world import TEST_AS_OF, forecast_world, workspace_store
from sklearn.exceptions import NotFittedError

from qianmian.errors import ConfigError, NotFoundError
from qianmian.models.forecast import GROUP_NAMES, NeedForecaster, load_panel
from qianmian.models.forecast.evaluate import split_origins
from qianmian.world import World

SMALL = {"hidden_size": 16, "max_epochs": 2, "samples_per_epoch": 3_000, "batch_size": 256}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return forecast_world(tmp_path_factory)


@pytest.fixture(scope="module")
def panel(world: World):
    with workspace_store(world.workspace) as store:
        return load_panel(store, date(2025, 11, 1), date(2026, 11, 1))


@pytest.fixture(scope="module")
def split() -> tuple[list[date], date, date]:
    origins, val, test = split_origins(
        date(2025, 11, 1), date(2026, 11, 1), lookback_days=91, longest_horizon=30, step_days=28
    )
    return origins, val, test


@pytest.fixture(scope="module")
def model(panel, split) -> NeedForecaster:
    origins, val, _ = split
    return NeedForecaster(**SMALL).fit_panel(panel, origins, validation_origins=[val])


def test_forecasts_have_the_documented_shape(model: NeedForecaster, panel) -> None:
    ids, f = model.predict_panel(panel, TEST_AS_OF)
    assert f.shape == (len(ids), 2, len(GROUP_NAMES))
    assert np.isfinite(f).all() and (f >= 0).all()
    _, p, expected = model.need_panel(panel, TEST_AS_OF)
    assert ((p > 0) & (p < 1)).all()
    assert (expected >= 0).all()
    assert len(model.history_) == 2
    assert {"epoch", "train_loss", "val_score", "val_point", "val_mae"} <= set(model.history_[0])
    assert model.point_forecast_ in ("hurdle_median", "median_head")


def test_predict_from_the_store_reads_only_the_past(
    model: NeedForecaster, panel, world: World
) -> None:
    with workspace_store(world.workspace) as store:
        frame = model.predict(store, TEST_AS_OF)
    assert list(frame.columns) == [
        "customer_id",
        "category",
        "horizon",
        "predicted_spend",
        "spend_probability",
        "expected_spend",
    ]
    ids, f = model.predict_panel(panel, TEST_AS_OF)  # the panel also holds the future
    assert len(frame) == f.size
    wide = frame.set_index(["customer_id", "horizon", "category"])["predicted_spend"]
    for i, h in enumerate((7, 30)):
        got = wide.xs(h, level="horizon").unstack()[list(GROUP_NAMES)]
        np.testing.assert_allclose(got.loc[ids].to_numpy(), f[:, i], rtol=1e-6)


def test_same_seed_same_model(panel, split) -> None:
    origins, _, _ = split
    a = NeedForecaster(**SMALL, random_state=4).fit_panel(panel, origins[-2:])
    b = NeedForecaster(**SMALL, random_state=4).fit_panel(panel, origins[-2:])
    c = NeedForecaster(**SMALL, random_state=5).fit_panel(panel, origins[-2:])
    for key, value in a.net_.state_dict().items():
        assert torch.equal(value, b.net_.state_dict()[key])
    assert not all(torch.equal(v, c.net_.state_dict()[k]) for k, v in a.net_.state_dict().items())


def test_save_and_load_give_identical_forecasts(
    model: NeedForecaster, panel, tmp_path: Path
) -> None:
    folder = model.save(tmp_path / "need")
    assert (folder / "config.json").is_file() and (folder / "model.pt").is_file()
    loaded = NeedForecaster.load(folder)
    assert loaded.training_window_ == model.training_window_
    assert loaded.point_forecast_ == model.point_forecast_
    np.testing.assert_array_equal(
        loaded.predict_panel(panel, TEST_AS_OF)[1], model.predict_panel(panel, TEST_AS_OF)[1]
    )
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(
        copy.predict_panel(panel, TEST_AS_OF)[1], model.predict_panel(panel, TEST_AS_OF)[1]
    )


def test_loading_a_mismatched_model_is_an_error(model: NeedForecaster, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"config\.json and model\.pt"):
        NeedForecaster.load(tmp_path / "nothing")
    folder = model.save(tmp_path / "need")
    config = (folder / "config.json").read_text()
    (folder / "config.json").write_text(config.replace('"dining"', '"restaurants"'))
    with pytest.raises(ConfigError, match="other input channels"):
        NeedForecaster.load(folder)
    (folder / "config.json").write_text(config.replace("need_forecaster/1", "need_forecaster/0"))
    with pytest.raises(ConfigError, match="format"):
        NeedForecaster.load(folder)


def test_progress_reports_every_epoch(panel, split) -> None:
    origins, val, _ = split
    calls: list[tuple[int, int]] = []
    NeedForecaster(**{**SMALL, "max_epochs": 3}).fit_panel(
        panel, origins[-1:], validation_origins=[val], progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (3, 3)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_not_fitted(panel) -> None:
    with pytest.raises(NotFittedError):
        NeedForecaster().predict_panel(panel, TEST_AS_OF)
    with pytest.raises(NotFittedError):
        NeedForecaster().save("/nonexistent")


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"lookback_days": 90}, "lookback_days"),
        ({"step_days": 0}, "step_days"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"aux_weight": -1.0}, "aux_weight"),
        ({"learning_rate": 2.0}, "learning_rate"),
        ({"samples_per_epoch": 0}, "samples_per_epoch"),
        ({"num_threads": 3}, "num_threads"),
        ({"random_state": -1}, "random_state"),
        ({"horizons": (0,)}, "horizons"),
    ],
)
def test_bad_parameters(panel, split, params: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' parameter of NeedForecaster"):
        NeedForecaster(**params).fit_panel(panel, split[0][-1:])


def test_frames_are_pandas(model: NeedForecaster, world: World) -> None:
    with workspace_store(world.workspace) as store:
        frame = model.predict(store, TEST_AS_OF - timedelta(days=30))
    assert isinstance(frame, pd.DataFrame)
    assert frame["horizon"].unique().tolist() == [7, 30]


@pytest.mark.parametrize(
    ("logit", "mu", "expected"),
    [
        (-0.5, 8.0, 0.0),  # spend less likely than not: the median is zero
        (20.0, float(np.log1p(100.0)), 100.0),  # spend certain: the log-normal median
    ],
)
def test_hurdle_median(logit: float, mu: float, expected: float) -> None:
    from qianmian.models.forecast.lstm_net import median_spend

    out = np.array([[[0.0], [logit], [mu], [-3.0]]], np.float32)
    assert median_spend(out, "hurdle_median")[0, 0] == pytest.approx(expected, rel=1e-3)
    assert median_spend(out, "median_head")[0, 0] == 0.0
