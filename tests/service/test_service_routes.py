"""What each endpoint does: decisions, responses, profiles (masked by role), changes (audited)."""

from __future__ import annotations

import inspect
import json
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_engine import InMemoryEngine

from qianmian.service.roles import ENDPOINT_ROLES
from qianmian.service.routers import decisions, health
from qianmian.service.routers.campaigns import CAMPAIGN_EXAMPLES
from qianmian.service.routers.offers import OFFER_EXAMPLES

Auth = dict[str, dict[str, str]]
OFFER = OFFER_EXAMPLES["instalment_coupon"]["value"]
CAMPAIGN = CAMPAIGN_EXAMPLES["double_11_pilot"]["value"]


# -- decisions -------------------------------------------------------------------------------------


def test_a_decision_presents_offers_best_first(client: TestClient, auth: Auth) -> None:
    body = {
        "customer_id": 1,
        "max_offers": 2,
        "placement": "home_banner",
        "event": {"type": "transaction", "amount": 5000, "category": "home"},
        "request_id": "app-1",
    }
    response = client.post("/v1/decisions", json=body, headers=auth["engineer"])
    assert response.status_code == 200
    out = response.json()
    assert set(out) == {
        "decision_id", "customer_id", "offers", "arm", "fallback", "fallback_reason",
        "latency_ms", "catalogue_version",
    }  # fmt: skip
    assert out["customer_id"] == 1 and out["catalogue_version"] == "test-1"
    assert [o["offer_id"] for o in out["offers"]] == ["OF-INST-12", "OF-DINING"]
    assert [o["rank"] for o in out["offers"]] == [1, 2]
    first = out["offers"][0]
    assert first["copy"] == "张伟您好,12期免息券" and first["reasons"] == ["预期价值 15.00 元"]
    assert first["expected_value"] == pytest.approx(15.0)


def test_a_decision_reaches_the_engine_as_asked(
    client: TestClient, auth: Auth, engine: InMemoryEngine
) -> None:
    body = {"customer_id": 1, "channel": "sms", "event": {"type": "login"}, "request_id": "x-1"}
    decision_id = client.post("/v1/decisions", json=body, headers=auth["marketer"]).json()[
        "decision_id"
    ]
    stored = engine.log.get(decision_id)
    assert stored is not None
    table = engine.log.decisions(customer_id=1)
    row = table.to_pylist()[-1]
    assert row["requested_channel"] == "sms" and row["event_type"] == "login"
    assert row["request_id"] == "x-1" and row["channel"] == "sms"
    # the request time is China time now (naive)
    assert abs((row["ts"] - datetime.utcnow()).total_seconds() - 8 * 3600) < 120


def test_an_opted_out_customer_gets_service_messages_only(client: TestClient, auth: Auth) -> None:
    assert client.post("/v1/customers/1/opt-out", headers=auth["engineer"]).status_code == 200
    out = client.post(
        "/v1/decisions", json={"customer_id": 1, "max_offers": 5}, headers=auth["engineer"]
    ).json()
    assert [o["offer_id"] for o in out["offers"]] == ["SV-BILL-DUE"]


def test_decisions_can_be_read_back(client: TestClient, auth: Auth) -> None:
    ids = [
        client.post("/v1/decisions", json={"customer_id": c}, headers=auth["engineer"]).json()[
            "decision_id"
        ]
        for c in (1, 2, 1)
    ]
    listed = client.get("/v1/decisions?customer_id=1", headers=auth["analyst"]).json()
    assert [d["decision_id"] for d in listed["decisions"]] == [ids[0], ids[2]]
    limited = client.get("/v1/decisions?limit=2", headers=auth["analyst"]).json()
    assert len(limited["decisions"]) == 2
    whole = client.get(f"/v1/decisions/{ids[1]}", headers=auth["compliance"]).json()
    assert whole["decision_id"] == ids[1] and whole["candidates"]
    removed = [c for c in whole["candidates"] if c["removed_by"] == "contact_policy"]
    assert removed and all(c["reason"] for c in removed)


def test_decisions_and_liveness_run_on_the_event_loop() -> None:
    # a decision holds the interpreter lock most of its ~1.5 ms: threads would only queue for
    # it (see the route's comment), so it runs on the loop, as liveness does
    assert inspect.iscoroutinefunction(decisions.decide)
    assert inspect.iscoroutinefunction(health.live)


# -- responses -------------------------------------------------------------------------------------


def test_a_response_is_recorded_once(
    client: TestClient, auth: Auth, engine: InMemoryEngine
) -> None:
    body = {
        "response_id": "sms-1",
        "decision_id": "d-1",
        "customer_id": 2,
        "offer_id": "OF-INST-12",
        "response_type": "ignored",
        "ts": "2026-11-11T12:00:00+00:00",  # an aware time becomes China time
        "value": 12.5,
    }
    first = client.post("/v1/responses", json=body, headers=auth["engineer"])
    again = client.post("/v1/responses", json=body, headers=auth["engineer"])
    assert (first.status_code, first.json()) == (201, {"response_id": "sms-1", "recorded": True})
    assert (again.status_code, again.json()) == (200, {"response_id": "sms-1", "recorded": False})
    rows = engine.log.responses(customer_id=2).to_pylist()
    assert len(rows) == 1
    assert rows[0]["ts"] == datetime(2026, 11, 11, 20, 0) and rows[0]["value"] == 12.5


# -- customers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "name", "birth_date", "masked"),
    [
        ("marketer", "欧阳**", "1995-**-**", True),
        ("analyst", "欧阳**", "1995-**-**", True),
        ("compliance", "欧阳娜娜", "1995-07-02", False),
        ("admin", "欧阳娜娜", "1995-07-02", False),
    ],
)
def test_a_profile_shows_pii_only_to_roles_that_need_it(
    role: str, name: str, birth_date: str, masked: bool, client: TestClient, auth: Auth
) -> None:
    client.post("/v1/decisions", json={"customer_id": 2}, headers=auth["engineer"])
    out = client.get("/v1/customers/2/profile", headers=auth[role]).json()
    assert out["pii_masked"] is masked
    assert out["customer"]["name"] == name and out["customer"]["birth_date"] == birth_date
    assert "欧阳娜娜" not in json.dumps(out, ensure_ascii=False) or not masked
    assert out["customer"]["city"] == "成都"  # not PII by itself
    assert out["tags"] == [{"id": "steady_wealth", "name": "偏好稳健理财"}]  # a tag's name stays
    assert out["features"]["spend_3m"] == 18250.5
    assert len(out["recent_decisions"]) == 1


def test_preferences_change_only_what_is_given(
    client: TestClient, auth: Auth, engine: InMemoryEngine
) -> None:
    response = client.put(
        "/v1/customers/1/preferences",
        json={"consents": {"sms": False, "email": True}, "personalisation_opt_out": True},
        headers=auth["compliance"],
    )
    assert response.status_code == 200
    assert response.json() == {
        "customer_id": 1,
        "consents": ["app_push", "email", "wechat"],
        "marketing_opt_out": False,
        "personalisation_opt_out": True,
        "marketing_suppressed_until": None,
    }
    assert engine.preference_actors[-1].startswith("compliance")  # the key's name is recorded
    # now only the non-personalised offer (and service messages) may be made
    out = client.post(
        "/v1/decisions", json={"customer_id": 1, "max_offers": 5}, headers=auth["engineer"]
    ).json()
    assert [o["offer_id"] for o in out["offers"]] == ["OF-DINING", "SV-BILL-DUE"]


# -- the catalogue ---------------------------------------------------------------------------------


def test_an_offer_is_created_read_updated_and_deleted(
    client: TestClient, auth: Auth, engine: InMemoryEngine
) -> None:
    created = client.put("/v1/offers/OF-NEW", json=OFFER, headers=auth["marketer"])
    assert created.status_code == 201
    assert created.json()["action"] == "created" and created.json()["catalogue_revision"] == 1
    assert engine.catalogue.offer("OF-NEW").value == OFFER["value"]
    got = client.get("/v1/offers/OF-NEW", headers=auth["engineer"]).json()
    assert got["name_zh"] == OFFER["name_zh"] and got["treatments"][0]["id"] == "OF-NEW:app_push"
    listed = client.get("/v1/offers", headers=auth["analyst"]).json()
    assert [o["id"] for o in listed["offers"]][-1] == "OF-NEW"

    updated = client.put(
        "/v1/offers/OF-NEW", json={**OFFER, "id": "OF-NEW", "value": 500}, headers=auth["admin"]
    )
    assert (updated.status_code, updated.json()["action"]) == (200, "updated")
    assert updated.json()["spec"]["value"] == 500 and engine.catalogue.offer("OF-NEW").value == 500

    deleted = client.delete("/v1/offers/OF-NEW", headers=auth["marketer"])
    assert deleted.json()["action"] == "deleted" and deleted.json()["catalogue_revision"] == 3
    assert "OF-NEW" not in engine.catalogue.offers
    assert [(actor, note) for _, actor, note in engine.revisions] == [
        ("marketer-key", "PUT offer OF-NEW"),
        ("admin-key", "PUT offer OF-NEW"),
        ("marketer-key", "DELETE offer OF-NEW"),
    ]


def test_a_campaign_is_created_and_deleting_it_stops_it(
    client: TestClient, auth: Auth, engine: InMemoryEngine
) -> None:
    created = client.put("/v1/campaigns/CP-D11", json=CAMPAIGN, headers=auth["marketer"])
    assert created.status_code == 201
    assert [c.id for c in engine.catalogue.campaigns_of("OF-INST-12")] == ["CP-TEST", "CP-D11"]
    stopped = client.delete("/v1/campaigns/CP-D11", headers=auth["marketer"]).json()
    assert stopped["action"] == "stopped" and stopped["spec"]["status"] == "stopped"
    listed = client.get("/v1/campaigns", headers=auth["engineer"]).json()
    assert {c["id"]: c["status"] for c in listed["campaigns"]} == {
        "CP-TEST": "draft",
        "CP-D11": "stopped",
    }


# -- audit -----------------------------------------------------------------------------------------

# (method, path, body, role, action, target, detail that must be recorded)
CHANGES: list[tuple[str, str, Any, str, str, str, dict[str, Any]]] = [
    ("PUT", "/v1/offers/OF-NEW", OFFER, "marketer", "offer.create", "offer:OF-NEW", {"catalogue_revision": 1}),
    ("PUT", "/v1/offers/OF-DINING", {**OFFER, "type": "merchant_coupon"}, "admin", "offer.update", "offer:OF-DINING", {"catalogue_revision": 1}),
    ("DELETE", "/v1/offers/OF-DINING", None, "marketer", "offer.delete", "offer:OF-DINING", {"effect": "deleted"}),
    ("PUT", "/v1/campaigns/CP-D11", CAMPAIGN, "marketer", "campaign.create", "campaign:CP-D11", {"catalogue_version": "test-1"}),
    ("PUT", "/v1/campaigns/CP-TEST", CAMPAIGN, "admin", "campaign.update", "campaign:CP-TEST", {"catalogue_revision": 1}),
    ("DELETE", "/v1/campaigns/CP-TEST", None, "marketer", "campaign.delete", "campaign:CP-TEST", {"effect": "stopped"}),
    ("PUT", "/v1/customers/3/preferences", {"consents": {"sms": True}}, "compliance", "customer.preferences", "customer:3", {"consents": {"sms": True}}),
    ("POST", "/v1/customers/3/opt-out", None, "engineer", "customer.opt_out", "customer:3", {"marketing_opt_out": True}),
    ("POST", "/v1/keys", {"name": "sms-gw", "role": "engineer", "rate_limit": "50/second"}, "admin", "key.create", "key:sms-gw", {"role": "engineer", "rate_limit": "50/second"}),
    ("DELETE", "/v1/keys/analyst-key", None, "admin", "key.disable", "key:analyst-key", {"role": "analyst"}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "role", "action", "target", "detail"), CHANGES)
def test_every_change_is_audited(
    method: str,
    path: str,
    body: Any,
    role: str,
    action: str,
    target: str,
    detail: dict[str, Any],
    client: TestClient,
    auth: Auth,
) -> None:
    assert client.get("/v1/audit", headers=auth["compliance"]).json()["entries"] == []
    response = client.request(method, path, json=body, headers=auth[role])
    assert response.status_code in (200, 201), response.text
    entries = client.get("/v1/audit", headers=auth["compliance"]).json()["entries"]
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["actor"], entry["role"], entry["action"], entry["target"]) == (
        f"{role}-key",
        role,
        action,
        target,
    )
    recorded = json.loads(entry["detail"])
    assert recorded.items() >= detail.items()
    assert (
        abs((datetime.fromisoformat(entry["ts"]) - datetime.utcnow()).total_seconds() - 28800) < 120
    )


def test_an_update_records_which_fields_changed(client: TestClient, auth: Auth) -> None:
    client.put("/v1/offers/OF-NEW", json=OFFER, headers=auth["marketer"])
    client.put(
        "/v1/offers/OF-NEW", json={**OFFER, "value": 1, "weight": 2}, headers=auth["marketer"]
    )
    last = client.get("/v1/audit", headers=auth["admin"]).json()["entries"][-1]
    assert json.loads(last["detail"])["fields"] == ["value", "weight"]


def test_refused_and_failed_changes_are_not_audited(client: TestClient, auth: Auth) -> None:
    client.put("/v1/offers/OF-NEW", json=OFFER, headers=auth["analyst"])  # 403
    client.put("/v1/offers/OF-NEW", json={**OFFER, "value": -1}, headers=auth["marketer"])  # 422
    client.post("/v1/customers/999/opt-out", headers=auth["engineer"])  # 404
    assert client.get("/v1/audit", headers=auth["admin"]).json()["entries"] == []


def test_a_new_key_is_shown_once_and_works(client: TestClient, auth: Auth) -> None:
    made = client.post(
        "/v1/keys", json={"name": "bi-tool", "role": "analyst"}, headers=auth["admin"]
    )
    assert made.status_code == 201
    key = made.json()["key"]
    assert client.get("/v1/decisions", headers={"X-API-Key": key}).status_code == 200
    listed = client.get("/v1/keys", headers=auth["admin"]).json()["keys"]
    assert "bi-tool" in [k["name"] for k in listed]
    assert key not in json.dumps(listed) and all("key" not in k for k in listed)
    again = client.post(
        "/v1/keys", json={"name": "bi-tool", "role": "analyst"}, headers=auth["admin"]
    )
    assert again.status_code == 422 and "already exists" in again.text


# -- health and the OpenAPI page -------------------------------------------------------------------


def test_health_is_503_with_the_reason_when_a_component_is_down(
    client: TestClient, engine: InMemoryEngine
) -> None:
    assert client.get("/v1/health").json() == {
        "status": "ok",
        "components": {"decision_state": "ok", "decision_log": "ok", "model": "ok"},
    }
    engine.components["model"] = "no promoted propensity model"
    response = client.get("/v1/health")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["components"]["model"] == "no promoted propensity model"
    assert client.get("/v1/health/live").json() == {"status": "ok"}  # still alive


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_the_openapi_page_has_an_example_for_every_request_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    bodies = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            bodies += 1
            media = operation["requestBody"]["content"]["application/json"]
            examples = media.get("examples") or _resolve(media["schema"], spec).get("examples")
            assert examples, f"{method.upper()} {path} has no example"
    assert bodies == 7


def test_the_openapi_page_lists_roles_and_the_key_header(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "qianmian 千面 decision API"
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    for endpoint, roles in ENDPOINT_ROLES.items():
        method, path = endpoint.split(" ", 1)
        operation = spec["paths"][path][method.lower()]
        assert operation["x-roles"] == sorted(roles)
        assert f"**Roles**: {', '.join(sorted(roles))}." in operation["description"]
        assert "422" in operation["responses"] and "ValidationErrorBody" in json.dumps(
            operation["responses"]["422"]
        )


def test_request_body_examples_are_accepted(client: TestClient, auth: Auth) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    decision = {**schemas["DecisionRequestBody"]["examples"][0], "customer_id": 1}
    assert client.post("/v1/decisions", json=decision, headers=auth["engineer"]).status_code == 200
    preferences = schemas["PreferencesBody"]["examples"][0]
    response = client.put("/v1/customers/1/preferences", json=preferences, headers=auth["engineer"])
    assert response.status_code == 200
    key = schemas["KeyCreateBody"]["examples"][0]
    assert client.post("/v1/keys", json=key, headers=auth["admin"]).status_code == 201
