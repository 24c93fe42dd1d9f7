"""How good the need forecast is: MAE against the baselines, and life events seen early.

:func:`evaluate_need_forecast` splits the store's history by time — training origins every
``origin_step_days``, one validation origin, one test origin, each origin's target window
ending before the next part begins — fits the seasonal-naive, LightGBM and LSTM forecasters
and reports on the test origin:

* **MAE** per model and horizon, over every (customer, category group) cell, overall and per
  group, and each model's improvement over seasonal-naive (a zero forecast is reported beside
  them: with sparse, lumpy spend it is a strong MAE reference, and a model that merely beats
  seasonal-naive may only be predicting zero);
* **life events detected before they show in spending**, from the simulated bank's hidden
  ``life_events``: an event counts when the window in which it drives spending in its group
  (:data:`EVENT_SPENDING`) overlaps the 30-day horizon, the customer had no spend in that group
  during the lookback, and does spend in it within the horizon. The event is detected by a model
  when the model's 30-day forecast for that customer and group is positive and in the model's
  top ``top_share`` (10 %) of forecasts for the group among the customers with no spend in it
  yet (an equal budget of flags per model; ``lift`` says how much better than random flags
  that is). Seasonal-naive cannot detect any by construction (it repeats the empty lookback);
  it is listed for completeness.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from qianmian.errors import ValidationError, invalid_parameter
from qianmian.models.forecast.base import Progress, check_origins
from qianmian.models.forecast.baselines import LightGBMNeedForecaster, SeasonalNaiveForecaster
from qianmian.models.forecast.lstm import NeedForecaster
from qianmian.models.forecast.sequences import GROUP_NAMES, DailyPanel, load_panel, to_day
from qianmian.store.base import Store

__all__ = ["EVENT_SPENDING", "evaluate_need_forecast", "life_event_detection", "split_origins"]

# Life event → (category group, first and last day, relative to the event day, of the spending
# it drives there). Restates the simulated bank's assumptions (docs/world.md, world/spending.py):
# bookings from 35 days before a trip; works from 20 days before a renovation starts; baby goods
# from 100 days before a birth; the car bought on the day and serviced for 40 days; the ring
# 100 to 20 days before a wedding.
EVENT_SPENDING: dict[str, tuple[str, int, int]] = {
    "travel": ("travel", -35, 0),
    "renovation": ("home", -20, 100),
    "new_baby": ("baby", -100, 180),
    "car_purchase": ("auto", 0, 40),
    "wedding": ("jewellery", -100, -20),
}
_MODELS = ("seasonal_naive", "lightgbm", "lstm")


def split_origins(
    data_start: date,
    data_end: date,
    *,
    lookback_days: int,
    longest_horizon: int,
    step_days: int = 7,
    test_as_of: date | None = None,
) -> tuple[list[date], date, date]:
    """(training origins, validation origin, test origin) for data in ``[data_start, data_end)``.

    The test origin is the last day whose longest horizon fits in the data (unless given); the
    validation origin is one horizon earlier; training origins go back every ``step_days`` from
    one horizon before validation, as far as a full lookback allows. No training target window
    reaches the validation origin and no validation target window reaches the test origin.
    """
    test = test_as_of or data_end - timedelta(days=longest_horizon)
    if test + timedelta(days=longest_horizon) > data_end:
        raise ValidationError(
            f"test_as_of {test} needs {longest_horizon} days of data after it, but the data end "
            f"on {data_end - timedelta(days=1)}. Choose a test_as_of by "
            f"{data_end - timedelta(days=longest_horizon)}."
        )
    val = test - timedelta(days=longest_horizon)
    last = val - timedelta(days=longest_horizon)
    first = data_start + timedelta(days=lookback_days)
    if last < first:
        raise ValidationError(
            f"Not enough history to train: the data run from {data_start} to {data_end}, and "
            f"training needs {lookback_days} days of lookback before, and two "
            f"{longest_horizon}-day windows after, the training origins. Use more history."
        )
    origins = []
    day = last
    while day >= first:
        origins.append(day)
        day -= timedelta(days=step_days)
    return sorted(origins), val, test


def _life_events_frame(world_or_life_events: Any) -> pd.DataFrame:
    from qianmian.world import World
    from qianmian.world.life_events import EVENT_TYPES

    data = world_or_life_events
    if isinstance(data, World):
        data = data.table("life_events", ["customer_id", "event_type", "day"])
    if isinstance(data, pa.Table):
        data = data.to_pandas()
    if not isinstance(data, pd.DataFrame):
        raise invalid_parameter(
            "evaluate_need_forecast",
            "world_or_life_events",
            "a World, or the life_events table as Arrow or pandas",
            type(data).__name__,
        )
    missing = {"customer_id", "event_type", "day"} - set(data.columns)
    if missing:
        raise ValidationError(
            f"The life events lack column(s) {', '.join(sorted(missing))}; they need "
            "customer_id, event_type (a code or a name) and day."
        )
    kind = data["event_type"]
    if pd.api.types.is_integer_dtype(kind):
        kind = kind.map(dict(enumerate(EVENT_TYPES)))
    return pd.DataFrame(
        {
            "customer_id": data["customer_id"].to_numpy(np.int64),
            "event": kind.astype(str).to_numpy(),
            "day": pd.to_datetime(data["day"]).to_numpy().astype("datetime64[D]"),
        }
    )


def life_event_detection(
    life_events: pd.DataFrame,
    panel: DailyPanel,
    as_of: date,
    *,
    lookback_days: int,
    horizon: int,
    forecasts: dict[str, tuple[np.ndarray, np.ndarray]],
    top_share: float = 0.1,
) -> dict[str, Any]:
    """Share of life events each model flags before they show in spending.

    For each category group, the customers with no spend in it during the lookback are the ones
    whose need has not shown yet; among them a model flags the top ``top_share`` by its
    forecast (ties included, zero forecasts never). Every model thus gets the same budget of
    flags, and a model that forecasts zero for most of them flags fewer.

    Parameters
    ----------
    life_events : DataFrame
        ``customer_id``, ``event`` (name from ``EVENT_SPENDING``), ``day``.
    panel : DailyPanel
        Covers ``[as_of - lookback_days, as_of + horizon)``.
    forecasts : dict
        Model name → (customer_id, forecasts of shape (n, groups)) for ``horizon``.
    top_share : float
        Share of not-yet-spending customers a model may flag per group.

    Returns
    -------
    dict
        ``eligible`` (events per type), ``detected`` (model → type → share, and ``all``),
        ``flagged_share`` (model → share of not-yet-spending customer × group cells flagged)
        and ``lift`` (model → detected ``all`` / ``flagged_share``: how much better than
        flagging at random).
    """
    rows = panel.rows_at(as_of)
    ids = panel.customer_id[rows]
    t = panel.day_index(as_of)
    quiet = panel.spend[rows, t - lookback_days : t].sum(axis=1) == 0
    after = panel.targets(as_of, horizon, rows)
    start, stop = np.datetime64(as_of, "D"), np.datetime64(as_of, "D") + horizon
    picked = []
    for event, (group, lo, hi) in EVENT_SPENDING.items():
        ev = life_events[life_events["event"] == event]
        overlap = (ev["day"].to_numpy() + hi >= start) & (ev["day"].to_numpy() + lo < stop)
        cust = np.unique(ev["customer_id"].to_numpy()[overlap])
        pos = np.searchsorted(ids, cust)
        pos = pos[(pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == cust)]
        g = GROUP_NAMES.index(group)
        pos = pos[quiet[pos, g] & (after[pos, g] > 0)]
        picked.append((event, g, pos))
    result: dict[str, Any] = {
        "eligible": {e: len(p) for e, _, p in picked},
        "detected": {},
        "flagged_share": {},
        "lift": {},
        "top_share": top_share,
    }
    n_all = sum(len(p) for _, _, p in picked)
    for name, (f_ids, values) in forecasts.items():
        if not np.array_equal(f_ids, ids):
            raise ValidationError(f"The forecasts of {name} are not for the panel's customers.")
        flagged = np.zeros(values.shape, bool)
        for g in range(values.shape[1]):
            pool = np.flatnonzero(quiet[:, g])
            if len(pool):
                v = values[pool, g]
                flagged[pool, g] = (v >= np.quantile(v, 1 - top_share)) & (v > 0)
        hits = {e: float(flagged[p, g].mean()) if len(p) else float("nan") for e, g, p in picked}
        hits["all"] = (
            float(sum(flagged[p, g].sum() for _, g, p in picked) / n_all) if n_all else float("nan")
        )
        share = float(flagged[quiet].mean()) if quiet.any() else float("nan")
        result["detected"][name] = hits
        result["flagged_share"][name] = share
        result["lift"][name] = hits["all"] / share if share > 0 else float("nan")
    return result


def _mae_report(
    y: np.ndarray, forecasts: dict[str, np.ndarray], horizons: Sequence[int]
) -> dict[str, Any]:
    mae: dict[str, dict[str, float]] = {}
    by_group: dict[str, dict[str, dict[str, float]]] = {}
    for name, f in forecasts.items():
        err = np.abs(f - y)
        mae[name] = {f"{h}d": float(err[:, i].mean()) for i, h in enumerate(horizons)}
        by_group[name] = {
            f"{h}d": {g: float(err[:, i, k].mean()) for k, g in enumerate(GROUP_NAMES)}
            for i, h in enumerate(horizons)
        }
    base = mae["seasonal_naive"]
    improvement = {
        name: {k: 100.0 * (1 - v / base[k]) if base[k] else float("nan") for k, v in m.items()}
        for name, m in mae.items()
        if name != "seasonal_naive"
    }
    return {
        "mae": mae,
        "mae_by_category": by_group,
        "improvement_vs_seasonal_naive_pct": improvement,
    }


def evaluate_need_forecast(
    store: Store,
    world_or_life_events: Any,
    *,
    test_as_of: date | str | None = None,
    train_origins: Sequence[date | str] | None = None,
    origin_step_days: int = 7,
    lookback_days: int = 91,
    horizons: tuple[int, ...] = (7, 30),
    lstm: NeedForecaster | None = None,
    lightgbm: LightGBMNeedForecaster | None = None,
    top_share: float = 0.1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit the three forecasters on a time split of the store and report their figures.

    Parameters
    ----------
    store : Store
        The bank's ``customers``, ``transactions`` and ``app_events``.
    world_or_life_events : World or table
        The simulated bank (its hidden ``life_events``) or that table itself.
    test_as_of : date, optional
        The test origin (default: the last day whose 30-day window fits in the data).
    train_origins : list of date, optional
        Training origins (default: every ``origin_step_days`` back from one horizon before the
        validation origin, which is one horizon before the test origin).
    lookback_days, horizons : the forecast setting (shared by the three models).
    lstm, lightgbm : forecasters to use (defaults: ``NeedForecaster()`` and
        ``LightGBMNeedForecaster()`` with the same lookback and horizons).
    top_share : float
        Top share of a model's forecasts that flags a need (life-event detection).
    progress : callable(done, total), optional
        Called as the LightGBM models and the LSTM epochs finish.

    Returns
    -------
    dict
        ``test_as_of``, ``validation_as_of``, ``train_origins``, ``customers``, ``mae`` (model →
        horizon → MAE in CNY), ``mae_by_category``, ``improvement_vs_seasonal_naive_pct``,
        ``life_events`` (see :func:`life_event_detection`) and ``seconds`` per phase.
    """
    if not isinstance(origin_step_days, int) or origin_step_days < 1:
        raise invalid_parameter(
            "evaluate_need_forecast", "origin_step_days", "a positive int", origin_step_days
        )
    if not 0 < top_share < 1:
        raise invalid_parameter("evaluate_need_forecast", "top_share", "in (0, 1)", top_share)
    events = _life_events_frame(world_or_life_events)
    lstm = lstm or NeedForecaster(horizons, lookback_days=lookback_days)
    lightgbm = lightgbm or LightGBMNeedForecaster(horizons, lookback_days=lookback_days)
    naive = SeasonalNaiveForecaster(horizons)
    longest = max(naive._check_horizons())
    lookback = max(lstm.lookback_needed, lightgbm.lookback_needed, lookback_days, longest)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    span = store.query("SELECT min(ts) AS lo, max(ts) AS hi FROM transactions").to_pylist()[0]
    if span["lo"] is None:
        raise ValidationError("The transactions table is empty: there is nothing to forecast.")
    data_start, data_end = span["lo"].date(), span["hi"].date() + timedelta(days=1)
    origins, val, test = split_origins(
        data_start,
        data_end,
        lookback_days=lookback,
        longest_horizon=longest,
        step_days=origin_step_days,
        test_as_of=to_day(test_as_of, "test_as_of") if test_as_of is not None else None,
    )
    if train_origins is not None:
        origins = check_origins("evaluate_need_forecast", "train_origins", train_origins)
    panel = load_panel(
        store, min(origins) - timedelta(days=lookback), test + timedelta(days=longest)
    )
    seconds["load"] = time.perf_counter() - clock

    n_lgb = len(horizons) * len(GROUP_NAMES)
    total = n_lgb + int(lstm.max_epochs)

    def stage(offset: int) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, _total: progress(offset + done, total)

    forecasts: dict[str, np.ndarray] = {}
    ids: np.ndarray | None = None
    for name, model, offset in (
        ("seasonal_naive", naive, 0),
        ("lightgbm", lightgbm, 0),
        ("lstm", lstm, n_lgb),
    ):
        clock = time.perf_counter()
        model.fit_panel(
            panel,
            origins,
            validation_origins=[val],
            progress=stage(offset) if name != "seasonal_naive" else None,
        )
        ids, forecasts[name] = model.predict_panel(panel, test)
        seconds[name] = time.perf_counter() - clock
    assert ids is not None
    _, probability, _ = lstm.need_panel(panel, test)
    y = np.stack([panel.targets(test, h) for h in horizons], axis=1)
    report = _mae_report(y, {**forecasts, "zero": np.zeros_like(y)}, horizons)
    h_events = 30 if 30 in horizons else longest
    i_events = list(horizons).index(h_events)
    report["life_events"] = life_event_detection(
        events,
        panel,
        test,
        lookback_days=lookback,
        horizon=h_events,
        forecasts={
            **{m: (ids, forecasts[m][:, i_events]) for m in _MODELS},
            "lstm_spend_probability": (ids, probability[:, i_events]),
        },
        top_share=top_share,
    )
    report["life_events"]["horizon_days"] = h_events
    return {
        "test_as_of": test.isoformat(),
        "validation_as_of": val.isoformat(),
        "train_origins": [d.isoformat() for d in origins],
        "customers": len(ids),
        "lookback_days": lookback,
        "horizons": list(horizons),
        **report,
        "lstm_history": lstm.history_,
        "seconds": seconds,
    }
