"""Access: every endpoint × every role is allowed or 403; no key 401; the table is what we expect."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from service_engine import InMemoryEngine

from qianmian.service.app import check_permissions
from qianmian.service.deps import require_roles
from qianmian.service.keys import ROLES
from qianmian.service.roles import ENDPOINT_ROLES, PUBLIC_ENDPOINTS, render_markdown
from qianmian.service.routers import ROUTERS
from qianmian.service.routers.campaigns import CAMPAIGN_EXAMPLES
from qianmian.service.routers.offers import OFFER_EXAMPLES

M, AN, E, AD, C = "marketer", "analyst", "engineer", "admin", "compliance"

# Written out by hand on purpose: a change to roles.ENDPOINT_ROLES must change this too.
EXPECTED_ROLES: dict[str, set[str]] = {
    "POST /v1/decisions": {E, M, AD},
    "GET /v1/decisions": {AN, C, AD},
    "GET /v1/decisions/{decision_id}": {AN, C, AD},
    "POST /v1/responses": {E, AD},
    "POST /v1/events": {E, AD},
    "GET /v1/customers/{customer_id}/profile": {M, AN, C, AD},
    "PUT /v1/customers/{customer_id}/preferences": {E, C, AD},
    "POST /v1/customers/{customer_id}/opt-out": {E, C, AD},
    "GET /v1/offers": {M, AN, E, AD, C},
    "GET /v1/offers/{offer_id}": {M, AN, E, AD, C},
    "PUT /v1/offers/{offer_id}": {M, AD},
    "DELETE /v1/offers/{offer_id}": {M, AD},
    "GET /v1/campaigns": {M, AN, E, AD, C},
    "GET /v1/campaigns/{campaign_id}": {M, AN, E, AD, C},
    "PUT /v1/campaigns/{campaign_id}": {M, AD},
    "DELETE /v1/campaigns/{campaign_id}": {M, AD},
    "GET /v1/audit": {C, AD},
    "GET /v1/keys": {AD},
    "POST /v1/keys": {AD},
    "DELETE /v1/keys/{name}": {AD},
}

# A request each endpoint answers successfully, and the status it answers with.
RESPONSE_BODY = {
    "response_id": "r-1",
    "customer_id": 1,
    "response_type": "clicked",
    "ts": "2026-11-11T20:17:03",
}
EVENT_BODY = {
    "type": "login",
    "event_id": "app-1",
    "customer_id": 1,
    "ts": "2026-11-11T20:17:03",
}
REQUESTS: dict[str, tuple[dict[str, Any] | None, int]] = {
    "POST /v1/decisions": ({"customer_id": 1}, 200),
    "GET /v1/decisions": (None, 200),
    "GET /v1/decisions/{decision_id}": (None, 200),
    "POST /v1/responses": (RESPONSE_BODY, 201),
    # the shared client has no event bus: past the role check, 503 (test_service_events.py
    # covers the 202 with a bus)
    "POST /v1/events": (EVENT_BODY, 503),
    "GET /v1/customers/{customer_id}/profile": (None, 200),
    "PUT /v1/customers/{customer_id}/preferences": ({"consents": {"sms": False}}, 200),
    "POST /v1/customers/{customer_id}/opt-out": (None, 200),
    "GET /v1/offers": (None, 200),
    "GET /v1/offers/{offer_id}": (None, 200),
    "PUT /v1/offers/{offer_id}": (OFFER_EXAMPLES["instalment_coupon"]["value"], 201),
    "DELETE /v1/offers/{offer_id}": (None, 200),
    "GET /v1/campaigns": (None, 200),
    "GET /v1/campaigns/{campaign_id}": (None, 200),
    "PUT /v1/campaigns/{campaign_id}": (CAMPAIGN_EXAMPLES["double_11_pilot"]["value"], 200),
    "DELETE /v1/campaigns/{campaign_id}": (None, 200),
    "GET /v1/audit": (None, 200),
    "GET /v1/keys": (None, 200),
    "POST /v1/keys": ({"name": "new-key", "role": "analyst"}, 201),
    "DELETE /v1/keys/{name}": (None, 200),
}


def _path(endpoint: str, engine: InMemoryEngine) -> tuple[str, str]:
    """Method and concrete path of ``endpoint``, with ids that exist (or are new, for PUT)."""
    method, template = endpoint.split(" ", 1)
    decision_id = ""
    if "{decision_id}" in template:
        from datetime import datetime

        from qianmian.decide.decision import DecisionRequest

        decision_id = engine.decide(DecisionRequest(1, datetime(2026, 11, 11))).decision_id
    offer_id = "OF-NEW" if method == "PUT" else "OF-DINING"  # OF-DINING is in no campaign
    path = template.format(
        decision_id=decision_id,
        customer_id=1,
        offer_id=offer_id,
        campaign_id="CP-TEST",
        name="analyst-key",
    )
    return method, path


def test_table_is_the_expected_matrix() -> None:
    assert {k: set(v) for k, v in ENDPOINT_ROLES.items()} == EXPECTED_ROLES
    assert {"GET /v1/health", "GET /v1/health/live"} == PUBLIC_ENDPOINTS
    assert set(REQUESTS) == set(EXPECTED_ROLES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(EXPECTED_ROLES))
def test_every_endpoint_for_every_role(
    endpoint: str,
    role: str,
    client: TestClient,
    engine: InMemoryEngine,
    auth: dict[str, dict[str, str]],
) -> None:
    method, path = _path(endpoint, engine)
    body, success = REQUESTS[endpoint]
    response = client.request(method, path, json=body, headers=auth[role])
    if role in EXPECTED_ROLES[endpoint]:
        assert response.status_code == success, response.text
    else:
        assert response.status_code == 403, response.text
        detail = response.json()["detail"]
        allowed = ", ".join(sorted(EXPECTED_ROLES[endpoint]))
        assert f"'{role}'" in detail and endpoint in detail and allowed in detail


@pytest.mark.parametrize("endpoint", sorted(EXPECTED_ROLES))
@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "needs an API key"),
        ({"X-API-Key": ""}, "needs an API key"),
        ({"X-API-Key": "qm_0123456789ab_not-a-real-secret"}, "unknown or disabled"),
        ({"X-API-Key": "plainly wrong"}, "unknown or disabled"),
    ],
)
def test_no_valid_key_is_401(
    endpoint: str, headers: dict[str, str], says: str, client: TestClient, engine: InMemoryEngine
) -> None:
    method, path = _path(endpoint, engine)
    body, _ = REQUESTS[endpoint]
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert says in response.json()["detail"]
    assert response.headers["WWW-Authenticate"] == "ApiKey"


def test_a_disabled_key_stops_working(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    assert client.get("/v1/offers", headers=auth["analyst"]).status_code == 200
    assert client.delete("/v1/keys/analyst-key", headers=auth["admin"]).status_code == 200
    response = client.get("/v1/offers", headers=auth["analyst"])
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/v1/health", "/v1/health/live"])
def test_health_needs_no_key(path: str, client: TestClient) -> None:
    assert client.get(path).status_code == 200


def test_a_route_missing_from_the_table_stops_the_app() -> None:
    router = APIRouter(prefix="/v1/secret")

    @router.get("", dependencies=[require_roles("GET /v1/audit")])
    def leak() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="GET /v1/secret"):
        check_permissions([*ROUTERS, router])


def test_a_table_row_without_a_route_stops_the_app() -> None:
    with pytest.raises(RuntimeError, match="no route"):
        check_permissions(ROUTERS[1:])


def test_require_roles_refuses_an_unknown_row() -> None:
    with pytest.raises(KeyError):
        require_roles("GET /v1/nowhere")


def test_the_docs_table_has_a_row_per_endpoint() -> None:
    lines = render_markdown().splitlines()
    assert len(lines) == 2 + len(ENDPOINT_ROLES) + len(PUBLIC_ENDPOINTS)
    audit_row = next(line for line in lines if "`GET /v1/audit`" in line)
    assert audit_row.count("✓") == 2
