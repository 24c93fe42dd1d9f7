"""The bank's past marketing: randomised monthly campaigns, their contacts and responses.

A real bank's models learn from its contact history. The simulated bank gets one too: from its
fourth month on, on the first of every month, each customer who has signed up and not opted out
of marketing is, with probability ``contact_share``, drawn into that month's campaign. The
customer is given one offer chosen uniformly from the catalogue and one channel chosen uniformly
from those they consented to (in-app banners need no consent), and a ``holdout_share`` of the
drawn customers is held out (decided but not sent). Everything is random, so the history is a
randomised experiment: propensity and uplift models trained on it are unbiased, and the logged
``action_probability`` lets off-policy estimators reweight it.

Responses are drawn from the oracle (:mod:`qianmian.world.respond`), with fatigue counting the
earlier contacts. Conversions recorded here do not feed back into holdings (the holdings tables
are drawn independently of marketing); see docs/world.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from qianmian.data.schema import table
from qianmian.errors import invalid_parameter
from qianmian.world.catalogue import OFFERS
from qianmian.world.population import CHANNELS
from qianmian.world.respond import draw_responses
from qianmian.world.truth import Oracle

__all__ = ["CHANNEL_COST", "HistoryConfig", "campaign_waves", "simulate_campaign_history"]

# Cost per contact in CNY (assumed: SMS ≈ ¥0.05 a message, a call-centre minute ≈ ¥3).
CHANNEL_COST = {
    "app_push": 0.002,
    "in_app": 0.0,
    "sms": 0.05,
    "email": 0.01,
    "call_center": 3.0,
    "wechat": 0.02,
}
_CONSENT = {c: f"consent_{c}" for c in CHANNELS if c != "in_app"}


@dataclass(frozen=True)
class HistoryConfig:
    """How much marketing the simulated bank did before today."""

    first_month: int = 3  # waves start this many months after the window opens
    contact_share: float = 0.8
    holdout_share: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.first_month, int) or self.first_month < 1:
            raise invalid_parameter(self, "first_month", "a positive int", self.first_month)
        for name in ("contact_share", "holdout_share"):
            v = getattr(self, name)
            if not 0.0 < v < 1.0:
                raise invalid_parameter(self, name, "a share strictly between 0 and 1", v)


def campaign_waves(start: date, end: date, config: HistoryConfig = HistoryConfig()) -> list[date]:
    """The wave dates: the first of each month from ``first_month`` on, with 30 days to respond.

    >>> campaign_waves(date(2025, 11, 1), date(2026, 5, 1))
    [datetime.date(2026, 2, 1), datetime.date(2026, 3, 1), datetime.date(2026, 4, 1)]
    """
    months = pd.date_range(start, end, freq="MS", inclusive="left")[config.first_month :]
    return [d.date() for d in months if (pd.Timestamp(end) - d).days >= 30]


def _wave_contacts(
    customers: pd.DataFrame, wave: date, rng: np.random.Generator, config: HistoryConfig
) -> pd.DataFrame:
    eligible = customers[
        (pd.to_datetime(customers["signup_date"]) < pd.Timestamp(wave))
        & ~customers["marketing_opt_out"].to_numpy(bool)
    ]
    drawn = eligible[rng.random(len(eligible)) < config.contact_share]
    n = len(drawn)
    allowed = np.column_stack(
        [drawn[_CONSENT[c]].to_numpy(bool) if c in _CONSENT else np.ones(n, bool) for c in CHANNELS]
    )
    # A uniform choice among each customer's allowed channels: the argmax of masked noise.
    noise = np.where(allowed, rng.random((n, len(CHANNELS))), -1.0)
    channel = np.asarray(CHANNELS)[noise.argmax(axis=1)]
    n_allowed = allowed.sum(axis=1)
    offer = np.asarray([o.offer_id for o in OFFERS])[rng.integers(0, len(OFFERS), n)]
    holdout = rng.random(n) < config.holdout_share
    seconds = rng.integers(9 * 3600, 20 * 3600, n)  # sent between 09:00 and 20:00
    ts = np.datetime64(wave, "s") + seconds.astype("timedelta64[s]")
    p_arm = np.where(holdout, config.holdout_share, 1 - config.holdout_share)
    cost = np.where(holdout, 0.0, pd.Series(channel).map(CHANNEL_COST).to_numpy())
    return pd.DataFrame(
        {
            "customer_id": drawn["customer_id"].to_numpy(np.int64),
            "offer_id": offer,
            "channel": channel,
            "ts": ts.astype("datetime64[us]"),
            "campaign_id": f"HIST-{wave:%Y%m}",
            "arm": np.where(holdout, "holdout", "treatment"),
            "is_holdout": holdout,
            "action_probability": config.contact_share / len(OFFERS) / n_allowed * p_arm,
            "cost": cost,
        }
    )


def simulate_campaign_history(
    oracle: Oracle,
    customers: pd.DataFrame,
    start: date,
    end: date,
    seed: int,
    config: HistoryConfig = HistoryConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """The ``contacts`` and ``responses`` tables of the bank's past campaigns.

    Parameters
    ----------
    oracle : Oracle
        The world's ground truth.
    customers : DataFrame
        The ``customers`` table (ids, sign-up dates, consents, opt-out).
    start, end : date
        The simulated window.
    seed : int
        Wave ``k`` draws from ``SeedSequence(seed, spawn_key=(5, k))``.
    """
    waves = campaign_waves(start, end, config)
    contacts: list[pd.DataFrame] = []
    responses: list[pd.DataFrame] = []
    next_contact, next_response = 1, 1
    for k, wave in enumerate(waves):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(5, k)))
        wave_contacts = _wave_contacts(customers, wave, rng, config)
        wave_contacts.insert(
            0, "contact_id", np.arange(next_contact, next_contact + len(wave_contacts))
        )
        history = pd.concat(contacts) if contacts else None
        wave_responses = draw_responses(oracle, wave_contacts, rng, history)
        wave_responses["response_id"] += next_response - 1
        next_contact += len(wave_contacts)
        next_response += len(wave_responses)
        contacts.append(wave_contacts)
        responses.append(wave_responses)
        if progress:
            progress(k + 1, len(waves))
    contact_frame = pd.concat(contacts, ignore_index=True) if contacts else None
    response_frame = pd.concat(responses, ignore_index=True) if responses else None
    return _conform("contacts", contact_frame), _conform("responses", response_frame)


def _conform(name: str, frame: pd.DataFrame | None) -> pa.Table:
    schema = table(name)
    if frame is None:
        return schema.conform(schema.arrow_schema.empty_table())
    return schema.conform(pa.Table.from_pandas(frame, preserve_index=False))
