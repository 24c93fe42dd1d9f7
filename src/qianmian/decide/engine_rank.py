"""The engine's second half: score, rank, hold out, reserve, and write the offers presented.

Called by :meth:`DecisionEngine.decide <qianmian.decide.engine.DecisionEngine.decide>` with
the candidates the filter stages kept. Mandatory service messages go first, in catalogue
priority order. Marketing candidates are ranked by expected incremental value, weighted by the
business levers::

    EV = weight × (uplift × value − (channel cost + P(convert) × incentive cost))

with the bandit's Thompson draws in place of the point estimates when exploring; the logged
``action_probability`` of each candidate is the share of draws it won (the "send nothing"
option included). When the models cannot be used the catalogue's priority order decides.
The winner's campaign may hold the customer out (its control group): then nothing is sent and
the decision is logged with ``arm = "control"``. What is sent is reserved against caps, budgets
and capacity atomically, falling to the next-ranked candidate when one is full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qianmian.decide.arbitration import arbitration_factors, rules_order
from qianmian.decide.arbitration import rank as rank_by_value
from qianmian.decide.bandit import ThompsonBandit, arm_key
from qianmian.decide.control import control_period, in_control
from qianmian.decide.decision import Arm, Candidate, ChosenOffer, DecisionRequest
from qianmian.decide.limits import blocked_reason, contact_attempt
from qianmian.decide.outage import STATE
from qianmian.decide.scoring import ScoringUnavailable
from qianmian.decide.state.base import Counter, ReservationAttempt
from qianmian.errors import StoreError

if TYPE_CHECKING:
    from qianmian.decide.engine import DecisionEngine, _Option

__all__ = ["Ranked", "rank_candidates"]

_BANDIT = ThompsonBandit()
_DRAWS = 200
_RESERVE_BATCH = 4  # candidates offered to one atomic reservation


@dataclass(slots=True)
class Ranked:
    """What ranking produced: the offers presented, the arm, and what to undo on failure."""

    offers: list[ChosenOffer] = field(default_factory=list)
    arm: Arm = "engine"
    model_versions: dict[str, int] = field(default_factory=dict)
    reservations: list[str] = field(default_factory=list)
    scored: bool = False  # the models scored the marketing candidates


def _say(language: str, zh: str, en: str) -> str:
    return zh if language == "zh" else en


def rank_candidates(
    engine: DecisionEngine,
    request: DecisionRequest,
    candidates: list[Candidate],
    options: list[_Option],
    features: dict[str, Any],
    *,
    personal: bool,
    problems: list[str],
) -> Ranked:
    """Rank the kept candidates, reserve the winners; mark every other candidate's fate."""
    kept = [i for i, c in enumerate(candidates) if c.kept]
    service = sorted(
        (i for i in kept if candidates[i].service),
        key=lambda i: (options[i].offer.priority, candidates[i].offer_id),
    )
    marketing = [i for i in kept if not candidates[i].service]
    out = Ranked()
    order = list(service)
    use_rules = False
    if marketing:
        why, use_rules = _score(engine, candidates, options, marketing, features, personal, out)
        if why:
            problems.append(why)
        order += _marketing_order(
            engine, request, candidates, options, marketing, features, use_rules, problems, out
        )
    if use_rules and out.arm == "engine":
        out.arm = "fallback"
    _reserve_and_present(engine, request, candidates, options, order, features, out, problems)
    return out


def _score(
    engine: DecisionEngine,
    candidates: list[Candidate],
    options: list[_Option],
    idx: list[int],
    features: dict[str, Any],
    personal: bool,
    out: Ranked,
) -> tuple[str | None, bool]:
    """Fill p_response, uplift, value and cost; return (why the models were not used, rules?)."""
    offers = [options[i].offer for i in idx]
    prior = np.array([o.prior_rate for o in offers])
    p, uplift = prior, prior  # without personal data: the offer's prior rate, all of it uplift
    why: str | None = None
    if personal:
        if engine.scorer is None:
            why = engine.scorer_reason or "no model loaded"
        else:
            try:
                scores = engine.scorer.score(
                    features,
                    [candidates[i].offer_id for i in idx],
                    [candidates[i].channel for i in idx],
                )
                p, uplift = np.asarray(scores.p_response), np.asarray(scores.uplift)
                out.model_versions = dict(scores.model_versions)
            except ScoringUnavailable as e:
                why = f"model unavailable: {e}"
            else:
                out.scored = True
    channels = engine.catalogue.channels
    for k, i in enumerate(idx):
        cand, offer = candidates[i], offers[k]
        cand.p_response, cand.uplift = float(p[k]), float(uplift[k])
        cand.value = float(offer.value)
        cand.cost = float(channels[cand.channel].cost + p[k] * offer.incentive_cost)
    return why, why is not None


def _marketing_order(
    engine: DecisionEngine,
    request: DecisionRequest,
    candidates: list[Candidate],
    options: list[_Option],
    idx: list[int],
    features: dict[str, Any],
    use_rules: bool,
    problems: list[str],
    out: Ranked,
) -> list[int]:
    """Marketing candidates in the order to try them; the rest marked removed by arbitration."""
    cands = [candidates[i] for i in idx]
    factors = arbitration_factors(
        np.array([c.p_response for c in cands], dtype=float),
        np.array([c.uplift for c in cands], dtype=float),
        np.array([c.value for c in cands], dtype=float),
        np.array([c.cost for c in cands], dtype=float),
        np.array([c.weight for c in cands], dtype=float),
        engine.arbitration,
    )
    ev = factors.expected_values()
    for c, v in zip(cands, ev, strict=True):
        c.expected_value = round(float(v), 4)
    lang = engine.language
    if use_rules:
        pos = rules_order([options[i].offer.priority for i in idx], [c.offer_id for c in cands])
        for rank, k in enumerate(pos):
            cands[k].action_probability = 1.0 if rank == 0 else 0.0
        return [idx[k] for k in pos]
    greedy = rank_by_value(
        ev, [options[i].offer.priority for i in idx], [c.offer_id for c in cands]
    )
    if engine.exploration:
        bucket = str(features.get("lifecycle_stage") or "unknown")
        keys = [arm_key(c.offer_id, c.channel, bucket) for c in cands]
        try:
            stats = engine.bandit_stats.get(keys, engine.state.bandit_stats)
        except StoreError as e:
            problems.append(f"bandit statistics unavailable ({e})")
            stats = [(0.0, 0.0)] * len(keys)
        sel = engine.draw(
            _BANDIT.select,
            factors.rates,
            factors.baselines,
            factors.values,
            factors.costs,
            factors.weights,
            stats,
            n_draws=_DRAWS,
        )
        for c, prob in zip(cands, sel.action_probabilities, strict=True):
            c.action_probability = round(float(prob), 4)
        if sel.chosen is None:
            for c in cands:
                c.remove(
                    "arbitration",
                    _say(lang, "不发送的期望价值更高", "sending nothing is worth more"),
                )
            return []
        if sel.chosen != sel.greedy:
            out.arm = "explore"
        first = [sel.chosen]
    else:
        for k, c in enumerate(cands):
            c.action_probability = 1.0 if k == int(greedy[0]) and ev[k] > 0 else 0.0
        first = [int(greedy[0])] if ev[int(greedy[0])] > 0 else []
    rest = [int(k) for k in greedy if ev[int(k)] > 0 and int(k) not in first]
    for k, c in enumerate(cands):
        if k not in first and ev[k] <= 0:
            c.remove(
                "arbitration",
                _say(
                    lang,
                    f"期望增量价值 ¥{ev[k]:.2f} ≤ 0",
                    f"expected incremental value ¥{ev[k]:.2f} ≤ 0",
                ),
            )
    return [idx[k] for k in first + rest]


def _reserve_and_present(
    engine: DecisionEngine,
    request: DecisionRequest,
    candidates: list[Candidate],
    options: list[_Option],
    order: list[int],
    features: dict[str, Any],
    out: Ranked,
    problems: list[str],
) -> None:
    """Reserve down ``order`` until ``max_offers`` are presented (or the winner is held out)."""
    lang = engine.language
    remaining = list(order)
    presented_offers: set[str] = set()
    while remaining and len(out.offers) < request.max_offers:
        # the next few in rank order: one round trip almost always finds one that fits, and a
        # short list keeps the atomic script short (the rest are tried only if these are full)
        batch = remaining[:_RESERVE_BATCH]
        # a combination's cooldown is held by its first offer; the others may join it
        first = not out.offers
        attempts = [_attempt(engine, request, candidates[i], options[i], first) for i in batch]
        down = engine.outages.down(STATE)
        try:
            if down is not None:
                raise StoreError(down)  # failed moments ago: do not wait for its time-out again
            result = engine.state.reserve(
                attempts,
                now=request.ts,
                ttl_seconds=engine.catalogue.contact_policy.reservation_ttl_seconds,
            )
        except StoreError as e:
            if down is None:
                engine.outages.failed(STATE, e)
            pairs = [
                (candidates[i], options[i], _attempt(engine, request, candidates[i], options[i]))
                for i in remaining
            ]
            _present_unreserved(engine, request, pairs, features, out, e)
            if not any(p.startswith("decision state unavailable") for p in problems):
                problems.append(f"decision state unavailable ({e})")  # say so: flagged fallback
            return
        tried = batch if result.index is None else batch[: result.index]
        for i, key in zip(tried, result.blocked, strict=False):
            candidates[i].remove("capacity", blocked_reason(key, lang))
        if result.index is None:
            remaining = remaining[len(batch) :]
            continue
        winner = remaining[result.index]
        cand, option = candidates[winner], options[winner]
        remaining = remaining[result.index + 1 :]
        if (
            not out.offers
            and not cand.service
            and option.campaign is not None
            and in_control(
                request.customer_id,
                option.campaign.id,
                control_period(request.ts),
                option.campaign.holdout_share,
            )
        ):
            if result.reservation_id:
                engine._release(result.reservation_id)
            cand.remove(
                "control",
                _say(
                    lang,
                    f"本期为活动 {option.campaign.id} 的随机对照组，不发送",
                    f"in campaign {option.campaign.id}'s random control group this period: not sent",
                ),
            )
            out.arm = "control"
            break
        if result.reservation_id:
            out.reservations.append(result.reservation_id)
        presented_offers.add(cand.offer_id)
        for i in remaining:
            if candidates[i].offer_id in presented_offers:
                candidates[i].remove(
                    "arbitration", _say(lang, "该权益已推荐", "the same offer is already presented")
                )
        remaining = [i for i in remaining if candidates[i].kept]
        out.offers.append(
            _present(
                engine,
                request,
                cand,
                option,
                features,
                len(out.offers) + 1,
                result.reservation_id,
                out,
            )
        )
    for i in remaining:
        candidates[i].remove(
            "arbitration", _say(lang, "排序低于已推荐的权益", "ranked below the offers presented")
        )


def _present_unreserved(
    engine: DecisionEngine,
    request: DecisionRequest,
    pairs: list[tuple[Candidate, _Option, Any]],
    features: dict[str, Any],
    out: Ranked,
    error: StoreError,
) -> None:
    """The state cannot reserve: mandatory service messages that use no counter still go;
    everything else is removed (fail closed: no cap, budget or capacity can be checked)."""
    lang = engine.language
    why = _say(
        lang, f"无法预占触达额度与预算：{error}", f"caps and budgets could not be reserved: {error}"
    )
    shown = {o.offer_id for o in out.offers}
    for cand, option, attempt in pairs:
        if not cand.service or attempt.counters:
            cand.remove("capacity", why)
        elif len(out.offers) >= request.max_offers or cand.offer_id in shown:
            cand.remove(
                "arbitration",
                _say(lang, "排序低于已推荐的权益", "ranked below the offers presented"),
            )
        else:
            shown.add(cand.offer_id)
            rank = len(out.offers) + 1
            out.offers.append(_present(engine, request, cand, option, features, rank, None, out))


def _attempt(
    engine: DecisionEngine,
    request: DecisionRequest,
    cand: Candidate,
    option: _Option,
    with_cooldown: bool = True,
) -> Any:
    policy = engine.catalogue.contact_policy
    offer, campaign = option.offer, option.campaign
    per_channel = policy.caps.per_channel.get(cand.channel)
    channel = engine.catalogue.channels[cand.channel]
    attempt = contact_attempt(
        f"{cand.treatment_id}@{cand.campaign_id or '-'}",
        customer_id=request.customer_id,
        channel=cand.channel,
        offer_id=cand.offer_id,
        campaign_id=cand.campaign_id,
        ts=request.ts,
        money=channel.cost + offer.incentive_cost,
        channel_caps=per_channel.by_period() if per_channel is not None else {},
        all_caps=policy.caps.all_channels.by_period(),
        offer_budget=(offer.budget_count, offer.budget_cny),
        campaign_budget=(campaign.budget_count, campaign.budget_cny) if campaign else (None, None),
        capacity_per_day=channel.capacity_per_day,
        service=cand.service,
    )
    if request.cooldown is not None and with_cooldown:
        key, seconds = request.cooldown
        counter = Counter(f"cooldown:{key}", 1.0, 1.0, int(seconds))
        attempt = ReservationAttempt(attempt.label, (*attempt.counters, counter))
    return attempt


def _present(
    engine: DecisionEngine,
    request: DecisionRequest,
    cand: Candidate,
    option: _Option,
    features: dict[str, Any],
    rank: int,
    reservation_id: str | None,
    out: Ranked,
) -> ChosenOffer:
    lang = engine.language
    offer, treatment = option.offer, option.treatment
    name = offer.name_zh if lang == "zh" else offer.name_en
    template = treatment.copy_zh if lang == "zh" else treatment.copy_en
    copy = engine.copy.render(
        template,
        offer_name=name,
        channel=cand.channel,
        max_length=engine.catalogue.channels[cand.channel].max_length,
        features=features,
        event=request.event,
    )
    reasons: list[str] = []
    if offer.service:
        reasons.append(
            _say(lang, "服务通知（不计入营销频次）", "service message (not counted in caps)")
        )
    if offer.applicable_when is not None:
        reasons.append(
            offer.applicable_when.reason_zh if lang == "zh" else offer.applicable_when.reason_en
        )
    if not offer.service and not out.scored:
        reasons.append(
            _say(
                lang, "规则兜底：按权益目录优先级", "rules fallback: the catalogue's priority order"
            )
            if out.arm == "fallback"
            else _say(
                lang,
                "非个性化推荐：按全体客户的平均转化率排序",
                "non-personalised: ranked by the average conversion rate of all customers",
            )
        )
    elif not offer.service and cand.p_response is not None and cand.uplift is not None:
        reasons.append(
            _say(
                lang,
                f"预计触达后转化率 {cand.p_response:.1%}，较不触达提升 {cand.uplift * 100:+.1f} 个百分点",
                f"predicted conversion if contacted {cand.p_response:.1%}, "
                f"{cand.uplift * 100:+.1f} points over not contacting",
            )
        )
        reasons.append(
            _say(
                lang,
                f"期望增量价值 ¥{cand.expected_value:,.2f}",
                f"expected incremental value ¥{cand.expected_value:,.2f}",
            )
        )
    return ChosenOffer(
        rank=rank,
        offer_id=cand.offer_id,
        treatment_id=cand.treatment_id,
        channel=cand.channel,
        campaign_id=cand.campaign_id,
        name=name,
        copy=copy,
        expected_value=float(cand.expected_value or 0.0),
        action_probability=float(
            cand.action_probability if cand.action_probability is not None else 1.0
        ),
        reasons=tuple(reasons),
        reservation_id=reservation_id,
        service=cand.service,
    )
