"""``/v1/audit``: the audit trail of changes (who, role, action, target, when)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from qianmian.service.deps import EngineDep, require_roles
from qianmian.service.keys import ApiKey
from qianmian.service.schemas import AuditList

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", summary="The audit trail, oldest first")
def read_audit(
    engine: EngineDep,
    _: Annotated[ApiKey, require_roles("GET /v1/audit")],
    since: Annotated[datetime | None, Query(description="China time")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> AuditList:
    """Every change to offers, campaigns, customers' preferences and API keys."""
    return AuditList.from_table(engine.log.audit(since=since, limit=limit))
