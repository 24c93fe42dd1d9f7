"""The event model: valid and invalid events, versions, China time, rows for the online store."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pyarrow as pa
import pytest
from pydantic import ValidationError as PydanticValidationError

from qianmian.data.schema import table as schema_table
from qianmian.errors import ValidationError
from qianmian.features.online.memory import MemoryOnlineStore
from qianmian.stream.events import (
    EVENT_TYPES,
    LoginEvent,
    PageViewEvent,
    ResponseEvent,
    SearchEvent,
    TransactionEvent,
    TransferFailureEvent,
    event_context,
    event_to_json,
    event_to_online,
    parse_event,
)

TS = "2026-11-11T20:15:00"
COMMON = {"event_id": "e-1", "customer_id": 7, "ts": TS}
MINIMAL: dict[str, dict[str, Any]] = {
    "transaction": {"amount": 5000, "category": "家装"},
    "login": {},
    "page_view": {"page": "wealth_fund"},
    "search": {"query": "装修"},
    "transfer_failure": {},
    "response": {"response_type": "clicked"},
}


def event(type_: str, **fields: Any) -> dict[str, Any]:
    """A valid event of ``type_`` with ``fields`` changed (None removes a field)."""
    out = {"type": type_, **COMMON, **MINIMAL[type_], **fields}
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize(
    ("data", "cls", "expected"),
    [
        (event("transaction"), TransactionEvent, {"amount": 5000.0, "channel": None}),
        (
            event(
                "transaction",
                amount=12.5,
                category="餐饮",
                channel="QR",
                merchant_id=88,
                mcc="5812",
                city="上海",
            ),
            TransactionEvent,
            {"amount": 12.5, "channel": "QR", "merchant_id": 88, "mcc": "5812", "city": "上海"},
        ),
        (event("login"), LoginEvent, {"channel": None}),
        (event("login", channel="app"), LoginEvent, {"channel": "app"}),
        (event("page_view"), PageViewEvent, {"page": "wealth_fund"}),
        (event("search", query="  蜜月旅行 "), SearchEvent, {"query": "蜜月旅行"}),
        (event("transfer_failure"), TransferFailureEvent, {"amount": None}),
        (
            event("transfer_failure", amount=0, reason="超出单日限额"),
            TransferFailureEvent,
            {"amount": 0.0, "reason": "超出单日限额"},
        ),
        (event("response", response_type="ignored"), ResponseEvent, {"value": None}),
        (
            event("response", decision_id="d-9", offer_id="OF-INSTAL-HOME", value=380),
            ResponseEvent,
            {"decision_id": "d-9", "offer_id": "OF-INSTAL-HOME", "value": 380.0},
        ),
        (event("login", event_id="pos:2026-11-11.00_42", version=1), LoginEvent, {"version": 1}),
        (event("login", event_id="x" * 128), LoginEvent, {"customer_id": 7}),
    ],
)
def test_valid_events(data: dict[str, Any], cls: type, expected: dict[str, Any]) -> None:
    parsed = parse_event(data)
    assert type(parsed) is cls
    assert parsed.ts == datetime(2026, 11, 11, 20, 15)
    assert {k: getattr(parsed, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            event("transaction", amount=-5),
            "event transaction: 'amount' must be greater than 0; got -5",
        ),
        (event("transaction", amount=0), "'amount' must be greater than 0; got 0"),
        (event("transaction", amount="5"), "'amount' must be a number; got '5'"),
        (event("transaction", amount=True), "'amount' must be a number; got True"),
        (event("transaction", amount=float("inf")), "'amount' must be a finite number; got inf"),
        (event("transaction", amount=6e6), "'amount' must be at most 5,000,000; got 6000000.0"),
        (event("transaction", amount=None), "event transaction: 'amount' is required"),
        (
            event("transaction", category="家具"),
            "'category' must be a spending category: one of 餐饮",
        ),
        (event("transaction", category="家具"), "got '家具'"),
        (event("transaction", channel="ATM"), "'channel' must be a payment channel: one of POS"),
        (event("transaction", mcc="0000"), "'mcc' must be a merchant category code"),
        (event("transaction", merchant_id=-3), "'merchant_id' must be greater than 0; got -3"),
        (event("login", customer_id=0), "event login: 'customer_id' must be greater than 0; got 0"),
        (event("login", customer_id="7"), "'customer_id' must be an integer; got '7'"),
        (event("login", customer_id=7.5), "'customer_id' must be an integer; got 7.5"),
        (event("login", event_id="a b"), "'event_id' must be 1 to 128 letters, digits or _ . : -"),
        (event("login", event_id=""), "'event_id' must be 1 to 128 letters"),
        (event("login", event_id="x" * 129), "'event_id' must be 1 to 128 letters"),
        (event("login", ts=None), "event login: 'ts' is required"),
        (event("login", ts="yesterday"), "'ts' must be a time like 2026-11-11T20:15:00"),
        (event("login", colour="red"), "'colour' is not a field of login events; remove it"),
        (event("login", channel=""), "'channel' must be at least 1 character(s) long"),
        (event("page_view", page="nowhere"), "event page_view: 'page' must be an app page"),
        (event("page_view", page=None), "'page' is required"),
        (event("search", query=""), "'query' must be at least 1 character(s) long; got ''"),
        (event("search", query="词" * 201), "'query' must be at most 200 characters long"),
        (event("transfer_failure", amount=-1), "'amount' must be at least 0; got -1"),
        (event("response", response_type="liked"), "'response_type' must be a response type"),
        (event("response", offer_id="no spaces"), "'offer_id' must be 1 to 64 letters"),
        (event("response", value=float("nan")), "'value' must be a finite number; got nan"),
        (event("login", version=2), "event login: 'version' must be a version this qianmian reads"),
        (event("login", version="1"), "'version' must be an integer; got '1'"),
        ({**event("login"), "type": "purchase"}, "event: 'type' must be one of transaction, login"),
        ({k: v for k, v in event("login").items() if k != "type"}, "event: 'type' is required"),
        ([event("login")], "event: must be a JSON object"),
        ('{"type": "login", ', "event: is not valid JSON"),
        (b"[]", "event: must be a JSON object"),
    ],
)
def test_invalid_events_name_the_field_and_the_reason(data: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        parse_event(data)


def test_every_problem_is_named_and_the_first_field_is_kept() -> None:
    with pytest.raises(ValidationError) as info:
        parse_event(event("transaction", amount=-1, category="家具", colour="red"))
    text = str(info.value)
    assert text.startswith("event transaction: 'amount' must be greater than 0; got -1. ")
    assert "'category' must be a spending category" in text
    assert "'colour' is not a field of transaction events" in text
    assert info.value.field == "amount"  # type: ignore[attr-defined]
    assert info.value.__cause__ is None  # the message says it all; no pydantic traceback


def test_unknown_version_is_refused_for_every_type() -> None:
    for type_ in EVENT_TYPES:
        assert parse_event(event(type_)).version == 1  # omitted: version 1
        assert parse_event(event(type_, version=1)).version == 1
        with pytest.raises(ValidationError, match=rf"event {type_}: 'version' .* got 3"):
            parse_event(event(type_, version=3))


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-11-11T20:15:00", datetime(2026, 11, 11, 20, 15)),  # naive: China time already
        ("2026-11-11 20:15", datetime(2026, 11, 11, 20, 15)),
        ("2026-11-11T20:15:00+08:00", datetime(2026, 11, 11, 20, 15)),
        ("2026-11-11T12:15:00Z", datetime(2026, 11, 11, 20, 15)),
        ("2026-11-11T07:15:00-05:00", datetime(2026, 11, 11, 20, 15)),
        ("2026-11-10T23:30:00+00:00", datetime(2026, 11, 11, 7, 30)),  # crosses midnight
        (datetime(2026, 11, 11, 12, 15, tzinfo=UTC), datetime(2026, 11, 11, 20, 15)),
        (
            datetime(2026, 11, 11, 21, 15, tzinfo=timezone(timedelta(hours=9))),  # Tokyo
            datetime(2026, 11, 11, 20, 15),
        ),
    ],
)
def test_times_become_naive_china_time(ts: Any, expected: datetime) -> None:
    parsed = parse_event(event("login", ts=ts))
    assert parsed.ts == expected
    assert parsed.ts.tzinfo is None


@pytest.mark.parametrize("type_", EVENT_TYPES)
def test_json_round_trip_from_every_input_form(type_: str) -> None:
    original = parse_event(event(type_, ts="2026-11-11T12:15:00Z"))
    as_json = event_to_json(original)
    assert as_json["ts"] == "2026-11-11T20:15:00" and as_json["type"] == type_
    assert orjson.loads(orjson.dumps(as_json)) == as_json  # JSON-compatible
    assert parse_event(as_json) == original
    assert parse_event(orjson.dumps(as_json)) == original
    assert parse_event(orjson.dumps(as_json).decode()) == original
    assert not any(v is None for v in as_json.values())


def test_events_are_frozen() -> None:
    parsed = parse_event(event("transaction"))
    with pytest.raises(PydanticValidationError, match="frozen"):
        parsed.amount = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (event("transaction"), {"type": "transaction", "amount": 5000.0, "category": "家装"}),
        (event("page_view"), {"type": "page_view", "page": "wealth_fund"}),
        (event("transfer_failure", amount=20000), {"type": "transfer_failure", "amount": 20000.0}),
        (event("login"), {"type": "login"}),
        (event("search"), {"type": "search"}),
        (event("response"), {"type": "response"}),
    ],
)
def test_event_context_for_decisions(data: dict[str, Any], expected: dict[str, Any]) -> None:
    context = event_context(parse_event(data))
    assert context == {"type": None, "amount": None, "category": None, "page": None} | expected


# -- rows for the online feature store ----------------------------------------------------------

AS_OF = datetime(2026, 11, 11)
SNAPSHOT = {
    "spend_7d": 100.0,
    "txn_count_7d": 2,
    "spend_home_30d": 0.0,
    "share_pos_90d": 0.5,
    "txn_count_90d": 4,
    "logins_7d": 3,
    "page_views_30d": 10,
    "views_wealth_fund_30d": 1,
    "searches_30d": 0,
    "search_home_30d": 0,
    "transfer_failures_30d": 0,
}
# What each event changes in the snapshot above, once applied.
CHANGES: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
    (
        event("transaction", amount=5000, category="家装", channel="POS", mcc="5712"),
        "transactions",
        {
            "spend_7d": 5100.0,
            "txn_count_7d": 3,
            "spend_home_30d": 5000.0,
            "txn_count_90d": 5,
            "share_pos_90d": 0.6,  # a running mean: (0.5 * 4 + 1) / 5
        },
    ),
    (event("login", channel="app"), "app_events", {"logins_7d": 4}),
    (event("page_view"), "app_events", {"page_views_30d": 11, "views_wealth_fund_30d": 2}),
    (event("search", query="装修"), "app_events", {"searches_30d": 1, "search_home_30d": 1}),
    (event("transfer_failure", amount=50000), "app_events", {"transfer_failures_30d": 1}),
]


@pytest.fixture
def online() -> MemoryOnlineStore:
    store = MemoryOnlineStore()
    columns = {"customer_id": [7], "as_of": [AS_OF]} | {k: [v] for k, v in SNAPSHOT.items()}
    store.load(pa.table(columns))
    return store


@pytest.mark.parametrize(("data", "source", "changed"), CHANGES)
def test_online_rows_are_counted_by_the_online_store(
    data: dict[str, Any], source: str, changed: dict[str, Any], online: MemoryOnlineStore
) -> None:
    parsed = parse_event(data)
    mapped = event_to_online(parsed)
    assert mapped is not None
    got_source, row = mapped
    assert got_source == source
    assert all(schema_table(source).has_field(c) for c in row)  # the batch table's columns
    assert online.apply_event(parsed.event_id, got_source, row) == "applied"
    assert online.apply_event(parsed.event_id, got_source, row) == "duplicate"
    vector = online.get(7)
    assert vector is not None
    assert {k: vector[k] for k in changed} == pytest.approx(changed)
    unchanged = {k: v for k, v in SNAPSHOT.items() if k not in changed}
    assert {k: vector[k] for k in unchanged} == unchanged


def test_responses_change_no_online_feature() -> None:
    assert event_to_online(parse_event(event("response"))) is None


def test_app_event_rows_have_the_batch_shape() -> None:
    rows = {t: event_to_online(parse_event(event(t))) for t in EVENT_TYPES if t != "response"}
    assert rows["login"] == (
        "app_events",
        {
            "customer_id": 7,
            "ts": datetime(2026, 11, 11, 20, 15),
            "event_type": "login",
            "page": None,
            "search_query": None,
        },
    )
    assert rows["search"] is not None and rows["search"][1]["search_query"] == "装修"
    assert rows["transfer_failure"] is not None
    assert rows["transfer_failure"][1]["event_type"] == "transfer_failure"
    assert rows["transaction"] is not None
    assert set(rows["transaction"][1]) == {
        "customer_id",
        "ts",
        "amount",
        "category",
        "channel",
        "merchant_id",
        "mcc",
    }
