"""The need forecaster: a PyTorch LSTM over each customer's daily spend and app activity.

Inputs per day (``lookback_days`` days strictly before the as-of date): spend per category
group (``log1p``), app activity per channel (``log1p``: logins, views of need pages, searches
by topic) and the calendar (day of week, day of month). A strided 1-D convolution
reads the days ``step_days`` at a time (one step per week by default: a learned weekly
summary that keeps the recurrence short enough to train on a CPU in minutes), an LSTM reads
the steps, and a small network joins its last state with per-customer summaries of the
lookback to output, per horizon and group, the median spend (trained with L1 on ``log1p`` spend) and
a hurdle model of spend (probability and size, see :mod:`~qianmian.models.forecast.lstm_net`);
the point forecast is the median of the two with the lower validation MAE.

Training draws (customer, origin) pairs over several as-of dates; early stopping watches the
mean absolute error on validation origins, each horizon relative to its mean spend.

Example (needs a generated bank, so it is not run as a doctest)::

    model = NeedForecaster(max_epochs=8).fit(store, origins, validation_origins=[val])
    model.predict(store, "2026-10-02")  # customer_id, category, horizon, predicted_spend, ...
    model.save("models/need_forecast/v1")
    NeedForecaster.load("models/need_forecast/v1")
"""

from __future__ import annotations

import copy
import json
import logging
import platform
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from qianmian.errors import ConfigError, NotFoundError, invalid_parameter
from qianmian.models.forecast.base import (
    DayLike,
    NeedForecasterBase,
    Progress,
    forecast_frame,
)
from qianmian.models.forecast.sequences import (
    APP_CHANNELS,
    CALENDAR_CHANNELS,
    GROUP_NAMES,
    DailyPanel,
    load_panel,
    to_day,
)
from qianmian.store.base import Store

try:
    import torch
except ImportError as e:  # pragma: no cover - torch is a declared dependency of the models extra
    raise ImportError(
        "Need forecasting needs PyTorch: pip install 'qianmian[models]' (CPU wheels suffice)."
    ) from e

from qianmian.models.forecast.lstm_net import (
    POINT_FORECASTS,
    NeedNet,
    OriginSamples,
    hurdle_loss,
    hurdle_parts,
    median_spend,
    sequence_inputs,
    static_inputs,
)

__all__ = ["NeedForecaster"]

logger = logging.getLogger(__name__)

FORMAT = "qianmian.need_forecaster/1"
_PARAMS = (
    "lookback_days",
    "step_days",
    "hidden_size",
    "num_layers",
    "dropout",
    "aux_weight",
    "learning_rate",
    "batch_size",
    "max_epochs",
    "patience",
    "samples_per_epoch",
    "num_threads",
    "random_state",
)


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _schema() -> dict[str, list[str]]:
    return {
        "groups": list(GROUP_NAMES),
        "app_channels": list(APP_CHANNELS),
        "calendar": list(CALENDAR_CHANNELS),
    }


class NeedForecaster(NeedForecasterBase):
    """Per-customer spend by category group over the next 7 and 30 days, from daily sequences.

    Parameters
    ----------
    horizons : tuple of int
        Forecast horizons in days.
    lookback_days : int
        Days of history read before each as-of date; a multiple of ``step_days``.
    step_days : int
        Days per recurrent step (the convolution's stride); 1 runs the LSTM over every day.
    hidden_size, num_layers, dropout : network size.
    aux_weight : float
        Weight of the hurdle heads' likelihood beside the median head's L1 loss (0 turns the
        hurdle heads off; their outputs are then untrained).
    learning_rate, batch_size : Adam's step and the minibatch size.
    max_epochs, patience : training length; stop after ``patience`` epochs without a better
        validation error (when validation origins are given).
    samples_per_epoch : int or None
        (customer, origin) pairs drawn per epoch; None uses all of them.
    num_threads : int
        Torch CPU threads during fit and predict, 1 or 2 (one by default: on a machine whose
        cores are already busy, two threads were measured several times slower than one).
    random_state : int
        Same data and seed → the same model, bit for bit.

    Attributes
    ----------
    net_ : torch.nn.Module
    point_forecast_ : str
        ``"hurdle_median"`` or ``"median_head"``: the median with the lower validation MAE
        (without validation origins: the hurdle median, unless ``aux_weight`` is 0).
    history_ : list of dict
        Per epoch: training loss, validation score, the better point forecast and the MAE per
        horizon of each.
    training_window_ : dict
        Training and validation origins and the days of data read.
    """

    def __init__(
        self,
        horizons: tuple[int, ...] = (7, 30),
        *,
        lookback_days: int = 91,
        step_days: int = 7,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.1,
        aux_weight: float = 0.5,
        learning_rate: float = 3e-3,
        batch_size: int = 512,
        max_epochs: int = 12,
        patience: int = 3,
        samples_per_epoch: int | None = 100_000,
        num_threads: int = 1,
        random_state: int = 0,
    ) -> None:
        self.horizons = horizons
        self.lookback_days = lookback_days
        self.step_days = step_days
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.aux_weight = aux_weight
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.samples_per_epoch = samples_per_epoch
        self.num_threads = num_threads
        self.random_state = random_state

    @property
    def lookback_needed(self) -> int:
        return int(self.lookback_days)

    def _check_params(self) -> None:
        self._check_horizons()
        for name in ("step_days", "hidden_size", "num_layers", "batch_size", "max_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise invalid_parameter(self, name, "a positive int", value)
        if not isinstance(self.patience, int) or self.patience < 0:
            raise invalid_parameter(self, "patience", "a non-negative int", self.patience)
        lb = self.lookback_days
        if not isinstance(lb, int) or lb < self.step_days or lb % self.step_days:
            raise invalid_parameter(
                self, "lookback_days", f"a positive multiple of step_days ({self.step_days})", lb
            )
        if not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise invalid_parameter(self, "dropout", "a float in [0, 1)", self.dropout)
        if not isinstance(self.aux_weight, int | float) or self.aux_weight < 0:
            raise invalid_parameter(self, "aux_weight", "a non-negative float", self.aux_weight)
        if not isinstance(self.learning_rate, int | float) or not 0 < self.learning_rate < 1:
            raise invalid_parameter(self, "learning_rate", "a float in (0, 1)", self.learning_rate)
        spe = self.samples_per_epoch
        if spe is not None and (not isinstance(spe, int) or spe < 1):
            raise invalid_parameter(self, "samples_per_epoch", "a positive int or None", spe)
        if self.num_threads not in (1, 2):
            raise invalid_parameter(self, "num_threads", "1 or 2", self.num_threads)
        if not isinstance(self.random_state, int) or self.random_state < 0:
            raise invalid_parameter(self, "random_state", "a non-negative int", self.random_state)

    def _new_net(self) -> NeedNet:
        cells = len(self._check_horizons()) * len(GROUP_NAMES)
        return NeedNet(
            self.hidden_size, self.num_layers, float(self.dropout), self.step_days, cells
        )

    # -- training ------------------------------------------------------------------------------

    def fit_panel(
        self,
        panel: DailyPanel,
        origins: Sequence[DayLike],
        *,
        validation_origins: Sequence[DayLike] | None = None,
        progress: Progress | None = None,
    ) -> NeedForecaster:
        self._check_params()
        horizons, train_days, val_days = self._origins(origins, validation_origins)
        train = OriginSamples(panel, train_days, self.lookback_days, horizons)
        val = OriginSamples(panel, val_days, self.lookback_days, horizons) if val_days else None
        rng = np.random.default_rng(self.random_state)
        per_epoch = min(self.samples_per_epoch or train.size, train.size)
        history: list[dict[str, Any]] = []
        with _threads(self.num_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            net = self._new_net()
            sample = rng.choice(train.size, min(train.size, 5_000), replace=False)
            seq, static, _ = train.batch(np.sort(sample))
            net.set_scaling(seq, static)
            opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
            best, best_state, stale = np.inf, copy.deepcopy(net.state_dict()), 0
            best_point = "hurdle_median" if self.aux_weight > 0 else "median_head"
            for epoch in range(1, self.max_epochs + 1):
                net.train()
                picks = rng.choice(train.size, per_epoch, replace=False)
                total = 0.0
                for lo in range(0, per_epoch, self.batch_size):
                    seq, static, target = train.batch(picks[lo : lo + self.batch_size])
                    out = net(torch.from_numpy(seq), torch.from_numpy(static))
                    loss = hurdle_loss(out, torch.from_numpy(target), float(self.aux_weight))
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(target)
                record: dict[str, Any] = {"epoch": epoch, "train_loss": total / per_epoch}
                if val is not None:
                    score, point, maes = _validate(net, val, len(horizons))
                    record.update({"val_score": score, "val_point": point, "val_mae": maes})
                    if score < best:
                        best, best_state, stale = score, copy.deepcopy(net.state_dict()), 0
                        best_point = point
                    else:
                        stale += 1
                else:
                    best_state = copy.deepcopy(net.state_dict())
                history.append(record)
                logger.debug("Need forecaster epoch %d: %s", epoch, record)
                if progress is not None:
                    progress(epoch, self.max_epochs)
                if val is not None and stale > self.patience:
                    break
            net.load_state_dict(best_state)
        net.eval()
        self.net_ = net
        self.horizons_ = horizons
        self.point_forecast_ = best_point
        self.history_ = history
        self.training_window_ = {
            "origins": [d.isoformat() for d in train_days],
            "validation_origins": [d.isoformat() for d in val_days],
            "data_from": panel.start.isoformat(),
            "data_to": panel.end.isoformat(),
        }
        if progress is not None and len(history) < self.max_epochs:
            progress(self.max_epochs, self.max_epochs)
        return self

    # -- prediction ----------------------------------------------------------------------------

    def _raw(self, panel: DailyPanel, as_of: DayLike) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "net_"):
            raise NotFittedError("This NeedForecaster is not fitted yet: call fit first.")
        window = panel.inputs(as_of, self.lookback_days)
        static = static_inputs(window.spend, window.app, window.tenure_days, window.as_of)
        outs = []
        with _threads(self.num_threads), torch.no_grad():
            self.net_.eval()
            for lo in range(0, window.n, 4096):
                sl = slice(lo, lo + 4096)
                seq = sequence_inputs(window.spend[sl], window.app[sl], window.calendar)
                outs.append(self.net_(torch.from_numpy(seq), torch.from_numpy(static[sl])).numpy())
        cells = len(self.horizons_) * len(GROUP_NAMES)
        out = np.concatenate(outs) if outs else np.zeros((0, 4, cells), np.float32)
        return window.customer_id, out

    def predict_panel(self, panel: DailyPanel, as_of: DayLike) -> tuple[np.ndarray, np.ndarray]:
        """Median spend forecasts, shape (n, horizons, groups)."""
        ids, out = self._raw(panel, as_of)
        point = median_spend(out, self.point_forecast_)
        return ids, point.reshape(len(ids), len(self.horizons_), -1)

    def need_panel(
        self, panel: DailyPanel, as_of: DayLike
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(customer_id, probability of any spend, expected spend), each (n, horizons, groups)."""
        ids, out = self._raw(panel, as_of)
        p, expected = hurdle_parts(out)
        shape = (len(ids), len(self.horizons_), -1)
        return ids, p.reshape(shape), expected.reshape(shape)

    def predict(self, store: Store, as_of: DayLike) -> pd.DataFrame:
        """Forecasts as of ``as_of`` from data strictly before it.

        Returns
        -------
        DataFrame
            ``customer_id``, ``category`` (group slug), ``horizon`` (days),
            ``predicted_spend`` (median, CNY: the MAE-optimal forecast),
            ``spend_probability`` and ``expected_spend`` (CNY: the size of the need).
        """
        day = to_day(as_of)
        panel = load_panel(store, day - timedelta(days=self.lookback_days), day)
        ids, out = self._raw(panel, day)
        shape = (len(ids), len(self.horizons_), -1)
        point = median_spend(out, self.point_forecast_).reshape(shape)
        frame = forecast_frame(ids, point, self.horizons_)
        p, expected = hurdle_parts(out)
        frame["spend_probability"] = p.reshape(-1)
        frame["expected_spend"] = expected.reshape(-1)
        return frame

    # -- persistence ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` (parameters, schema, provenance, history) and ``model.pt``."""
        if not hasattr(self, "net_"):
            raise NotFittedError("This NeedForecaster is not fitted yet: call fit first.")
        from qianmian import __version__

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "params": {"horizons": list(self.horizons_), **{k: getattr(self, k) for k in _PARAMS}},
            "schema": _schema(),
            "training_window": self.training_window_,
            "point_forecast": self.point_forecast_,
            "history": self.history_,
            "provenance": {
                "qianmian": __version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
        torch.save(self.net_.state_dict(), folder / "model.pt")
        return folder

    @classmethod
    def load(cls, path: str | Path) -> NeedForecaster:
        """Read a model written by :meth:`save`; a mismatched format or schema is a ConfigError."""
        folder = Path(path)
        config_file, weights = folder / "config.json", folder / "model.pt"
        if not config_file.is_file() or not weights.is_file():
            raise NotFoundError(
                f"No need forecaster in {folder}: config.json and model.pt are expected there."
            )
        config = json.loads(config_file.read_text())
        if config.get("format") != FORMAT:
            raise ConfigError(
                f"{config_file} has format {config.get('format')!r}, not {FORMAT!r}: it was not "
                "written by this version's NeedForecaster.save. Retrain the model."
            )
        if config.get("schema") != _schema():
            raise ConfigError(
                f"The need forecaster in {folder} was trained on other input channels "
                f"({config.get('schema')}) than this version reads ({_schema()}). Retrain it."
            )
        params = dict(config["params"])
        params["horizons"] = tuple(params["horizons"])
        model = cls(**params)
        model._check_params()
        net = model._new_net()
        net.load_state_dict(torch.load(weights, weights_only=True))
        net.eval()
        model.net_ = net
        model.horizons_ = model._check_horizons()
        model.point_forecast_ = config["point_forecast"]
        model.history_ = config["history"]
        model.training_window_ = config["training_window"]
        return model


def _validate(net: NeedNet, val: OriginSamples, n_horizons: int) -> tuple[float, str, dict]:
    """(score, better point forecast, MAE per horizon of each): the score is the MAE of each
    horizon relative to its mean spend, averaged over horizons, of the better point forecast."""
    out = _outputs(net, val)
    y = np.concatenate(val.targets).reshape(val.size, n_horizons, -1)
    scale = np.maximum(np.abs(y).mean(axis=(0, 2)), 1e-9)
    maes, scores = {}, {}
    for point in POINT_FORECASTS:
        pred = median_spend(out, point).reshape(y.shape)
        mae = np.abs(pred - y).mean(axis=(0, 2))
        maes[point] = mae.tolist()
        scores[point] = float((mae / scale).mean())
    best = min(scores, key=lambda k: scores[k])
    return scores[best], best, maes


def _outputs(net: NeedNet, samples: OriginSamples) -> np.ndarray:
    """Raw network outputs for every sample, shape (n, 4, cells), in eval mode."""
    net.eval()
    outs = []
    with torch.no_grad():
        for lo in range(0, samples.size, 4096):
            seq, static, _ = samples.batch(np.arange(lo, min(lo + 4096, samples.size)))
            outs.append(net(torch.from_numpy(seq), torch.from_numpy(static)).numpy())
    return np.concatenate(outs)
