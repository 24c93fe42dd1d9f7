"""The DecisionLog contract: one test body per behaviour, run against SQLite and PostgreSQL.

The PostgreSQL backend needs a real server (see ``tests/conftest.py``); each test gets a
throwaway schema. A missing PostgreSQL fails these tests, it never skips them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from qianmian.decide.configs import PostgresLogConfig, SQLiteLogConfig
from qianmian.decide.decision import (
    STAGES,
    Arm,
    Candidate,
    ChosenOffer,
    Decision,
    DecisionRequest,
    Stage,
)
from qianmian.decide.log import open_decision_log
from qianmian.decide.log.base import (
    AUDIT_COLUMNS,
    CANDIDATE_COLUMNS,
    DECISION_COLUMNS,
    RESPONSE_COLUMNS,
    AuditEntry,
    DecisionLog,
    ResponseRecord,
)
from qianmian.decide.log.postgres import PostgresDecisionLog
from qianmian.decide.log.records import (
    CANDIDATE_FIELDS,
    candidate_rows,
    decision_document,
    decision_row,
)
from qianmian.decide.log.sqlite import SQLiteDecisionLog
from qianmian.errors import ConfigError, StoreError

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
T0 = datetime(2026, 11, 11, 9, 0)  # Double 11
OFFERS = [f"o{i:02d}" for i in range(10)]
CHANNELS = ("app", "sms", "push")
LogFactory = Callable[[], DecisionLog]

# -- a realistic decision ----------------------------------------------------------------------

# candidate index → the stage that removes it; 20 and 21 survive (and are presented), 22-29 lose
# arbitration; in a control decision 20 is held out instead
_REMOVED: dict[int, Stage] = {
    **dict.fromkeys(range(0, 4), "eligibility"),
    **dict.fromkeys(range(4, 8), "applicability"),
    **dict.fromkeys(range(8, 11), "suitability"),
    **dict.fromkeys(range(11, 15), "contact_policy"),
    **dict.fromkeys(range(15, 18), "capacity"),
    **dict.fromkeys(range(22, 30), "arbitration"),
}


def make_decision(
    n: int,
    *,
    customer_id: int = 1001,
    ts: datetime = T0,
    kind: str = "engine",
    first_offer: int = 6,
) -> Decision:
    """Decision ``d-<n>``: 30 candidates (10 offers × 3 channels), each stage removing some.

    ``kind`` is ``engine`` (two offers presented), ``fallback`` (rules decided, one offer) or
    ``control`` (the winner held out, nothing presented). Candidates 20 and 21 are the offers
    ``first_offer`` and the next one, both on the app.
    """
    candidates = []
    for i in range(30):
        offer_id = OFFERS[(first_offer + i - 20) % 10] if i >= 20 else OFFERS[i % 10]
        channel = "app" if i >= 20 else CHANNELS[i % 3]
        c = Candidate(
            offer_id=offer_id,
            treatment_id=f"{offer_id}-t{i % 2}",
            channel=channel,
            campaign_id="c2" if offer_id in ("o02", "o07") else "c1",
            personalised=i % 5 != 0,
            service=i == 29,
            p_response=round(0.01 + i / 1000, 4),
            uplift=None if i < 11 else 0.002 * i,
            value=120.0 + i,
            cost=0.05 if channel == "sms" else 0.0,
            weight=1.0 if i % 4 else 1.5,
        )
        if i >= 15:
            c.expected_value = 0.3 + (30 - i) / 100
            c.action_probability = 0.5 if i in (20, 21) else 0.02
        if i in _REMOVED:
            c.remove(_REMOVED[i], f"{_REMOVED[i]} rule {i}: 近30天家装消费不足")
        candidates.append(c)
    offers = [
        ChosenOffer(
            rank=rank,
            offer_id=candidates[i].offer_id,
            treatment_id=candidates[i].treatment_id,
            channel="app",
            campaign_id=candidates[i].campaign_id,
            name=f"家装分期 {candidates[i].offer_id}",
            copy="您好，本月家装分期享3期免息，点击领取。",
            expected_value=candidates[i].expected_value or 0.0,
            action_probability=0.5,
            reasons=("近30天家装消费超5000元", "偏好分期"),
            reservation_id=f"r-{n}-{rank}",
        )
        for rank, i in ((1, 20), (2, 21))
    ]
    arm: Arm = "engine"
    fallback, reason, versions = False, None, {"propensity": 3, "uplift": 2}
    if kind == "fallback":
        arm, fallback, reason, versions = "fallback", True, "propensity model timed out", {}
        offers = offers[:1]
        candidates[21].remove("arbitration", "ranked below the offers presented")
    elif kind == "control":
        arm, offers = "control", []
        candidates[20].remove("control", "campaign c1 holds this customer out in 2026-11")
        candidates[21].remove("arbitration", "ranked below the offers presented")
    request = DecisionRequest(
        customer_id=customer_id,
        ts=ts,
        channel=None if n % 2 else "app",
        placement="home_banner",
        event={"type": "transaction", "amount": 5000.0, "category": "home"},
        max_offers=2,
        request_id=f"req-{n}",
    )
    return Decision(
        decision_id=f"d-{n}",
        request=request,
        offers=offers,
        candidates=candidates,
        arm=arm,
        fallback=fallback,
        fallback_reason=reason,
        model_versions=versions,
        feature_ref="2026-11-10+events:17",
        catalogue_version="cat-2026.11",
        latency_ms=12.5 + n,
    )


def as_json(value: Any) -> Any:
    """``value`` as it comes back from JSON."""
    return orjson.loads(orjson.dumps(value))


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_log(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogFactory]:
    """Open a new handle on one fresh decision log (each call is a new connection to it)."""
    opened: list[DecisionLog] = []

    def open_one() -> DecisionLog:
        log: DecisionLog
        if backend == "sqlite":
            log = SQLiteDecisionLog(tmp_path / "decisions.db", flush_seconds=0.05)
        else:
            log = PostgresDecisionLog(
                request.getfixturevalue("postgres_dsn"),
                db_schema=request.getfixturevalue("postgres_schema"),
                flush_seconds=0.05,
                spool_dir=tmp_path / "spool",
            )
        opened.append(log)
        return log

    yield open_one
    for log in opened:
        log.close()


@pytest.fixture
def log(open_log: LogFactory) -> DecisionLog:
    return open_log()


# -- decisions ---------------------------------------------------------------------------------


def test_round_trip_keeps_the_whole_decision(log: DecisionLog) -> None:
    decisions = [
        make_decision(1),
        make_decision(2, kind="fallback"),
        make_decision(3, kind="control"),
    ]
    for d in decisions:
        log.append(d)
    log.flush()
    for d in decisions:
        stored = log.get(d.decision_id)
        assert stored == as_json(decision_document(d))
        assert stored is not None and len(stored["candidates"]) == 30
        assert set(stored["candidates"][0]) == set(CANDIDATE_FIELDS)  # jsonb reorders keys
    engine = log.get("d-1")
    assert engine is not None
    assert [o["offer_id"] for o in engine["offers"]] == ["o06", "o07"]
    assert engine["offers"][0]["copy"] == "您好，本月家装分期享3期免息，点击领取。"
    assert engine["request"]["event"] == {
        "type": "transaction",
        "amount": 5000.0,
        "category": "home",
    }
    assert engine["ts"] == "2026-11-11T09:00:00"
    assert log.get("d-404") is None


def test_decision_rows_hold_the_request_the_answer_and_the_arm(log: DecisionLog) -> None:
    decisions = [
        make_decision(1),
        make_decision(2, kind="fallback"),
        make_decision(3, kind="control"),
    ]
    for d in decisions:
        log.append(d)
    table = log.decisions()
    assert tuple(table.column_names) == DECISION_COLUMNS
    assert table.to_pylist() == [
        {c: decision_row(d)[c] for c in DECISION_COLUMNS} for d in decisions
    ]
    rows = {r["decision_id"]: r for r in table.to_pylist()}
    assert (rows["d-1"]["offer_id"], rows["d-1"]["n_offers"], rows["d-1"]["arm"]) == (
        "o06",
        2,
        "engine",
    )
    assert rows["d-1"]["event_type"] == "transaction"
    assert orjson.loads(rows["d-1"]["model_versions"]) == {"propensity": 3, "uplift": 2}
    assert rows["d-2"]["fallback"] is True and rows["d-2"]["fallback_reason"]
    assert rows["d-3"]["offer_id"] is None and rows["d-3"]["n_offers"] == 0


def _filter_world() -> list[Decision]:
    """12 decisions: 3 customers, a day apart, offers o00..o09 first, two campaigns."""
    return [
        make_decision(n, customer_id=1 + n % 3, ts=T0 + timedelta(days=n), first_offer=n % 10)
        for n in range(12)
    ]


@pytest.mark.parametrize(
    ("filters", "predicate", "limit"),
    [
        ({}, lambda r: True, None),
        ({"customer_id": 2}, lambda r: r["customer_id"] == 2, None),
        ({"offer_id": "o03"}, lambda r: r["offer_id"] == "o03", None),
        ({"campaign_id": "c2"}, lambda r: r["campaign_id"] == "c2", None),
        ({"since": T0 + timedelta(days=9)}, lambda r: r["ts"] >= T0 + timedelta(days=9), None),
        ({"until": T0 + timedelta(days=2)}, lambda r: r["ts"] < T0 + timedelta(days=2), None),
        (
            {"customer_id": 1, "since": T0 + timedelta(days=3), "until": T0 + timedelta(days=9)},
            lambda r: (
                r["customer_id"] == 1 and T0 + timedelta(days=3) <= r["ts"] < T0 + timedelta(days=9)
            ),
            None,
        ),
        ({"customer_id": 3}, lambda r: r["customer_id"] == 3, 2),
        ({}, lambda r: True, 5),
        ({"customer_id": 99}, lambda r: False, None),
    ],
)
def test_decisions_filters(
    log: DecisionLog,
    filters: dict[str, Any],
    predicate: Callable[[dict[str, Any]], bool],
    limit: int | None,
) -> None:
    world = _filter_world()
    for d in reversed(world):  # stored out of order: results still come oldest first
        log.append(d)
    expected = [r["decision_id"] for r in map(decision_row, world) if predicate(r)][:limit]
    got = log.decisions(**filters, limit=limit)
    assert got["decision_id"].to_pylist() == expected
    assert got["ts"].to_pylist() == sorted(got["ts"].to_pylist())


def test_aware_times_are_stored_as_naive_china_time(log: DecisionLog) -> None:
    utc = datetime(2026, 11, 11, 1, 0, tzinfo=UTC)
    log.append(make_decision(1, ts=utc))
    assert log.decisions()["ts"].to_pylist() == [datetime(2026, 11, 11, 9, 0)]
    assert log.decisions(since=utc, until=utc + timedelta(seconds=1)).num_rows == 1


# -- candidates --------------------------------------------------------------------------------


def test_candidates_unnest_every_candidate_with_stage_and_rank(log: DecisionLog) -> None:
    decisions = [
        make_decision(1),
        make_decision(2, kind="fallback"),
        make_decision(3, kind="control"),
    ]
    for d in decisions:
        log.append(d)
    table = log.candidates()
    assert tuple(table.column_names) == CANDIDATE_COLUMNS
    assert table.to_pylist() == [row for d in decisions for row in candidate_rows(d)]
    engine = log.candidates(decision_ids=["d-1"]).to_pylist()
    assert len(engine) == 30
    removed = {s: sum(r["removed_by"] == s for r in engine) for s in STAGES}
    assert removed == {
        "eligibility": 4,
        "applicability": 4,
        "suitability": 3,
        "contact_policy": 4,
        "arbitration": 8,
        "control": 0,
        "capacity": 3,
    }
    presented = [(r["offer_id"], r["presented_rank"]) for r in engine if r["presented_rank"]]
    assert presented == [("o06", 1), ("o07", 2)]
    assert all(r["removed_by"] is None for r in engine if r["presented_rank"])
    assert engine[0]["reason"] == "eligibility rule 0: 近30天家装消费不足"
    control = log.candidates(decision_ids=["d-3"]).to_pylist()
    assert [r["removed_by"] for r in control].count("control") == 1
    assert all(r["presented_rank"] is None for r in control)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"decision_ids": ["d-2", "d-0"]}, ["d-0", "d-2"]),
        ({"decision_ids": []}, []),
        ({"since": T0 + timedelta(days=1)}, ["d-1", "d-2"]),
        ({"until": T0 + timedelta(days=1)}, ["d-0"]),
        ({"decision_ids": ["d-0", "d-1"], "since": T0 + timedelta(days=1)}, ["d-1"]),
    ],
)
def test_candidates_filters(log: DecisionLog, filters: dict[str, Any], expected: list[str]) -> None:
    for n in range(3):
        log.append(make_decision(n, ts=T0 + timedelta(days=n)))
    ids = log.candidates(**filters)["decision_id"].to_pylist()
    assert ids == [d for d in expected for _ in range(30)]


# -- responses and audit -----------------------------------------------------------------------

_R = ResponseRecord("r-1", "d-1", 1001, "o06", "clicked", T0 + timedelta(minutes=5))


@pytest.mark.parametrize(
    ("responses", "inserted"),
    [
        ([_R], [True]),
        ([_R, _R], [True, False]),
        ([_R, ResponseRecord("r-1", "d-9", 7, None, "complained", T0, 1.0)], [True, False]),
        (
            [_R, ResponseRecord("r-2", "d-1", 1001, "o06", "applied", T0, 3000.0), _R],
            [True, True, False],
        ),
    ],
)
def test_responses_are_idempotent_on_response_id(
    log: DecisionLog, responses: list[ResponseRecord], inserted: list[bool]
) -> None:
    assert [log.record_response(r) for r in responses] == inserted
    stored = log.responses()
    assert tuple(stored.column_names) == RESPONSE_COLUMNS
    first = {r.response_id: r for r in reversed(responses)}  # the first of each id is kept
    expected = sorted(first.values(), key=lambda r: r.ts)
    assert stored.to_pylist() == [{c: getattr(r, c) for c in RESPONSE_COLUMNS} for r in expected]


def test_responses_filters(log: DecisionLog) -> None:
    for i in range(6):
        log.record_response(
            ResponseRecord(
                f"r-{i}", f"d-{i}", 1 + i % 2, "o01", "delivered", T0 + timedelta(hours=i)
            )
        )
    assert log.responses(customer_id=2)["response_id"].to_pylist() == ["r-1", "r-3", "r-5"]
    since = log.responses(since=T0 + timedelta(hours=4))
    assert since["response_id"].to_pylist() == ["r-4", "r-5"]


def test_audit_is_kept_oldest_first_in_order_of_recording(log: DecisionLog) -> None:
    entries = [
        AuditEntry(T0 + timedelta(minutes=2), "wang.li", "marketing", "campaign.start", "c1"),
        AuditEntry(T0, "admin", "admin", "apikey.create", "svc-app", "scopes: decide"),
        AuditEntry(
            T0 + timedelta(minutes=2), "wang.li", "marketing", "campaign.pilot", "c1", "分行: 上海"
        ),
        AuditEntry(T0 + timedelta(minutes=1), "zhao.min", "compliance", "optout.view", "1001"),
    ]
    for e in entries:
        log.record_audit(e)
    table = log.audit()
    assert tuple(table.column_names) == AUDIT_COLUMNS
    assert table["action"].to_pylist() == [
        "apikey.create",
        "optout.view",
        "campaign.start",
        "campaign.pilot",
    ]
    assert table.to_pylist()[3]["detail"] == "分行: 上海"
    assert log.audit(since=T0 + timedelta(minutes=1), limit=2)["action"].to_pylist() == [
        "optout.view",
        "campaign.start",
    ]


# -- buffering, concurrency, closing -----------------------------------------------------------


def test_reads_see_own_writes_without_a_flush(log: DecisionLog) -> None:
    for n in range(3):
        log.append(make_decision(n))
        assert log.decisions()["decision_id"].to_pylist() == [f"d-{i}" for i in range(n + 1)]
    log.append(make_decision(3))
    assert log.candidates(decision_ids=["d-3"]).num_rows == 30
    log.append(make_decision(4))
    assert log.get("d-4") is not None


def test_concurrent_appends_are_stored_exactly_once(log: DecisionLog) -> None:
    threads, per_thread = 8, 60
    barrier = threading.Barrier(threads)

    def append_some(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            log.append(make_decision(t * per_thread + i, ts=T0 + timedelta(seconds=i)))
        log.append(make_decision(t * per_thread))  # a repeat: stored once

    workers = [threading.Thread(target=append_some, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    ids = log.decisions()["decision_id"].to_pylist()
    assert sorted(ids) == sorted(f"d-{n}" for n in range(threads * per_thread))


def test_close_flushes_and_another_handle_reads_it(open_log: LogFactory) -> None:
    first = open_log()
    second = open_log()  # another process serving at the same time
    first.append(make_decision(1))
    first.record_audit(AuditEntry(T0, "ops", "admin", "decide.batch", "c1"))
    first.close()
    first.close()  # a second close does nothing
    assert second.decisions()["decision_id"].to_pylist() == ["d-1"]
    assert second.audit().num_rows == 1
    with pytest.raises(StoreError, match="closed"):
        first.append(make_decision(2))


# -- configuration and errors ------------------------------------------------------------------


def test_open_decision_log_from_configuration(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    config: SQLiteLogConfig | PostgresLogConfig = SQLiteLogConfig()
    if backend == "postgres":
        config = PostgresLogConfig(
            type="postgres",
            dsn=request.getfixturevalue("postgres_dsn"),
            db_schema=request.getfixturevalue("postgres_schema"),
        )
    with open_decision_log(config, workspace=tmp_path) as log:
        log.append(make_decision(1))
        assert log.decisions().num_rows == 1
    if backend == "sqlite":
        assert (tmp_path / "decisions.db").is_file()
    else:
        assert (tmp_path / "spool" / "decisions").is_dir()


def _closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_backend_failures_raise_store_error(tmp_path: Path) -> None:
    (tmp_path / "a-folder.db").mkdir()
    with pytest.raises(StoreError, match=r"a-folder\.db"):
        SQLiteDecisionLog(tmp_path / "a-folder.db")
    with pytest.raises(StoreError, match="not a valid connection string"):
        PostgresDecisionLog("not a dsn", spool_dir=tmp_path)
    dsn = f"postgresql://app:s3cret@127.0.0.1:{_closed_port()}/test"
    with PostgresDecisionLog(dsn, spool_dir=tmp_path / "spool", flush_timeout_seconds=5) as log:
        for call in (
            log.decisions,
            log.audit,
            lambda: log.record_audit(AuditEntry(T0, "a", "b", "c", "d")),
        ):
            with pytest.raises(StoreError) as caught:
                call()
            assert "app:***@127.0.0.1" in str(caught.value)
            assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(("busy_timeout", "held", "fails"), [(3.0, 0.2, False), (0.05, 0.6, True)])
def test_sqlite_waits_for_another_process_and_keeps_decisions_if_it_cannot(
    tmp_path: Path, busy_timeout: float, held: float, fails: bool
) -> None:
    import sqlite3

    path = tmp_path / "decisions.db"
    log = SQLiteDecisionLog(path, flush_seconds=60, busy_timeout_seconds=busy_timeout)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process writing (a CLI batch run)
    threading.Timer(held, lambda: other.execute("COMMIT")).start()
    log.append(make_decision(1))
    if fails:
        with pytest.raises(StoreError, match="locked"):
            log.flush()
        time.sleep(held)
    log.flush()
    assert log.decisions()["decision_id"].to_pylist() == ["d-1"]
    log.close()
    other.close()


# -- PostgreSQL outage --------------------------------------------------------------------------


def test_postgres_outage_is_reported_by_flush_and_by_close_without_a_spool() -> None:
    log = PostgresDecisionLog(f"postgresql://postgres@127.0.0.1:{_closed_port()}/test")
    log.append(make_decision(1))
    with pytest.raises(StoreError, match="Nothing is lost: 1 wait in memory"):
        log.flush()
    with pytest.raises(StoreError, match=r"1 decisions could not be written .* no spool folder"):
        log.close()


@pytest.mark.integration
def test_postgres_outage_spools_then_replays_exactly_once(
    postgres_dsn: str, postgres_schema: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    down = PostgresDecisionLog(
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/test",
        db_schema=postgres_schema,
        spool_dir=spool,
        max_pending=300,
        flush_seconds=0.05,
    )
    decisions = [make_decision(n, ts=T0 + timedelta(seconds=n)) for n in range(1_000)]
    started = time.perf_counter()
    for d in decisions:
        down.append(d)
    appending = time.perf_counter() - started
    down.close()
    assert appending < 2.0  # append never waits for the database
    files = sorted(spool.glob("*.jsonl"))
    assert sum(len(f.read_bytes().splitlines()) for f in files) == 1_000
    assert len(files) >= 2  # spilled once beyond max_pending, then the rest on close
    saved = {f.name: f.read_bytes() for f in files}

    with PostgresDecisionLog(postgres_dsn, db_schema=postgres_schema, spool_dir=spool) as up:
        up.flush()
        assert not list(spool.glob("*.jsonl"))
        ids = up.decisions()["decision_id"].to_pylist()
        assert sorted(ids) == sorted(d.decision_id for d in decisions)
        assert up.get("d-999") == as_json(decision_document(decisions[999]))
    name, content = next(iter(saved.items()))
    (spool / name).write_bytes(content)  # replayed a second time (a crash before the delete)
    with PostgresDecisionLog(postgres_dsn, db_schema=postgres_schema, spool_dir=spool) as again:
        assert again.decisions().num_rows == 1_000
        assert not list(spool.glob("*.jsonl"))


@pytest.mark.integration
def test_postgres_reconnects_when_its_connection_dies(
    postgres_dsn: str, postgres_schema: str, tmp_path: Path
) -> None:
    import psycopg

    with PostgresDecisionLog(postgres_dsn, db_schema=postgres_schema, spool_dir=tmp_path) as log:
        log.append(make_decision(0))
        assert log.decisions().num_rows == 1
        for conn in (log._writer_conn, log._query_conn):  # a server restart, seen by both
            assert conn is not None
            with psycopg.connect(postgres_dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        for n in range(1, 20):
            log.append(make_decision(n))
        log.flush()  # neither this flush nor the query below fails: both reconnect
        assert log.decisions()["decision_id"].to_pylist() == [f"d-{n}" for n in range(20)]


def _nul_in_candidate_reason(d: Decision) -> None:
    d.candidates[0].reason = "NUL \x00 in JSON is refused by the server"


def _nul_in_request_id(d: Decision) -> None:
    d.request = DecisionRequest(customer_id=1001, ts=T0, request_id="NUL \x00 refused by psycopg")


@pytest.mark.integration
@pytest.mark.parametrize("spoil", [_nul_in_candidate_reason, _nul_in_request_id])
def test_postgres_sets_aside_only_the_decision_it_refuses(
    postgres_dsn: str, postgres_schema: str, tmp_path: Path, spoil: Callable[[Decision], None]
) -> None:
    bad = make_decision(5)
    spoil(bad)
    with PostgresDecisionLog(postgres_dsn, db_schema=postgres_schema, spool_dir=tmp_path) as log:
        for n in range(10):
            log.append(bad if n == 5 else make_decision(n))
        ids = log.decisions()["decision_id"].to_pylist()
    assert ids == [f"d-{n}" for n in range(10) if n != 5]
    (rejected,) = tmp_path.glob("rejected-*.jsonl")
    (line,) = rejected.read_bytes().splitlines()
    assert orjson.loads(line)["decision_id"] == "d-5"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flush_seconds": None}, "'flush_seconds' parameter .* positive number. Got None"),
        ({"flush_seconds": 0}, "'flush_seconds' parameter"),
        ({"batch_size": -1}, "'batch_size' parameter .* Got -1"),
    ],
)
def test_sqlite_log_refuses_bad_parameters(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SQLiteDecisionLog(tmp_path / "log.db", **kwargs)
