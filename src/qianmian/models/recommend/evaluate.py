"""Offline evaluation: fit each recommender on one split of the store's interactions, score it.

:func:`evaluate_recommenders` loads the interactions (:func:`~.interactions.load_interactions`),
splits them by time (the products customers newly acquire after a cutoff) or leave-latest-out,
computes side features as of the split, fits every model on the training events and reports
recall@k and NDCG@k over the customers with at least one target, one row per model and protocol.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

import numpy as np
import pandas as pd
from sklearn.base import clone

from qianmian.errors import ValidationError, invalid_parameter
from qianmian.models.recommend.als import ALSRecommender
from qianmian.models.recommend.base import Recommender
from qianmian.models.recommend.deepfm import DeepFMRecommender
from qianmian.models.recommend.interactions import (
    InteractionSplit,
    leave_latest_out,
    load_interactions,
    time_split,
)
from qianmian.models.recommend.metrics import ranking_metrics
from qianmian.models.recommend.popularity import PopularityRecommender
from qianmian.models.recommend.side_features import (
    customer_side_features,
    product_side_features,
)
from qianmian.store.base import Store

__all__ = ["PROTOCOLS", "default_recommenders", "evaluate_recommenders", "evaluate_split"]

logger = logging.getLogger(__name__)

PROTOCOLS: tuple[str, ...] = ("time", "leave_latest_out")


def default_recommenders(random_state: int = 0) -> dict[str, Recommender]:
    """The models compared by default: popularity (the baseline), ALS and DeepFM."""
    return {
        "popularity": PopularityRecommender(),
        "als": ALSRecommender(random_state=random_state),
        "deepfm": DeepFMRecommender(random_state=random_state),
    }


def evaluate_split(
    split: InteractionSplit,
    models: Mapping[str, Recommender],
    *,
    k: Sequence[int] = (3, 5),
    side_features: pd.DataFrame | None = None,
    product_features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Fit each model on ``split.train`` and score its top-``max(k)`` on ``split.targets``.

    Returns
    -------
    DataFrame
        One row per model: ``model``, ``protocol``, ``n_customers``, ``n_targets``,
        ``recall@k`` and ``ndcg@k`` for each k, ``fit_seconds``.
    """
    customers = split.customers
    if len(customers) == 0:
        raise ValidationError(
            f"The {split.protocol!r} split has no customer with a target: nothing to evaluate. "
            "Choose an earlier cutoff or a longer horizon."
        )
    rows = []
    for name, template in models.items():
        model = clone(template)
        started = time.perf_counter()
        model.fit(split.train, side_features, product_features=product_features)
        seconds = time.perf_counter() - started
        recs = model.recommend(customers, k=max(k), exclude_held=True)
        rows.append(
            {
                "model": name,
                "protocol": split.protocol,
                "n_customers": len(customers),
                "n_targets": len(split.targets),
                **ranking_metrics(recs, split.targets, k),
                "fit_seconds": round(seconds, 2),
            }
        )
        logger.info("%s on %s: %s", name, split.protocol, rows[-1])
    return pd.DataFrame(rows)


def _cutoff(value: date | datetime | str) -> datetime:
    try:
        return pd.Timestamp(value).to_pydatetime()
    except (TypeError, ValueError) as e:
        raise invalid_parameter(
            "evaluate_recommenders", "cutoff", "a date, datetime or ISO string", value
        ) from e


def _signed_up_before(store: Store, cutoff: datetime) -> np.ndarray:
    table = store.query(
        "SELECT customer_id FROM customers WHERE signup_date < $cutoff", {"cutoff": cutoff.date()}
    )
    return np.asarray(table.column("customer_id").to_numpy(), dtype=np.int64)


def evaluate_recommenders(
    store: Store,
    cutoff: date | datetime | str,
    horizon_days: int,
    k: Sequence[int] = (3, 5),
    *,
    models: Mapping[str, Recommender] | None = None,
    protocols: Iterable[str] = ("time",),
    weights: Mapping[str, float] | None = None,
    include_loans: bool = True,
    use_side_features: bool = True,
) -> pd.DataFrame:
    """Compare recommenders on the store's interactions.

    Parameters
    ----------
    store : Store
        With ``customers``, ``products``, ``holdings`` (and, when present, ``loans``,
        ``responses`` and ``offers``).
    cutoff : date, datetime or ISO string
        Time split: events before it train; side features are computed as of it.
    horizon_days : int >= 1
        Time split: first acquisitions in ``[cutoff, cutoff + horizon_days)`` are the targets.
        Only customers who signed up before the cutoff are evaluated.
    k : sequence of int, default=(3, 5)
    models : mapping of name → Recommender, optional
        Unfitted templates (cloned before fitting); default :func:`default_recommenders`.
    protocols : iterable of {"time", "leave_latest_out"}, default=("time",)
        ``"leave_latest_out"`` ignores ``cutoff`` and ``horizon_days``.
    weights : mapping, optional
        Interaction weights by kind (see :data:`~.interactions.DEFAULT_WEIGHTS`).
    include_loans : bool, default=True
    use_side_features : bool, default=True
        Give the models customer and product side features (DeepFM uses them).

    Returns
    -------
    DataFrame
        One row per (protocol, model), as :func:`evaluate_split`.

    Example (needs a generated bank, so not run as a doctest)::

        with load_settings(workspace).build_store() as store:
            evaluate_recommenders(store, "2026-08-01", 92, protocols=("time", "leave_latest_out"))
    """
    chosen = list(protocols)
    bad = [p for p in chosen if p not in PROTOCOLS]
    if bad or not chosen:
        raise invalid_parameter(
            "evaluate_recommenders", "protocols", f"a non-empty subset of {PROTOCOLS}", chosen
        )
    models = dict(models) if models is not None else default_recommenders()
    events = load_interactions(store, weights=weights, include_loans=include_loans)
    products = product_side_features(store) if use_side_features else None
    frames = []
    for protocol in chosen:
        if protocol == "time":
            at = _cutoff(cutoff)
            split = time_split(events, at, horizon_days, customers=_signed_up_before(store, at))
        else:
            split = leave_latest_out(events)
        side = customer_side_features(store, split.as_of) if use_side_features else None
        frames.append(
            evaluate_split(split, models, k=k, side_features=side, product_features=products)
        )
    return pd.concat(frames, ignore_index=True)
