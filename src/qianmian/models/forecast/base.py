"""What every need forecaster shares: the fit/predict contract over the store and a panel.

A forecaster learns from, and predicts on, a :class:`~qianmian.models.forecast.sequences.DailyPanel`
(``fit_panel`` / ``predict_panel``); :meth:`NeedForecasterBase.fit` and
:meth:`NeedForecasterBase.predict` load the right panel from the store first, so that a
prediction as of a date reads nothing on or after it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from qianmian.errors import ValidationError, invalid_parameter
from qianmian.models.forecast.sequences import GROUP_NAMES, DailyPanel, load_panel, to_day
from qianmian.store.base import Store

__all__ = [
    "FORECAST_COLUMNS",
    "NeedForecasterBase",
    "check_origins",
    "forecast_frame",
    "split_check",
]

FORECAST_COLUMNS = ("customer_id", "category", "horizon", "predicted_spend")

Progress = Callable[[int, int], None]
DayLike = date | datetime | str


def forecast_frame(
    customer_id: np.ndarray, values: np.ndarray, horizons: Sequence[int]
) -> pd.DataFrame:
    """Long table (customer_id, category, horizon, predicted_spend) from an (n, H, G) array."""
    n, n_h, n_g = values.shape
    return pd.DataFrame(
        {
            "customer_id": np.repeat(customer_id, n_h * n_g),
            "category": np.tile(np.array(GROUP_NAMES, dtype=object), n * n_h),
            "horizon": np.tile(np.repeat(np.asarray(horizons, np.int64), n_g), n),
            "predicted_spend": values.reshape(-1).astype(np.float64),
        }
    )


def check_origins(owner: object, name: str, origins: Sequence[DayLike] | None) -> list[date]:
    """Sorted, distinct origin days; a clear error for an empty or malformed list."""
    if origins is None or isinstance(origins, str | date) or len(origins) == 0:
        raise invalid_parameter(owner, name, "a non-empty list of dates", origins)
    return sorted({to_day(o, name) for o in origins})


class NeedForecasterBase(ABC):
    """Forecasts each customer's spend per category group over the next ``horizons`` days."""

    horizons: tuple[int, ...]

    @property
    @abstractmethod
    def lookback_needed(self) -> int:
        """Days of history before an as-of date that a prediction reads."""

    @abstractmethod
    def fit_panel(
        self,
        panel: DailyPanel,
        origins: Sequence[DayLike],
        *,
        validation_origins: Sequence[DayLike] | None = None,
        progress: Progress | None = None,
    ) -> NeedForecasterBase:
        """Learn from the panel at the given forecast origins."""

    @abstractmethod
    def predict_panel(self, panel: DailyPanel, as_of: DayLike) -> tuple[np.ndarray, np.ndarray]:
        """(customer_id of shape (n,), forecasts of shape (n, len(horizons), groups))."""

    def _check_horizons(self) -> tuple[int, ...]:
        h = self.horizons
        if (
            not isinstance(h, tuple | list)
            or not h
            or not all(isinstance(x, int) and x >= 1 for x in h)
            or len(set(h)) != len(h)
        ):
            raise invalid_parameter(self, "horizons", "a tuple of distinct positive ints", h)
        return tuple(int(x) for x in h)

    def _origins(
        self, origins: Sequence[DayLike], validation_origins: Sequence[DayLike] | None
    ) -> tuple[tuple[int, ...], list[date], list[date]]:
        """Checked horizons, training and validation days (targets end before validation)."""
        horizons = self._check_horizons()
        train = check_origins(self, "origins", origins)
        val = (
            check_origins(self, "validation_origins", validation_origins)
            if validation_origins
            else []
        )
        split_check(train, val, max(horizons))
        return horizons, train, val

    def fit(
        self,
        store: Store,
        origins: Sequence[DayLike],
        *,
        validation_origins: Sequence[DayLike] | None = None,
        progress: Progress | None = None,
    ) -> NeedForecasterBase:
        """Fit on forecast origins (and validate on later ones) read from the store.

        Parameters
        ----------
        store : Store
        origins : list of date
            Training as-of dates; each needs ``lookback`` days of history before it and its
            longest horizon of data after it.
        validation_origins : list of date, optional
            For early stopping; must all come after every training target window.
        progress : callable(done, total), optional
        """
        days = check_origins(self, "origins", origins)
        val = (
            check_origins(self, "validation_origins", validation_origins)
            if validation_origins is not None
            else []
        )
        longest = max(self._check_horizons())
        start = min(days) - timedelta(days=self.lookback_needed)
        end = max(days + val) + timedelta(days=longest)
        panel = load_panel(store, start, end)
        return self.fit_panel(panel, days, validation_origins=val or None, progress=progress)

    def predict(self, store: Store, as_of: DayLike) -> pd.DataFrame:
        """Forecasts as of ``as_of`` from data strictly before it.

        Returns
        -------
        DataFrame
            One row per customer (signed up before ``as_of``), category group and horizon:
            ``customer_id``, ``category`` (group slug), ``horizon`` (days),
            ``predicted_spend`` (CNY).
        """
        day = to_day(as_of)
        panel = load_panel(store, day - timedelta(days=self.lookback_needed), day)
        ids, values = self.predict_panel(panel, day)
        return forecast_frame(ids, values, self._check_horizons())


def split_check(train: list[date], val: list[date], longest: int) -> None:
    """Training targets must end before the first validation origin."""
    if val and max(train) + timedelta(days=longest) > min(val):
        raise ValidationError(
            f"The training origin {max(train)} has a {longest}-day target window that reaches "
            f"past the first validation origin {min(val)}. Use earlier training origins."
        )
