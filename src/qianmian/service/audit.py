"""Every change made through the API, made and written to the audit trail.

Each function here makes one kind of change — an offer or campaign created, updated or
deleted, a customer's contact preferences changed or an opt-out, an API key created or
disabled — and then writes an :class:`~qianmian.decide.log.base.AuditEntry` through
``engine.log.record_audit``: who (the key's name), in which role, which action, on what, and
a JSON detail (never personal data). Route handlers call these and nothing else, so no change
can skip the trail.

Actions: ``offer.create``, ``offer.update``, ``offer.delete``, ``campaign.create``,
``campaign.update``, ``campaign.delete``, ``customer.preferences``, ``customer.opt_out``,
``key.create``, ``key.disable``.

Catalogue changes are read-modify-write of the whole catalogue, so they are serialised by a
lock: two marketers editing different offers at once both keep their edit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import ValidationError as PydanticValidationError

from qianmian.decide.log.base import AuditEntry, DecisionLog
from qianmian.service.keys import ApiKey, ApiKeyStore
from qianmian.service.schemas import china_now

if TYPE_CHECKING:
    from qianmian.decide.state.base import CustomerContactState
    from qianmian.service.deps import Engine

__all__ = [
    "CatalogueEdit",
    "change_preferences",
    "create_key",
    "delete_campaign",
    "delete_offer",
    "disable_key",
    "opt_out",
    "put_campaign",
    "put_offer",
    "record_change",
]

logger = logging.getLogger(__name__)
_CATALOGUE_LOCK = threading.Lock()

Kind = Literal["offer", "campaign"]


@dataclass(frozen=True, slots=True)
class CatalogueEdit:
    """What a catalogue change did: the spec now (None: deleted) and the revision saved."""

    kind: Kind
    id: str
    action: Literal["created", "updated", "deleted", "stopped"]
    catalogue_revision: int
    catalogue_version: str | None
    spec: dict[str, Any] | None


def record_change(
    log: DecisionLog, key: ApiKey, action: str, target: str, detail: Mapping[str, Any]
) -> AuditEntry:
    """Write one audit entry for a change ``key`` made; return it.

    Parameters
    ----------
    log : DecisionLog
    key : ApiKey
        The caller: its name is the actor, its role the role.
    action : str
        ``"<object>.<verb>"``, e.g. ``"offer.update"``.
    target : str
        ``"<object>:<id>"``, e.g. ``"offer:OF-INSTAL-HOME"``.
    detail : Mapping
        Written as compact JSON; must hold no personal data.
    """
    entry = AuditEntry(
        ts=china_now(),
        actor=key.name,
        role=key.role,
        action=action,
        target=target,
        detail=orjson.dumps(detail, option=orjson.OPT_SORT_KEYS, default=str).decode(),
    )
    try:
        log.record_audit(entry)
    except Exception:
        # The change is made; its entry is not. Say so where operators look, then fail the
        # request so the caller knows the trail is incomplete.
        logger.error("Audit entry NOT written for a change already made: %r", entry)
        raise
    return entry


# -- customers ---------------------------------------------------------------------------------


def change_preferences(
    engine: Engine, key: ApiKey, customer_id: int, changes: Mapping[str, Any]
) -> CustomerContactState:
    """Change a customer's contact preferences (only those given, not None); audited."""
    given = {k: v for k, v in changes.items() if v is not None}
    state = engine.set_preferences(
        customer_id,
        consents=given.get("consents"),
        marketing_opt_out=given.get("marketing_opt_out"),
        personalisation_opt_out=given.get("personalisation_opt_out"),
        actor=key.name,
    )
    record_change(engine.log, key, "customer.preferences", f"customer:{customer_id}", given)
    return state


def opt_out(engine: Engine, key: ApiKey, customer_id: int) -> CustomerContactState:
    """The one-click opt-out: no more marketing for this customer; audited."""
    state = engine.set_preferences(
        customer_id,
        consents=None,
        marketing_opt_out=True,
        personalisation_opt_out=None,
        actor=key.name,
    )
    detail = {"marketing_opt_out": True}
    record_change(engine.log, key, "customer.opt_out", f"customer:{customer_id}", detail)
    return state


# -- the catalogue -----------------------------------------------------------------------------


def _spec_from_body(kind: Kind, spec_id: str, body: Mapping[str, Any]) -> Any:
    """Validate ``body`` as an offer or campaign spec with id ``spec_id``.

    A pydantic ``ValidationError`` (fields named within the body) propagates to the 422
    handler; an id in the body that differs from the path's is a 422 on ``body.id``.
    """
    # Imported here: the decision path never needs the catalogue's models, and the service
    # module loads even where the catalogue code is not installed or importable.
    from qianmian.decide.catalogue_schema import CampaignSpec, OfferSpec

    if "id" in body and body["id"] != spec_id:
        raise PydanticValidationError.from_exception_data(
            "CatalogueSpec",
            [
                {
                    "type": "value_error",
                    "loc": ("id",),
                    "input": body["id"],
                    "ctx": {
                        "error": f"the id in the body must match the path's {spec_id!r} "
                        "(or be left out)"
                    },
                }
            ],
        )
    model = OfferSpec if kind == "offer" else CampaignSpec
    spec = model.model_validate({**body, "id": spec_id})
    problems = spec.problems()  # checks across fields, named like the body's own
    if problems:
        raise PydanticValidationError.from_exception_data(
            model.__name__,
            [
                {"type": "value_error", "loc": path, "input": body, "ctx": {"error": message}}
                for path, message in problems
            ],
        )
    return spec


def _dump(spec: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = spec.model_dump(mode="json")
    return dumped


def _put(
    engine: Engine, key: ApiKey, kind: Kind, spec_id: str, body: Mapping[str, Any]
) -> CatalogueEdit:
    spec = _spec_from_body(kind, spec_id, body)
    with _CATALOGUE_LOCK:
        catalogue = engine.catalogue
        existing = (catalogue.offers if kind == "offer" else catalogue.campaigns).get(spec_id)
        changed = catalogue.with_offer(spec) if kind == "offer" else catalogue.with_campaign(spec)
        revision = engine.set_catalogue(changed, actor=key.name, note=f"PUT {kind} {spec_id}")
        version = engine.catalogue.version
    new = _dump(spec)
    if existing is None:
        action: Literal["created", "updated"] = "created"
        fields = sorted(new)
    else:
        action = "updated"
        old = _dump(existing)
        fields = sorted(k for k in new.keys() | old.keys() if new.get(k) != old.get(k))
    detail = {"catalogue_revision": revision, "catalogue_version": version, "fields": fields}
    verb = "create" if action == "created" else "update"
    record_change(engine.log, key, f"{kind}.{verb}", f"{kind}:{spec_id}", detail)
    return CatalogueEdit(kind, spec_id, action, revision, version, new)


def _delete(engine: Engine, key: ApiKey, kind: Kind, spec_id: str) -> CatalogueEdit:
    with _CATALOGUE_LOCK:
        catalogue = engine.catalogue
        if kind == "offer":
            catalogue.offer(spec_id)  # NotFoundError names the nearest ids
            # ConfigError (a 422) while a campaign still lists the offer
            changed = catalogue.without_offer(spec_id)
            action: Literal["deleted", "stopped"] = "deleted"
        else:
            # A campaign is never erased: decisions, contacts and reports refer to it. Deleting
            # it ends its lifecycle (draft → pilot → full → stopped), so it makes no more offers.
            stopped = catalogue.campaign(spec_id).model_copy(update={"status": "stopped"})
            changed = catalogue.with_campaign(stopped)
            action = "stopped"
        revision = engine.set_catalogue(changed, actor=key.name, note=f"DELETE {kind} {spec_id}")
        version = engine.catalogue.version
    detail = {"catalogue_revision": revision, "catalogue_version": version, "effect": action}
    record_change(engine.log, key, f"{kind}.delete", f"{kind}:{spec_id}", detail)
    spec = None if kind == "offer" else _dump(stopped)
    return CatalogueEdit(kind, spec_id, action, revision, version, spec)


def put_offer(engine: Engine, key: ApiKey, offer_id: str, body: Mapping[str, Any]) -> CatalogueEdit:
    """Create or replace offer ``offer_id`` from a JSON body; saved as a revision; audited."""
    return _put(engine, key, "offer", offer_id, body)


def delete_offer(engine: Engine, key: ApiKey, offer_id: str) -> CatalogueEdit:
    """Remove offer ``offer_id`` (refused while a campaign lists it); audited."""
    return _delete(engine, key, "offer", offer_id)


def put_campaign(
    engine: Engine, key: ApiKey, campaign_id: str, body: Mapping[str, Any]
) -> CatalogueEdit:
    """Create or replace campaign ``campaign_id`` from a JSON body; audited."""
    return _put(engine, key, "campaign", campaign_id, body)


def delete_campaign(engine: Engine, key: ApiKey, campaign_id: str) -> CatalogueEdit:
    """Stop campaign ``campaign_id`` for good (it stays listed, status ``stopped``); audited."""
    return _delete(engine, key, "campaign", campaign_id)


# -- API keys ----------------------------------------------------------------------------------


def create_key(
    keys: ApiKeyStore, log: DecisionLog, key: ApiKey, name: str, role: str, rate_limit: str | None
) -> tuple[ApiKey, str]:
    """Create an API key; return its record and the plaintext key (shown once); audited."""
    plaintext = keys.create(name, role, rate_limit=rate_limit)
    record = keys.get(name)
    detail = {"role": role, "rate_limit": rate_limit}
    record_change(log, key, "key.create", f"key:{name}", detail)
    return record, plaintext


def disable_key(keys: ApiKeyStore, log: DecisionLog, key: ApiKey, name: str) -> ApiKey:
    """Disable the API key called ``name``; audited."""
    record = keys.disable(name)
    record_change(log, key, "key.disable", f"key:{name}", {"role": record.role})
    return record
