"""``/v1/decisions``: ask for a decision; read decisions back from the log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from qianmian.errors import NotFoundError
from qianmian.service.deps import EngineDep, require_roles
from qianmian.service.keys import ApiKey
from qianmian.service.schemas import DecisionList, DecisionRequestBody, DecisionResponse, china_now

__all__ = ["router"]

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])


# A plain ``def``: the engine is synchronous (Redis, LightGBM), so it runs in the thread pool
# and never blocks the event loop.
@router.post("", summary="Decide which offer to present, on which channel — or nothing")
def decide(
    body: DecisionRequestBody,
    engine: EngineDep,
    _: Annotated[ApiKey, require_roles("POST /v1/decisions")],
) -> DecisionResponse:
    """The best offers for the customer now, with personalised copy and reasons.

    ``offers`` is empty when nothing should be sent. ``fallback`` is true when rules decided
    (a model or the state store was unavailable), with the reason.
    """
    return DecisionResponse.from_decision(engine.decide(body.to_request(china_now())))


@router.get("", summary="Decisions from the log, oldest first")
def list_decisions(
    engine: EngineDep,
    _: Annotated[ApiKey, require_roles("GET /v1/decisions")],
    customer_id: Annotated[int | None, Query(gt=0)] = None,
    since: Annotated[datetime | None, Query(description="China time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DecisionList:
    """Logged decisions (one row each: the first offer presented, arm, fallback, versions)."""
    table = engine.log.decisions(customer_id=customer_id, since=since, limit=limit)
    return DecisionList(decisions=table.to_pylist())


@router.get("/{decision_id}", summary="One decision whole: request, every candidate, offers")
def get_decision(
    decision_id: Annotated[str, Path(min_length=1, max_length=128)],
    engine: EngineDep,
    _: Annotated[ApiKey, require_roles("GET /v1/decisions/{decision_id}")],
) -> dict[str, object]:
    """The decision as stored, with each candidate and the stage that removed it, and why."""
    stored = engine.log.get(decision_id)
    if stored is None:
        raise NotFoundError(f"No decision '{decision_id}' is in the decision log.")
    return stored
