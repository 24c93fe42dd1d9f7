"""Training sets from point-in-time features, and splits that never cross time.

Every row pairs what was known before a moment (``as_of``: the customer's features computed from
data strictly before it) with what happened in the window after it (the label). Three kinds:

- :func:`contact_training_set`: one row per past contact (or holdout) with the offer, the channel
  and whether the customer converted (applied and was approved) within ``horizon_days`` of it:
  the data of propensity and uplift models.
- :func:`customer_training_set`: one row per customer per ``as_of`` with a label computed by a
  SQL expression over the window after it (churn, value): the data of churn and LTV models.
- :func:`time_split` and :func:`time_series_folds`: train / validation / test by ``as_of`` date,
  with a purge gap so that no training label window overlaps a later period's features.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from qianmian.data.schema.vocab import CONTACT_CHANNELS
from qianmian.errors import NotFoundError, ValidationError, invalid_parameter
from qianmian.features.catalogue import FEATURES
from qianmian.features.engine import StoreFeatureEngine
from qianmian.store.base import Store

__all__ = [
    "CATEGORICAL_FEATURES",
    "CONTACT_COLUMNS",
    "TimeSplit",
    "contact_training_set",
    "customer_training_set",
    "model_features",
    "prepare_features",
    "time_series_folds",
    "time_split",
]

# Catalogue features that are categories (LightGBM takes them as pandas categoricals).
CATEGORICAL_FEATURES = tuple(n for n, f in FEATURES.items() if f.type == "string")
# Columns describing the contact itself (not the customer), used as features next to the catalogue.
CONTACT_COLUMNS = ("channel",)
# Up to this many customers, features are computed for those ids only; above, for everyone.
_MAX_ID_FILTER = 2_000
# Categories fixed up front so that training and scoring frames always agree.
_CATEGORIES = {"channel": list(CONTACT_CHANNELS.values)}


def model_features(extra: Sequence[str] = ()) -> list[str]:
    """The model inputs: every catalogue feature, then ``extra`` (e.g. the contact's channel)."""
    return [*FEATURES, *extra]


def prepare_features(frame: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """The model matrix: ``features`` in order, strings as categoricals, numbers as float.

    Missing columns are a :class:`ValidationError` naming them.
    """
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValidationError(
            f"The frame lacks {len(missing)} model feature(s): {', '.join(missing[:8])}"
            f"{' …' if len(missing) > 8 else ''}. Build features with the same catalogue."
        )
    out: dict[str, Any] = {}
    for name in features:
        col = frame[name]
        if name in _CATEGORIES:
            out[name] = pd.Categorical(col, categories=_CATEGORIES[name])
        elif (
            name in CATEGORICAL_FEATURES or col.dtype == object or pd.api.types.is_string_dtype(col)
        ):
            out[name] = col.astype("category")
        else:
            out[name] = pd.to_numeric(col, errors="coerce").astype(float)
    return pd.DataFrame(out, index=frame.index)


def _features_at(
    store: Store,
    customers_by_day: dict[pd.Timestamp, list[int]] | Sequence[pd.Timestamp],
    progress: Callable[[int, int], None] | None,
) -> pd.DataFrame:
    """Catalogue features per as_of day (for the given customers of each day, or all)."""
    engine = StoreFeatureEngine(store)
    days = list(customers_by_day)
    parts = []
    for i, d in enumerate(days, start=1):
        ids = customers_by_day[d] if isinstance(customers_by_day, dict) else None
        if ids is not None and len(ids) > _MAX_ID_FILTER:
            ids = None  # a long literal id list is slower than computing everyone; merged later
        parts.append(engine.build(pd.Timestamp(d).date(), customers=ids).to_pandas())
        if progress:
            progress(i, len(days))
    frame = pd.concat(parts, ignore_index=True)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.normalize()
    return frame


def contact_training_set(
    store: Store,
    *,
    offers: Sequence[str] | None = None,
    horizon_days: int = 30,
    start: date | None = None,
    end: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One row per past contact: the customer's features the day it was sent, and its outcome.

    Parameters
    ----------
    store : Store
        Holds ``contacts``, ``responses`` and the bank's tables the features read.
    offers : sequence of str, optional
        Only contacts of these offers (default: all).
    horizon_days : int
        A contact converts if an ``approved`` response follows within this many days.
    start, end : date, optional
        Only contacts sent on or after ``start`` and before ``end``.
    progress : callable, optional
        ``progress(done, total)`` per feature snapshot.

    Returns
    -------
    DataFrame
        ``contact_id, customer_id, offer_id, channel, ts, as_of`` (the contact's day: features use
        only data strictly before it), ``treated`` (1 sent, 0 held out), ``converted`` (0/1),
        ``value`` (of the conversion, 0 if none), ``complained``, then the catalogue features.
        Contacts whose window has not closed by the latest response are left out.
    """
    if horizon_days < 1:
        raise invalid_parameter("contact_training_set", "horizon_days", "at least 1", horizon_days)
    for name in ("contacts", "responses"):
        if not store.has_table(name):
            raise NotFoundError(
                f"The store has no '{name}' table: contact models learn from past campaigns "
                "(`qianmian generate` writes a history; a bank imports its own)."
            )
    where: list[str] = ["TRUE"]
    params: dict[str, object] = {"h": horizon_days}
    if start is not None:
        where.append("c.ts >= $start")
        params["start"] = datetime(start.year, start.month, start.day)
    if end is not None:
        where.append("c.ts < $end")
        params["end"] = datetime(end.year, end.month, end.day)
    sql = f"""
        WITH outcome AS (
            SELECT r.contact_id,
                   max(CASE WHEN r.response_type = 'approved' THEN 1 ELSE 0 END) AS converted,
                   sum(CASE WHEN r.response_type = 'approved' THEN r.value ELSE 0 END) AS value,
                   max(CASE WHEN r.response_type = 'complained' THEN 1 ELSE 0 END) AS complained
            FROM responses r JOIN contacts c USING (contact_id)
            WHERE r.ts < c.ts + $h * INTERVAL '1 day'
            GROUP BY r.contact_id
        ),
        closed AS (SELECT max(ts) AS last_ts FROM responses)
        SELECT c.contact_id, c.customer_id, c.offer_id, c.channel, c.ts,
               CAST(CAST(c.ts AS DATE) AS TIMESTAMP) AS as_of,
               CASE WHEN c.is_holdout THEN 0 ELSE 1 END AS treated,
               coalesce(o.converted, 0) AS converted,
               coalesce(o.value, 0.0) AS value,
               coalesce(o.complained, 0) AS complained
        FROM contacts c LEFT JOIN outcome o USING (contact_id), closed
        WHERE {" AND ".join(where)} AND c.ts + $h * INTERVAL '1 day' <= closed.last_ts
        ORDER BY c.ts, c.contact_id
    """
    contacts = store.query(sql, params).to_pandas()
    if offers is not None:
        contacts = contacts[contacts["offer_id"].isin(list(offers))].reset_index(drop=True)
    if contacts.empty:
        raise NotFoundError(
            "No past contacts with a closed outcome window match"
            f"{' offers ' + ', '.join(offers) if offers else ''}; nothing to learn from."
        )
    contacts["as_of"] = pd.to_datetime(contacts["as_of"])
    by_day = {
        pd.Timestamp(d): sorted(set(ids.tolist()))
        for d, ids in contacts.groupby("as_of")["customer_id"]
    }
    feats = _features_at(store, by_day, progress)
    out = contacts.merge(feats, on=["customer_id", "as_of"], how="inner", validate="m:1")
    return out.sort_values(["ts", "contact_id"], kind="stable").reset_index(drop=True)


def customer_training_set(
    store: Store,
    as_ofs: Sequence[date],
    label_sql: str,
    *,
    horizon_days: int,
    fill: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One row per customer per ``as_of``, labelled by what happened in the window after it.

    Parameters
    ----------
    as_ofs : sequence of date
        The snapshot dates.
    label_sql : str
        A query returning ``customer_id, label`` for the window ``[$as_of, $until)``
        (``$until`` = ``$as_of`` + ``horizon_days``), e.g. spend or revenue per customer.
    horizon_days : int
        Length of the label window; every window must end by the latest transaction.
    fill : float
        The label of customers the query returns no row for.

    Returns
    -------
    DataFrame
        ``customer_id, as_of``, the catalogue features, ``label``.
    """
    latest = store.query("SELECT max(ts) AS t FROM transactions").column("t")[0].as_py()
    if latest is None:
        raise NotFoundError("The store has no transactions to label customers with.")
    days = sorted(pd.Timestamp(d) for d in as_ofs)
    for d in days:
        until = d + pd.Timedelta(days=horizon_days)
        if until > pd.Timestamp(latest) + pd.Timedelta(days=1):
            raise ValidationError(
                f"as_of {d:%Y-%m-%d} with a {horizon_days}-day label window needs data until "
                f"{until:%Y-%m-%d}; the store's latest transaction is {latest:%Y-%m-%d}."
            )
    feats = _features_at(store, days, progress)
    labels = []
    for d in days:
        until = d + pd.Timedelta(days=horizon_days)
        lab = store.query(
            label_sql, {"as_of": d.to_pydatetime(), "until": until.to_pydatetime()}
        ).to_pandas()
        labels.append(lab.assign(as_of=d))
    lab = pd.concat(labels, ignore_index=True)
    if list(lab.columns[:2]) != ["customer_id", "label"]:
        raise ValidationError(
            f"label_sql must return the columns customer_id, label; it returned "
            f"{', '.join(map(str, lab.columns))}."
        )
    out = feats.merge(lab, on=["customer_id", "as_of"], how="left", validate="1:1")
    out["label"] = out["label"].astype(float).fillna(fill)
    return out


@dataclass(frozen=True)
class TimeSplit:
    """Row positions of each period; every training label window ends before validation starts."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    train_dates: tuple[pd.Timestamp, ...]
    validation_dates: tuple[pd.Timestamp, ...]
    test_dates: tuple[pd.Timestamp, ...]

    def describe(self) -> str:
        span = lambda ds: f"{ds[0]:%Y-%m-%d}…{ds[-1]:%Y-%m-%d}" if ds else "-"  # noqa: E731
        return (
            f"train {span(self.train_dates)} ({len(self.train)} rows), "
            f"validation {span(self.validation_dates)} ({len(self.validation)}), "
            f"test {span(self.test_dates)} ({len(self.test)})"
        )


def time_split(
    as_of: pd.Series, *, horizon_days: int, validation: int = 1, test: int = 1
) -> TimeSplit:
    """Split rows by ``as_of`` date: the last ``test`` dates test, the ``validation`` before them
    validate, and earlier dates train — minus any whose label window reaches into validation.

    >>> s = pd.Series(pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]))
    >>> sp = time_split(s, horizon_days=28)
    >>> sp.train.tolist(), sp.validation.tolist(), sp.test.tolist()
    ([0, 1], [2], [3])
    """
    dates = pd.to_datetime(as_of).dt.normalize()
    unique = sorted(dates.unique())
    if len(unique) < validation + test + 1:
        raise ValidationError(
            f"A time split needs at least {validation + test + 1} distinct as_of dates "
            f"(train, {validation} validation, {test} test); the data have {len(unique)}."
        )
    test_d = unique[len(unique) - test :]
    val_d = unique[len(unique) - test - validation : len(unique) - test]
    gap = pd.Timedelta(days=horizon_days)
    train_d = [d for d in unique[: len(unique) - test - validation] if d + gap <= val_d[0]]
    val_d = [d for d in val_d if d + gap <= test_d[0]] or val_d
    if not train_d:
        raise ValidationError(
            f"No as_of date leaves room for a {horizon_days}-day label window before the "
            f"validation period starts on {val_d[0]:%Y-%m-%d}; add earlier snapshots."
        )
    pos = lambda ds: np.flatnonzero(dates.isin(ds).to_numpy())  # noqa: E731
    return TimeSplit(
        pos(train_d),
        pos(val_d),
        pos(test_d),
        tuple(pd.Timestamp(d) for d in train_d),
        tuple(pd.Timestamp(d) for d in val_d),
        tuple(pd.Timestamp(d) for d in test_d),
    )


def time_series_folds(
    as_of: pd.Series, *, horizon_days: int, n_splits: int = 3
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window cross-validation over as_of dates (like scikit-learn's
    ``TimeSeriesSplit``, but by date and with a purge gap of ``horizon_days``).

    >>> s = pd.Series(pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]))
    >>> [(tr.tolist(), te.tolist()) for tr, te in time_series_folds(s, horizon_days=28, n_splits=2)]
    [([0, 1], [2]), ([0, 1, 2], [3])]
    """
    dates = pd.to_datetime(as_of).dt.normalize()
    unique = sorted(dates.unique())
    if n_splits < 1 or len(unique) < n_splits + 1:
        raise ValidationError(
            f"{n_splits} time-series folds need at least {n_splits + 1} distinct as_of dates; "
            f"the data have {len(unique)}."
        )
    gap = pd.Timedelta(days=horizon_days)
    for test_date in unique[len(unique) - n_splits :]:
        train_d = [d for d in unique if d + gap <= test_date]
        if train_d:
            yield (
                np.flatnonzero(dates.isin(train_d).to_numpy()),
                np.flatnonzero((dates == test_date).to_numpy()),
            )
