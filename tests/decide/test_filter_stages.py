"""Every filter stage and contact rule, as tables of (situation → stage removed, reason)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from qianmian.decide.catalogue import Catalogue, parse_catalogue
from qianmian.decide.contact_policy import contact_reason, in_quiet_hours
from qianmian.decide.filters import applicability_reason, eligibility_reason, suitability_reason
from qianmian.decide.state.base import CustomerContactState
from qianmian.features.catalogue import FEATURES

CATALOGUE_YAML = """
version: test-1
offers:
  - id: CARD
    type: card_acquisition
    name_zh: 白金卡
    name_en: Platinum card
    product_id: CC-PLAT
    value: 1000
    min_credit_score: 650
    max_age: 60
    eligibility:
      - when: monthly_income >= 10000
        reason_zh: 月收入低于1万元
        reason_en: monthly income under 10,000
    treatments:
      - {channel: sms, copy_zh: 办白金卡, copy_en: Get the card}
      - {channel: in_app, copy_zh: 办白金卡, copy_en: Get the card}
  - id: WEALTH
    type: wealth
    name_zh: 平衡理财
    name_en: Balanced fund
    product_id: WM-R3
    value: 500
    risk_level: R3
    suitable_when:
      - when: age < 65
        reason_zh: 65岁以上不推荐
        reason_en: not offered over 65
    treatments:
      - {channel: in_app, copy_zh: 理财, copy_en: Wealth}
  - id: INSTAL
    type: instalment_coupon
    name_zh: 分期券
    name_en: Instalment coupon
    value: 300
    placements: [checkout, home_banner]
    start_date: 2026-01-01
    end_date: 2026-12-31
    applicable_when:
      when: event_amount >= 3000
      reason_zh: 刚刚大额消费
      reason_en: just made a large purchase
    treatments:
      - {channel: in_app, copy_zh: 分期, copy_en: Instalments}
  - id: COUPON
    type: merchant_coupon
    name_zh: 餐饮券
    name_en: Dining coupon
    value: 50
    personalised: false
    treatments:
      - {channel: sms, copy_zh: 餐饮满减, copy_en: Dining}
      - {channel: app_push, copy_zh: 餐饮满减, copy_en: Dining}
  - id: BILL
    type: service
    service: true
    name_zh: 账单提醒
    name_en: Bill reminder
    value: 0
    treatments:
      - {channel: sms, copy_zh: 账单到期, copy_en: Bill due}
campaigns:
  - id: LIVE
    name_zh: 进行中
    name_en: Live
    status: full
    offers: [CARD]
    start_date: 2026-01-01
    end_date: 2026-12-31
    audience: city_tier = '一线'
    channels: [sms]
  - id: PAUSED
    name_zh: 暂停
    name_en: Paused
    status: paused
    offers: [CARD]
    start_date: 2026-01-01
    end_date: 2026-12-31
  - id: PILOT0
    name_zh: 试点
    name_en: Pilot
    status: pilot
    pilot_share: 0.01
    offers: [CARD]
    start_date: 2026-01-01
    end_date: 2026-12-31
  - id: OVER
    name_zh: 已结束
    name_en: Over
    status: full
    offers: [CARD]
    start_date: 2025-01-01
    end_date: 2025-12-31
"""
DAY = date(2026, 11, 22)
NOON = datetime(2026, 11, 22, 12, 0)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return parse_catalogue(CATALOGUE_YAML, name="test.yaml")


def customer_row(**overrides: Any) -> dict[str, Any]:
    """A feature row of a creditworthy, unstressed, middle-aged first-tier customer."""
    row: dict[str, Any] = dict.fromkeys(FEATURES)
    row.update(
        age=40,
        credit_score=720,
        monthly_income=20_000.0,
        risk_level=3,
        missed_payments_6m=0,
        utilisation_last=0.3,
        logins_90d=12,
        city_tier="一线",
        channel="in_app",
        placement=None,
        event_type=None,
        event_amount=None,
        event_category=None,
        event_page=None,
        hour=12,
        weekday=7,
        day=22,
        month=11,
    )
    row.update(overrides)
    return row


def contact_state(**overrides: Any) -> CustomerContactState:
    base: dict[str, Any] = {
        "customer_id": 7,
        "consents": frozenset({"sms", "app_push", "email", "call_center", "wechat"}),
    }
    base.update(overrides)
    return CustomerContactState(**base)


@pytest.mark.parametrize(
    ("offer", "row", "contact", "expected"),
    [
        ("CARD", {}, {}, None),
        ("CARD", {"age": 17}, {}, "under 18"),
        ("CARD", {"age": 61}, {}, "over 60"),
        ("CARD", {"age": None}, {}, "age unknown"),
        ("CARD", {"credit_score": 600}, {}, "credit score below 650"),
        ("CARD", {"credit_score": None}, {}, "credit score below 650"),
        ("CARD", {}, {"held_products": frozenset({"CC-PLAT"})}, "already holds CC-PLAT"),
        ("CARD", {"monthly_income": 8000.0}, {}, "monthly income under 10,000"),
        ("CARD", {"monthly_income": None}, {}, "monthly income under 10,000"),
        ("WEALTH", {"age": 18}, {}, None),
    ],
)
def test_eligibility(
    catalogue: Catalogue, offer: str, row: dict, contact: dict, expected: str | None
) -> None:
    why = eligibility_reason(
        catalogue, catalogue.offer(offer), customer_row(**row), contact_state(**contact), "en"
    )
    assert why == expected if expected is None else expected in why


@pytest.mark.parametrize(
    ("offer", "campaign", "channel", "row", "placement", "day", "expected"),
    [
        ("CARD", "LIVE", "sms", {}, None, DAY, None),
        ("CARD", "LIVE", "in_app", {}, None, DAY, "does not use in_app"),
        (
            "CARD",
            "LIVE",
            "sms",
            {"city_tier": "三线"},
            None,
            DAY,
            "not in campaign LIVE's audience",
        ),
        ("CARD", "PAUSED", "sms", {}, None, DAY, "campaign PAUSED is paused"),
        ("CARD", "PILOT0", "sms", {}, None, DAY, "not in campaign PILOT0's pilot"),
        ("CARD", "OVER", "sms", {}, None, DAY, "outside the campaign's dates"),
        ("INSTAL", None, "in_app", {"event_amount": 5000.0}, "checkout", DAY, None),
        ("INSTAL", None, "in_app", {"event_amount": 500.0}, "checkout", DAY, "not relevant now"),
        ("INSTAL", None, "in_app", {"event_amount": None}, "checkout", DAY, "not relevant now"),
        ("INSTAL", None, "in_app", {"event_amount": 5000.0}, "profile", DAY, "placement profile"),
        ("INSTAL", None, "in_app", {"event_amount": 5000.0}, None, DAY, "placement None"),
        (
            "INSTAL",
            None,
            "in_app",
            {"event_amount": 5000.0},
            "checkout",
            date(2027, 1, 1),
            "outside the offer's dates",
        ),
        (
            "INSTAL",
            None,
            "in_app",
            {"event_amount": 5000.0, "logins_90d": 0},
            "checkout",
            DAY,
            "has not used the app",
        ),
        ("COUPON", None, "sms", {"logins_90d": 0}, None, DAY, None),  # SMS needs no app
    ],
)
def test_applicability(
    catalogue: Catalogue,
    offer: str,
    campaign: str | None,
    channel: str,
    row: dict,
    placement: str | None,
    day: date,
    expected: str | None,
) -> None:
    spec = catalogue.offer(offer)
    treatment = next(t for t in spec.treatments if t.channel == channel)
    why = applicability_reason(
        catalogue,
        spec,
        catalogue.campaign(campaign) if campaign else None,
        treatment,
        customer_row(**row),
        customer_id=7,
        day=day,
        placement=placement,
        language="en",
    )
    assert why == expected if expected is None else expected in why


@pytest.mark.parametrize(
    ("offer", "row", "expected"),
    [
        ("WEALTH", {"risk_level": 3}, None),
        ("WEALTH", {"risk_level": 5}, None),
        ("WEALTH", {"risk_level": 2}, "product risk R3 is above the customer's tolerance C2"),
        ("WEALTH", {"risk_level": None}, "no valid risk assessment"),
        ("WEALTH", {"age": 70}, "not offered over 65"),
        ("CARD", {}, None),
        ("CARD", {"missed_payments_6m": 1}, "missed a payment"),
        ("CARD", {"utilisation_last": 0.97}, "97% of the credit limit"),
        ("CARD", {"utilisation_last": 0.9}, None),
        ("INSTAL", {"missed_payments_6m": 2}, "missed a payment"),
        ("COUPON", {"missed_payments_6m": 2}, None),  # not a credit offer
    ],
)
def test_suitability(catalogue: Catalogue, offer: str, row: dict, expected: str | None) -> None:
    why = suitability_reason(catalogue, catalogue.offer(offer), customer_row(**row), "en")
    assert why == expected if expected is None else expected in why


@pytest.mark.parametrize(
    ("offer", "channel", "contact", "ts", "expected"),
    [
        ("CARD", "sms", {}, NOON, None),
        ("CARD", "sms", None, NOON, "consent and opt-out could not be read"),
        ("CARD", "sms", {"marketing_opt_out": True}, NOON, "opted out of all marketing"),
        ("CARD", "sms", {"consents": frozenset({"email"})}, NOON, "no consent to marketing by sms"),
        ("CARD", "in_app", {"consents": frozenset()}, NOON, None),  # banners need no consent
        ("CARD", "sms", {"personalisation_opt_out": True}, NOON, "PIPL Art. 24"),
        ("COUPON", "sms", {"personalisation_opt_out": True}, NOON, None),  # not personalised
        (
            "CARD",
            "sms",
            {"marketing_suppressed_until": datetime(2026, 12, 1)},
            NOON,
            "complained: no marketing until 2026-12-01",
        ),
        ("CARD", "sms", {"marketing_suppressed_until": datetime(2026, 11, 1)}, NOON, None),
        ("CARD", "sms", {"hidden_offers": {"CARD": datetime(2027, 1, 1)}}, NOON, "hidden until"),
        ("COUPON", "sms", {"hidden_offers": {"CARD": datetime(2027, 1, 1)}}, NOON, None),
        ("CARD", "sms", {}, datetime(2026, 11, 22, 22, 30), "quiet hours for sms"),
        ("CARD", "sms", {}, datetime(2026, 11, 22, 7, 59), "quiet hours for sms"),
        ("CARD", "in_app", {}, datetime(2026, 11, 22, 22, 30), None),  # no quiet hours in-app
        ("COUPON", "app_push", {}, datetime(2026, 11, 22, 23, 0), "quiet hours for app_push"),
        # a mandatory service message skips preferences and suppressions, not quiet hours
        ("BILL", "sms", {"marketing_opt_out": True}, NOON, None),
        ("BILL", "sms", None, NOON, None),
        ("BILL", "sms", {"consents": frozenset()}, NOON, None),
        ("BILL", "sms", {}, datetime(2026, 11, 22, 23, 0), "quiet hours for sms"),
    ],
)
def test_contact_policy(
    catalogue: Catalogue,
    offer: str,
    channel: str,
    contact: dict | None,
    ts: datetime,
    expected: str | None,
) -> None:
    spec = catalogue.offer(offer)
    why = contact_reason(
        catalogue,
        offer_id=offer,
        channel=channel,
        personalised=spec.personalised,
        service=spec.service,
        contact=contact_state(**contact) if contact is not None else None,
        ts=ts,
        language="en",
    )
    assert why == expected if expected is None else expected in why


@pytest.mark.parametrize(
    ("clock", "start", "end", "quiet"),
    [
        ("20:59", "21:00", "08:00", False),
        ("21:00", "21:00", "08:00", True),
        ("03:00", "21:00", "08:00", True),
        ("08:00", "21:00", "08:00", False),
        ("12:30", "12:00", "14:00", True),
        ("14:00", "12:00", "14:00", False),
    ],
)
def test_quiet_hours(clock: str, start: str, end: str, quiet: bool) -> None:
    hour, minute = map(int, clock.split(":"))
    assert in_quiet_hours(datetime(2026, 11, 22, hour, minute), start, end) is quiet


def test_reasons_are_in_chinese_by_default(catalogue: Catalogue) -> None:
    why = eligibility_reason(
        catalogue, catalogue.offer("CARD"), customer_row(age=17), contact_state()
    )
    assert why == "未满 18 周岁"
