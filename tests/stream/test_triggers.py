"""Real-time triggers: the shipped file, matching and near-misses, file errors with their line,
and firing through the real decision engine (idempotency, cooldown, time-to-live, opt-out)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from qianmian.decide.catalogue import starter_catalogue
from qianmian.decide.engine import DecisionEngine
from qianmian.errors import ConfigError, NotFoundError, RuleError, ValidationError
from qianmian.features.tags import TagLibrary
from qianmian.stream.triggers import (
    IDEMPOTENCY_SECONDS,
    FireResult,
    Trigger,
    TriggerSet,
    fire,
    trigger_row,
)

NOON = datetime(2026, 9, 15, 12, 0)  # inside the starter campaigns, after the world's data
D11 = datetime(2026, 11, 5, 12, 0)  # inside the Double 11 trigger's dates

BIG_HOME = "big_home_purchase_instalment"
LOGIN_COMBO = "login_steady_wealth_instalment"
FUND_PAGE = "fund_page_comparison"
TRANSFER = "transfer_failure_limit_guide"
DOUBLE11 = "double11_instalment_limit"

# Feature values that give a customer the seed's tags.
STABLE_RICH = {"holds_wealth": True, "max_wealth_risk": 2, "spend_90d": 36_000.0}
LOAN = {"loans_180d": 1}


@pytest.fixture(scope="module")
def shipped() -> TriggerSet:
    return TriggerSet.load(catalogue=starter_catalogue())


# ---- the shipped file ---------------------------------------------------------------------------


def test_the_shipped_triggers_fit_the_starter_catalogue_and_tags(shipped: TriggerSet) -> None:
    catalogue = starter_catalogue()
    assert [t.id for t in shipped] == [TRANSFER, BIG_HOME, LOGIN_COMBO, FUND_PAGE, DOUBLE11]
    for trigger in shipped:
        assert trigger.line is not None and trigger.name_zh and trigger.description_en
        for offer_id in trigger.offers:
            offer = catalogue.offer(offer_id)
            if trigger.channel is not None:
                assert trigger.channel in [t.channel for t in offer.treatments]
    # the seed's tags are the library's
    tags = TagLibrary.load()
    assert tags["prefers_stable_wealth"].name_zh == "偏好稳健理财"
    assert tags["monthly_spend_over_10k"].name_zh == "月消费超1万元"
    assert tags["recent_consumer_loan"].name_zh == "近6个月有消费贷款记录"
    # the guide's own applicability condition holds for a failed transfer, and only for one
    guide = catalogue.offer("SV-LIMIT-GUIDE")
    assert guide.service and guide.applicable_when is not None
    rule = catalogue.rule(guide.applicable_when.when)
    for kind, expected in (("transfer_failure", True), ("login", False)):
        assert (
            rule.evaluate_one(trigger_row({}, kind, {}, NOON, fields=rule.fields_used)) is expected
        )
    d11 = shipped[DOUBLE11]
    assert (d11.start_date, d11.end_date) == (date(2026, 11, 1), date(2026, 11, 11))
    assert set(d11.offers) == {"OF-INST-6", "OF-LIMIT-UP"} and d11.max_offers == 2


def test_a_missing_trigger_is_named_with_a_suggestion(shipped: TriggerSet) -> None:
    with pytest.raises(NotFoundError, match="fund_page_comparison"):
        shipped["fund_page_comparisons"]


# ---- matching: each trigger and its near-misses -----------------------------------------------

MATCHING = [
    # (event type, event context, features, time, triggers expected in order)
    ("transaction", {"amount": 5000.0, "category": "家装"}, {}, NOON, [BIG_HOME]),
    ("transaction", {"amount": 4999.0, "category": "家装"}, {}, NOON, []),
    ("transaction", {"amount": 8000.0, "category": "家电数码"}, {}, NOON, []),
    ("transaction", {"amount": None, "category": "家装"}, {}, NOON, []),
    ("page_view", {"amount": 5000.0, "category": "家装", "page": "home_deals"}, {}, NOON, []),
    ("login", {}, STABLE_RICH, NOON, [LOGIN_COMBO]),
    ("login", {}, {**STABLE_RICH, "spend_90d": 20_000.0}, NOON, []),  # not 月消费超1万元
    ("login", {}, {**STABLE_RICH, "max_wealth_risk": 4}, NOON, []),  # not 偏好稳健理财
    ("login", {}, {}, NOON, []),  # nothing known: tags false
    ("page_view", {"page": "wealth_fund"}, {}, NOON, [FUND_PAGE]),
    ("page_view", {"page": "wealth_list"}, {}, NOON, []),
    ("search", {"page": "wealth_fund"}, {}, NOON, []),
    ("transfer_failure", {"amount": 80_000.0}, {}, NOON, [TRANSFER]),
    ("transaction", {"amount": 80_000.0, "category": "电商"}, {}, NOON, []),
    ("login", {}, LOAN, D11, [DOUBLE11]),
    ("login", {}, LOAN, datetime(2026, 11, 1, 0, 0), [DOUBLE11]),
    ("login", {}, LOAN, datetime(2026, 11, 11, 23, 59), [DOUBLE11]),
    ("login", {}, LOAN, datetime(2026, 10, 31, 23, 59), []),
    ("login", {}, LOAN, datetime(2026, 11, 12, 0, 0), []),
    ("login", {}, {"loans_180d": 0}, D11, []),
    ("transaction", {"amount": 300.0, "category": "电商"}, LOAN, D11, [DOUBLE11]),
    ("transaction", {"amount": 300.0, "category": "餐饮"}, LOAN, D11, []),
    ("transaction", {"amount": 6000.0, "category": "家装"}, LOAN, D11, [BIG_HOME]),
    ("login", {}, {**STABLE_RICH, **LOAN}, D11, [DOUBLE11, LOGIN_COMBO]),  # by priority
    ("response", {}, {**STABLE_RICH, **LOAN}, D11, []),
]


@pytest.mark.parametrize(("kind", "context", "features", "ts", "expected"), MATCHING)
def test_each_trigger_matches_its_moment_and_not_near_misses(
    shipped: TriggerSet,
    kind: str,
    context: dict[str, Any],
    features: dict[str, Any],
    ts: datetime,
    expected: list[str],
) -> None:
    row = trigger_row(features, kind, context, ts, None, shipped.fields_used)
    assert [t.id for t in shipped.matching(kind, row, ts.date())] == expected


def test_the_row_holds_context_and_only_the_tags_used(shipped: TriggerSet) -> None:
    aware = datetime(2026, 11, 11, 1, 30, tzinfo=UTC)  # 09:30 in Beijing
    row = trigger_row(STABLE_RICH, "login", {"type": "page_view"}, aware, None, shipped.fields_used)
    assert row["event_type"] == "login"  # the event type given wins
    assert (row["hour"], row["weekday"], row["day"], row["month"]) == (9, 3, 11, 11)
    assert row["channel"] is None and row["event_amount"] is None
    tags = {k for k in row if k.startswith("tag_")}
    assert tags == {f for f in shipped.fields_used if f.startswith("tag_")}
    assert row["tag_prefers_stable_wealth"] and not row["tag_recent_consumer_loan"]
    assert shipped.for_event("bill_view") == []


# ---- invalid files: the line and the trigger are named ------------------------------------------

BASE = """\
version: 1
triggers:
  - id: big_buy
    name_zh: 大额消费
    name_en: Big purchase
    description_zh: 说明
    description_en: About
    on: [transaction]
    when: event_amount >= 5000
    offers: [OF-INST-12, OF-INST-6]
    channel: app_push
"""
COPY = BASE.split("triggers:\n", 1)[1]
INVALID = [
    # (text to replace, replacement, error, message pattern)
    ("on: [transaction]", "on: [transaction", ConfigError, r"not valid YAML at line 9"),
    ("version: 1", "version: 2", ConfigError, r"only the keys 'version' \(1\) and 'triggers'"),
    ("triggers:", "rules: []\ntriggers:", ConfigError, r"x\.yaml, line 2: only the keys"),
    (BASE.split("\n", 1)[1], "triggers: {}\n", ConfigError, r"a 'triggers:' list of triggers"),
    (COPY, "  - just text\n", ConfigError, r"x\.yaml, line 3: a trigger must be a mapping"),
    (
        "id: big_buy",
        "id: Big-Buy",
        ConfigError,
        r"line 3: trigger 'Big-Buy' is invalid: id: a trigger id is snake_case",
    ),
    (
        "when: event_amount >= 5000",
        "when: event_amount >>= 5000",
        RuleError,
        r"line 9: trigger 'big_buy' \(大额消费\)",
    ),
    ("when: event_amount >= 5000", "when: spend_900d > 1", RuleError, r"line 9: .*spend_900d"),
    (
        "when: event_amount >= 5000",
        "when: channel = 'sms'",
        ConfigError,
        r"line 9: .*reads channel.*'channel:'",
    ),
    (
        "on: [transaction]",
        "on: [purchase]",
        ConfigError,
        r"line 8: trigger 'big_buy' is invalid: on\[0\]: .*'login'",
    ),
    ("on: [transaction]", "on: []", ConfigError, r"line 8: .*on: .*at least 1"),
    ("on: [transaction]", "on: [login, login]", ConfigError, r"line 8: .*login is listed twice"),
    ("offers: [OF-INST-12, OF-INST-6]", "offers: []", ConfigError, r"line 10: .*offers: "),
    (
        "offers: [OF-INST-12, OF-INST-6]",
        "offers:\n      - OF-INST-12\n      - OF-INST-24",
        ConfigError,
        r"line 12: trigger 'big_buy' \(大额消费\) names the offer 'OF-INST-24'.*Did you mean OF-INST-12",
    ),
    (
        "channel: app_push",
        "channel: call_center",
        ConfigError,
        r"line 10: .*'OF-INST-12' has no copy for that channel",
    ),
    (
        "channel: app_push",
        "channel: fax",
        ConfigError,
        r"line 11: .*channel: 'fax' is not a channel",
    ),
    (
        "channel: app_push",
        "channel: app_push\n    max_offers: 3",
        ConfigError,
        r"line 12: .*max_offers is 3 but the trigger lists 2",
    ),
    (
        "channel: app_push",
        "channel: app_push\n    max_offers: 6",
        ConfigError,
        r"line 12: .*max_offers: .*5",
    ),
    (
        "channel: app_push",
        "channel: app_push\n    ttl_seconds: 0",
        ConfigError,
        r"line 12: .*ttl_seconds: .*greater than or equal to 1",
    ),
    (
        "channel: app_push",
        "channel: app_push\n    ttl_seconds: 90000",
        ConfigError,
        r"line 12: .*ttl_seconds: .*less than or equal to 86400",
    ),
    (
        "channel: app_push",
        "channel: app_push\n    start_date: 2026-11-12\n    end_date: 2026-11-01",
        ConfigError,
        r"line 13: .*end_date: end_date 2026-11-01 is before start_date 2026-11-12",
    ),
    (
        "channel: app_push",
        "channel: app_push\n    cooldown: 60",
        ConfigError,
        r"line 12: .*cooldown: is not a known key\. Did you mean 'cooldown_seconds'\?",
    ),
    (
        "channel: app_push",
        "channel: app_push\n    channel: sms",
        ConfigError,
        r"line 12, triggers\[0\]\.channel: the key is already set at line 11",
    ),
    (
        "channel: app_push\n",
        "channel: app_push\n" + COPY,
        ConfigError,
        r"line 12: the trigger id 'big_buy' is already used at line 3",
    ),
]


@pytest.mark.parametrize(("old", "new", "error", "pattern"), INVALID)
def test_an_invalid_file_names_the_line_and_the_trigger(
    old: str, new: str, error: type[Exception], pattern: str
) -> None:
    assert old in BASE
    text = BASE.replace(old, new, 1)
    with pytest.raises(error, match=pattern) as caught:
        TriggerSet.from_yaml(text, "x.yaml", catalogue=starter_catalogue())
    assert "x.yaml" in str(caught.value)


def test_a_valid_file_loads_and_defaults_apply(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(BASE.replace("on: [transaction]", "on: [transaction]\n    when: TRUE").replace(
        "    when: event_amount >= 5000\n", ""
    ), encoding="utf-8")  # fmt: skip
    (trigger,) = TriggerSet.load(path, catalogue=starter_catalogue()).triggers
    assert trigger.when == "TRUE"  # an unquoted YAML boolean is the rule TRUE
    assert (trigger.max_offers, trigger.ttl_seconds, trigger.cooldown_seconds) == (2, 300, 86400)
    assert trigger.priority == 100 and trigger.start_date is None and trigger.live_on(date.max)
    # without a catalogue, offers are not looked up
    assert TriggerSet.from_yaml(BASE.replace("OF-INST-6", "OF-NEW"), "x.yaml")["big_buy"]
    with pytest.raises(ConfigError, match="does not exist"):
        TriggerSet.load(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="'big_buy' is used twice"):
        TriggerSet([trigger, trigger])


# ---- firing through the decision engine ------------------------------------------------------

MOMENTS = {
    # trigger: (event type, event context, time)
    BIG_HOME: ("transaction", {"amount": 5000.0, "category": "家装"}, NOON),
    LOGIN_COMBO: ("login", {}, NOON),
    FUND_PAGE: ("page_view", {"page": "wealth_fund"}, NOON),
    TRANSFER: ("transfer_failure", {"amount": 80_000.0}, NOON),
    DOUBLE11: ("login", {}, D11),
}


def _fire(
    trigger: Trigger, engine: DecisionEngine, cid: int, event_id: str, **overrides: Any
) -> FireResult:
    kind, context, ts = MOMENTS.get(trigger.id, MOMENTS[TRANSFER])
    args: dict[str, Any] = {
        "event_ts": ts,
        "now": ts + timedelta(seconds=2),
        "event_context": {**context, "type": kind},
    }
    args.update(overrides)
    return fire(trigger, engine=engine, customer_id=cid, event_id=event_id, **args)


def _app_users(engine: DecisionEngine, ids: list[int], n: int) -> list[int]:
    """Customers who used the app in the last 90 days (app channels can reach them)."""
    vectors = engine.features.get_many(ids)
    return [c for c, v in zip(ids, vectors, strict=True) if v and (v["logins_90d"] or 0) > 0][:n]


@pytest.mark.parametrize("trigger_id", list(MOMENTS))
def test_a_fired_trigger_presents_only_its_offers(
    make_stream_engine: Any, stream_world: Any, shipped: TriggerSet, trigger_id: str
) -> None:
    engine = make_stream_engine(model=trigger_id != LOGIN_COMBO)
    trigger = shipped[trigger_id]
    kind, context, ts = MOMENTS[trigger_id]
    matched = fired = 0
    for cid in stream_world.features.column("customer_id").to_pylist():
        row = trigger_row(
            engine.features.get(cid) or {}, kind, context, ts, engine.tags, shipped.fields_used
        )
        if trigger not in shipped.matching(kind, row, ts.date()):
            continue
        matched += 1
        result = _fire(trigger, engine, cid, f"e-{cid}")
        assert result.status == "decided" and result.decision is not None
        request = result.decision.request
        assert request.offer_ids == trigger.offers and request.max_offers == trigger.max_offers
        assert request.request_id == f"e-{cid}:{trigger_id}" and request.ts == ts
        assert request.cooldown == (f"trigger:{trigger_id}:{cid}", trigger.cooldown_seconds)
        assert {c.offer_id for c in result.decision.candidates} <= set(trigger.offers)
        assert len(result.offers) <= trigger.max_offers
        for offer in result.offers:
            assert offer.offer_id in trigger.offers
            assert trigger.channel is None or offer.channel == trigger.channel
        fired += result.fired
    assert matched > 0 and fired > 0
    assert engine.log.decisions().num_rows == matched  # every firing logged, whole


def test_a_combination_presents_several_offers(
    make_stream_engine: Any, stream_world: Any, shipped: TriggerSet
) -> None:
    # Rules decide (no model), so every offer that passes the stages is presented. Cooldown
    # off: the engine reserves a trigger's cooldown with each offer, so with one the first
    # offer of a combination holds the cooldown and blocks the second.
    engine = make_stream_engine(model=False)
    trigger = replace(shipped[FUND_PAGE], cooldown_seconds=0)
    both = 0
    for cid in _app_users(engine, stream_world.features.column("customer_id").to_pylist(), 400):
        result = _fire(trigger, engine, cid, f"p-{cid}")
        assert result.decision is not None and result.decision.request.cooldown is None
        both += [o.offer_id for o in result.offers] == ["OF-WM-R3", "OF-WM-R4"]
    assert both > 0


def test_a_redelivered_event_never_decides_twice(
    make_stream_engine: Any, stream_world: Any, shipped: TriggerSet
) -> None:
    engine = make_stream_engine()
    cid = _app_users(engine, stream_world.features.column("customer_id").to_pylist(), 1)[0]
    trigger = shipped[TRANSFER]
    first = _fire(trigger, engine, cid, "tf-1")
    assert first.status == "decided" and first.fired
    assert [o.offer_id for o in first.offers] == ["SV-LIMIT-GUIDE"]
    for _ in range(3):  # redelivered, possibly much later (still within the idempotency window)
        again = _fire(trigger, engine, cid, "tf-1", now=NOON + timedelta(seconds=5))
        assert again.status == "duplicate" and again.decision is None and not again.offers
    decisions = engine.log.decisions(customer_id=cid)
    assert decisions.column("request_id").to_pylist() == [f"tf-1:{TRANSFER}"]
    # the same event may still fire another trigger: the key is event × trigger
    other = replace(trigger, id="transfer_failure_other")
    assert _fire(other, engine, cid, "tf-1").status == "decided"
    assert IDEMPOTENCY_SECONDS == 7 * 24 * 3600


COOLDOWN = [
    # (first offer confirmed sent, time to the second event, second presents)
    (True, timedelta(hours=1), False),
    (True, timedelta(hours=23), False),
    (False, timedelta(minutes=5), False),  # reserved, not yet confirmed: still held
    (False, timedelta(minutes=20), True),  # never confirmed sent: released after 15 minutes
]


@pytest.mark.parametrize(("confirmed", "gap", "presents"), COOLDOWN)
def test_the_cooldown_holds_per_customer_and_trigger(
    make_stream_engine: Any,
    stream_world: Any,
    shipped: TriggerSet,
    confirmed: bool,
    gap: timedelta,
    presents: bool,
) -> None:
    engine = make_stream_engine()
    cid, other = _app_users(engine, stream_world.features.column("customer_id").to_pylist(), 2)
    trigger = shipped[TRANSFER]
    first = _fire(trigger, engine, cid, "c-1")
    assert first.fired
    if confirmed:
        assert all(engine.state.confirm(o.reservation_id or "") for o in first.offers)
    later = NOON + gap
    second = _fire(trigger, engine, cid, "c-2", event_ts=later, now=later)
    assert second.status == "decided" and second.fired is presents
    if not presents:
        assert second.decision is not None
        reasons = [c.reason or "" for c in second.decision.candidates if c.removed_by]
        assert reasons and all("cooldown" in r for r in reasons)
    # another customer is not cooled down by this one
    assert _fire(trigger, engine, other, "c-3", event_ts=later, now=later).fired


STALENESS = [
    # (seconds between the event and its processing, status)
    (0, "decided"),
    (120, "decided"),  # exactly the transfer trigger's time-to-live
    (121, "stale"),
    (3600, "stale"),
    (-30, "decided"),  # a producer clock slightly ahead is not stale
]


@pytest.mark.parametrize(("age", "status"), STALENESS)
def test_an_event_past_its_time_to_live_fires_nothing(
    make_stream_engine: Any, stream_world: Any, shipped: TriggerSet, age: int, status: str
) -> None:
    engine = make_stream_engine()
    cid = _app_users(engine, stream_world.features.column("customer_id").to_pylist(), 1)[0]
    trigger = shipped[TRANSFER]
    assert trigger.ttl_seconds == 120
    result = _fire(trigger, engine, cid, "s-1", now=NOON + timedelta(seconds=age))
    assert result.status == status and result.age_seconds == age
    assert result.fired is (status == "decided")
    assert engine.log.decisions().num_rows == (status == "decided")
    if status == "stale":  # nothing was claimed: the event id is free for a timely delivery
        assert _fire(trigger, engine, cid, "s-1").status == "decided"


def test_times_in_other_zones_are_read_as_china_time(
    make_stream_engine: Any, stream_world: Any, shipped: TriggerSet
) -> None:
    engine = make_stream_engine()
    cid = _app_users(engine, stream_world.features.column("customer_id").to_pylist(), 1)[0]
    utc = UTC
    result = _fire(
        shipped[TRANSFER], engine, cid, "z-1", event_ts=NOON, now=datetime(2026, 9, 15, 4, 1, tzinfo=utc)
    )  # fmt: skip
    assert result.status == "decided" and result.age_seconds == 60
    aware_event = datetime(2026, 9, 15, 4, 0, tzinfo=utc)
    result = _fire(shipped[TRANSFER], engine, cid, "z-2", event_ts=aware_event, now=NOON)
    assert result.decision is not None and result.decision.request.ts == NOON


def test_opted_out_customers_get_no_marketing_from_a_trigger(
    make_stream_engine: Any, stream_world: Any, shipped: TriggerSet
) -> None:
    engine = make_stream_engine(model=False)  # rules: anything that passes the stages is sent
    customers = _app_users(engine, stream_world.features.column("customer_id").to_pylist(), 60)
    refused = 0
    for cid in customers:
        engine.set_preferences(cid, marketing_opt_out=True, actor="test")
        for trigger_id in (BIG_HOME, FUND_PAGE, DOUBLE11):
            result = _fire(shipped[trigger_id], engine, cid, f"o-{cid}")
            assert result.decision is not None and not result.offers
            reasons = [c.reason or "" for c in result.decision.candidates]
            refused += any("opted out" in r for r in reasons)
        # a mandatory service message still goes
        guide = _fire(shipped[TRANSFER], engine, cid, f"o-{cid}")
        assert [o.offer_id for o in guide.offers] == ["SV-LIMIT-GUIDE"]
    assert refused > 0


def test_an_event_of_another_type_is_refused(make_stream_engine: Any, shipped: TriggerSet) -> None:
    engine = make_stream_engine()
    with pytest.raises(ValidationError, match=re.escape("fires on transfer_failure")):
        _fire(shipped[TRANSFER], engine, 1, "x-1", event_context={"type": "login"})
    assert engine.log.decisions().num_rows == 0
