"""``/v1/events``: events from the bank's systems (payments, app logins, page views ...) onto the bus.

The body is one event or a list of up to :data:`MAX_EVENTS`, each validated against the event
models (:mod:`qianmian.stream.events`). A request is taken whole or not at all: one bad event
is a 422 naming it (``body[3].amount``) and nothing is published, so the caller fixes it and
sends the batch again — which is safe, since ``event_id`` makes a resent event change nothing.
Accepted events are published to the event bus (202); the stream consumer processes them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from qianmian.service.deps import require_roles
from qianmian.service.keys import ApiKey
from qianmian.stream.bus.base import EventBus
from qianmian.stream.events import (
    EVENT_ADAPTER,
    BaseEvent,
    Event,
    EventError,
    event_errors,
    event_to_json,
)

__all__ = ["EVENT_EXAMPLES", "MAX_EVENTS", "EventsAccepted", "router"]

router = APIRouter(prefix="/v1/events", tags=["events"])

#: The most events one request may carry.
MAX_EVENTS = 1_000
_BATCH_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])

_PAYMENT = {
    "type": "transaction",
    "event_id": "pos-20261111-000042",
    "customer_id": 1024,
    "ts": "2026-11-11T20:15:00+08:00",
    "amount": 5000.0,
    "category": "家装",
    "channel": "POS",
    "mcc": "5712",
}
#: Shown on the OpenAPI page.
EVENT_EXAMPLES: dict[str, Any] = {
    "transaction": {"summary": "A ¥5,000 payment at a furniture store", "value": _PAYMENT},
    "batch": {
        "summary": "A login, then a fund page viewed",
        "value": [
            {
                "type": "login",
                "event_id": "app-7f3c9e-1",
                "customer_id": 1024,
                "ts": "2026-11-11T09:02:11",
            },
            {
                "type": "page_view",
                "event_id": "app-7f3c9e-2",
                "customer_id": 1024,
                "ts": "2026-11-11T09:02:40",
                "page": "wealth_fund",
            },
        ],
    },
}


class EventsAccepted(BaseModel):
    """The events were published to the bus, in order; the consumer processes them shortly."""

    accepted: int = Field(description="How many events were published")
    message_ids: list[str] = Field(description="Their ids on the bus, in the request's order")


def _request_schema() -> dict[str, Any]:
    """The body's JSON schema with its definitions written inline (the body is typed ``Any``)."""
    batch = Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS)]
    schema = TypeAdapter(Event | batch).json_schema()  # type: ignore[arg-type]
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {
                k: {"propertyName": v["propertyName"]} if k == "discriminator" else inline(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"title": "One event, or a list of 1 to 1,000", **inline(schema)}


def _field(error: EventError) -> str:
    where = "body" if error.index is None else f"body[{error.index}]"
    return where if error.field is None else f"{where}.{error.field}"


def _invalid(errors: list[tuple[str, str]]) -> RequestValidationError:
    """A 422 through the service's one error mapping, with our field names kept whole."""
    return RequestValidationError(
        [{"loc": (field,), "msg": reason, "type": "value_error"} for field, reason in errors]
    )


def _validated(body: Any) -> list[BaseEvent]:
    """The events of a body, or a 422 naming every bad field."""
    if isinstance(body, list):
        if not body:
            raise _invalid([("body", "is an empty list; send one event or a list of them")])
        if len(body) > MAX_EVENTS:
            raise _invalid(
                [("body", f"holds {len(body):,} events; send at most {MAX_EVENTS:,} per request")]
            )
        try:
            return list(_BATCH_ADAPTER.validate_python(body))
        except PydanticValidationError as e:
            raise _invalid([(_field(x), x.reason) for x in event_errors(e, batch=True)]) from None
    try:
        return [EVENT_ADAPTER.validate_python(body)]
    except PydanticValidationError as e:
        raise _invalid([(_field(x), x.reason) for x in event_errors(e)]) from None


@router.post(
    "",
    status_code=202,
    summary="Send events (one, or a list of up to 1,000)",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _request_schema()}}}},
)
def post_events(
    body: Annotated[Any, Body(openapi_examples=EVENT_EXAMPLES)],
    request: Request,
    _: Annotated[ApiKey, require_roles("POST /v1/events")],
) -> EventsAccepted:
    """202 once every event is on the bus; 422 naming each bad field (nothing published); 503
    if this service has no event bus or the bus is down. Resending an event is harmless: its
    ``event_id`` makes it count once."""
    bus: EventBus | None = getattr(request.app.state, "bus", None)
    if bus is None:
        raise HTTPException(
            status_code=503,
            detail="No event bus is configured in this service, so events cannot be accepted; "
            "serve with an event bus (the stream settings, QIANMIAN_STREAM__TYPE).",
        )
    events = _validated(body)
    message_ids = bus.publish([event_to_json(e) for e in events])
    return EventsAccepted(accepted=len(message_ids), message_ids=message_ids)
