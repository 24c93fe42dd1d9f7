"""``/v1/keys``: API keys — list, create (the key is shown once), disable. Admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from qianmian.service import audit
from qianmian.service.deps import EngineDep, KeysDep, require_roles
from qianmian.service.keys import KEY_NAME_PATTERN, ApiKey
from qianmian.service.schemas import KeyCreateBody, KeyCreated, KeyInfo, KeyList

__all__ = ["router"]

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("", summary="Every API key (never the key itself)")
def list_keys(keys: KeysDep, _: Annotated[ApiKey, require_roles("GET /v1/keys")]) -> KeyList:
    """Names, roles, limits, creation times; disabled keys included."""
    return KeyList(keys=[KeyInfo.of(k) for k in keys.records()])


@router.post("", status_code=201, summary="Create an API key")
def create_key(
    body: KeyCreateBody,
    keys: KeysDep,
    engine: EngineDep,
    key: Annotated[ApiKey, require_roles("POST /v1/keys")],
) -> KeyCreated:
    """The response holds the key: it is shown this once and stored only as a hash."""
    record, plaintext = audit.create_key(
        keys, engine.log, key, body.name, body.role, body.rate_limit
    )
    return KeyCreated(**KeyInfo.of(record).model_dump(), key=plaintext)


@router.delete("/{name}", summary="Disable an API key")
def disable_key(
    name: Annotated[str, Path(pattern=KEY_NAME_PATTERN)],
    keys: KeysDep,
    engine: EngineDep,
    key: Annotated[ApiKey, require_roles("DELETE /v1/keys/{name}")],
) -> KeyInfo:
    """The key stops working within a second; its record stays for the audit trail."""
    return KeyInfo.of(audit.disable_key(keys, engine.log, key, name))
