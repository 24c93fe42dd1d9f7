"""The filter stages, in order: eligibility, applicability, suitability.

Each check returns ``None`` when a candidate passes, or the reason it is removed — a sentence
a compliance officer can read — so the engine can record the stage and the reason on the
candidate. A value the customer's record lacks (an unknown age, no risk assessment) removes the
candidate: a rule that cannot be checked is not passed.

* **Eligibility** — law and product terms: minimum (and maximum) age, not already holding the
  product, a credit-score floor, and the offer's own eligibility conditions.
* **Applicability** — relevant now: the campaign is live (and, in a pilot, the customer is in
  the pilot's share), dates, the campaign's channels and audience, the placement, the channel
  reachable (app channels need the app used in the last 90 days), the offer's condition.
* **Suitability** — in the customer's interest: a wealth product's risk level never above the
  customer's risk tolerance; no credit offer to a customer showing financial stress
  (:data:`STRESS_UTILISATION` of the limit used, or a missed payment in six months); the
  offer's own suitability conditions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from qianmian.decide.control import in_pilot

if TYPE_CHECKING:
    from qianmian.decide.catalogue import Catalogue
    from qianmian.decide.catalogue_schema import CampaignSpec, Condition, OfferSpec, TreatmentSpec
    from qianmian.decide.state.base import CustomerContactState

__all__ = [
    "APP_CHANNELS",
    "LIVE_STATUSES",
    "STRESS_UTILISATION",
    "applicability_reason",
    "eligibility_reason",
    "suitability_reason",
]

STRESS_UTILISATION = 0.95  # share of the credit limit used that counts as "at the limit"
APP_CHANNELS = frozenset({"app_push", "in_app"})
LIVE_STATUSES = frozenset({"pilot", "full"})


def _number(value: Any) -> float | None:
    """The value as a number, or None when it is missing (None or NaN)."""
    if value is None:
        return None
    out = float(value)
    return None if math.isnan(out) else out


def _say(language: str, zh: str, en: str) -> str:
    return zh if language == "zh" else en


def _failed_condition(
    catalogue: Catalogue, conditions: list[Condition], row: Mapping[str, Any], language: str
) -> str | None:
    for condition in conditions:
        if not catalogue.rule(condition.when).evaluate_one(row):
            return _say(language, condition.reason_zh, condition.reason_en)
    return None


def eligibility_reason(
    catalogue: Catalogue,
    offer: OfferSpec,
    row: Mapping[str, Any],
    contact: CustomerContactState | None,
    language: str = "zh",
) -> str | None:
    """Why ``offer`` is not open to this customer by law or product terms (None: eligible)."""
    age = _number(row.get("age"))
    if offer.min_age is not None or offer.max_age is not None:
        if age is None:
            return _say(
                language, "年龄未知，无法确认准入条件", "age unknown: eligibility cannot be checked"
            )
        if offer.min_age is not None and age < offer.min_age:
            return _say(
                language, f"未满 {offer.min_age} 周岁", f"under {offer.min_age} years of age"
            )
        if offer.max_age is not None and age > offer.max_age:
            return _say(
                language, f"超过 {offer.max_age} 周岁", f"over {offer.max_age} years of age"
            )
    if offer.min_credit_score is not None:
        score = _number(row.get("credit_score"))
        if score is None or score < offer.min_credit_score:
            return _say(
                language,
                f"信用评分低于 {offer.min_credit_score}",
                f"credit score below {offer.min_credit_score}",
            )
    if contact is not None and offer.not_holding:
        held = sorted(set(offer.not_holding) & contact.held_products)
        if held:
            return _say(language, f"已持有 {', '.join(held)}", f"already holds {', '.join(held)}")
    return _failed_condition(catalogue, offer.eligibility, row, language)


def applicability_reason(
    catalogue: Catalogue,
    offer: OfferSpec,
    campaign: CampaignSpec | None,
    treatment: TreatmentSpec,
    row: Mapping[str, Any],
    *,
    customer_id: int,
    day: date,
    placement: str | None,
    language: str = "zh",
) -> str | None:
    """Why ``offer`` on ``treatment``'s channel is not relevant now (None: applicable)."""
    channel = treatment.channel
    windows = [("offer", offer.start_date, offer.end_date)]
    if campaign is not None:
        windows.append(("campaign", campaign.start_date, campaign.end_date))
    for what, start, end in windows:
        if (start is not None and day < start) or (end is not None and day > end):
            return _say(
                language,
                f"{'活动' if what == 'campaign' else '权益'}不在有效期内 ({start} 至 {end})",
                f"outside the {what}'s dates ({start} to {end})",
            )
    if campaign is not None:
        if campaign.status not in LIVE_STATUSES:
            return _say(
                language,
                f"活动 {campaign.id} 状态为 {campaign.status}",
                f"campaign {campaign.id} is {campaign.status}",
            )
        if campaign.status == "pilot" and not in_pilot(
            customer_id, campaign.id, campaign.pilot_share
        ):
            return _say(
                language,
                f"不在活动 {campaign.id} 的试点范围 ({campaign.pilot_share:.0%})",
                f"not in campaign {campaign.id}'s pilot ({campaign.pilot_share:.0%})",
            )
        if campaign.channels and channel not in campaign.channels:
            return _say(
                language, f"活动不使用 {channel} 渠道", f"the campaign does not use {channel}"
            )
        if campaign.audience and not catalogue.rule(campaign.audience).evaluate_one(row):
            return _say(
                language,
                f"不在活动 {campaign.id} 的目标客群",
                f"not in campaign {campaign.id}'s audience",
            )
    if offer.placements is not None and placement not in offer.placements:
        return _say(
            language,
            f"版位 {placement} 不展示该权益",
            f"the placement {placement} does not show this offer",
        )
    if channel in APP_CHANNELS:
        logins = _number(row.get("logins_90d"))
        if logins is None or logins <= 0:
            return _say(language, "近90天未使用App", "has not used the app in 90 days")
    if offer.applicable_when is not None and not catalogue.rule(
        offer.applicable_when.when
    ).evaluate_one(row):
        return _say(
            language,
            f"当前情境不适用：{offer.applicable_when.reason_zh}",
            f"not relevant now: {offer.applicable_when.reason_en}",
        )
    return None


def suitability_reason(
    catalogue: Catalogue, offer: OfferSpec, row: Mapping[str, Any], language: str = "zh"
) -> str | None:
    """Why ``offer`` is not in this customer's interest (None: suitable)."""
    if offer.risk_level is not None:
        level = int(offer.risk_level[1])
        tolerance = _number(row.get("risk_level"))
        if tolerance is None:
            return _say(
                language,
                "无有效风险承受能力评估，不推荐理财产品",
                "no valid risk assessment: wealth products are not offered",
            )
        if level > tolerance:
            return _say(
                language,
                f"产品风险 {offer.risk_level} 高于客户风险承受能力 C{int(tolerance)}",
                f"product risk {offer.risk_level} is above the customer's tolerance "
                f"C{int(tolerance)}",
            )
    if offer.credit:
        missed = _number(row.get("missed_payments_6m"))
        utilisation = _number(row.get("utilisation_last"))
        if missed is not None and missed > 0:
            return _say(
                language,
                "近6个月有逾期，不推荐信贷类权益",
                "missed a payment in the last 6 months: no credit offers",
            )
        if utilisation is not None and utilisation >= STRESS_UTILISATION:
            return _say(
                language,
                f"额度使用率 {utilisation:.0%}，接近上限，不推荐信贷类权益",
                f"using {utilisation:.0%} of the credit limit: no credit offers",
            )
    return _failed_condition(catalogue, offer.suitable_when, row, language)
