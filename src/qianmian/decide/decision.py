"""What a decision is made of: the request, each candidate and what became of it, the answer.

A request asks "which offer, on which channel, for this customer, now — or nothing". The engine
expands the catalogue into **candidates** (one per offer × treatment on an allowed channel),
passes them through the stages in :data:`STAGES` in order, and records on each candidate the
stage that removed it and why; what survives is ranked, reserved against caps and budgets, and
returned as the :class:`Decision`. Every decision is written to the decision log whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "ARMS",
    "STAGES",
    "Arm",
    "Candidate",
    "ChosenOffer",
    "Decision",
    "DecisionRequest",
    "Stage",
]

Stage = Literal[
    "eligibility",  # law and product terms: age, already held, credit-score floor
    "applicability",  # relevant now: context, channel, campaign window, audience
    "suitability",  # in the customer's interest: risk level, financial stress
    "contact_policy",  # consent, opt-out, personalisation refusal, quiet hours, suppression
    "arbitration",  # ranked below the offers presented (or expected value ≤ 0)
    "control",  # the winner's campaign holds this customer out this period: nothing is sent
    "capacity",  # a contact cap, budget or channel capacity is used up
]
STAGES: tuple[Stage, ...] = (
    "eligibility",
    "applicability",
    "suitability",
    "contact_policy",
    "arbitration",
    "control",
    "capacity",
)

Arm = Literal["engine", "explore", "control", "fallback"]
ARMS: tuple[Arm, ...] = ("engine", "explore", "control", "fallback")


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """One question to the engine.

    ``channel`` restricts the answer to one channel (``None``: the engine chooses among the
    channels the customer can be reached on). ``ts`` is naive China time. ``event`` is what
    triggered the request, if anything (``{"type": "transaction", "amount": 5000.0,
    "category": "home"}``); its fields are visible to rules as ``event_type``, ``event_amount``
    and ``event_category``. ``campaign_id`` restricts candidates to one campaign (batch runs);
    ``offer_ids`` to some offers (a real-time trigger's). ``request_id`` identifies the request
    for idempotency (a trigger uses ``<event id>:<trigger id>``). ``cooldown`` is a
    ``(key, seconds)`` pair: an offer is presented only if nothing was presented under the same
    key in the last ``seconds`` (reserved atomically with the caps; a trigger's cooldown).
    """

    customer_id: int
    ts: datetime
    channel: str | None = None
    placement: str | None = None
    event: Mapping[str, Any] | None = None
    campaign_id: str | None = None
    max_offers: int = 1
    request_id: str | None = None
    offer_ids: tuple[str, ...] | None = None
    cooldown: tuple[str, int] | None = None


@dataclass(slots=True)
class Candidate:
    """One offer × treatment considered for a request, and what became of it."""

    offer_id: str
    treatment_id: str
    channel: str
    campaign_id: str | None
    personalised: bool = True
    service: bool = False
    removed_by: Stage | None = None
    reason: str | None = None
    p_response: float | None = None  # P(convert | contacted), from a model or the prior
    uplift: float | None = None  # P(convert | contacted) − P(convert | not contacted)
    value: float | None = None  # value of a conversion to the bank, CNY
    cost: float | None = None  # channel cost + expected incentive cost, CNY
    weight: float = 1.0  # the business lever (offer weight × campaign weight)
    expected_value: float | None = None  # what arbitration ranks by
    action_probability: float | None = None

    @property
    def kept(self) -> bool:
        return self.removed_by is None

    def remove(self, stage: Stage, reason: str) -> None:
        """Mark the candidate removed by ``stage`` (the first stage to remove it wins)."""
        if self.removed_by is None:
            self.removed_by, self.reason = stage, reason


@dataclass(frozen=True, slots=True)
class ChosenOffer:
    """An offer presented to the customer, with its copy and the reasons it was chosen."""

    rank: int
    offer_id: str
    treatment_id: str
    channel: str
    campaign_id: str | None
    name: str
    copy: str
    expected_value: float
    action_probability: float
    reasons: tuple[str, ...] = ()
    reservation_id: str | None = None
    service: bool = False


@dataclass(slots=True)
class Decision:
    """The answer to a :class:`DecisionRequest`, as stored in the decision log.

    ``offers`` is empty when nothing should be sent ("or nothing" is an answer). ``arm`` is
    ``control`` when the customer was held out for measurement, ``explore`` when the bandit's
    draw differed from the greedy choice, ``fallback`` when rules decided. ``fallback_reason``
    says why models or state were not used. ``feature_ref`` identifies the feature snapshot
    (``as_of`` of the batch plus the events applied since) the decision read.
    """

    decision_id: str
    request: DecisionRequest
    offers: list[ChosenOffer]
    candidates: list[Candidate]
    arm: Arm = "engine"
    fallback: bool = False
    fallback_reason: str | None = None
    model_versions: dict[str, int] = field(default_factory=dict)
    feature_ref: str | None = None
    catalogue_version: str | None = None
    latency_ms: float | None = None

    @property
    def chosen(self) -> ChosenOffer | None:
        return self.offers[0] if self.offers else None

    def removed_by_stage(self) -> dict[str, int]:
        """How many candidates each stage removed (kept ones under ``"kept"``)."""
        out: dict[str, int] = {}
        for c in self.candidates:
            key = c.removed_by or "kept"
            out[key] = out.get(key, 0) + 1
        return out
