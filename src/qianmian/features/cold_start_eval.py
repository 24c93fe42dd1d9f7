"""How well cold start works: predict at signup, check against the segment three months later.

The protocol of :func:`evaluate_cold_start`, on a bank whose history is in the store:

1. *Established* customers are those who signed up before the cohort window. One segmenter is
   fitted on their features as of ``fit_as_of`` (default: the end of the cohort window plus the
   horizon, when the last cohort outcome is known), and a :class:`ColdStartModel` learns their
   registration answers → their segment.
2. The *cohort* signed up inside ``[cohort_start, cohort_end)``. Each cohort customer's segment
   is predicted from the answers they gave at signup (age at signup), nothing else.
3. Their actual segment is what the **same** segmenter says of their features ``horizon_days``
   after signup (rounded up to a grid of ``step_days``, so features are built once per grid
   date: the outcome is 90-103 days after signup with the defaults).
4. Reported: accuracy and macro-F1 of the predictions, against always predicting the
   established customers' majority segment; log-loss of the predicted probabilities against
   giving everyone the established customers' segment shares; and the error of the starter features' 90-day spend
   (log scale) against the established customers' median (the best single guess on that scale).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import accuracy_score, f1_score, log_loss

from qianmian.features.catalogue import FEATURES
from qianmian.features.cold_start import REGISTRATION_FEATURES, STARTER_FEATURES, ColdStartModel
from qianmian.features.segments_kmeans import CustomerSegmenter
from qianmian.features.segments_prepare import expand_features
from qianmian.store.base import Store

__all__ = ["ColdStartReport", "evaluate_cold_start", "registration_at_signup"]

_CUSTOMER_FIELDS = (
    "customer_id, birth_date, signup_date, gender, occupation, city_tier, monthly_income, "
    "registration_channel, children, marital_status"
)


def registration_at_signup(store: Store) -> pd.DataFrame:
    """Every customer's registration answers as given at signup (age then), plus ``signup_date``."""
    raw = store.query(f"SELECT {_CUSTOMER_FIELDS} FROM customers").to_pandas()
    signup = pd.to_datetime(raw["signup_date"])
    days = (signup - pd.to_datetime(raw["birth_date"])).dt.days
    return raw.assign(
        signup_date=signup,
        age=np.floor(days / 365.25).astype("int64"),
        is_married=raw["marital_status"] == "已婚",
    )[["customer_id", "signup_date", *REGISTRATION_FEATURES]]


@dataclass(frozen=True)
class ColdStartReport:
    """Cold-start quality on one signup cohort (see the module docstring)."""

    n_customers: int
    n_training: int
    accuracy: float
    macro_f1: float
    baseline_accuracy: float
    baseline_macro_f1: float
    log_loss: float  # of predict_proba
    baseline_log_loss: float  # of the established customers' segment shares, for everyone
    majority_segment: str
    starter_spend_error: float  # mean |starter 90-day spend - actual| (CNY)
    baseline_spend_error: float  # the same for the established customers' mean
    starter_spend_rank_corr: float  # Spearman correlation of starter and actual 90-day spend
    fit_as_of: datetime
    cohort: tuple[date, date]
    days_after_signup: tuple[int, int]
    confusion: pd.DataFrame  # actual segment (rows) × predicted (columns), by name

    def summary(self) -> str:
        return (
            f"cold start on {self.n_customers} new customers: accuracy {self.accuracy:.1%} "
            f"(majority baseline {self.baseline_accuracy:.1%}), macro-F1 {self.macro_f1:.3f} "
            f"(baseline {self.baseline_macro_f1:.3f}), log-loss {self.log_loss:.3f} (baseline "
            f"{self.baseline_log_loss:.3f}); starter spend error "
            f"¥{self.starter_spend_error:,.0f} vs ¥{self.baseline_spend_error:,.0f}, rank correlation "
            f"{self.starter_spend_rank_corr:.2f}"
        )


def _day(value: date | datetime | str) -> datetime:
    from qianmian.features.compile import AsOf

    return AsOf.of(value).at


def evaluate_cold_start(
    store: Store,
    *,
    cohort_start: date | datetime | str,
    cohort_end: date | datetime | str,
    fit_as_of: date | datetime | str | None = None,
    horizon_days: int = 90,
    step_days: int = 14,
    segmenter: CustomerSegmenter | None = None,
    model: ColdStartModel | None = None,
    progress: Callable[[str], None] | None = None,
) -> ColdStartReport:
    """Measure cold start on customers who signed up in ``[cohort_start, cohort_end)``.

    Parameters
    ----------
    store : Store
        The bank's tables (``customers`` and what the features read).
    cohort_start, cohort_end : date, datetime or ISO string
    fit_as_of : optional
        When the segmenter and the cold-start model are fitted on established customers.
    horizon_days, step_days : int
        Outcome taken between ``horizon_days`` and ``horizon_days + step_days - 1`` after signup.
    segmenter, model : optional
        Unfitted templates (cloned); defaults :class:`CustomerSegmenter()` and
        :class:`ColdStartModel()`.
    progress : callable, optional

    Returns
    -------
    ColdStartReport
    """
    from qianmian.features.engine import StoreFeatureEngine
    from qianmian.features.segments import segmentation_columns

    say = progress or (lambda _: None)
    start, end = _day(cohort_start), _day(cohort_end)
    first_outcome = start + timedelta(days=horizon_days)
    fit_at = _day(fit_as_of) if fit_as_of is not None else end + timedelta(days=horizon_days)
    segmenter = clone(segmenter if segmenter is not None else CustomerSegmenter())
    model = clone(model if model is not None else ColdStartModel())
    engine = StoreFeatureEngine(store)
    wanted = segmentation_columns(segmenter)
    wanted += [*REGISTRATION_FEATURES, *expand_features(STARTER_FEATURES)]
    wanted = [c for c in dict.fromkeys(wanted) if c in FEATURES]

    registration = registration_at_signup(store)
    established = set(registration.loc[registration["signup_date"] < start, "customer_id"])
    say(f"Fitting segments on established customers as of {fit_at:%Y-%m-%d}")
    train = engine.build(fit_at, features=wanted).to_pandas()
    train = train[train["customer_id"].isin(established)].reset_index(drop=True)
    segmenter.fit(train)
    labels = segmenter.labels_
    model.fit(train, labels)

    cohort = registration[
        (registration["signup_date"] >= start) & (registration["signup_date"] < end)
    ].reset_index(drop=True)
    steps = np.ceil((cohort["signup_date"] - start).dt.days / step_days).astype(int)
    cohort["outcome_at"] = first_outcome + pd.to_timedelta(steps * step_days, unit="D")
    actual = pd.Series(-1, index=cohort.index, dtype=np.int64)
    spend = pd.Series(np.nan, index=cohort.index)
    for at in sorted(cohort["outcome_at"].unique()):
        rows = cohort.index[cohort["outcome_at"] == at]
        outcome_at = pd.Timestamp(at).to_pydatetime()
        say(f"Segments of the cohort as of {outcome_at:%Y-%m-%d}")
        ids = cohort.loc[rows, "customer_id"].tolist()
        later = engine.build(outcome_at, features=wanted, customers=ids).to_pandas()
        later = later.set_index("customer_id").loc[ids].reset_index()
        actual.loc[rows] = segmenter.predict(later)
        spend.loc[rows] = later["monetary_90d"].to_numpy(float)

    predicted = model.predict(cohort)
    proba = model.predict_proba(cohort)
    prior = np.bincount(labels, minlength=segmenter.n_clusters_) / len(labels)
    every = np.arange(segmenter.n_clusters_)
    full = np.zeros((len(cohort), segmenter.n_clusters_))
    full[:, model.classes_.astype(np.int64)] = proba
    full = np.clip(full, 1e-6, 1)
    full /= full.sum(axis=1, keepdims=True)
    prior = np.clip(prior, 1e-6, 1) / np.clip(prior, 1e-6, 1).sum()
    majority = np.bincount(labels).argmax()
    baseline = np.full(len(cohort), majority)
    names = segmenter.names_of(np.arange(segmenter.n_clusters_))
    starter = model.predict_starter(cohort)["monetary_90d"].to_numpy(float)
    days = (cohort["outcome_at"] - cohort["signup_date"]).dt.days
    confusion = pd.crosstab(
        pd.Series(names[actual.to_numpy()], name="actual"),
        pd.Series(names[predicted.astype(np.int64)], name="predicted"),
    )
    return ColdStartReport(
        n_customers=len(cohort),
        n_training=len(train),
        accuracy=float(accuracy_score(actual, predicted)),
        macro_f1=float(f1_score(actual, predicted, average="macro", zero_division=0)),
        baseline_accuracy=float(accuracy_score(actual, baseline)),
        baseline_macro_f1=float(f1_score(actual, baseline, average="macro", zero_division=0)),
        log_loss=float(log_loss(actual, full, labels=every)),
        baseline_log_loss=float(log_loss(actual, np.tile(prior, (len(cohort), 1)), labels=every)),
        majority_segment=str(names[majority]),
        starter_spend_error=float(np.mean(np.abs(starter - spend))),
        baseline_spend_error=float(np.mean(np.abs(train["monetary_90d"].mean() - spend))),
        starter_spend_rank_corr=float(pd.Series(starter).corr(pd.Series(spend), method="spearman")),
        fit_as_of=fit_at,
        cohort=(start.date(), end.date()),
        days_after_signup=(int(days.min()), int(days.max())) if len(days) else (0, 0),
        confusion=confusion,
    )
