"""``/v1/responses``: outcomes fed back for decisions (delivered, clicked, applied ...)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from qianmian.service.deps import EngineDep, require_roles
from qianmian.service.keys import ApiKey
from qianmian.service.schemas import ResponseBody, ResponseRecorded

__all__ = ["router"]

router = APIRouter(prefix="/v1/responses", tags=["responses"])


@router.post(
    "",
    status_code=201,
    summary="Record a response (idempotent on response_id)",
    responses={200: {"model": ResponseRecorded, "description": "Already recorded; unchanged"}},
)
def record_response(
    body: ResponseBody,
    engine: EngineDep,
    response: Response,
    _: Annotated[ApiKey, require_roles("POST /v1/responses")],
) -> ResponseRecorded:
    """201 with ``recorded: true`` the first time; 200 with ``recorded: false`` on a repeat."""
    recorded = engine.record_response(body.to_record())
    if not recorded:
        response.status_code = 200
    return ResponseRecorded(response_id=body.response_id, recorded=recorded)
