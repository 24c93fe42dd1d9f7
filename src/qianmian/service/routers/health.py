"""``/v1/health``: is every component up (no key needed); ``/v1/health/live``: is the process."""

from __future__ import annotations

from fastapi import APIRouter, Response

from qianmian.service.deps import EngineDep
from qianmian.service.schemas import HealthResponse, LiveResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1/health", tags=["health"])
_LIVE = LiveResponse()


@router.get(
    "",
    summary="Every component's health (200 all ok, 503 otherwise)",
    responses={503: {"model": HealthResponse, "description": "A component is not ok"}},
)
def health(engine: EngineDep, response: Response) -> HealthResponse:
    """Decision state, decision log, feature store, models: ``"ok"`` or the reason."""
    result = HealthResponse.of(engine.health())
    if result.status != "ok":
        response.status_code = 503
    return result


@router.get("/live", summary="The process answers (no I/O)")
async def live() -> LiveResponse:
    """Constant; the load benchmark's baseline for the framework's own cost."""
    return _LIVE
