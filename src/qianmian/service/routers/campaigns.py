"""``/v1/campaigns``: read the catalogue's campaigns; create, replace and stop them (audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response

from qianmian.service import audit
from qianmian.service.deps import EngineDep, require_roles
from qianmian.service.keys import ApiKey
from qianmian.service.schemas import CampaignList, CatalogueChange

__all__ = ["CAMPAIGN_EXAMPLES", "router"]

router = APIRouter(prefix="/v1/campaigns", tags=["catalogue"])

CampaignId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]

#: Shown on the OpenAPI page for PUT /v1/campaigns/{campaign_id}.
CAMPAIGN_EXAMPLES: dict[str, Any] = {
    "double_11_pilot": {
        "summary": "A Double 11 instalment campaign piloted on 10% of customers",
        "value": {
            "name_zh": "双十一分期节",
            "name_en": "Double 11 instalments",
            "status": "pilot",
            "pilot_share": 0.1,
            "offers": ["OF-INST-12"],
            "start_date": "2026-11-01",
            "end_date": "2026-11-12",
            "budget_cny": 200000.0,
            "holdout_share": 0.1,
            "channels": ["app_push", "sms"],
        },
    }
}


@router.get("", summary="Every campaign in the catalogue")
def list_campaigns(
    engine: EngineDep, _: Annotated[ApiKey, require_roles("GET /v1/campaigns")]
) -> CampaignList:
    """The campaigns of the catalogue now serving, stopped ones included."""
    return CampaignList.of(engine.catalogue)


@router.get("/{campaign_id}", summary="One campaign")
def get_campaign(
    campaign_id: CampaignId,
    engine: EngineDep,
    _: Annotated[ApiKey, require_roles("GET /v1/campaigns/{campaign_id}")],
) -> dict[str, Any]:
    """The campaign as the engine reads it; 404 naming the nearest ids if there is none."""
    spec: dict[str, Any] = engine.catalogue.campaign(campaign_id).model_dump(mode="json")
    return spec


@router.put(
    "/{campaign_id}",
    summary="Create or replace a campaign",
    responses={201: {"model": CatalogueChange, "description": "Created"}},
)
def put_campaign(
    campaign_id: CampaignId,
    body: Annotated[dict[str, Any], Body(openapi_examples=CAMPAIGN_EXAMPLES)],
    engine: EngineDep,
    response: Response,
    key: Annotated[ApiKey, require_roles("PUT /v1/campaigns/{campaign_id}")],
) -> CatalogueChange:
    """The body is a campaign of the catalogue (its ``id`` is the path's); its offers must
    exist. Saved as a new catalogue revision."""
    edit = audit.put_campaign(engine, key, campaign_id, body)
    if edit.action == "created":
        response.status_code = 201
    return CatalogueChange.from_edit(edit)


@router.delete("/{campaign_id}", summary="Stop a campaign for good")
def delete_campaign(
    campaign_id: CampaignId,
    engine: EngineDep,
    key: Annotated[ApiKey, require_roles("DELETE /v1/campaigns/{campaign_id}")],
) -> CatalogueChange:
    """A campaign is never erased — decisions and reports refer to it — so deleting it sets its
    status to ``stopped``: it makes no more offers and stays listed."""
    return CatalogueChange.from_edit(audit.delete_campaign(engine, key, campaign_id))
