"""The offer catalogue as written in YAML: offers, campaigns, channels and the contact policy.

These pydantic models are the file boundary: strict (no unknown keys), with the defaults a bank
would expect filled in. A field's own checks run as the models validate (ranges, vocabularies,
template syntax); checks across fields and across the catalogue (ids unique, campaign offers
exist, rules parse, dates in order) are in :mod:`~qianmian.decide.catalogue_checks`, which
reports paths; :mod:`qianmian.decide.catalogue` turns paths into file names and lines.

Defaults that depend on other fields: ``service`` is true for offers of type ``service``;
``credit`` is true for card acquisition, instalment coupons, limit increases and loan
discounts; ``not_holding`` is ``[product_id]`` for card acquisition and insurance; a
treatment's ``id`` is ``"<offer id>:<channel>"``; every contact channel gets a
:class:`ChannelSpec` (:data:`CHANNEL_DEFAULTS` filling what is not given).

>>> offer = OfferSpec(id="OF-X", type="card_acquisition", name_zh="白金卡", name_en="Platinum",
...                   product_id="CC-PLAT", value=2500,
...                   treatments=[{"channel": "sms", "copy_zh": "办卡", "copy_en": "Apply"}])
>>> offer.credit, offer.not_holding, offer.treatments[0].id
(True, ['CC-PLAT'], 'OF-X:sms')
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from qianmian.data.schema.vocab import CONTACT_CHANNELS, OFFER_TYPES, RISK_LEVELS

__all__ = [
    "CAMPAIGN_STATUSES",
    "CHANNEL_DEFAULTS",
    "CREDIT_TYPES",
    "SERVICE_TYPE",
    "SPEC_MODELS",
    "CampaignSpec",
    "CapsSpec",
    "CatalogueSpec",
    "ChannelSpec",
    "Condition",
    "ContactPolicySpec",
    "OfferSpec",
    "PeriodCaps",
    "QuietHours",
    "SuppressionSpec",
    "TreatmentSpec",
]

ID_PATTERN = r"[A-Za-z0-9_.:-]{1,64}"
SERVICE_TYPE = "service"
CREDIT_TYPES = frozenset(
    {"card_acquisition", "instalment_coupon", "limit_increase", "loan_discount"}
)
_HOLDING_TYPES = frozenset({"card_acquisition", "insurance"})
CAMPAIGN_STATUSES = ("draft", "pilot", "full", "paused", "stopped")

# What each channel costs and allows unless the catalogue says otherwise. Costs are CNY per
# contact (SMS at bulk rates; an outbound call's agent time); quiet hours follow the common
# bank practice of no marketing calls or messages at night; max_length counts characters of
# Chinese copy as the channel shows them (an SMS of 140 includes the signature and opt-out).
CHANNEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "app_push": {
        "cost": 0.002,
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "max_length": 60,
    },
    "in_app": {"cost": 0.0, "needs_consent": False, "max_length": 40},
    "sms": {"cost": 0.05, "quiet_hours": {"start": "21:00", "end": "08:00"}, "max_length": 140},
    "email": {"cost": 0.01},
    "call_center": {
        "cost": 3.0,
        "capacity_per_day": 2000,
        "quiet_hours": {"start": "21:00", "end": "08:00"},
    },
    "wechat": {"cost": 0.02, "max_length": 200},
}


def _one_of(values: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"{value!r} is not one of {', '.join(values)}")
        return value

    return AfterValidator(check)


def _id(value: str) -> str:
    if not re.fullmatch(ID_PATTERN, value):
        raise ValueError(
            f"{value!r} is not a valid id: use 1 to 64 letters, digits and the signs _ . : -"
        )
    return value


Channel = Annotated[str, _one_of(CONTACT_CHANNELS.values)]
RiskLevel = Annotated[str, _one_of(RISK_LEVELS.values)]
OfferType = Annotated[str, _one_of((*OFFER_TYPES.values, SERVICE_TYPE))]
CampaignStatus = Annotated[str, _one_of(CAMPAIGN_STATUSES)]
Id = Annotated[str, AfterValidator(_id)]
Text = Annotated[str, Field(min_length=1)]


class _Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, validate_default=True
    )


@lru_cache(maxsize=1)
def _jinja() -> Any:
    """A sandboxed Jinja2 environment, or None when Jinja2 is not installed."""
    try:
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:
        return None
    return SandboxedEnvironment()


def _check_template(text: str) -> str:
    """Refuse copy that Jinja2 cannot parse (rendering happens later, per customer)."""
    env = _jinja()
    if env is None:  # copy is then sent as written; nothing to check it with
        return text
    from jinja2 import TemplateSyntaxError

    try:
        env.parse(text)
    except TemplateSyntaxError as e:
        raise ValueError(
            f"the template does not parse (line {e.lineno} of the copy: {e.message}); "
            "write variables as {{ offer }} and close every {% if %} with {% endif %}"
        ) from None
    return text


Template = Annotated[str, Field(min_length=1), AfterValidator(_check_template)]


class Condition(_Spec):
    """A rule and why it matters: the reason a candidate is removed when ``when`` is false
    (for ``applicable_when``, the reason the offer is relevant when it is true)."""

    when: Text
    reason_zh: Text
    reason_en: Text


class TreatmentSpec(_Spec):
    """One way to present an offer: a channel and its copy (Jinja2 templates)."""

    id: Id | None = None
    channel: Channel
    copy_zh: Template
    copy_en: Template
    personalised: bool | None = None


class OfferSpec(_Spec):
    """One offer the bank can make (or a mandatory service message)."""

    id: Id
    type: OfferType
    name_zh: Text
    name_en: Text
    product_id: Id | None = None
    personalised: bool = True
    service: bool = False
    value: float = Field(ge=0, description="The bank's value of a conversion, CNY")
    incentive_cost: float = Field(0.0, ge=0, description="Incentive paid per conversion, CNY")
    priority: int = Field(100, description="Rules-only fallback order, lower first")
    weight: float = Field(1.0, gt=0, description="Business lever on the expected value")
    prior_rate: float = Field(0.01, gt=0, lt=1, description="Conversion rate without a model")
    credit: bool = False
    risk_level: RiskLevel | None = None
    min_age: int | None = Field(18, ge=0, le=120)
    max_age: int | None = Field(None, ge=0, le=120)
    min_credit_score: int | None = Field(None, ge=0, le=1000)
    not_holding: list[Id] = []
    eligibility: list[Condition] = []
    applicable_when: Condition | None = None
    suitable_when: list[Condition] = []
    start_date: date | None = None
    end_date: date | None = None
    placements: list[Text] | None = None
    budget_cny: float | None = Field(None, ge=0)
    budget_count: int | None = Field(None, ge=0)
    treatments: list[TreatmentSpec] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        kind, product = data.get("type"), data.get("product_id")
        data.setdefault("service", kind == SERVICE_TYPE)
        data.setdefault("credit", kind in CREDIT_TYPES)
        if "not_holding" not in data:
            data["not_holding"] = [product] if kind in _HOLDING_TYPES and product else []
        offer_id, treatments = data.get("id"), data.get("treatments")
        if isinstance(offer_id, str) and isinstance(treatments, list):
            data["treatments"] = [_with_treatment_id(t, offer_id) for t in treatments]
        return data

    def treatment(self, treatment_id: str) -> TreatmentSpec:
        """The treatment with this id (KeyError if none)."""
        for t in self.treatments:
            if t.id == treatment_id:
                return t
        raise KeyError(treatment_id)

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Inconsistencies between fields: (path within the offer, message) pairs."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        if self.risk_level is not None and self.type != "wealth":
            out.append(
                (("risk_level",), f"a risk level is for wealth offers; this offer is {self.type}")
            )
        if self.type == "wealth" and self.risk_level is None:
            out.append((("risk_level",), "a wealth offer needs its product's risk level R1–R5"))
        if self.service != (self.type == SERVICE_TYPE):
            out.append(
                (
                    ("service",),
                    "service messages have type 'service' and 'service: true'; marketing "
                    f"offers neither (got type {self.type!r} with service {self.service})",
                )
            )
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            out.append((("max_age",), f"max_age {self.max_age} is below min_age {self.min_age}"))
        if self.start_date and self.end_date and self.start_date > self.end_date:
            out.append(
                (("end_date",), f"end_date {self.end_date} is before start_date {self.start_date}")
            )
        return out


def _with_treatment_id(treatment: Any, offer_id: str) -> Any:
    """A treatment given without an id, with the default ``"<offer id>:<channel>"``."""
    if isinstance(treatment, TreatmentSpec):
        if treatment.id is None:
            return treatment.model_copy(update={"id": f"{offer_id}:{treatment.channel}"})
        return treatment
    if isinstance(treatment, dict) and treatment.get("id") is None:
        channel = treatment.get("channel")
        if isinstance(channel, str):
            return {**treatment, "id": f"{offer_id}:{channel}"}
    return treatment


class CampaignSpec(_Spec):
    """A campaign: offers promoted together over a window, with a budget and a holdout."""

    id: Id
    name_zh: Text
    name_en: Text
    status: CampaignStatus = "draft"
    pilot_share: float = Field(0.1, ge=0, le=1, description="Share of customers in a pilot")
    offers: list[Id] = Field(min_length=1)
    start_date: date
    end_date: date
    budget_cny: float | None = Field(None, ge=0)
    budget_count: int | None = Field(None, ge=0)
    holdout_share: float = Field(0.1, ge=0, le=0.5)
    weight: float = Field(1.0, gt=0)
    audience: Text | None = None
    channels: list[Channel] | None = None

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Inconsistencies between fields: (path within the campaign, message) pairs."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        if self.start_date > self.end_date:
            out.append(
                (("end_date",), f"end_date {self.end_date} is before start_date {self.start_date}")
            )
        if self.status == "pilot" and self.pilot_share == 0:
            out.append((("pilot_share",), "a pilot with pilot_share 0 reaches nobody"))
        for name, values in (("offers", self.offers), ("channels", self.channels or [])):
            for i, value in enumerate(values):
                if value in values[:i]:
                    out.append(((name, i), f"{value!r} is listed twice"))
        return out


def _clock_time(value: str) -> str:
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
        raise ValueError(f"{value!r} is not a time of day written HH:MM, such as '21:00'")
    return value


ClockTime = Annotated[str, AfterValidator(_clock_time)]


class QuietHours(_Spec):
    """No contact from ``start`` to ``end`` (``HH:MM``, China time; may span midnight)."""

    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError(f"quiet hours from {self.start} to {self.end} are empty")
        return self


class ChannelSpec(_Spec):
    """What a contact channel costs and allows."""

    cost: float = Field(0.0, ge=0, description="CNY per contact")
    needs_consent: bool = True
    capacity_per_day: int | None = Field(None, ge=1)
    quiet_hours: QuietHours | None = None
    max_length: int | None = Field(None, ge=1, description="Characters of copy")


class PeriodCaps(_Spec):
    """At most so many contacts a day, an ISO week and a calendar month (None: no cap)."""

    day: int | None = Field(None, ge=0)
    week: int | None = Field(None, ge=0)
    month: int | None = Field(None, ge=0)

    def by_period(self) -> dict[str, int | None]:
        """``{"day": …, "week": …, "month": …}``."""
        return {"day": self.day, "week": self.week, "month": self.month}


class CapsSpec(_Spec):
    """Contact caps per customer: per channel (every channel present) and over all channels."""

    per_channel: dict[Channel, PeriodCaps] = {}
    all_channels: PeriodCaps = PeriodCaps()

    @field_validator("per_channel", mode="before")
    @classmethod
    def _every_channel(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {**{c: {} for c in CONTACT_CHANNELS.values}, **value}


class SuppressionSpec(_Spec):
    """When outcomes hide offers (see :class:`~qianmian.decide.state.base.SuppressionRules`)."""

    ignore_count: int = Field(2, ge=1)
    ignore_window_days: int = Field(30, ge=1)
    hide_days: int = Field(60, ge=0)
    complaint_days: int = Field(90, ge=0)


class ContactPolicySpec(_Spec):
    """Caps, suppression after outcomes, and how long an unconfirmed reservation is held."""

    caps: CapsSpec = CapsSpec()
    suppression: SuppressionSpec = SuppressionSpec()
    reservation_ttl_seconds: int = Field(900, ge=1)


class CatalogueSpec(_Spec):
    """A whole catalogue: its version label, offers, campaigns, channels and contact policy."""

    version: Text
    offers: list[OfferSpec] = []
    campaigns: list[CampaignSpec] = []
    channels: dict[Channel, ChannelSpec] = {}
    contact_policy: ContactPolicySpec = ContactPolicySpec()

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # an unquoted 2026.11 reads as a number; a label is text
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("channels", mode="before")
    @classmethod
    def _every_channel(cls, value: Any) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return value
        out: dict[Any, Any] = {}
        for channel in CONTACT_CHANNELS.values:
            given = value.get(channel)
            if isinstance(given, ChannelSpec):
                out[channel] = given
            elif given is None or isinstance(given, dict):
                out[channel] = {**CHANNEL_DEFAULTS[channel], **(given or {})}
            else:
                out[channel] = given  # not a mapping: the model says so with the line
        out.update({k: v for k, v in value.items() if k not in out})  # unknown: refused below
        return out


SPEC_MODELS: tuple[type[BaseModel], ...] = (
    CatalogueSpec, OfferSpec, Condition, TreatmentSpec, CampaignSpec, ChannelSpec, QuietHours,
    ContactPolicySpec, CapsSpec, PeriodCaps, SuppressionSpec,
)  # fmt: skip
