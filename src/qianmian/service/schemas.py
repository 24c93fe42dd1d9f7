"""Request and response bodies of the decision API (pydantic; kept apart from the engine's types).

Request bodies refuse unknown fields (a misspelt ``chanel`` is an error, not silently ignored)
and carry an example each, shown on the OpenAPI page. Times are naive China time; an aware
time is converted to it.

>>> body = DecisionRequestBody(customer_id=1024, channel="app_push")
>>> body.to_request(datetime(2026, 11, 11, 20, 15)).max_offers
1
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pyarrow as pa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from qianmian.data.schema.vocab import CONTACT_CHANNELS, RESPONSE_TYPES
from qianmian.decide.decision import Decision, DecisionRequest
from qianmian.decide.log.base import ResponseRecord
from qianmian.decide.state.base import CustomerContactState
from qianmian.service.keys import KEY_NAME_PATTERN, ApiKey, Role
from qianmian.service.roles import mask_profile, sees_unmasked_pii

if TYPE_CHECKING:
    from qianmian.decide.catalogue import Catalogue
    from qianmian.service.audit import CatalogueEdit

__all__ = [
    "CHINA",
    "RESPONSE_TYPE_VALUES",
    "AuditEntryOut",
    "AuditList",
    "CampaignList",
    "CatalogueChange",
    "DecisionList",
    "DecisionRequestBody",
    "DecisionResponse",
    "EventBody",
    "HealthResponse",
    "KeyCreateBody",
    "KeyCreated",
    "KeyInfo",
    "KeyList",
    "LiveResponse",
    "OfferList",
    "PreferencesBody",
    "PreferencesResponse",
    "PresentedOffer",
    "ProfileResponse",
    "ResponseBody",
    "ResponseRecorded",
    "china_now",
]

CHINA = timezone(timedelta(hours=8))
#: Response types the API accepts: the dictionary's, plus "ignored" (seen, no action taken).
RESPONSE_TYPE_VALUES: tuple[str, ...] = (*RESPONSE_TYPES.values, "ignored")
_ID = r"^[A-Za-z0-9_.:-]{1,64}$"


def china_now() -> datetime:
    """The current time as naive China Standard Time (UTC+8, no daylight saving)."""
    return datetime.now(CHINA).replace(tzinfo=None)


def _china_time(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(CHINA).replace(tzinfo=None)


def _one_of(values: tuple[str, ...], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"{value!r} is not {what}; use one of {', '.join(values)}")
        return value

    return AfterValidator(check)


Channel = Annotated[
    str,
    _one_of(CONTACT_CHANNELS.values, "a contact channel"),
    WithJsonSchema({"type": "string", "enum": list(CONTACT_CHANNELS.values)}),
]
ResponseType = Annotated[
    str,
    _one_of(RESPONSE_TYPE_VALUES, "a response type"),
    WithJsonSchema({"type": "string", "enum": list(RESPONSE_TYPE_VALUES)}),
]
Id = Annotated[str, Field(pattern=_ID)]
ChinaTime = Annotated[datetime, AfterValidator(_china_time)]
CustomerId = Annotated[int, Field(gt=0, description="Unified customer id")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- decisions --------------------------------------------------------------------------------


class EventBody(_Body):
    """What triggered the request; visible to rules as ``event_type``, ``event_amount`` ..."""

    type: Id = Field(description="e.g. transaction, login, page_view, transfer_failed")
    amount: float | None = Field(None, ge=0, allow_inf_nan=False, description="CNY")
    category: Id | None = Field(None, description="Spending category of a transaction")
    page: str | None = Field(None, max_length=128, description="App page viewed")


class DecisionRequestBody(_Body):
    """Which offer, on which channel, for this customer, now — or nothing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": 1024,
                    "channel": "app_push",
                    "placement": "home_banner",
                    "event": {"type": "transaction", "amount": 5000.0, "category": "home"},
                    "max_offers": 1,
                    "request_id": "app-7f3c9e",
                }
            ]
        }
    )

    customer_id: CustomerId
    channel: Channel | None = Field(None, description="Only this channel (null: engine chooses)")
    placement: Id | None = Field(None, description="Where in the channel, e.g. home_banner")
    event: EventBody | None = None
    campaign_id: Id | None = Field(None, description="Only this campaign's offers")
    max_offers: int = Field(1, ge=1, le=5, description="Offers to return, best first")
    request_id: str | None = Field(
        None, min_length=1, max_length=128, description="Caller's id: a retry is answered again"
    )

    def to_request(self, ts: datetime) -> DecisionRequest:
        """The engine's request for this body, made at ``ts``."""
        event = self.event.model_dump(exclude_none=True) if self.event is not None else None
        return DecisionRequest(ts=ts, event=event, **self.model_dump(exclude={"event"}))


class PresentedOffer(BaseModel):
    """One offer to show, best first."""

    # read from the engine's ChosenOffer by attribute; "copy" would shadow BaseModel.copy
    model_config = ConfigDict(populate_by_name=True, from_attributes=True)

    rank: int
    offer_id: str
    treatment_id: str
    name: str
    channel: str
    campaign_id: str | None
    copy_text: str = Field(alias="copy", description="The message, personalised")
    reasons: list[str]
    expected_value: float = Field(description="Expected incremental value, CNY")
    action_probability: float


class DecisionResponse(BaseModel):
    """The decision: offers to present (none: send nothing) and how it was made."""

    decision_id: str
    customer_id: int
    offers: list[PresentedOffer]
    arm: Literal["engine", "explore", "control", "fallback"]
    fallback: bool
    fallback_reason: str | None
    latency_ms: float | None
    catalogue_version: str | None

    @classmethod
    def from_decision(cls, decision: Decision) -> DecisionResponse:
        """The response for an engine's decision."""
        return cls(
            decision_id=decision.decision_id,
            customer_id=decision.request.customer_id,
            offers=[PresentedOffer.model_validate(o) for o in decision.offers],
            arm=decision.arm,
            fallback=decision.fallback,
            fallback_reason=decision.fallback_reason,
            latency_ms=decision.latency_ms,
            catalogue_version=decision.catalogue_version,
        )


class DecisionList(BaseModel):
    """Decisions from the log, oldest first."""

    decisions: list[dict[str, Any]]


# -- responses ---------------------------------------------------------------------------------


class ResponseBody(_Body):
    """An outcome fed back for a decision; sending it twice is harmless."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "response_id": "sms-gw-20261111-000123",
                    "decision_id": "5b0e8f8a6d2c4c1e",
                    "customer_id": 1024,
                    "offer_id": "OF-INSTAL-HOME",
                    "response_type": "clicked",
                    "ts": "2026-11-11T20:17:03",
                }
            ]
        }
    )

    response_id: str = Field(min_length=1, max_length=128, description="Unique per outcome")
    decision_id: str | None = Field(None, max_length=128)
    customer_id: CustomerId
    offer_id: Id | None = None
    response_type: ResponseType
    ts: ChinaTime = Field(description="When it happened (China time, or with an offset)")
    value: float | None = Field(None, ge=0, allow_inf_nan=False, description="CNY, if any")

    def to_record(self) -> ResponseRecord:
        """The decision log's record of this response."""
        return ResponseRecord(**self.model_dump())


class ResponseRecorded(BaseModel):
    """Whether the response was new (false: already recorded, nothing changed)."""

    response_id: str
    recorded: bool


# -- customers ---------------------------------------------------------------------------------


class PreferencesBody(_Body):
    """Contact preferences to change; fields left out stay as they are."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"consents": {"sms": False, "app_push": True}, "personalisation_opt_out": True}
            ]
        }
    )

    consents: dict[Channel, bool] | None = Field(None, description="Consent per channel")
    marketing_opt_out: bool | None = Field(None, description="Refuse all marketing")
    personalisation_opt_out: bool | None = Field(
        None, description="Refuse personalised marketing (PIPL Art. 24)"
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> PreferencesBody:
        if all(value is None for value in self.changes().values()):
            raise ValueError(
                "give at least one of consents, marketing_opt_out, personalisation_opt_out"
            )
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, as keyword arguments of ``set_preferences``."""
        return {
            "consents": self.consents,
            "marketing_opt_out": self.marketing_opt_out,
            "personalisation_opt_out": self.personalisation_opt_out,
        }


class PreferencesResponse(BaseModel):
    """A customer's contact preferences after the change."""

    customer_id: int
    consents: list[str] = Field(description="Channels the customer agreed to, sorted")
    marketing_opt_out: bool
    personalisation_opt_out: bool
    marketing_suppressed_until: datetime | None

    @classmethod
    def from_state(cls, state: CustomerContactState) -> PreferencesResponse:
        """The response for a customer's contact state."""
        return cls(
            customer_id=state.customer_id,
            consents=sorted(state.consents),
            marketing_opt_out=state.marketing_opt_out,
            personalisation_opt_out=state.personalisation_opt_out,
            marketing_suppressed_until=state.marketing_suppressed_until,
        )


class ProfileResponse(BaseModel):
    """A customer's profile; ``pii_masked`` says whether personal data was masked for the role."""

    customer_id: int
    pii_masked: bool
    customer: dict[str, Any] | None = Field(description="The customers-table record, if any")
    contact: dict[str, Any] | str | None = Field(
        description="Preferences as decisions read them (text: why they cannot be read)"
    )
    features: dict[str, Any]
    tags: list[dict[str, Any] | str]
    recent_decisions: list[dict[str, Any]]

    @classmethod
    def for_role(cls, customer_id: int, profile: Mapping[str, Any], role: str) -> ProfileResponse:
        """The engine's profile, with PII masked unless ``role`` may see it."""
        masked = not sees_unmasked_pii(role)
        shown = mask_profile(profile) if masked else profile
        return cls(
            customer_id=customer_id,
            pii_masked=masked,
            customer=shown.get("customer"),
            contact=shown.get("contact"),
            features=shown.get("features") or {},
            tags=list(shown.get("tags") or ()),
            recent_decisions=list(shown.get("recent_decisions") or ()),
        )


# -- catalogue ---------------------------------------------------------------------------------


class OfferList(BaseModel):
    """The catalogue's offers."""

    catalogue_version: str | None
    offers: list[dict[str, Any]]

    @classmethod
    def of(cls, catalogue: Catalogue) -> OfferList:
        """Every offer of ``catalogue``, in its order."""
        offers = [o.model_dump(mode="json") for o in catalogue.offers.values()]
        return cls(catalogue_version=catalogue.version, offers=offers)


class CampaignList(BaseModel):
    """The catalogue's campaigns."""

    catalogue_version: str | None
    campaigns: list[dict[str, Any]]

    @classmethod
    def of(cls, catalogue: Catalogue) -> CampaignList:
        """Every campaign of ``catalogue``, in its order."""
        campaigns = [c.model_dump(mode="json") for c in catalogue.campaigns.values()]
        return cls(catalogue_version=catalogue.version, campaigns=campaigns)


class CatalogueChange(BaseModel):
    """What a change to the catalogue did, and the revision it was saved as."""

    kind: Literal["offer", "campaign"]
    id: str
    action: Literal["created", "updated", "deleted", "stopped"]
    catalogue_revision: int
    catalogue_version: str | None
    spec: dict[str, Any] | None = Field(description="The offer or campaign now (null: deleted)")

    @classmethod
    def from_edit(cls, edit: CatalogueEdit) -> CatalogueChange:
        """The response for an audited catalogue edit."""
        return cls.model_validate(edit, from_attributes=True)


# -- audit and keys -----------------------------------------------------------------------------


class AuditEntryOut(BaseModel):
    """One change: who, in which role, did what, to what."""

    ts: datetime
    actor: str
    role: str
    action: str
    target: str
    detail: str


class AuditList(BaseModel):
    """The audit trail, oldest first."""

    entries: list[AuditEntryOut]

    @classmethod
    def from_table(cls, table: pa.Table) -> AuditList:
        """The audit log's table as a response."""
        return cls(entries=[AuditEntryOut.model_validate(row) for row in table.to_pylist()])


class KeyCreateBody(_Body):
    """A new API key: its name (the actor in the audit trail), role and own request limit."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "sms-platform", "role": "engineer", "rate_limit": "200/second"}]
        }
    )

    name: str = Field(pattern=KEY_NAME_PATTERN)
    role: Role
    rate_limit: str | None = Field(None, description="e.g. '100/minute'; default the service's")


class KeyInfo(BaseModel):
    """A key as listed: never its secret or hash."""

    name: str
    role: str
    rate_limit: str | None
    created_at: datetime
    disabled: bool

    @classmethod
    def of(cls, record: ApiKey) -> KeyInfo:
        """What may be shown of a key record (never its hash)."""
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


class KeyList(BaseModel):
    """Every API key, oldest first."""

    keys: list[KeyInfo]


class KeyCreated(KeyInfo):
    """A key just created; ``key`` is shown this once and cannot be recovered."""

    key: str


# -- health -------------------------------------------------------------------------------------


class HealthResponse(BaseModel):
    """``ok`` when every component is; otherwise each component's reason."""

    status: Literal["ok", "degraded"]
    components: dict[str, str]

    @classmethod
    def of(cls, components: Mapping[str, str]) -> HealthResponse:
        """``ok`` only if every component says ``"ok"``."""
        healthy = all(v == "ok" for v in components.values())
        return cls(status="ok" if healthy else "degraded", components=dict(components))


class LiveResponse(BaseModel):
    """The process answers."""

    status: Literal["ok"] = "ok"
