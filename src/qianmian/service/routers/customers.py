"""``/v1/customers``: a customer's profile (PII masked by role) and contact preferences."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from qianmian.service import audit
from qianmian.service.deps import EngineDep, require_roles
from qianmian.service.keys import ApiKey
from qianmian.service.schemas import PreferencesBody, PreferencesResponse, ProfileResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CustomerIdPath = Annotated[int, Path(gt=0, description="Unified customer id")]


@router.get("/{customer_id}/profile", summary="A customer's profile, tags and recent decisions")
def profile(
    customer_id: CustomerIdPath,
    engine: EngineDep,
    key: Annotated[ApiKey, require_roles("GET /v1/customers/{customer_id}/profile")],
) -> ProfileResponse:
    """Personal data (name, date of birth, phone ...) is masked unless the role may see it."""
    return ProfileResponse.for_role(customer_id, engine.customer_profile(customer_id), key.role)


@router.put("/{customer_id}/preferences", summary="Change consent and opt-outs")
def set_preferences(
    customer_id: CustomerIdPath,
    body: PreferencesBody,
    engine: EngineDep,
    key: Annotated[ApiKey, require_roles("PUT /v1/customers/{customer_id}/preferences")],
) -> PreferencesResponse:
    """Only the fields given change; the change is written to the audit trail."""
    state = audit.change_preferences(engine, key, customer_id, body.changes())
    return PreferencesResponse.from_state(state)


@router.post("/{customer_id}/opt-out", summary="One-click opt-out of all marketing")
def opt_out(
    customer_id: CustomerIdPath,
    engine: EngineDep,
    key: Annotated[ApiKey, require_roles("POST /v1/customers/{customer_id}/opt-out")],
) -> PreferencesResponse:
    """From now on only mandatory service messages reach the customer; audited."""
    return PreferencesResponse.from_state(audit.opt_out(engine, key, customer_id))
