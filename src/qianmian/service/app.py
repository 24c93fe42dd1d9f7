"""The decision API: :func:`create_app` builds the FastAPI app around an engine passed in.

Nothing is built at import: ``qianmian serve`` (or a test) builds the engine from
:class:`~qianmian.config.Settings` and hands it over, with the API key store if it has one.

>>> import tempfile, pathlib
>>> from qianmian.config import Settings
>>> app = create_app(Settings(workspace=pathlib.Path(tempfile.mkdtemp())), engine=None)
>>> app.title, sorted(app.openapi()["components"]["securitySchemes"])
('qianmian 千面 decision API', ['APIKeyHeader'])
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from qianmian import __version__
from qianmian.config import Settings
from qianmian.service.deps import Engine
from qianmian.service.errors import ErrorBody, ValidationErrorBody, install_error_handlers
from qianmian.service.keys import ApiKeyStore
from qianmian.service.limits import RequestLimiter
from qianmian.service.roles import ENDPOINT_ROLES, PUBLIC_ENDPOINTS
from qianmian.service.routers import ROUTERS

if TYPE_CHECKING:
    from qianmian.stream.bus.base import EventBus

__all__ = [
    "DEFAULT_KEYS_FILE",
    "ERROR_RESPONSES",
    "TAGS",
    "check_permissions",
    "create_app",
    "endpoint_names",
]

DEFAULT_KEYS_FILE = "api_keys.json"

DESCRIPTION = """\
千面 — the right offer, on the right channel, at the right moment, for each customer.

Ask **POST /v1/decisions** which offer to present to a customer now (or nothing), feed
outcomes back with **POST /v1/responses**, keep consent and opt-outs current, and manage the
offer catalogue. Every decision is logged whole and explainable; every change is audited.

**Authentication**: an API key in the `X-API-Key` header. Each key has one role (marketer,
analyst, engineer, admin, compliance); each endpoint below lists the roles it admits. Missing
or unknown key → 401; role not admitted → 403; over the key's request limit → 429 with
`Retry-After`.

**Errors**: 422 lists each bad field as `{"field": "body.customer_id", "reason": ...}`; 404
names what was not found; 503 means a backend is down (the body's `error_id` finds the cause in
the log). The API never answers 500.
"""

TAGS: list[dict[str, Any]] = [
    {"name": "decisions", "description": "Ask for a decision; read logged decisions."},
    {"name": "responses", "description": "Feed outcomes back (idempotent on response_id)."},
    {
        "name": "events",
        "description": "Publish real-time events (transactions, logins, page views ...) to the "
        "event stream; triggers turn the right moments into offers.",
    },
    {"name": "customers", "description": "Profiles (PII masked by role), consent, opt-out."},
    {"name": "catalogue", "description": "Offers and campaigns: the policy as code."},
    {"name": "audit", "description": "Who changed what, when."},
    {"name": "keys", "description": "API keys and their roles (admins)."},
    {"name": "health", "description": "Liveness and component health (no key needed)."},
]


#: The error answers every authenticated route may give (documented once, here).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or an unknown or disabled one"},
    403: {"model": ErrorBody, "description": "The key's role may not call this endpoint"},
    422: {"model": ValidationErrorBody, "description": "Bad input; each field named"},
    429: {"model": ErrorBody, "description": "Over the key's request limit; see Retry-After"},
    503: {"model": ErrorBody, "description": "A backend is down; error_id finds the cause"},
}


def endpoint_names(route: APIRoute) -> list[str]:
    """The ``"METHOD /path"`` rows of a route, as :data:`ENDPOINT_ROLES` names them."""
    return [f"{method} {route.path}" for method in sorted(route.methods or ())]


def _declared_rows(route: APIRoute) -> set[str]:
    """The permission rows a route's dependencies check (see ``require_roles``)."""
    rows: set[str] = set()
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        row = getattr(dependency.call, "endpoint", None)
        if row is not None:
            rows.add(row)
        pending.extend(dependency.dependencies)
    return rows


def check_permissions(routers: Sequence[APIRouter] = ROUTERS) -> None:
    """Check every route against the permission table; raise ``RuntimeError`` on a mismatch.

    A route missing from the table, checking another route's row, or a row with no route is
    a programming error, caught when the app is created rather than in production.
    """
    seen: set[str] = set()
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            for row in endpoint_names(route):
                seen.add(row)
                declared = _declared_rows(route)
                expected = set() if row in PUBLIC_ENDPOINTS else {row}
                if row not in ENDPOINT_ROLES.keys() | PUBLIC_ENDPOINTS or declared != expected:
                    raise RuntimeError(
                        f"The route {row} must check exactly its own row of ENDPOINT_ROLES "
                        f"with require_roles({row!r}); it checks {sorted(declared)}."
                    )
    unrouted = (ENDPOINT_ROLES.keys() | PUBLIC_ENDPOINTS) - seen
    if unrouted:
        raise RuntimeError(f"ENDPOINT_ROLES lists endpoints with no route: {sorted(unrouted)}.")


def _openapi_with_roles(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` that also prints each operation's roles (and ``x-roles``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    allowed = ENDPOINT_ROLES.get(f"{method.upper()} {path}")
                    if allowed is None:
                        continue
                    roles = sorted(allowed)
                    text = operation.get("description", "")
                    operation["description"] = f"{text}\n\n**Roles**: {', '.join(roles)}.".lstrip()
                    operation["x-roles"] = roles
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def create_app(
    settings: Settings,
    engine: Engine,
    *,
    keys: ApiKeyStore | None = None,
    bus: EventBus | None = None,
) -> FastAPI:
    """Build the decision API around ``engine``.

    Parameters
    ----------
    settings : Settings
        ``settings.service`` gives the default request limit and the key file.
    engine : Engine
        The decision engine (see :class:`qianmian.service.deps.Engine`); the app does not
        close it.
    keys : ApiKeyStore, optional
        Default: the file ``settings.service.api_keys_file``, else
        ``<workspace>/api_keys.json``.
    bus : EventBus, optional
        Where ``POST /v1/events`` publishes events; without one it answers 503. The app does
        not close it.

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    ConfigError
        If the key file is invalid or ``service.rate_limit`` unreadable.
    """
    if keys is None:
        path = settings.service.api_keys_file or settings.workspace / DEFAULT_KEYS_FILE
        keys = ApiKeyStore(path)
    # No ORJSONResponse: FastAPI (0.13x on) deprecates it and, with the response models every
    # route declares, serialises them with pydantic straight to JSON bytes — measured 1.2 µs
    # for a decision here against 1.7 µs for model_dump + orjson.
    threads = settings.service.threads

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # sync routes (the decision engine) run on anyio's thread pool: size it once here
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="qianmian 千面 decision API",
        description=DESCRIPTION,
        version=__version__,
        openapi_tags=TAGS,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.keys = keys
    app.state.bus = bus
    app.state.limiter = RequestLimiter(settings.service.rate_limit)
    install_error_handlers(app)
    check_permissions(ROUTERS)
    for router in ROUTERS:
        # health and liveness need no key: no 401/403/429 to document there
        public = all(
            row in PUBLIC_ENDPOINTS
            for route in router.routes
            if isinstance(route, APIRoute)
            for row in endpoint_names(route)
        )
        app.include_router(router, responses={} if public else ERROR_RESPONSES)
    app.openapi = _openapi_with_roles(app)  # type: ignore[method-assign]  # FastAPI's own way
    return app
