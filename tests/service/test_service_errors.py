"""Errors become the right status: 422 naming the field, 404, 429, 503 — never 500."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_engine import InMemoryEngine

from qianmian.config import Settings
from qianmian.errors import ConfigError, StoreError, ValidationError
from qianmian.service.app import create_app
from qianmian.service.keys import ApiKeyStore
from qianmian.service.routers.offers import OFFER_EXAMPLES

DECISION = {"customer_id": 1, "channel": "app_push", "max_offers": 2}
RESPONSE = {
    "response_id": "r-9",
    "customer_id": 1,
    "offer_id": "OF-INST-12",
    "response_type": "clicked",
    "ts": "2026-11-11T20:17:03",
}
OFFER = OFFER_EXAMPLES["instalment_coupon"]["value"]


def _fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["reason"] for e in response.json()["detail"]}


# (method, path, body, role, field named, pattern its reason matches)
INVALID: list[tuple[str, str, Any, str, str, str]] = [
    ("POST", "/v1/decisions", {**DECISION, "customer_id": -1}, "engineer", "body.customer_id", "greater than 0; got -1"),
    ("POST", "/v1/decisions", {**DECISION, "customer_id": "abc"}, "engineer", "body.customer_id", "integer"),
    ("POST", "/v1/decisions", {k: v for k, v in DECISION.items() if k != "customer_id"}, "engineer", "body.customer_id", "required"),
    ("POST", "/v1/decisions", {**DECISION, "channel": "fax"}, "engineer", "body.channel", "'fax' is not a contact channel; use one of app_push"),
    ("POST", "/v1/decisions", {**DECISION, "max_offers": 9}, "engineer", "body.max_offers", "less than or equal to 5; got 9"),
    ("POST", "/v1/decisions", {**DECISION, "max_offers": 0}, "engineer", "body.max_offers", "greater than or equal to 1"),
    ("POST", "/v1/decisions", {**DECISION, "chanel": "sms"}, "engineer", "body.chanel", "Extra inputs"),
    ("POST", "/v1/decisions", {**DECISION, "event": {"amount": 10}}, "engineer", "body.event.type", "required"),
    ("POST", "/v1/decisions", {**DECISION, "event": {"type": "transaction", "amount": -3}}, "engineer", "body.event.amount", "greater than or equal to 0"),
    ("POST", "/v1/decisions", {**DECISION, "placement": "home banner!"}, "engineer", "body.placement", "pattern"),
    ("POST", "/v1/responses", {**RESPONSE, "response_type": "liked"}, "engineer", "body.response_type", "'liked' is not a response type; use one of delivered"),
    ("POST", "/v1/responses", {**RESPONSE, "ts": "yesterday"}, "engineer", "body.ts", "datetime"),
    ("POST", "/v1/responses", {**RESPONSE, "ts": "2026-13-45T10:00:00"}, "engineer", "body.ts", "datetime"),
    ("POST", "/v1/responses", {k: v for k, v in RESPONSE.items() if k != "ts"}, "engineer", "body.ts", "required"),
    ("POST", "/v1/responses", {**RESPONSE, "value": -5}, "engineer", "body.value", "greater than or equal to 0"),
    ("PUT", "/v1/customers/1/preferences", {}, "compliance", "body", "give at least one of consents"),
    ("PUT", "/v1/customers/1/preferences", {"consents": {"fax": True}}, "compliance", "body.consents.fax.[key]", "not a contact channel"),
    ("PUT", "/v1/customers/1/preferences", {"marketing_opt_out": "perhaps"}, "compliance", "body.marketing_opt_out", "boolean"),
    ("GET", "/v1/customers/-1/profile", None, "marketer", "path.customer_id", "greater than 0"),
    ("GET", "/v1/customers/abc/profile", None, "marketer", "path.customer_id", "integer"),
    ("GET", "/v1/decisions?limit=0", None, "analyst", "query.limit", "greater than or equal to 1"),
    ("GET", "/v1/decisions?customer_id=-3", None, "analyst", "query.customer_id", "greater than 0"),
    ("PUT", "/v1/offers/OF-NEW", {**OFFER, "value": -1}, "marketer", "body.value", "greater than or equal to 0"),
    ("PUT", "/v1/offers/OF-NEW", {**OFFER, "type": "bogus"}, "marketer", "body.type", "'bogus' is not one of"),
    ("PUT", "/v1/offers/OF-NEW", {**OFFER, "id": "OF-OTHER"}, "marketer", "body.id", "must match the path's 'OF-NEW'"),
    ("PUT", "/v1/offers/OF-NEW", {k: v for k, v in OFFER.items() if k != "treatments"}, "marketer", "body.treatments", "required"),
    ("PUT", "/v1/offers/OF-NEW", {**OFFER, "risk_level": "R2"}, "marketer", "body.risk_level", "a risk level is for wealth offers"),
    ("PUT", "/v1/offers/OF-NEW", {**OFFER, "treatments": [{"channel": "fax", "copy_zh": "x", "copy_en": "x"}]}, "marketer", "body.treatments.0.channel", "'fax' is not one of"),
    ("POST", "/v1/keys", {"name": "x y", "role": "analyst"}, "admin", "body.name", "pattern"),
    ("POST", "/v1/keys", {"name": "ok", "role": "superuser"}, "admin", "body.role", "marketer"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "role", "field", "reason"), INVALID)
def test_bad_input_is_422_naming_the_field(
    method: str,
    path: str,
    body: Any,
    role: str,
    field: str,
    reason: str,
    client: TestClient,
    auth: dict[str, dict[str, str]],
) -> None:
    fields = _fields(client.request(method, path, json=body, headers=auth[role]))
    assert field in fields, fields
    assert re.search(re.escape(reason), fields[field]), fields[field]


def test_malformed_json_is_422_on_the_body(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    response = client.post(
        "/v1/decisions",
        content=b'{"customer_id": 1,',
        headers={**auth["engineer"], "content-type": "application/json"},
    )
    fields = _fields(response)
    assert list(fields) == ["body"] and "JSON" in fields["body"]


@pytest.mark.parametrize(
    ("method", "path", "body", "role", "says"),
    [
        ("POST", "/v1/decisions", {"customer_id": 999}, "engineer", "Customer 999"),
        ("GET", "/v1/customers/999/profile", None, "compliance", "Customer 999"),
        ("PUT", "/v1/customers/999/preferences", {"marketing_opt_out": True}, "engineer", "999"),
        ("POST", "/v1/customers/999/opt-out", None, "engineer", "999"),
        ("GET", "/v1/decisions/no-such-decision", None, "analyst", "no-such-decision"),
        ("GET", "/v1/offers/OF-NOPE", None, "analyst", "OF-NOPE"),
        ("DELETE", "/v1/offers/OF-NOPE", None, "marketer", "OF-NOPE"),
        ("GET", "/v1/campaigns/CP-NOPE", None, "analyst", "CP-NOPE"),
        ("DELETE", "/v1/campaigns/CP-NOPE", None, "marketer", "CP-NOPE"),
        ("DELETE", "/v1/keys/nobody", None, "admin", "nobody"),
    ],
)
def test_unknown_things_are_404(
    method: str,
    path: str,
    body: Any,
    role: str,
    says: str,
    client: TestClient,
    auth: dict[str, dict[str, str]],
    engine: InMemoryEngine,
) -> None:
    response = client.request(method, path, json=body, headers=auth[role])
    assert response.status_code == 404, response.text
    assert says in response.json()["detail"]
    assert engine.revisions == []  # nothing changed on the way


@pytest.mark.parametrize(
    ("method", "path", "body", "role", "engine_method"),
    [
        ("POST", "/v1/decisions", {"customer_id": 1}, "engineer", "decide"),
        ("POST", "/v1/responses", RESPONSE, "engineer", "record_response"),
        ("GET", "/v1/customers/1/profile", None, "analyst", "customer_profile"),
        ("POST", "/v1/customers/1/opt-out", None, "compliance", "set_preferences"),
        ("PUT", "/v1/offers/OF-NEW", OFFER, "admin", "set_catalogue"),
        ("GET", "/v1/health", None, "admin", "health"),
    ],
)
def test_an_unexpected_error_is_503_with_an_error_id_never_500(
    method: str,
    path: str,
    body: Any,
    role: str,
    engine_method: str,
    client: TestClient,
    auth: dict[str, dict[str, str]],
    engine: InMemoryEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine.fail_with[engine_method] = RuntimeError("model server said: secret-host:9000 refused")
    with caplog.at_level(logging.ERROR, logger="qianmian.service.errors"):
        response = client.request(method, path, json=body, headers=auth[role])
    assert response.status_code == 503
    payload = response.json()
    assert re.fullmatch(r"[0-9a-f]{16}", payload["error_id"])
    assert payload["error_id"] in payload["detail"] and "secret-host" not in payload["detail"]
    logged = [r for r in caplog.records if payload["error_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # with the traceback
    assert "secret-host" in caplog.text


def test_a_storage_failure_is_503_with_retry_after(
    client: TestClient, auth: dict[str, dict[str, str]], engine: InMemoryEngine
) -> None:
    engine.fail_with["decide"] = StoreError("redis://:hunter2@10.0.0.5:6379 is unreachable")
    response = client.post("/v1/decisions", json={"customer_id": 1}, headers=auth["engineer"])
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "hunter2" not in response.text and response.json()["error_id"]


@pytest.mark.parametrize("error", [ValidationError, ConfigError])
def test_domain_validation_errors_are_422(
    error: type[Exception],
    client: TestClient,
    auth: dict[str, dict[str, str]],
    engine: InMemoryEngine,
) -> None:
    engine.fail_with["decide"] = error("The 'event.amount' must be finite. Got inf instead.")
    response = client.post("/v1/decisions", json={"customer_id": 1}, headers=auth["engineer"])
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"field": None, "reason": "The 'event.amount' must be finite. Got inf instead."}
    ]


def test_a_catalogue_that_does_not_hold_together_is_422(
    client: TestClient, auth: dict[str, dict[str, str]], engine: InMemoryEngine
) -> None:
    rule = {"when": "event_amount >>> 3", "reason_zh": "大额", "reason_en": "large"}
    response = client.put(
        "/v1/offers/OF-NEW", json={**OFFER, "applicable_when": rule}, headers=auth["marketer"]
    )
    assert response.status_code == 422
    assert "event_amount >>> 3" in response.json()["detail"][0]["reason"]
    # an offer a campaign lists cannot go
    response = client.delete("/v1/offers/OF-INST-12", headers=auth["marketer"])
    assert response.status_code == 422 and "CP-TEST" in response.json()["detail"][0]["reason"]
    assert engine.revisions == []


@pytest.mark.parametrize(
    ("key_limit", "service_limit", "allowed"),
    [("3/minute", "1000/second", 3), (None, "2/minute", 2)],
)
def test_over_the_request_limit_is_429_with_retry_after(
    key_limit: str | None,
    service_limit: str,
    allowed: int,
    tmp_path: Path,
    engine: InMemoryEngine,
) -> None:
    keys = ApiKeyStore(tmp_path / "keys.json")
    key = keys.create("app", "engineer", rate_limit=key_limit)
    other = keys.create("other", "engineer", rate_limit=key_limit)
    settings = Settings(workspace=tmp_path, service={"rate_limit": service_limit})
    with TestClient(create_app(settings, engine, keys=keys)) as client:
        codes = [client.get("/v1/offers", headers={"X-API-Key": key}) for _ in range(allowed + 1)]
        assert [c.status_code for c in codes] == [200] * allowed + [429]
        assert 1 <= int(codes[-1].headers["Retry-After"]) <= 60
        assert f"{allowed} requests per minute" in codes[-1].json()["detail"]
        # limits are per key
        assert client.get("/v1/offers", headers={"X-API-Key": other}).status_code == 200


def test_an_unreadable_service_limit_is_a_config_error(
    tmp_path: Path, engine: InMemoryEngine
) -> None:
    settings = Settings(workspace=tmp_path, service={"rate_limit": "lots"})
    with pytest.raises(ConfigError, match=r"service\.rate_limit"):
        create_app(settings, engine, keys=ApiKeyStore(tmp_path / "keys.json"))
