"""``/v1/offers``: read the catalogue's offers; create, replace and delete them (audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response

from qianmian.service import audit
from qianmian.service.deps import EngineDep, require_roles
from qianmian.service.keys import ApiKey
from qianmian.service.schemas import CatalogueChange, OfferList

__all__ = ["OFFER_EXAMPLES", "router"]

router = APIRouter(prefix="/v1/offers", tags=["catalogue"])

OfferId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]

#: Shown on the OpenAPI page for PUT /v1/offers/{offer_id}.
OFFER_EXAMPLES: dict[str, Any] = {
    "instalment_coupon": {
        "summary": "A 12-month interest-free instalment coupon after a large home purchase",
        "value": {
            "type": "instalment_coupon",
            "name_zh": "家装12期免息券",
            "name_en": "12-month interest-free home instalments",
            "value": 380.0,
            "incentive_cost": 60.0,
            "prior_rate": 0.03,
            "applicable_when": {
                "when": "event_type = 'transaction' AND event_amount >= 3000",
                "reason_zh": "刚完成一笔大额消费",
                "reason_en": "a large purchase just now",
            },
            "treatments": [
                {
                    "channel": "app_push",
                    "copy_zh": "{{ name }}您好,这笔消费可分12期免息。",
                    "copy_en": "Spread this purchase over 12 months, interest-free.",
                }
            ],
        },
    }
}


@router.get("", summary="Every offer in the catalogue")
def list_offers(
    engine: EngineDep, _: Annotated[ApiKey, require_roles("GET /v1/offers")]
) -> OfferList:
    """The offers of the catalogue now serving, with every field (defaults filled in)."""
    return OfferList.of(engine.catalogue)


@router.get("/{offer_id}", summary="One offer")
def get_offer(
    offer_id: OfferId,
    engine: EngineDep,
    _: Annotated[ApiKey, require_roles("GET /v1/offers/{offer_id}")],
) -> dict[str, Any]:
    """The offer as the engine reads it; 404 naming the nearest ids if there is none."""
    spec: dict[str, Any] = engine.catalogue.offer(offer_id).model_dump(mode="json")
    return spec


@router.put(
    "/{offer_id}",
    summary="Create or replace an offer",
    responses={201: {"model": CatalogueChange, "description": "Created"}},
)
def put_offer(
    offer_id: OfferId,
    body: Annotated[dict[str, Any], Body(openapi_examples=OFFER_EXAMPLES)],
    engine: EngineDep,
    response: Response,
    key: Annotated[ApiKey, require_roles("PUT /v1/offers/{offer_id}")],
) -> CatalogueChange:
    """The body is an offer of the catalogue (its ``id`` is the path's). The whole catalogue is
    checked again (rules parse, campaigns' offers exist) and saved as a new revision."""
    edit = audit.put_offer(engine, key, offer_id, body)
    if edit.action == "created":
        response.status_code = 201
    return CatalogueChange.from_edit(edit)


@router.delete("/{offer_id}", summary="Delete an offer no campaign lists")
def delete_offer(
    offer_id: OfferId,
    engine: EngineDep,
    key: Annotated[ApiKey, require_roles("DELETE /v1/offers/{offer_id}")],
) -> CatalogueChange:
    """Refused (422) while a campaign still lists the offer."""
    return CatalogueChange.from_edit(audit.delete_offer(engine, key, offer_id))
