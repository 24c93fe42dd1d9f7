"""Faults while the decision API serves real HTTP requests: the model raising, the model file
removed, Redis stopped. Every request is answered, flagged fallback where expected, and no
opted-out customer ever gets a marketing offer — by the responses and by the decision log.

The app is the real one (``create_app``) around an engine built by ``build_engine`` from
settings — a private redis-server for the decision state, the promoted uplift-s model behind
its guard, a PostgreSQL decision log — served by uvicorn on a free port and driven with httpx
from two client threads. The scenarios run one after another on the same running server.
"""

from __future__ import annotations

import itertools
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from qianmian.config import Settings, load_settings
from qianmian.decide.engine import DecisionEngine
from qianmian.decide.engine_build import build_engine, load_serving_state
from qianmian.decide.scoring import Scores
from qianmian.decide.scoring_guard import GuardedScorer
from qianmian.service.app import create_app
from qianmian.service.keys import ApiKeyStore
from qianmian.store.base import Store

pytestmark = pytest.mark.integration

CLIENT_THREADS = 2
BREAKER_RESET_SECONDS = 1.0
STATE_RETRY_SECONDS = 0.5  # how long decisions skip a decision state that just failed
MODEL_FILE = Path("models/registry/uplift-s/v1/model.joblib")


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: when it was sent and answered, the status and the JSON body."""

    customer_id: int
    started: float
    ended: float
    status: int
    body: dict[str, Any]

    @property
    def marketing(self) -> list[str]:
        """The marketing (non-service) offers presented; every service id starts with SV-."""
        return [
            o["offer_id"]
            for o in self.body.get("offers", [])
            if not o["offer_id"].startswith("SV-")
        ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A private redis-server on a free port that saves on shutdown, so a restart keeps the
    customers' contact state, as a production Redis with persistence would."""

    def __init__(self, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "3600 1", "--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    pytest.fail(f"A private redis-server on {self.port} did not start.")
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis saves its data, then exits
            self.process.wait(10)


@dataclass
class Served:
    """The running API: its app, settings, store, base URL and an admin key."""

    app: Any
    settings: Settings
    store: Store
    url: str
    key: str
    engines: list[DecisionEngine] = field(default_factory=list)

    @property
    def engine(self) -> DecisionEngine:
        return self.app.state.engine

    def restart_engine(self) -> DecisionEngine:
        """A serving process's restart: build the engine from settings and load the state, as
        ``qianmian serve`` does, then answer with it (the old one drains meanwhile)."""
        engine = build_engine(self.settings, store=self.store)
        load_serving_state(self.store, engine.state, engine.features)
        self.engines.append(engine)
        self.app.state.engine = engine
        return engine


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("This test starts its own redis-server; install Redis.", pytrace=False)
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def served(
    decide_world: Any,
    tmp_path: Path,
    redis_server: RedisServer,
    postgres_dsn: str,
    postgres_schema: str,
) -> Iterator[Served]:
    """The API over a copy of the world's workspace (its model file is removed in a test)."""
    import uvicorn

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    shutil.copy(decide_world.workspace / "qianmian.duckdb", workspace / "qianmian.duckdb")
    shutil.copytree(decide_world.workspace / "models", workspace / "models")
    settings = load_settings(
        workspace,
        state={"type": "redis", "url": redis_server.url, "timeout_seconds": 0.3},
        decision_log={"type": "postgres", "dsn": postgres_dsn, "db_schema": postgres_schema},
        # a generous model budget: on a busy machine a slow call must not pass for a fault
        decide={
            "model_budget_ms": 2_000,
            "breaker_failures": 3,
            "breaker_reset_seconds": BREAKER_RESET_SECONDS,
            "retry_seconds": STATE_RETRY_SECONDS,
            "seed": 0,
        },
        service={"rate_limit": "100000/second"},
        language="en",
    )
    store = settings.build_store()
    key = ApiKeyStore(workspace / "api_keys.json").create("fault-test", "admin")
    port = free_port()
    served = Served(create_app(settings, None), settings, store, f"http://127.0.0.1:{port}", key)
    served.restart_engine()  # the first start
    config = uvicorn.Config(served.app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield served
    server.should_exit = True
    thread.join(20)
    for engine in served.engines:
        engine.log.close()
        engine.state.close()
        if isinstance(engine.scorer, GuardedScorer):
            engine.scorer.close()
    store.close()


def drive(
    served: Served,
    bodies: list[dict[str, Any]],
    actions: dict[int, Callable[[], None]] | None = None,
) -> list[Answer]:
    """POST every body to /v1/decisions from the client threads; ``actions[i]`` runs just
    before request ``i`` is sent (in the thread sending it, while the other keeps sending)."""
    answers: list[Answer | None] = [None] * len(bodies)
    counter, lock = itertools.count(), threading.Lock()

    def work() -> None:
        headers = {"X-API-Key": served.key}
        with httpx.Client(base_url=served.url, headers=headers, timeout=10.0) as client:
            while True:
                with lock:
                    i = next(counter)
                if i >= len(bodies):
                    return
                if actions and i in actions:
                    actions[i]()
                started = time.monotonic()
                reply = client.post("/v1/decisions", json=bodies[i])
                ended = time.monotonic()
                answers[i] = Answer(
                    bodies[i]["customer_id"], started, ended, reply.status_code, reply.json()
                )

    threads = [threading.Thread(target=work) for _ in range(CLIENT_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None for a in answers), "a client thread died (a time-out?)"
    done = [a for a in answers if a is not None]
    assert [a.status for a in done if a.status != 200] == []  # every request answered, no 5xx
    return done


def logged(served: Served, answers: list[Answer]) -> dict[str, tuple[bool, str]]:
    """Per answer's decision, from the decision log: whether it scored marketing candidates
    (the model decides those when it can), and the model versions used (JSON text)."""
    for engine in served.engines:  # decisions may have been logged by an earlier engine
        engine.log.flush()
    ids = [a.body["decision_id"] for a in answers]
    offers = served.engine.catalogue.offers
    candidates = served.engine.log.candidates(decision_ids=ids).to_pylist()
    needed = {
        c["decision_id"]
        for c in candidates
        if c["p_response"] is not None and not offers[c["offer_id"]].service
    }
    rows = served.engine.log.decisions().select(["decision_id", "model_versions"]).to_pylist()
    versions = {r["decision_id"]: r["model_versions"] for r in rows}
    return {i: (i in needed, versions[i]) for i in ids}


def scored(served: Served, answers: list[Answer]) -> list[Answer]:
    """The answers whose decision scored marketing candidates."""
    log = logged(served, answers)
    return [a for a in answers if log[a.body["decision_id"]][0]]


def used_model(served: Served, answers: list[Answer]) -> bool:
    """Whether uplift-s v1 decided every one of ``answers`` (and there is at least one)."""
    log = logged(served, answers)
    return bool(answers) and all(log[a.body["decision_id"]][1] == '{"uplift-s":1}' for a in answers)


def reasons(answers: list[Answer]) -> list[str]:
    """The fallback reasons of the answers flagged fallback."""
    return [a.body["fallback_reason"] or "" for a in answers if a.body["fallback"]]


def watch_opt_outs(
    engine: DecisionEngine, customers: list[int], done: threading.Event, wrong: list[int]
) -> None:
    """Read the opted-out customers' state, as another serving process would, until ``done``;
    note in ``wrong`` each read that shows one opted in (a restart reloads every customer)."""
    reads = 0
    while not done.is_set() or reads == 0:
        for c in customers:
            reads += 1
            if not engine.state.customer(c).marketing_opt_out:
                wrong.append(c)


class RaisingModel:
    """A model whose every call fails, as a corrupted one would."""

    def score(self, features: Any, offer_ids: Any, channels: Any) -> Scores:
        raise RuntimeError("model weights are corrupted")


@dataclass(frozen=True)
class Run:
    """The served API and who the requests are for."""

    served: Served
    customers: list[int]  # neither opted out of marketing nor of personalisation
    opted_out: list[int]  # opted out of all marketing (over the API, or in the bank's data)

    def requests(self, n: int, seed: int) -> list[dict[str, Any]]:
        """A third for opted-out customers; mostly in-app (no consent needed, no quiet hours),
        some after a failed transfer (a mandatory service message applies), some any channel."""
        rng, bodies = random.Random(seed), []
        for _ in range(n):
            who = rng.choice(self.opted_out if rng.random() < 1 / 3 else self.customers)
            body: dict[str, Any] = {"customer_id": who, "channel": "in_app"}
            kind = rng.random()
            if kind < 0.15:
                body["event"] = {"type": "transfer_failure"}
            elif kind < 0.3:
                del body["channel"]
            bodies.append(body)
        return bodies

    def normal(self, answers: list[Answer]) -> list[Answer]:
        return [a for a in answers if a.customer_id not in self.opted_out]


def model_raising(run: Run) -> list[Answer]:
    """The loaded model starts raising mid-run, then is restored: rules decide meanwhile
    (the breaker opens after three failures), the model again once the breaker resets."""
    guard = run.served.engine.scorer
    assert isinstance(guard, GuardedScorer)
    model = guard.scorer
    before = drive(run.served, run.requests(150, seed=1))
    guard.scorer = RaisingModel()
    raising = drive(run.served, run.requests(200, seed=2))
    guard.scorer = model
    time.sleep(BREAKER_RESET_SECONDS + 0.2)
    after = drive(run.served, run.requests(150, seed=3))
    assert reasons(before + after) == []
    assert used_model(run.served, scored(run.served, after))
    hit = scored(run.served, run.normal(raising))
    why = reasons(hit)
    assert len(hit) > 50 and len(why) == len(hit)
    assert all("model raised RuntimeError" in r or "circuit open" in r for r in why)
    assert any("circuit open" in r for r in why) and any("model raised" in r for r in why)
    return before + raising + after


def model_file_removed(run: Run) -> list[Answer]:
    """The model file is removed mid-run, then the engine restarts while requests flow (the
    other client thread keeps asking the old engine meanwhile)."""
    served = run.served
    artifact = served.settings.workspace / MODEL_FILE
    saved = artifact.read_bytes()
    times: dict[str, float] = {}
    wrong: list[int] = []  # opted-out customers read as opted in while restarting

    def restart() -> None:
        times["restarting"] = time.monotonic()
        done = threading.Event()
        args = (served.engine, run.opted_out, done, wrong)
        watch = threading.Thread(target=watch_opt_outs, args=args)
        watch.start()
        restarted = served.restart_engine()
        times["restarted"] = time.monotonic()
        done.set()
        watch.join()
        assert restarted.scorer is None and "uplift-s" in (restarted.scorer_reason or "")

    answers = drive(served, run.requests(400, seed=4), {40: artifact.unlink, 150: restart})
    assert wrong == []  # a restart never shows an opted-out customer as opted in
    loaded = [a for a in answers if a.ended < times["restarting"]]
    missing = [a for a in answers if a.started > times["restarted"]]
    # a model is in memory once loaded: removing its file changes nothing until a restart
    assert len(loaded) > 100 and reasons(loaded) == []
    assert used_model(served, scored(served, loaded[60:]))
    hit = scored(served, run.normal(missing))
    assert len(hit) > 50 and len(reasons(hit)) == len(hit)
    assert all("model uplift-s is unavailable" in r for r in reasons(hit))
    assert all(logged(served, hit)[a.body["decision_id"]][1] == "{}" for a in hit)
    artifact.write_bytes(saved)  # put it back, and restart so the model decides again
    assert served.restart_engine().scorer is not None
    return answers


def redis_stopped(run: Run, redis_server: RedisServer) -> list[Answer]:
    """Redis stops while requests flow, then starts again; the app is not restarted."""
    times: dict[str, float] = {}

    def stop() -> None:
        times["stopping"] = time.monotonic()
        redis_server.stop()
        times["stopped"] = time.monotonic()

    def start() -> None:
        times["starting"] = time.monotonic()
        redis_server.start()
        times["started"] = time.monotonic()

    answers = drive(run.served, run.requests(500, seed=6), {150: stop, 400: start})
    time.sleep(STATE_RETRY_SECONDS)  # the engine tries the state again after its retry time
    answers += drive(run.served, run.requests(200, seed=7))
    up = [a for a in answers if a.ended < times["stopping"]]
    down = [a for a in answers if times["stopped"] < a.started and a.ended < times["starting"]]
    # once Redis is back, decisions try it again within the engine's retry time
    back = sorted(
        (a for a in answers if a.started > times["started"] + STATE_RETRY_SECONDS),
        key=lambda a: a.started,
    )
    # how many fall inside the outage depends on timing; enough to see every answer degrade
    assert len(up) > 100 and len(down) > 100 and len(back) >= 200
    # a failed state is skipped, not waited for (0.3 s time-out) on every request
    assert sorted(a.ended - a.started for a in down)[len(down) // 2] < 0.1
    assert reasons(up) == []
    why = reasons(down)
    assert len(why) == len(down) and all("decision state unavailable" in r for r in why)
    assert [a.marketing for a in down if a.marketing] == []  # nothing but service messages
    assert any(a.body["offers"] for a in down)  # mandatory service messages still go
    # a pooled connection to the stopped server may fail once more after the restart
    assert reasons(back[2 * CLIENT_THREADS :]) == []
    assert sum(bool(a.marketing) for a in back) > 20  # marketing resumes, no app restart
    return answers


def test_faults_degrade_to_rules_and_never_contact_opted_out_customers(
    served: Served,
    redis_server: RedisServer,
    decide_world: Any,
    postgres_dsn: str,
    postgres_schema: str,
) -> None:
    began = time.monotonic()
    state = served.engine.state
    ids = decide_world.features.column("customer_id").to_pylist()
    personal = [
        c
        for c in ids
        if not (s := state.customer(c)).marketing_opt_out and not s.personalisation_opt_out
    ]
    with httpx.Client(base_url=served.url, headers={"X-API-Key": served.key}) as client:
        for c in personal[-60:]:
            reply = client.post(f"/v1/customers/{c}/opt-out")
            assert reply.status_code == 200 and reply.json()["marketing_opt_out"] is True
    opted_out = [c for c in ids if state.customer(c).marketing_opt_out]
    assert set(personal[-60:]) <= set(opted_out)
    run = Run(served, personal[:-60], opted_out)

    answers = {
        "model raising": model_raising(run),
        "model file removed": model_file_removed(run),
        "redis stopped": redis_stopped(run, redis_server),
    }

    everything = [a for scenario in answers.values() for a in scenario]
    opted = set(opted_out)
    assert [a.marketing for a in everything if a.customer_id in opted and a.marketing] == []
    assert sum(bool(a.marketing) for a in everything if a.customer_id not in opted) > 100
    for engine in served.engines:
        engine.log.flush()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        n_logged = conn.execute(f'SELECT count(*) FROM "{postgres_schema}".decisions').fetchone()[0]
        contacted = conn.execute(
            f'SELECT DISTINCT d.customer_id FROM "{postgres_schema}".decisions AS d, '
            "jsonb_array_elements(d.document->'offers') AS o WHERE NOT (o->>'service')::boolean"
        ).fetchall()
    assert n_logged == len(everything)
    assert opted.isdisjoint(c for (c,) in contacted) and len(contacted) > 50
    counts = ", ".join(f"{k} {sum(a.body['fallback'] for a in v)}" for k, v in answers.items())
    print(f"\n{len(everything)} requests in {time.monotonic() - began:.1f} s; fallback: {counts}")
