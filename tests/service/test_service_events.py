"""POST /v1/events: events validated whole, published to the bus, 422 naming the field, roles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_engine import InMemoryEngine

from qianmian.config import Settings
from qianmian.service.app import create_app
from qianmian.service.keys import ROLES, ApiKeyStore
from qianmian.service.routers.events import EVENT_EXAMPLES, MAX_EVENTS
from qianmian.stream.bus.memory import MemoryEventBus
from qianmian.stream.events import parse_event

ALLOWED = {"engineer", "admin"}


def payment(i: int = 0, **fields: Any) -> dict[str, Any]:
    body = {
        "type": "transaction",
        "event_id": f"pos-{i}",
        "customer_id": 1024,
        "ts": "2026-11-11T12:15:00Z",
        "amount": 5000,
        "category": "家装",
    }
    return {k: v for k, v in (body | fields).items() if v is not None}


@pytest.fixture()
def bus() -> MemoryEventBus:
    return MemoryEventBus()


@pytest.fixture()
def events_client(
    settings: Settings, engine: InMemoryEngine, keys: ApiKeyStore, bus: MemoryEventBus
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine, keys=keys, bus=bus)) as test_client:
        yield test_client


def test_one_event_is_published(
    events_client: TestClient, bus: MemoryEventBus, auth: dict[str, dict[str, str]]
) -> None:
    response = events_client.post("/v1/events", json=payment(), headers=auth["engineer"])
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1
    (delivery,) = bus.read("consumer", block_ms=0)
    assert body["message_ids"] == [delivery.message_id]
    # published as validated: China time, the amount a float, the version filled in
    assert delivery.event == {
        "type": "transaction",
        "event_id": "pos-0",
        "version": 1,
        "customer_id": 1024,
        "ts": "2026-11-11T20:15:00",
        "amount": 5000.0,
        "category": "家装",
    }
    assert parse_event(delivery.event) == parse_event(payment())


def test_a_list_is_published_in_order(
    events_client: TestClient, bus: MemoryEventBus, auth: dict[str, dict[str, str]]
) -> None:
    batch = [payment(i) for i in range(MAX_EVENTS)]
    response = events_client.post("/v1/events", json=batch, headers=auth["admin"])
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == MAX_EVENTS
    delivered = bus.read("consumer", count=2 * MAX_EVENTS, block_ms=0)
    assert [d.event["event_id"] for d in delivered] == [f"pos-{i}" for i in range(MAX_EVENTS)]
    assert response.json()["message_ids"] == [d.message_id for d in delivered]


@pytest.mark.parametrize("name", sorted(EVENT_EXAMPLES))
def test_the_documented_examples_are_accepted(
    name: str, events_client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    example = EVENT_EXAMPLES[name]["value"]
    response = events_client.post("/v1/events", json=example, headers=auth["engineer"])
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (payment(amount=-5), "body.amount", "must be greater than 0; got -5"),
        (payment(category="家具"), "body.category", "must be a spending category"),
        (payment(colour="red"), "body.colour", "is not a field of transaction events"),
        (payment(ts=None), "body.ts", "is required"),
        (payment(type="purchase"), "body.type", "must be one of transaction, login"),
        (payment(type=None), "body.type", "is required"),
        (payment(version=2), "body.version", "must be a version this qianmian reads (1)"),
        (
            [payment(0), payment(1), payment(2), payment(3, amount=-5)],
            "body[3].amount",
            "must be greater than 0; got -5",
        ),
        ([payment(0), {"type": "page_view"}], "body[1].event_id", "is required"),
        ([payment(0), "text"], "body[1]", "must be a JSON object"),
        ([payment(0), payment(1, type="x")], "body[1].type", "must be one of"),
        ([], "body", "is an empty list"),
        ([payment(i) for i in range(MAX_EVENTS + 1)], "body", "holds 1,001 events"),
        ("text", "body", "must be a JSON object"),
    ],
)
def test_bad_events_are_a_422_naming_the_field_and_nothing_is_published(
    body: Any,
    field: str,
    reason: str,
    events_client: TestClient,
    bus: MemoryEventBus,
    auth: dict[str, dict[str, str]],
) -> None:
    response = events_client.post("/v1/events", json=body, headers=auth["engineer"])
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(d["field"] == field and reason in d["reason"] for d in detail), detail
    assert bus.status().length == 0


def test_every_bad_field_of_a_batch_is_listed(
    events_client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    batch = [payment(0, amount=0), payment(1), payment(2, customer_id="7", category="家具")]
    response = events_client.post("/v1/events", json=batch, headers=auth["engineer"])
    assert response.status_code == 422
    fields = [d["field"] for d in response.json()["detail"]]
    assert fields == ["body[0].amount", "body[2].customer_id", "body[2].category"]


def test_invalid_json_is_a_422(events_client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    response = events_client.post(
        "/v1/events",
        content=b'{"type": "login", ',
        headers=auth["engineer"] | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"].startswith("body")


@pytest.mark.parametrize("role", ROLES)
def test_roles(
    role: str,
    events_client: TestClient,
    bus: MemoryEventBus,
    auth: dict[str, dict[str, str]],
) -> None:
    response = events_client.post("/v1/events", json=payment(), headers=auth[role])
    if role in ALLOWED:
        assert response.status_code == 202, response.text
        assert bus.status().length == 1
    else:
        assert response.status_code == 403, response.text
        assert "POST /v1/events" in response.json()["detail"]
        assert bus.status().length == 0


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "qm_0123456789ab_not-a-real-secret"}])
def test_no_valid_key_is_401(
    headers: dict[str, str], events_client: TestClient, bus: MemoryEventBus
) -> None:
    response = events_client.post("/v1/events", json=payment(), headers=headers)
    assert response.status_code == 401
    assert bus.status().length == 0


def test_without_a_bus_the_answer_is_503(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    response = client.post("/v1/events", json=payment(), headers=auth["engineer"])
    assert response.status_code == 503
    assert "no event bus is configured" in response.json()["detail"].lower()


def test_the_openapi_page_documents_the_body(events_client: TestClient) -> None:
    operation = events_client.get("/openapi.json").json()["paths"]["/v1/events"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    one, many = schema["anyOf"]
    assert {s["properties"]["type"]["const"] for s in one["oneOf"]} == {
        "transaction",
        "login",
        "page_view",
        "search",
        "transfer_failure",
        "response",
    }
    assert many["maxItems"] == MAX_EVENTS
    assert "$ref" not in str(schema)
    assert operation["x-roles"] == ["admin", "engineer"]
    assert set(operation["responses"]) >= {"202", "401", "403", "422", "503"}
