"""Run a campaign against the simulated bank over weeks, under any targeting policy.

Each week (a *wave*) the policy picks its contacts from the customers who may be reached; the
campaign's random holdout — the same customers for every policy, drawn by the engine's own
control-group hash — is decided but not sent; every policy sends the same number of contacts
(equal contact budget). Responses are drawn from the simulated bank's ground truth
(:func:`qianmian.world.respond.draw_responses`), with fatigue counting each customer's earlier
contacts, and flow back before the next wave: unsubscribes opt the customer out, a policy that
learns (the engine's bandit, suppressions) is told the outcomes, and model-based policies
retrain on schedule from the contacts whose 30-day outcome window has closed.

Every wave draws from the same random stream whatever the policy (common random numbers), so
differences between policies are differences in what they chose. Beside the drawn outcomes,
each contact carries its *expected* outcome from the ground truth (``true_uplift``,
``true_complaint``, ...), which measures a policy without sampling noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd

from qianmian.analytics.frames import CampaignFrames
from qianmian.campaigns.policies import Policy, Wave
from qianmian.campaigns.sim_bank import SimBank
from qianmian.decide.control import control_period, in_control_many
from qianmian.errors import invalid_parameter
from qianmian.world.respond import draw_responses, recent_contact_counts

__all__ = ["PolicyRun", "SimulationConfig", "simulate_policy", "summarise_runs"]

Progress = Callable[[int, int], None] | None


@dataclass(frozen=True)
class SimulationConfig:
    """How long a simulated campaign runs and how much it sends each week."""

    start: datetime
    weeks: int = 4
    contacts_per_week: int = 1000
    retrain_every: int = 0  # weeks between retraining the models (0: never)
    seed: int = 7

    def __post_init__(self) -> None:
        if self.weeks < 1:
            raise invalid_parameter(self, "weeks", "at least 1", self.weeks)
        if self.contacts_per_week < 1:
            raise invalid_parameter(self, "contacts_per_week", "at least 1", self.contacts_per_week)
        if self.retrain_every < 0:
            raise invalid_parameter(self, "retrain_every", "0 (never) or more", self.retrain_every)


class Learner(Protocol):
    """A policy that learns between waves."""

    def learn(self, responses: pd.DataFrame, ignored: pd.DataFrame, at: datetime) -> int: ...


class Retrainer(Protocol):
    """A policy whose model retrains on schedule from closed contacts (with their features)."""

    def retrain(self, closed: pd.DataFrame, at: datetime) -> str: ...


@dataclass
class PolicyRun:
    """What one policy did in the simulation: its contacts (with their expected outcomes),
    the responses drawn, and what it learnt along the way."""

    policy: str
    contacts: pd.DataFrame
    responses: pd.DataFrame
    events: list[str] = field(default_factory=list)

    def frames(self, customers: pd.DataFrame | None = None) -> CampaignFrames:
        return CampaignFrames(self.contacts, self.responses, customers)


def simulate_policy(
    bank: SimBank, policy: Policy, config: SimulationConfig, *, progress: Progress = None
) -> PolicyRun:
    """Run the campaign of ``bank`` under ``policy`` for ``config.weeks`` weekly waves."""
    campaign = bank.campaign
    share = campaign.holdout_share
    rows_needed = math.ceil(config.contacts_per_week / (1 - share) * 1.1) + 10
    costs = {c: spec.cost for c, spec in bank.catalogue.channels.items()}
    opted_out = bank.opted_out.copy()
    history = bank.history[["customer_id", "ts", "is_holdout"]]
    sim_contacts: list[pd.DataFrame] = []
    sim_responses: list[pd.DataFrame] = []
    fed = pd.DataFrame()
    events: list[str] = []
    position = pd.Series(np.arange(len(bank.customer_ids)), index=bank.customer_ids)
    for k in range(config.weeks):
        ts = config.start + timedelta(weeks=k)
        contacts_so_far = _concat(sim_contacts)
        responses_so_far = _concat(sim_responses)
        if k and len(responses_so_far):
            known = responses_so_far[pd.to_datetime(responses_so_far["ts"]) < ts]
            new = known if fed.empty else known[~known["response_id"].isin(fed["response_id"])]
            fed = known
            quits = new.loc[new["response_type"] == "unsubscribed", "customer_id"]
            opted_out[position.reindex(quits).dropna().to_numpy(int)] = True
            learn = getattr(policy, "learn", None)
            if learn is not None:
                learn(new, _unconverted(contacts_so_far, known, ts), ts)
            retrain = getattr(policy, "retrain", None)
            if retrain is not None and config.retrain_every and k % config.retrain_every == 0:
                events.append(retrain(_closed(contacts_so_far, responses_so_far, ts), ts))
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(k,)))
        wave = Wave(
            index=k,
            ts=ts,
            quota=rows_needed,
            sent_target=config.contacts_per_week,
            customer_ids=bank.customer_ids,
            offers=bank.offers,
            channels=bank.channels,
            allowed=bank.allowed(opted_out),
            rng=rng,
        )
        chosen = policy.choose(wave)
        contacts = _as_contacts(chosen, policy.name, campaign.id, ts, share, config, k)
        contacts["cost"] = np.where(contacts["is_holdout"], 0.0, contacts["channel"].map(costs))
        truth_rows = contacts.assign(recent_contacts=recent_contact_counts(contacts, history))
        truth = bank.oracle.truth(truth_rows)
        sent = ~contacts["is_holdout"].to_numpy(bool)
        contacts["true_uplift"] = truth["uplift"].to_numpy()
        contacts["true_conversion"] = np.where(sent, truth["p_contacted"], truth["p_baseline"])
        contacts["true_value"] = truth["value"].to_numpy()
        contacts["true_complaint"] = np.where(sent, truth["p_complain"], 0.0)
        contacts["true_unsubscribe"] = np.where(sent, truth["p_unsubscribe"], 0.0)
        draws = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(k, 1)))
        responses = draw_responses(bank.oracle, contacts, draws, history)
        responses["contact_id"] = responses["contact_id"].astype(str)
        responses["response_id"] = [f"{policy.name}-{k}-{i}" for i in range(len(responses))]
        sim_contacts.append(contacts)
        sim_responses.append(responses)
        history = pd.concat([history, contacts[["customer_id", "ts", "is_holdout"]]])
        if progress:
            progress(k + 1, config.weeks)
    return PolicyRun(policy.name, _concat(sim_contacts), _concat(sim_responses), events)


def _as_contacts(
    chosen: pd.DataFrame,
    policy: str,
    campaign_id: str,
    ts: datetime,
    share: float,
    config: SimulationConfig,
    k: int,
) -> pd.DataFrame:
    """The policy's choice as contacts: holdout marked, trimmed to the week's sent budget."""
    out = chosen.reset_index(drop=True)
    if "is_holdout" not in out:
        period = control_period(ts)
        out["is_holdout"] = in_control_many(out["customer_id"].tolist(), campaign_id, period, share)
        sent_rank = np.cumsum(~out["is_holdout"].to_numpy(bool))
        out = out[sent_rank <= config.contacts_per_week].reset_index(drop=True)
        out["contact_id"] = [f"{policy}-{k}-{i}" for i in range(len(out))]
    out["contact_id"] = out["contact_id"].astype(str)
    out["customer_id"] = out["customer_id"].astype(np.int64)
    out["is_holdout"] = out["is_holdout"].astype(bool)
    out["campaign_id"] = campaign_id
    out["policy"] = policy
    out["ts"] = pd.Timestamp(ts)
    return out[
        [
            "contact_id",
            "customer_id",
            "campaign_id",
            "policy",
            "offer_id",
            "channel",
            "ts",
            "is_holdout",
            "action_probability",
        ]
    ].copy()


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _unconverted(contacts: pd.DataFrame, known: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """Sent contacts not (yet) converted at ``at`` that were not reported before."""
    converted = set(known.loc[known["response_type"] == "approved", "contact_id"])
    last_week = pd.to_datetime(contacts["ts"]) >= pd.Timestamp(at) - timedelta(weeks=1)
    keep = ~contacts["is_holdout"] & ~contacts["contact_id"].isin(converted) & last_week
    return contacts[keep]


def _closed(contacts: pd.DataFrame, responses: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """Contacts whose 30-day outcome window closed before ``at``, with ``converted``/``value``."""
    window = timedelta(days=30)
    done = contacts[pd.to_datetime(contacts["ts"]) + window <= pd.Timestamp(at)]
    approved = responses[responses["response_type"] == "approved"]
    won = approved.merge(done[["contact_id", "ts"]], on="contact_id", suffixes=("", "_c"))
    won = won[pd.to_datetime(won["ts"]) < pd.to_datetime(won["ts_c"]) + window]
    value = won.groupby("contact_id")["value"].sum()
    return done.assign(
        converted=done["contact_id"].isin(value.index).astype(int),
        value=done["contact_id"].map(value).fillna(0.0),
    )


def summarise_runs(runs: list[PolicyRun], *, baseline: str = "random") -> pd.DataFrame:
    """One row per policy: budget, expected and drawn outcomes, ROI and harm rates.

    ``incremental_conversions`` is the expected number from the ground truth (sum of the true
    uplift of the contacts sent); ``measured_incremental`` is what a bank would see: the sent
    contacts' conversion rate minus the holdout's, times the contacts sent, with a 95 % CI.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep

    rows: list[dict[str, Any]] = []
    for run in runs:
        c = run.contacts
        sent = ~c["is_holdout"].to_numpy(bool)
        frames = run.frames()
        approved = frames.outcome("approved").to_numpy(bool)
        complained = frames.outcome("complained").to_numpy(bool)
        unsub = frames.outcome("unsubscribed").to_numpy(bool)
        n_t, n_c = int(sent.sum()), int((~sent).sum())
        x_t, x_c = int(approved[sent].sum()), int(approved[~sent].sum())
        diff = x_t / n_t - (x_c / n_c if n_c else 0.0)
        lo, hi = (
            confint_proportions_2indep(x_t, n_t, x_c, n_c, compare="diff")
            if n_c
            else (np.nan, np.nan)
        )
        cost = float(c.loc[sent, "cost"].sum())
        incr = float(c.loc[sent, "true_uplift"].sum())
        incr_value = float((c["true_uplift"] * c["true_value"])[sent].sum())
        rows.append(
            {
                "policy": run.policy,
                "contacts": n_t,
                "holdout": n_c,
                "cost": cost,
                "conversions": x_t,
                "incremental_conversions": incr,
                "measured_incremental": diff * n_t,
                "ci_low": float(lo) * n_t,
                "ci_high": float(hi) * n_t,
                "incremental_value": incr_value,
                "roi": (incr_value - cost) / cost if cost > 0 else np.nan,
                "complaint_rate": float(complained[sent].mean()),
                "expected_complaint_rate": float(c.loc[sent, "true_complaint"].mean()),
                "unsubscribe_rate": float(unsub[sent].mean()),
                "customers_reached": int(c.loc[sent, "customer_id"].nunique()),
            }
        )
    out = pd.DataFrame(rows).set_index("policy")
    if baseline in out.index:
        out[f"vs_{baseline}"] = (
            out["incremental_conversions"] / out.loc[baseline, "incremental_conversions"]
        )
    return out
