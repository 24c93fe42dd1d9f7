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


# ``async``: the decision runs on the event loop itself. A decision is ~1.5 ms of work that holds
# Python's interpreter lock most of the time, so threads only queue for the lock: at 500
# requests/s on 2 cores, 4 threads per process gave p99 80 ms, the loop 11.5 ms (2 processes,
# bench/bench_api.py). Its waits are short: Redis answers in ~0.1 ms, a backend that failed is
# skipped for a second (decide/outage.py), the model has its own time budget. Scale with
# ``qianmian serve --workers``, one process per core.
@router.post("", summary="Decide which offer to present, on which channel — or nothing")
async def decide(
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
