"""Product recommendation: which of the bank's products each customer is likely to take up next.

Collaborative filtering over customer × product holdings and campaign responses (implicit ALS),
a DeepFM over customer and product side features, and the popularity baseline they are judged
against, by recall@k and NDCG@k on the products customers newly acquire after a cutoff.

- :mod:`~.interactions` — events from ``holdings``, ``loans`` and ``responses`` (weighted:
  holding / approved > applied > clicked); :func:`time_split`, :func:`leave_latest_out`.
- :mod:`~.side_features` — point-in-time customer features and product features.
- :class:`PopularityRecommender`, :class:`ALSRecommender`, :class:`DeepFMRecommender` — one
  interface: ``fit(interactions, side_features=None)``, ``recommend(customer_ids, k,
  exclude_held=True)`` → ``customer_id, rank, product_id, score``; ``save(path)`` / ``load(path)``.
- :mod:`~.metrics` — :func:`recall_at_k`, :func:`ndcg_at_k`.
- :func:`evaluate_recommenders` — all of it on a store, one row per model.
"""

from __future__ import annotations

from qianmian.models.recommend.als import ALSRecommender
from qianmian.models.recommend.base import RECOMMENDATION_COLUMNS, Recommender
from qianmian.models.recommend.deepfm import DeepFMRecommender
from qianmian.models.recommend.evaluate import (
    PROTOCOLS,
    default_recommenders,
    evaluate_recommenders,
    evaluate_split,
)
from qianmian.models.recommend.interactions import (
    ACQUIRED_KINDS,
    DEFAULT_WEIGHTS,
    EVENT_COLUMNS,
    InteractionSplit,
    interaction_pairs,
    leave_latest_out,
    load_interactions,
    time_split,
)
from qianmian.models.recommend.metrics import ndcg_at_k, ranking_metrics, recall_at_k
from qianmian.models.recommend.popularity import PopularityRecommender
from qianmian.models.recommend.side_features import (
    customer_side_features,
    product_side_features,
)

__all__ = [
    "ACQUIRED_KINDS",
    "DEFAULT_WEIGHTS",
    "EVENT_COLUMNS",
    "PROTOCOLS",
    "RECOMMENDATION_COLUMNS",
    "ALSRecommender",
    "DeepFMRecommender",
    "InteractionSplit",
    "PopularityRecommender",
    "Recommender",
    "customer_side_features",
    "default_recommenders",
    "evaluate_recommenders",
    "evaluate_split",
    "interaction_pairs",
    "leave_latest_out",
    "load_interactions",
    "ndcg_at_k",
    "product_side_features",
    "ranking_metrics",
    "recall_at_k",
    "time_split",
]
