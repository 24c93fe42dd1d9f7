"""One router per resource; :data:`ROUTERS` is what :func:`~qianmian.service.app.create_app` mounts."""

from __future__ import annotations

from fastapi import APIRouter

from qianmian.service.routers import (
    audit,
    campaigns,
    customers,
    decisions,
    events,
    health,
    keys,
    offers,
    responses,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    decisions.router,
    responses.router,
    events.router,
    customers.router,
    offers.router,
    campaigns.router,
    audit.router,
    keys.router,
    health.router,
)
