"""What route handlers receive: the engine, the settings, the caller's key checked for role.

The ``Annotated`` aliases here are the only way handlers get at shared objects; everything is
put on ``app.state`` by :func:`qianmian.service.app.create_app`, never built at import.

* :data:`EngineDep` — the decision engine (anything shaped like :class:`Engine`);
* :data:`SettingsDep`, :data:`KeysDep`;
* :data:`CurrentKey` — the caller's :class:`~qianmian.service.keys.ApiKey`, after the key was
  verified (401 otherwise) and counted against its request limit (429 beyond it);
* ``Annotated[ApiKey, require_roles("PUT /v1/offers/{offer_id}")]`` — the same, and its role
  allowed by that row of :data:`~qianmian.service.roles.ENDPOINT_ROLES` (403 otherwise).

Dependencies are ``async def``: they do no blocking I/O (the key file is stat-ed at most once a
second), and a plain ``def`` would cost a thread-pool hop each per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from qianmian.config import Settings
from qianmian.service.errors import Forbidden, Unauthorized
from qianmian.service.keys import ApiKey, ApiKeyStore
from qianmian.service.limits import RequestLimiter
from qianmian.service.roles import ENDPOINT_ROLES

if TYPE_CHECKING:
    from qianmian.decide.catalogue import Catalogue
    from qianmian.decide.decision import Decision, DecisionRequest
    from qianmian.decide.log.base import DecisionLog, ResponseRecord
    from qianmian.decide.state.base import CustomerContactState

__all__ = [
    "API_KEY_HEADER",
    "CurrentKey",
    "Engine",
    "EngineDep",
    "KeysDep",
    "SettingsDep",
    "require_roles",
]

API_KEY_HEADER = "X-API-Key"


class Engine(Protocol):
    """What the service needs of the decision engine (:class:`qianmian.decide.engine.DecisionEngine`).

    ``decide`` raises ``NotFoundError`` for an unknown customer and ``ValidationError`` for bad
    input, and falls back to rules itself when a model or Redis fails. ``record_response``
    returns False for a ``response_id`` already seen. ``set_catalogue`` receives a catalogue
    already validated, saves it as a new revision and returns the revision number.
    ``health`` maps each component to ``"ok"`` or the reason it is not.
    """

    catalogue: Catalogue
    log: DecisionLog

    def decide(self, request: DecisionRequest) -> Decision:
        """Decide for one request."""

    def record_response(self, response: ResponseRecord) -> bool:
        """Record a response; False if its id was seen before."""

    def customer_profile(self, customer_id: int) -> dict[str, Any]:
        """``{"customer", "contact", "features", "tags", "recent_decisions"}``."""

    def set_preferences(
        self,
        customer_id: int,
        *,
        consents: dict[str, bool] | None,
        marketing_opt_out: bool | None,
        personalisation_opt_out: bool | None,
        actor: str,
    ) -> CustomerContactState:
        """Change a customer's contact preferences (only those given); ``actor`` is recorded."""

    def set_catalogue(self, catalogue: Catalogue, *, actor: str, note: str = "") -> int:
        """Adopt and save a catalogue; return its revision."""

    def health(self) -> dict[str, str]:
        """Each component → ``"ok"`` or why not."""


async def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _keys(request: Request) -> ApiKeyStore:
    keys: ApiKeyStore = request.app.state.keys
    return keys


EngineDep = Annotated[Engine, Depends(_engine)]
SettingsDep = Annotated[Settings, Depends(_settings)]
KeysDep = Annotated[ApiKeyStore, Depends(_keys)]

# auto_error=False: a missing key is our 401 with our message, not FastAPI's 403
_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="An API key from `qianmian keys create` (or POST /v1/keys).",
)


async def _current_key(
    request: Request, presented: Annotated[str | None, Security(_api_key_header)]
) -> ApiKey:
    if not presented:
        raise Unauthorized(
            f"This endpoint needs an API key in the {API_KEY_HEADER} header; ask an admin for one."
        )
    key = request.app.state.keys.verify(presented)
    if key is None:
        raise Unauthorized(
            f"The API key in the {API_KEY_HEADER} header is unknown or disabled; check it, or "
            "ask an admin for a new one."
        )
    limiter: RequestLimiter = request.app.state.limiter
    limiter.check(key)
    return key


CurrentKey = Annotated[ApiKey, Depends(_current_key)]


def require_roles(endpoint: str) -> Any:
    """A dependency admitting the roles :data:`ENDPOINT_ROLES` allows for ``endpoint``.

    Parameters
    ----------
    endpoint : str
        The table's row, ``"METHOD /path"`` exactly as routed.

    Returns
    -------
    fastapi.params.Depends
        Use as ``Annotated[ApiKey, require_roles("GET /v1/audit")]``.

    Raises
    ------
    KeyError
        At import of the router, if the table has no such row.
    """
    allowed = ENDPOINT_ROLES[endpoint]
    listed = ", ".join(sorted(allowed))

    async def authorised(key: CurrentKey) -> ApiKey:
        if key.role not in allowed:
            raise Forbidden(
                f"The role '{key.role}' of API key '{key.name}' may not call {endpoint}; "
                f"allowed roles: {listed}."
            )
        return key

    authorised.__qualname__ = authorised.__name__ = f"authorised[{endpoint}]"
    authorised.endpoint = endpoint  # type: ignore[attr-defined]  # read by create_app's check
    return Depends(authorised)
