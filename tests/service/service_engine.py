"""A small, real, in-memory decision engine for the service tests (the service's Engine Protocol).

It decides by the offers' prior value over a real catalogue, keeps preferences in the real
:class:`MemoryDecisionState` and writes to a real decision log; ``fail_with`` makes a method
raise, to test how the API answers a broken engine.
"""

from __future__ import annotations

import time
import uuid
from datetime import date
from typing import Any

from qianmian.data.schema.vocab import CONTACT_CHANNELS
from qianmian.decide.catalogue import Catalogue
from qianmian.decide.catalogue_schema import CampaignSpec, CatalogueSpec, OfferSpec
from qianmian.decide.decision import Candidate, ChosenOffer, Decision, DecisionRequest
from qianmian.decide.log.base import DecisionLog, ResponseRecord
from qianmian.decide.state.base import CustomerContactState
from qianmian.decide.state.memory import MemoryDecisionState
from qianmian.errors import NotFoundError

CUSTOMERS: dict[int, dict[str, Any]] = {
    1: {"name": "张伟", "gender": "M", "birth_date": date(1988, 3, 14), "city": "上海"},
    2: {"name": "欧阳娜娜", "gender": "F", "birth_date": date(1995, 7, 2), "city": "成都"},
    3: {"name": "李静", "gender": "F", "birth_date": date(1979, 12, 30), "city": "西安"},
}
CONSENTS = {
    1: frozenset({"app_push", "sms", "wechat"}),
    2: frozenset({"sms"}),
    3: frozenset({"app_push"}),
}


def _treatments(*channels: str) -> list[dict[str, str]]:
    return [
        {"channel": c, "copy_zh": "{{ offer }}限时优惠", "copy_en": "{{ offer }} for you"}
        for c in channels
    ]


def make_catalogue() -> Catalogue:
    """Three offers (one a service message) and one campaign, version ``test-1``."""
    spec = CatalogueSpec(
        version="test-1",
        offers=[
            OfferSpec(
                id="OF-INST-12",
                type="instalment_coupon",
                name_zh="12期免息券",
                name_en="12 interest-free periods",
                value=300,
                prior_rate=0.05,
                treatments=_treatments("app_push", "sms", "in_app"),
            ),
            OfferSpec(
                id="OF-DINING",
                type="merchant_coupon",
                name_zh="餐饮满100减30",
                name_en="Dining: 30 off 100",
                value=30,
                prior_rate=0.2,
                personalised=False,
                treatments=_treatments("app_push", "wechat"),
            ),
            OfferSpec(
                id="SV-BILL-DUE",
                type="service",
                name_zh="还款提醒",
                name_en="Payment due",
                value=0,
                treatments=_treatments("sms"),
            ),
        ],
        campaigns=[
            CampaignSpec(
                id="CP-TEST",
                name_zh="测试活动",
                name_en="Test campaign",
                offers=["OF-INST-12"],
                start_date=date(2026, 1, 1),
                end_date=date(2026, 12, 31),
            )
        ],
    )
    return Catalogue.from_spec(spec)


class InMemoryEngine:
    """Decides by ``value × prior_rate`` among offers the customer may be sent."""

    def __init__(self, catalogue: Catalogue, log: DecisionLog) -> None:
        self.catalogue = catalogue
        self.log = log
        self.state = MemoryDecisionState()
        self.state.load_customers(
            CustomerContactState(customer_id=cid, consents=CONSENTS[cid]) for cid in CUSTOMERS
        )
        self.revisions: list[tuple[Catalogue, str, str]] = []
        self.preference_actors: list[str] = []
        self.components = {"decision_state": "ok", "decision_log": "ok", "model": "ok"}
        self.fail_with: dict[str, BaseException] = {}

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail_with:
            raise self.fail_with[method]

    def _known(self, customer_id: int) -> dict[str, Any]:
        if customer_id not in CUSTOMERS:
            raise NotFoundError(f"Customer {customer_id} is not known to qianmian.")
        return CUSTOMERS[customer_id]

    def decide(self, request: DecisionRequest) -> Decision:
        self._maybe_fail("decide")
        started = time.perf_counter()
        customer = self._known(request.customer_id)
        contact = self.state.customer(request.customer_id)
        assert contact is not None
        channels = [request.channel] if request.channel else list(CONTACT_CHANNELS.values)
        candidates: list[tuple[Candidate, OfferSpec]] = []
        for offer in self.catalogue.offers.values():
            for t in offer.treatments:
                if t.channel not in channels:
                    continue
                c = Candidate(
                    offer.id, t.id or "", t.channel, None, offer.personalised, offer.service
                )
                if not offer.service:
                    if contact.marketing_opt_out:
                        c.remove("contact_policy", "opted out of marketing")
                    elif t.channel != "in_app" and t.channel not in contact.consents:
                        c.remove("contact_policy", f"no consent for {t.channel}")
                    elif contact.personalisation_opt_out and offer.personalised:
                        c.remove("contact_policy", "refuses personalised marketing")
                c.expected_value = offer.value * offer.prior_rate
                candidates.append((c, offer))
        kept = sorted(
            (pair for pair in candidates if pair[0].kept),
            key=lambda pair: -(pair[0].expected_value or 0.0),
        )
        offers: list[ChosenOffer] = []
        for c, offer in kept:
            if len(offers) == request.max_offers or any(o.offer_id == c.offer_id for o in offers):
                continue
            offers.append(
                ChosenOffer(
                    rank=len(offers) + 1,
                    offer_id=offer.id,
                    treatment_id=c.treatment_id,
                    channel=c.channel,
                    campaign_id=None,
                    name=offer.name_zh,
                    copy=f"{customer['name']}您好,{offer.name_zh}",
                    expected_value=c.expected_value or 0.0,
                    action_probability=1.0,
                    reasons=(f"预期价值 {c.expected_value:.2f} 元",),
                )
            )
        decision = Decision(
            decision_id=uuid.uuid4().hex,
            request=request,
            offers=offers,
            candidates=[c for c, _ in candidates],
            catalogue_version=self.catalogue.version,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
        self.log.append(decision)
        return decision

    def record_response(self, response: ResponseRecord) -> bool:
        self._maybe_fail("record_response")
        return self.log.record_response(response)

    def customer_profile(self, customer_id: int) -> dict[str, Any]:
        self._maybe_fail("customer_profile")
        record = self._known(customer_id)
        contact = self.state.customer(customer_id)
        assert contact is not None
        recent = self.log.decisions(customer_id=customer_id).to_pylist()[-10:]
        return {
            "customer_id": customer_id,
            "customer": {"customer_id": customer_id, **record},
            "contact": {
                "consents": sorted(contact.consents),
                "marketing_opt_out": contact.marketing_opt_out,
                "personalisation_opt_out": contact.personalisation_opt_out,
            },
            "features": {"spend_3m": 18250.5, "age": 2026 - record["birth_date"].year},
            "tags": [{"id": "steady_wealth", "name": "偏好稳健理财"}],
            "recent_decisions": recent,
        }

    def set_preferences(
        self,
        customer_id: int,
        *,
        consents: dict[str, bool] | None,
        marketing_opt_out: bool | None,
        personalisation_opt_out: bool | None,
        actor: str,
    ) -> CustomerContactState:
        self._maybe_fail("set_preferences")
        self.preference_actors.append(actor)
        return self.state.set_preferences(
            customer_id,
            consents=consents,
            marketing_opt_out=marketing_opt_out,
            personalisation_opt_out=personalisation_opt_out,
        )

    def set_catalogue(self, catalogue: Catalogue, *, actor: str, note: str = "") -> int:
        self._maybe_fail("set_catalogue")
        self.revisions.append((catalogue, actor, note))
        self.catalogue = catalogue
        return len(self.revisions)

    def health(self) -> dict[str, str]:
        self._maybe_fail("health")
        return dict(self.components)
