"""Baselines a need forecast must beat: seasonal-naive and LightGBM on lag features.

* :class:`SeasonalNaiveForecaster` — the spend of the same-length window just before the
  as-of date: the last 7 days for the 7-day horizon (one week back, weekly season) and the
  last 30 days for the 30-day horizon (one month back, the pay-cycle season).
* :class:`LightGBMNeedForecaster` — one gradient-boosted model per horizon and category group
  on aggregated lag features (spend per group over the last 7/30/``lookback`` days, days
  with spend and days since the last one; app activity per channel over the same windows;
  tenure; the as-of date's day of month), trained with the L1 objective because it is judged by
  MAE.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from qianmian.errors import invalid_parameter
from qianmian.models.forecast.base import (
    DayLike,
    NeedForecasterBase,
    Progress,
)
from qianmian.models.forecast.sequences import (
    APP_CHANNELS,
    CALENDAR_CHANNELS,
    GROUP_NAMES,
    DailyPanel,
    SequenceWindow,
    calendar_features,
)

__all__ = ["LightGBMNeedForecaster", "SeasonalNaiveForecaster", "lag_features"]


class SeasonalNaiveForecaster(NeedForecasterBase):
    """Spend over the next ``h`` days = spend over the ``h`` days before the as-of date.

    Parameters
    ----------
    horizons : tuple of int
        Forecast horizons in days.

    Examples
    --------
    >>> import numpy as np
    >>> from datetime import date
    >>> from qianmian.models.forecast.sequences import DailyPanel, GROUP_NAMES, APP_CHANNELS
    >>> spend = np.zeros((1, 40, len(GROUP_NAMES)), np.float32)
    >>> spend[0, 35, 0] = 100.0  # dining, 5 days before the as-of date
    >>> spend[0, 5, 0] = 50.0  # dining, 35 days before
    >>> panel = DailyPanel(date(2026, 1, 1), date(2026, 2, 10), np.array([1]),
    ...     np.array(["2025-01-01"], "datetime64[D]"), spend,
    ...     np.zeros((1, 40, len(APP_CHANNELS)), np.float32))
    >>> ids, f = SeasonalNaiveForecaster().fit_panel(panel, []).predict_panel(panel, "2026-02-10")
    >>> f[0, :, 0].tolist()
    [100.0, 100.0]
    """

    def __init__(self, horizons: tuple[int, ...] = (7, 30)) -> None:
        self.horizons = horizons

    @property
    def lookback_needed(self) -> int:
        return max(self._check_horizons())

    def fit_panel(
        self,
        panel: DailyPanel,
        origins: Sequence[DayLike],
        *,
        validation_origins: Sequence[DayLike] | None = None,
        progress: Progress | None = None,
    ) -> SeasonalNaiveForecaster:
        """Nothing to learn; checks the horizons and returns ``self``."""
        self.horizons_ = self._check_horizons()
        if progress is not None:
            progress(1, 1)
        return self

    def predict_panel(self, panel: DailyPanel, as_of: DayLike) -> tuple[np.ndarray, np.ndarray]:
        horizons = self._check_horizons()
        window = panel.inputs(as_of, max(horizons))
        values = np.stack([window.spend[:, -h:].sum(axis=1) for h in horizons], axis=1)
        return window.customer_id, values.astype(np.float64)


def lag_features(window: SequenceWindow) -> pd.DataFrame:
    """Aggregated lag features of one window, one row per customer.

    Spend per group over the last 7, 30 and all lookback days, the days with spend and the
    days since the last one; app activity per channel over the same windows; tenure; the
    as-of date's day of month.
    """
    lookback = window.spend.shape[1]
    spans = sorted({min(7, lookback), min(30, lookback), lookback})
    cols: dict[str, np.ndarray] = {}
    for k, g in enumerate(GROUP_NAMES):
        daily = window.spend[:, :, k]
        for s in spans:
            cols[f"spend_{g}_{s}d"] = daily[:, -s:].sum(axis=1)
        active = daily > 0
        cols[f"days_{g}"] = active.sum(axis=1).astype(np.float32)
        last = np.where(active.any(axis=1), lookback - 1 - np.argmax(active[:, ::-1], axis=1), -1)
        cols[f"since_{g}"] = np.where(last >= 0, lookback - last, lookback + 1).astype(np.float32)
    for k, c in enumerate(APP_CHANNELS):
        for s in spans:
            cols[f"app_{c}_{s}d"] = window.app[:, -s:, k].sum(axis=1)
    cols["tenure_days"] = window.tenure_days
    # The as-of day of month (pay cycle); its weekday is left out: training origins a week
    # apart all fall on one weekday.
    dom = calendar_features(window.as_of, 1)[0, CALENDAR_CHANNELS.index("day_of_month")]
    cols["as_of_day_of_month"] = np.full(window.n, dom, np.float32)
    return pd.DataFrame(cols)


class LightGBMNeedForecaster(NeedForecasterBase):
    """One LightGBM model (L1 objective) per horizon and category group, on lag features.

    Parameters
    ----------
    horizons : tuple of int
    lookback_days : int
        Longest lag window.
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM parameters.
    max_train_rows : int
        Training rows (customer × origin) are sampled down to this many.
    early_stopping_rounds : int
        Patience on the validation origins (when given).
    n_jobs : int
        LightGBM threads, 1 or 2. One by default: on a machine whose cores are already busy,
        OpenMP's spin-waiting made two threads ten times slower than one (measured).
    random_state : int
    """

    def __init__(
        self,
        horizons: tuple[int, ...] = (7, 30),
        *,
        lookback_days: int = 91,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        max_train_rows: int = 150_000,
        early_stopping_rounds: int = 30,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.horizons = horizons
        self.lookback_days = lookback_days
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.max_train_rows = max_train_rows
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    @property
    def lookback_needed(self) -> int:
        return int(self.lookback_days)

    def _check_params(self) -> None:
        for name in ("lookback_days", "n_estimators", "num_leaves", "min_child_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise invalid_parameter(self, name, "an int of at least 2", value)
        for name in ("max_train_rows", "early_stopping_rounds"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise invalid_parameter(self, name, "a positive int", value)
        if not isinstance(self.n_jobs, int) or not 1 <= self.n_jobs <= 2:
            raise invalid_parameter(self, "n_jobs", "1 or 2", self.n_jobs)
        if not 0 < self.learning_rate <= 1:
            raise invalid_parameter(self, "learning_rate", "a float in (0, 1]", self.learning_rate)

    def _rows(
        self,
        panel: DailyPanel,
        days: Sequence[DayLike],
        horizons: tuple[int, ...],
        max_rows: int | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Lag features and targets at each origin, sampled down to ``max_rows`` in all."""
        picks = [panel.rows_at(day) for day in days]
        total = sum(len(p) for p in picks)
        if max_rows is not None and total > max_rows:
            rng = np.random.default_rng(self.random_state)
            picks = [np.sort(rng.choice(p, round(len(p) * max_rows / total), False)) for p in picks]
        xs, ys = [], []
        for day, rows in zip(days, picks, strict=True):
            xs.append(lag_features(panel.inputs(day, self.lookback_days, rows)))
            ys.append(np.stack([panel.targets(day, h, rows) for h in horizons], axis=1))
        return pd.concat(xs, ignore_index=True), np.concatenate(ys)

    def fit_panel(
        self,
        panel: DailyPanel,
        origins: Sequence[DayLike],
        *,
        validation_origins: Sequence[DayLike] | None = None,
        progress: Progress | None = None,
    ) -> LightGBMNeedForecaster:
        self._check_params()
        horizons, train, val = self._origins(origins, validation_origins)
        x, y = self._rows(panel, train, horizons, self.max_train_rows)
        x_val, y_val = self._rows(panel, val, horizons) if val else (None, None)
        total = len(horizons) * len(GROUP_NAMES)
        self.models_: list[list[lgb.LGBMRegressor]] = []
        for i, _ in enumerate(horizons):
            row = []
            for k, _ in enumerate(GROUP_NAMES):
                model = lgb.LGBMRegressor(
                    objective="l1",
                    n_estimators=self.n_estimators,
                    learning_rate=self.learning_rate,
                    num_leaves=self.num_leaves,
                    min_child_samples=self.min_child_samples,
                    n_jobs=self.n_jobs,
                    random_state=self.random_state,
                    deterministic=True,
                    force_row_wise=True,
                    verbose=-1,
                )
                if x_val is not None and y_val is not None:
                    model.fit(
                        x,
                        np.ascontiguousarray(y[:, i, k]),
                        eval_X=(x_val,),
                        eval_y=(np.ascontiguousarray(y_val[:, i, k]),),
                        callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
                    )
                else:
                    model.fit(x, np.ascontiguousarray(y[:, i, k]))
                row.append(model)
                if progress is not None:
                    progress(i * len(GROUP_NAMES) + k + 1, total)
            self.models_.append(row)
        self.horizons_ = horizons
        self.feature_names_in_ = np.array(x.columns, dtype=object)
        return self

    def predict_panel(self, panel: DailyPanel, as_of: DayLike) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "models_"):
            raise NotFittedError("This LightGBMNeedForecaster is not fitted yet: call fit first.")
        window = panel.inputs(as_of, self.lookback_days)
        x = lag_features(window)
        values = np.stack(
            [np.stack([m.predict(x) for m in row], axis=1) for row in self.models_], axis=1
        )
        return window.customer_id, np.clip(values, 0.0, None)
