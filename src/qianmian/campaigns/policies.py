"""Targeting policies a batch campaign can be run under, for comparison at equal contact budget.

Each policy sees the same wave — the customers who may be contacted, the channels each has
consented to, the campaign's offers and their channels — and picks at most ``quota``
(customer, offer, channel) contacts, best first:

============ ======== ============================================================================
policy       zh       how it picks
============ ======== ============================================================================
random       广撒网   customers, offers and channels uniformly at random (the usual mass mailing)
rfm          RFM规则  the highest RFM scores; for each, the offer with the best past conversion
                      rate in the customer's RFM segment, on the cheapest channel they consented to
propensity   响应模型 the highest P(convert | contacted) of any offer × channel (response models)
uplift       增益模型 the highest P(convert | contacted) − P(convert | not contacted) (uplift model)
oracle       理论上限 the highest *true* uplift (the simulated bank's ground truth): the best possible
============ ======== ============================================================================

The full engine (:mod:`qianmian.campaigns.engine_policy`) is the fifth: expected incremental
value, contact policy and the bandit, through :class:`~qianmian.decide.engine.DecisionEngine`.
Every policy records the probability of each action it took (``action_probability``) so its
log can be re-weighted by off-policy evaluation; for greedy policies it is 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd

from qianmian.campaigns.bulk_scoring import CandidateGrid
from qianmian.errors import ValidationError
from qianmian.features.segments_rfm import rfm_scores

__all__ = [
    "POLICY_NAMES",
    "GridPolicy",
    "OraclePolicy",
    "Policy",
    "RandomPolicy",
    "RfmPolicy",
    "Wave",
    "best_contacts",
]

POLICY_NAMES = {
    "random": ("广撒网", "Random (mass mailing)"),
    "rfm": ("RFM规则", "RFM rules"),
    "propensity": ("响应模型", "Propensity model"),
    "uplift": ("增益模型", "Uplift model"),
    "engine": ("千面引擎", "Full engine"),
    "oracle": ("理论上限", "Oracle (best possible)"),
}
CONTACT_FRAME = ("customer_id", "offer_id", "channel", "action_probability")


@dataclass(frozen=True)
class Wave:
    """One send of the campaign, as every policy sees it.

    ``allowed[i, o, c]`` says whether customer ``customer_ids[i]`` may be sent offer
    ``offers[o]`` on ``channels[c]`` (not opted out, consented, the offer has copy for it).
    ``sent_target`` contacts are to be sent; a policy ranks ``quota`` candidates (more than
    the target: the campaign's holdout removes some of them).
    """

    index: int
    ts: datetime
    quota: int
    sent_target: int
    customer_ids: np.ndarray
    offers: tuple[str, ...]
    channels: tuple[str, ...]
    allowed: np.ndarray
    rng: np.random.Generator


class Policy(Protocol):
    """Chooses a wave's contacts; learns from their outcomes if it can."""

    name: str

    def choose(self, wave: Wave) -> pd.DataFrame:
        """At most ``wave.quota`` rows of ``customer_id, offer_id, channel, action_probability``."""
        ...


def best_contacts(score: np.ndarray, wave: Wave) -> pd.DataFrame:
    """For each customer the best allowed (offer, channel) by ``score``; the top ``quota`` of them.

    ``score`` has the shape of ``wave.allowed``; ties are broken at random (by ``wave.rng``).
    """
    if score.shape != wave.allowed.shape:
        raise ValidationError(f"score has shape {score.shape}, the wave {wave.allowed.shape}.")
    n, _, n_c = score.shape
    masked = np.where(wave.allowed & np.isfinite(score), score, -np.inf).reshape(n, -1)
    jitter = wave.rng.random(masked.shape) * 1e-12
    best = np.argmax(masked + jitter, axis=1)
    top = masked[np.arange(n), best]
    ok = np.flatnonzero(np.isfinite(top))
    order = ok[np.lexsort((wave.rng.random(len(ok)), -top[ok]))][: wave.quota]
    o, c = np.divmod(best[order], n_c)
    return pd.DataFrame(
        {
            "customer_id": wave.customer_ids[order],
            "offer_id": np.asarray(wave.offers)[o],
            "channel": np.asarray(wave.channels)[c],
            "action_probability": 1.0,
            "score": top[order],
        }
    )


class RandomPolicy:
    """广撒网: uniform customers, then a uniform offer and a uniform allowed channel for it."""

    name = "random"

    def choose(self, wave: Wave) -> pd.DataFrame:
        reachable = np.flatnonzero(wave.allowed.any(axis=(1, 2)))
        k = min(wave.quota, len(reachable))
        picked = wave.rng.choice(reachable, size=k, replace=False)
        noise = np.where(wave.allowed[picked], wave.rng.random(wave.allowed[picked].shape), -1.0)
        flat = noise.reshape(k, -1).argmax(axis=1)
        o, c = np.divmod(flat, len(wave.channels))
        n_actions = wave.allowed[picked].reshape(k, -1).sum(axis=1)
        return pd.DataFrame(
            {
                "customer_id": wave.customer_ids[picked],
                "offer_id": np.asarray(wave.offers)[o],
                "channel": np.asarray(wave.channels)[c],
                "action_probability": k / len(reachable) / n_actions,
            }
        )


#: the channels a marketer reaches for first: cheapest that reads as a personal message
CHEAPEST_FIRST = ("sms", "app_push", "wechat", "email", "in_app", "call_center")


class RfmPolicy:
    """RFM规则: top RFM scores; per RFM segment the offer that converted best in past campaigns.

    ``segment_rates`` is the past conversion rate of sent contacts by ``rfm_segment`` × offer
    (see :func:`segment_offer_rates`).
    """

    name = "rfm"

    def __init__(self, features: pd.DataFrame, segment_rates: pd.DataFrame) -> None:
        rfm = rfm_scores(features)
        self._score = (
            rfm["rfm_score"].to_numpy(float)
            + features["monetary_365d"].rank(pct=True).fillna(0).to_numpy() * 0.5
        )
        self._segment = rfm["rfm_segment"].to_numpy()
        self._rates = segment_rates

    def choose(self, wave: Wave) -> pd.DataFrame:
        n, n_o, _ = wave.allowed.shape
        rate = np.zeros((n, n_o))
        table = self._rates.reindex(columns=list(wave.offers)).fillna(0.0)
        for segment in pd.unique(self._segment):
            if segment in table.index:
                rate[self._segment == segment] = table.loc[segment].to_numpy()
        rank = {c: i for i, c in enumerate(CHEAPEST_FIRST)}
        channel_pref = np.array([len(rank) - rank.get(c, len(rank)) for c in wave.channels])
        # the customer's score first, then the segment's best offer, then the cheapest channel
        score = (
            self._score[:, None, None] * 1e3 + rate[:, :, None] * 1e2 + channel_pref[None, None, :]
        )
        return best_contacts(score, wave)


def segment_offer_rates(history: pd.DataFrame, segments: pd.Series) -> pd.DataFrame:
    """Past conversion rate of sent contacts by RFM segment (rows) × offer (columns).

    ``history`` has ``customer_id, offer_id, is_holdout, converted``; ``segments`` maps
    customer id → RFM segment.
    """
    sent = history[~history["is_holdout"].to_numpy(bool)]
    seg = sent["customer_id"].map(segments)
    return sent.assign(rfm_segment=seg).pivot_table(
        index="rfm_segment", columns="offer_id", values="converted", aggfunc="mean"
    )


class GridPolicy:
    """Greedy on a model's score per customer × offer × channel (propensity or uplift).

    ``grid`` is called with the wave and returns the scores (models may be retrained between
    waves, so the grid is asked for each time).
    """

    def __init__(self, name: str, grid: Callable[[Wave], CandidateGrid], *, uplift: bool) -> None:
        self.name = name
        self._grid = grid
        self._uplift = uplift

    def choose(self, wave: Wave) -> pd.DataFrame:
        grid = self._grid(wave)
        score = grid.uplift if self._uplift else grid.p_sent
        return best_contacts(score, wave)


class OraclePolicy:
    """理论上限: greedy on the true uplift at the wave's time, fatigue included."""

    name = "oracle"

    def __init__(self, true_uplift: Callable[[Wave], np.ndarray]) -> None:
        self._truth = true_uplift

    def choose(self, wave: Wave) -> pd.DataFrame:
        return best_contacts(self._truth(wave), wave)
