"""The decision engine end to end on a small simulated bank: stages, caps, budgets, control
groups, fallback, feedback and the decision log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from qianmian.decide.catalogue import Catalogue, starter_catalogue
from qianmian.decide.catalogue_schema import CampaignSpec
from qianmian.decide.decision import STAGES, DecisionRequest
from qianmian.decide.engine import DecisionEngine
from qianmian.decide.log.base import ResponseRecord
from qianmian.decide.scoring import Scores
from qianmian.decide.state.redis import RedisDecisionState
from qianmian.errors import NotFoundError, ValidationError

EngineFactory = Callable[..., DecisionEngine]
DecideWorld = Any  # the decide_world fixture (tests/decide/conftest.py)

NOON = datetime(2026, 9, 15, 12, 0)  # inside the starter campaigns, after the world's data


def customers(world: DecideWorld, n: int = 300) -> list[int]:
    return world.features.column("customer_id").to_pylist()[:n]


def test_every_candidate_has_a_fate_and_the_log_has_it(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine()
    presented = 0
    for cid in customers(decide_world, 200):
        decision = engine.decide(DecisionRequest(cid, NOON, channel="in_app"))
        kept = [c for c in decision.candidates if c.kept]
        assert len(kept) == len(decision.offers)  # presented, or removed by a named stage
        assert {c.removed_by for c in decision.candidates} <= {*STAGES, None}
        assert all(c.reason for c in decision.candidates if not c.kept)
        presented += bool(decision.offers)
        stored = engine.log.get(decision.decision_id)
        assert stored is not None and len(stored["candidates"]) == len(decision.candidates)
    assert presented > 50  # the starter catalogue reaches most customers in-app
    rows = engine.log.decisions()
    assert rows.num_rows == 200
    assert set(rows.column("arm").to_pylist()) <= {"engine", "explore", "control"}


def test_a_decision_is_explained(make_engine: EngineFactory, decide_world: DecideWorld) -> None:
    engine = make_engine()
    for cid in customers(decide_world):
        decision = engine.decide(DecisionRequest(cid, NOON, channel="in_app"))
        if decision.offers:
            break
    chosen = decision.offers[0]
    assert chosen.copy and chosen.name
    assert any("expected incremental value" in r for r in chosen.reasons)
    assert 0 < chosen.action_probability <= 1
    assert decision.model_versions == {"uplift-s": 1}
    assert decision.feature_ref and decision.feature_ref.startswith("online@")
    assert decision.latency_ms is not None and decision.latency_ms < 200


def test_sms_copy_carries_signature_and_opt_out(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine(language="zh")
    for cid in customers(decide_world):
        decision = engine.decide(DecisionRequest(cid, NOON, channel="sms"))
        if decision.offers:
            copy = decision.offers[0].copy
            assert copy.startswith("【千面银行】") and copy.endswith("回T退订")
            return
    pytest.fail("no customer got an SMS offer")


def test_opted_out_customers_get_no_marketing(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine()
    for cid in customers(decide_world, 50):
        engine.set_preferences(cid, marketing_opt_out=True, actor="test")
        decision = engine.decide(DecisionRequest(cid, NOON))
        assert not [o for o in decision.offers if not o.service]
        reasons = {c.reason for c in decision.candidates if c.removed_by == "contact_policy"}
        assert any("opted out" in r for r in reasons if r)


def test_opt_out_survives_a_reload_from_the_store(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    from qianmian.decide.engine_build import load_serving_state

    engine = make_engine()
    cid = customers(decide_world, 1)[0]
    engine.set_preferences(cid, marketing_opt_out=True, actor="test")
    load_serving_state(engine.store, engine.state, engine.features)
    assert engine.state.customer(cid).marketing_opt_out


def test_refusing_personalisation_gets_only_non_personalised_offers(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine()
    offered = 0
    for cid in customers(decide_world, 150):
        engine.set_preferences(cid, personalisation_opt_out=True, actor="test")
        decision = engine.decide(DecisionRequest(cid, NOON, channel="in_app"))
        for offer in decision.offers:
            assert not engine.catalogue.offer(offer.offer_id).personalised
            offered += 1
        assert decision.model_versions == {}  # ranked without their personal data
        assert not decision.fallback
    assert offered > 0


def test_daily_sms_cap_holds(make_engine: EngineFactory, decide_world: DecideWorld) -> None:
    engine = make_engine()
    cap = engine.catalogue.contact_policy.caps.per_channel["sms"].day
    for cid in customers(decide_world, 40):
        sent = sum(
            bool(
                engine.decide(
                    DecisionRequest(cid, NOON + timedelta(minutes=k), channel="sms")
                ).offers
            )
            for k in range(4)
        )
        assert sent <= cap


def _tight_budget_catalogue(count: int) -> Catalogue:
    base = starter_catalogue()
    campaign = CampaignSpec(
        id="CMP-TIGHT",
        name_zh="小预算",
        name_en="Tight budget",
        status="full",
        offers=["OF-DINING-COUPON"],
        start_date=datetime(2026, 1, 1).date(),
        end_date=datetime(2027, 1, 1).date(),
        budget_count=count,
        holdout_share=0.0,
        weight=50.0,  # make it win whenever it is allowed
    )
    return base.with_campaign(campaign)


def test_a_campaign_budget_is_never_exceeded(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine(catalogue=_tight_budget_catalogue(5), exploration=False)
    for cid in customers(decide_world, 300):
        engine.decide(DecisionRequest(cid, NOON, channel="in_app", campaign_id="CMP-TIGHT"))
    rows = engine.log.decisions(campaign_id="CMP-TIGHT").to_pylist()
    assert len([r for r in rows if r["offer_id"]]) == 5
    blocked = engine.log.candidates().to_pylist()
    assert any(
        r["removed_by"] == "capacity" and "CMP-TIGHT" in (r["reason"] or "") for r in blocked
    )


def test_control_group_is_held_out_at_its_share(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine(exploration=False)
    arms = []
    for cid in customers(decide_world, 1500):
        decision = engine.decide(DecisionRequest(cid, NOON, channel="in_app"))
        if decision.arm == "control":
            assert decision.offers == []
            assert any(c.removed_by == "control" for c in decision.candidates)
        arms.append(decision.arm)
    decided = [a for a in arms]
    share = np.mean([a == "control" for a in decided])
    assert 0.03 < share < 0.25  # starter campaigns hold out 5–15 %


class RaisingScorer:
    def score(self, features: Any, offer_ids: Any, channels: Any) -> Scores:
        raise ValueError("model file is corrupt")


def test_rules_decide_when_the_model_fails(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    from qianmian.decide.scoring_guard import GuardedScorer

    engine = make_engine(
        scorer=GuardedScorer(RaisingScorer(), budget_ms=100, failures=2, reset_seconds=60)
    )
    reasons = []
    for cid in customers(decide_world, 20):
        decision = engine.decide(DecisionRequest(cid, NOON, channel="in_app"))
        if engine.state.customer(cid).personalisation_opt_out:
            continue  # ranked without models anyway (PIPL Art. 24)
        if any(not c.service for c in decision.candidates if c.p_response is not None):
            assert decision.fallback
            reasons.append(decision.fallback_reason)
            if decision.offers:
                assert decision.arm in ("fallback", "control")
    assert any("model raised ValueError" in r for r in reasons)
    assert any("circuit open" in r for r in reasons)


def test_no_model_means_rules_in_priority_order(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine(scorer=None)
    for cid in customers(decide_world, 60):
        decision = engine.decide(DecisionRequest(cid, NOON, channel="in_app"))
        if not decision.offers or decision.arm == "control":
            continue
        if engine.state.customer(cid).personalisation_opt_out:
            continue  # ranked without models anyway (PIPL Art. 24)
        assert decision.fallback and "no model registered" in decision.fallback_reason
        chosen = decision.offers[0]
        kept_before = [
            c
            for c in decision.candidates
            if c.p_response is not None
            and not c.service
            and c.offer_id != chosen.offer_id
            and c.removed_by in (None, "arbitration")
        ]
        priority = engine.catalogue.offer(chosen.offer_id).priority
        assert all(engine.catalogue.offer(c.offer_id).priority >= priority for c in kept_before)


class CountingDownState(RedisDecisionState):
    """A Redis state on a closed port that counts how often it is called."""

    def __init__(self, url: str) -> None:
        super().__init__(url, timeout_seconds=0.2)
        self.calls = 0

    def customer(self, customer_id: int):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().customer(customer_id)


def test_state_down_means_no_marketing(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine()
    engine.state = down = CountingDownState("redis://127.0.0.1:6390/0")
    for cid in customers(decide_world, 10):
        decision = engine.decide(DecisionRequest(cid, NOON))
        assert decision.fallback and "decision state unavailable" in decision.fallback_reason
        assert all(o.service for o in decision.offers)
    # after the first failure the state is skipped for a while: no waiting on each request
    assert down.calls == 1
    assert "not retried for 1 s" in decision.fallback_reason


def test_unknown_customer_and_bad_requests(make_engine: EngineFactory) -> None:
    engine = make_engine()
    with pytest.raises(NotFoundError, match="Customer 99999999"):
        engine.decide(DecisionRequest(99_999_999, NOON))
    for bad, message in (
        (DecisionRequest(1, NOON, channel="fax"), "channel 'fax'"),
        (DecisionRequest(1, NOON, campaign_id="NOPE"), "campaign_id 'NOPE'"),
        (DecisionRequest(1, NOON, max_offers=0), "max_offers"),
        (DecisionRequest(0, NOON), "customer_id 0"),
    ):
        with pytest.raises(ValidationError, match=message):
            engine.decide(bad)


def _presented(engine, decide_world, channel="in_app"):
    for cid in customers(decide_world):
        decision = engine.decide(DecisionRequest(cid, NOON, channel=channel))
        if decision.offers and decision.arm != "control":
            return decision
    pytest.fail("no offer was presented")


def test_responses_are_idempotent_and_confirm_reservations(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine()
    decision = _presented(engine, decide_world)
    chosen = decision.offers[0]
    response = ResponseRecord(
        "r-1", decision.decision_id, decision.request.customer_id, None, "delivered", NOON
    )
    assert engine.record_response(response) is True
    assert engine.record_response(response) is False
    assert engine.state.release(chosen.reservation_id) is False  # confirmed: never released
    assert engine.log.responses().num_rows == 1


def test_ignoring_twice_hides_the_offer_and_a_complaint_stops_marketing(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine()
    decision = _presented(engine, decide_world)
    cid, offer = decision.request.customer_id, decision.offers[0].offer_id
    for k in range(2):
        engine.record_response(
            ResponseRecord(
                f"ig-{k}", decision.decision_id, cid, offer, "ignored", NOON + timedelta(days=k)
            )
        )
    later = engine.decide(DecisionRequest(cid, NOON + timedelta(days=3), channel="in_app"))
    hidden = [c for c in later.candidates if c.offer_id == offer]
    assert all(
        c.removed_by in ("eligibility", "applicability", "suitability", "contact_policy")
        for c in hidden
    )
    assert any("hidden until" in (c.reason or "") for c in hidden)
    engine.record_response(
        ResponseRecord("cp-1", decision.decision_id, cid, offer, "complained", NOON)
    )
    after = engine.decide(DecisionRequest(cid, NOON + timedelta(days=4), channel="in_app"))
    assert not [o for o in after.offers if not o.service]


def test_sms_unsubscribe_withdraws_sms_consent(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine()
    decision = _presented(engine, decide_world, channel="sms")
    cid = decision.request.customer_id
    engine.record_response(
        ResponseRecord("u-1", decision.decision_id, cid, None, "unsubscribed", NOON)
    )
    assert "sms" not in engine.state.customer(cid).consents


def test_bad_response_type_is_refused(make_engine: EngineFactory) -> None:
    engine = make_engine()
    with pytest.raises(ValidationError, match="response_type 'liked'"):
        engine.record_response(ResponseRecord("x", None, 1, None, "liked", NOON))
    with pytest.raises(NotFoundError, match="decision_id 'nope'"):
        engine.record_response(ResponseRecord("y", "nope", 1, None, "clicked", NOON))


def test_profile_has_record_contact_features_and_history(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine()
    cid = customers(decide_world, 1)[0]
    engine.decide(DecisionRequest(cid, NOON))
    profile = engine.customer_profile(cid)
    assert profile["customer"]["customer_id"] == cid and "name" in profile["customer"]
    assert isinstance(profile["contact"]["consents"], list)
    assert profile["features"]["age"] is not None
    assert len(profile["recent_decisions"]) == 1
    with pytest.raises(NotFoundError):
        engine.customer_profile(99_999_999)


def test_health_reports_each_part(make_engine: EngineFactory) -> None:
    assert make_engine().health() == {
        "decision_state": "ok",
        "features": "ok",
        "model": "ok",
        "catalogue": "ok",
    }
    assert make_engine(scorer=None).health()["model"] == "no model registered (test)"


def test_settings_switch_arbitration_factors_and_exploration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from qianmian.config import Settings
    from qianmian.decide.engine_build import build_engine

    settings = Settings(
        workspace=tmp_path,
        decide={"exploration": False, "arbitration": {"use_uplift": False, "use_cost": False}},
    )
    engine = build_engine(settings)
    try:
        assert not engine.exploration
        assert (engine.arbitration.use_uplift, engine.arbitration.use_cost) == (False, False)
        assert engine.arbitration.use_value and engine.arbitration.use_weights
        assert engine.scorer is None and "uplift-s" in (engine.scorer_reason or "")
    finally:
        engine.log.close()


def test_a_trigger_request_sees_only_its_offers_and_its_cooldown_holds(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine(exploration=False)
    offers = ("OF-WM-R1", "OF-INS-HEALTH")
    presented = 0
    for cid in customers(decide_world, 80):
        first, second = (
            engine.decide(
                DecisionRequest(
                    cid,
                    NOON + timedelta(minutes=k),
                    channel="in_app",
                    offer_ids=offers,
                    cooldown=(f"wealth:{cid}", 86_400),
                )
            )
            for k in range(2)
        )
        assert {c.offer_id for c in first.candidates} <= set(offers)
        if first.offers:
            presented += 1
            assert not second.offers  # within the cooldown: nothing more from this trigger
            assert any("cooldown" in (c.reason or "") for c in second.candidates)
    assert presented > 0
    with pytest.raises(ValidationError, match="offer_ids names OF-NOPE"):
        engine.decide(DecisionRequest(1, NOON, offer_ids=("OF-NOPE",)))


def test_a_combination_is_presented_whole_under_one_cooldown(
    make_engine: EngineFactory, decide_world: DecideWorld
) -> None:
    engine = make_engine(exploration=False)
    offers = ("OF-WM-R1", "OF-INS-HEALTH")
    pairs = 0
    for cid in customers(decide_world, 300):
        request = DecisionRequest(
            cid, NOON, channel="in_app", offer_ids=offers, max_offers=2, cooldown=(f"c:{cid}", 3600)
        )
        pairs += len(engine.decide(request).offers) == 2
    assert pairs > 0  # the first offer holds the cooldown; the second joins it
