"""The DecisionState contract: one test body per behaviour, run against every backend."""

from __future__ import annotations

import math
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qianmian.decide.configs import MemoryStateConfig, RedisStateConfig
from qianmian.decide.state import open_decision_state
from qianmian.decide.state.base import (
    Counter,
    CustomerContactState,
    DecisionState,
    ReservationAttempt,
    SuppressionRules,
)
from qianmian.decide.state.memory import MemoryDecisionState
from qianmian.decide.state.redis import RedisDecisionState
from qianmian.errors import NotFoundError, StoreError, ValidationError

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.integration)]
T0 = datetime(2026, 11, 22, 9, 0)
RULES = SuppressionRules()  # 2 ignores within 30 days hide for 60; a complaint stops 90 days
StateFactory = Callable[[], DecisionState]

ALICE = CustomerContactState(
    1, frozenset({"sms", "app_push"}), held_products=frozenset({"CC_GOLD", "FUND.R2"})
)
PEOPLE = [
    ALICE,
    CustomerContactState(2, marketing_opt_out=True),
    CustomerContactState(
        3, frozenset({"wechat", "email", "call_center"}), personalisation_opt_out=True
    ),
]


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def attempt(label: str, *counters: tuple[str, float, float]) -> ReservationAttempt:
    return ReservationAttempt(label, tuple(Counter(k, a, lim) for k, a, lim in counters))


def push(customer: int, amount: float = 30.0) -> ReservationAttempt:
    """Offer O1 by app push: the customer's daily cap (2) and O1's budget (100 CNY)."""
    return attempt("O1 push", (f"cap:{customer}:d", 1, 2), ("budget:O1", amount, 100.0))


def sms(customer: int) -> ReservationAttempt:
    """Offer O2 by SMS: the daily cap, O2's budget (60 CNY) and SMS capacity (1 a day)."""
    return attempt(
        "O2 sms", (f"cap:{customer}:d", 1, 2), ("budget:O2", 50.0, 60.0), ("capacity:sms", 1, 1)
    )


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def new_state(request: pytest.FixtureRequest) -> Iterator[StateFactory]:
    """Opens states on one shared backend: the same object in memory, new clients on Redis
    (as separate serving processes would hold)."""
    if request.param == "memory":
        shared = MemoryDecisionState()
        yield lambda: shared
        return
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    opened: list[RedisDecisionState] = []

    def open_redis() -> DecisionState:
        # generous timeout: the concurrency test runs 16 clients on a shared 2-core machine
        opened.append(RedisDecisionState(url, key_prefix=prefix, timeout_seconds=10))
        return opened[-1]

    yield open_redis
    for state in opened:
        state.close()


@pytest.fixture
def state(new_state: StateFactory) -> DecisionState:
    return new_state()


# -- customers ---------------------------------------------------------------------------------


def test_customers_round_trip(state: DecisionState) -> None:
    assert state.load_customers(iter(PEOPLE)) == 3

    assert [state.customer(c.customer_id) for c in PEOPLE] == PEOPLE
    assert state.customer(404) is None


def test_loading_many_customers_from_a_generator_replaces_preferences(
    state: DecisionState,
) -> None:
    many = (
        CustomerContactState(
            i, frozenset({"sms"}) if i % 2 else frozenset(), held_products=frozenset({f"P{i % 7}"})
        )
        for i in range(1, 12_001)
    )
    assert state.load_customers(many) == 12_000
    assert state.customer(12_000) == CustomerContactState(12_000, held_products=frozenset({"P2"}))

    state.load_customers([CustomerContactState(12_000, frozenset({"email"}))])

    assert state.customer(12_000) == CustomerContactState(12_000, frozenset({"email"}))
    assert state.customer(11_999) == CustomerContactState(
        11_999, frozenset({"sms"}), held_products=frozenset({"P1"})
    )


def test_reloading_a_customer_keeps_suppressions(state: DecisionState) -> None:
    state.load_customers([ALICE])
    state.record_outcome(1, "O1", "complained", T0, RULES)
    state.record_outcome(1, "O2", "ignored", T0, SuppressionRules(ignore_count=1))

    state.load_customers([replace(ALICE, consents=frozenset({"email"}))])

    got = state.customer(1)
    assert got is not None and got.consents == {"email"}
    assert got.marketing_suppressed_until == day(90)
    assert got.hidden_offers == {"O2": day(60)}


def test_an_outcome_before_the_customer_is_loaded_waits_for_the_load(state: DecisionState) -> None:
    returned = state.record_outcome(7, "O1", "complained", T0, RULES)

    assert returned.marketing_suppressed_until == day(90)
    assert state.customer(7) is None
    state.load_customers([CustomerContactState(7, frozenset({"sms"}))])
    assert state.customer(7) == CustomerContactState(
        7, frozenset({"sms"}), marketing_suppressed_until=day(90)
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"consents": {"email": True}}, {"consents": {"sms", "app_push", "email"}}),
        ({"consents": {"sms": False, "wechat": True}}, {"consents": {"app_push", "wechat"}}),
        ({"consents": {"sms": False, "app_push": False}}, {"consents": set()}),
        ({"consents": {"email": False}}, {}),
        ({"marketing_opt_out": True}, {"marketing_opt_out": True}),
        (
            {"personalisation_opt_out": True, "consents": {}},
            {"personalisation_opt_out": True},
        ),
        ({}, {}),
    ],
    ids=["add", "swap", "remove all", "remove absent", "opt out", "refuse personalised", "none"],
)
def test_set_preferences_changes_only_what_is_given(
    state: DecisionState, change: dict[str, Any], expected: dict[str, Any]
) -> None:
    state.load_customers([ALICE])
    if "consents" in expected:
        expected["consents"] = frozenset(expected["consents"])
    want = replace(ALICE, **expected)

    assert state.set_preferences(1, **change) == want
    assert state.customer(1) == want


# -- suppression after outcomes ----------------------------------------------------------------

SUPPRESSION_CASES = [
    # rules, events ("A10": offer A ignored on day 10, "!B30": a complaint about B on day 30),
    # offers hidden {offer: until day}, marketing suppressed until day
    ("ignored once", RULES, "A0", {}, None),
    ("twice within the window", RULES, "A0 A10", {"A": 70}, None),
    ("twice on the window's edge", RULES, "A0 A30", {"A": 90}, None),
    ("twice outside the window", RULES, "A0 A40", {}, None),
    ("two offers once each", RULES, "A0 B5", {}, None),
    ("the last two of three within", RULES, "A0 A40 A50", {"A": 110}, None),
    ("a hide that ended is forgotten", RULES, "A0 A10 B80", {}, None),
    ("count 1 hides at once", SuppressionRules(ignore_count=1, hide_days=7), "A0", {"A": 7}, None),
    ("count 3 needs three", SuppressionRules(ignore_count=3), "A0 A10", {}, None),
    ("count 3 within the window", SuppressionRules(ignore_count=3), "A0 A10 A20", {"A": 80}, None),
    ("complaint", RULES, "!A0", {}, 90),
    ("a later complaint extends", RULES, "!A0 !B30", {}, 120),
    ("an earlier one never shortens", RULES, "!A30 !A0", {}, 120),
    ("hides and a complaint together", RULES, "A0 A1 !B2", {"A": 61}, 92),
]


def outcomes(events: str) -> list[tuple[Any, str, datetime]]:
    """("ignored" or "complained", offer, time) for each event of a case."""
    return [
        ("complained" if e[0] == "!" else "ignored", e.lstrip("!")[0], day(int(e.lstrip("!")[1:])))
        for e in events.split()
    ]


@pytest.mark.parametrize(
    ("rules", "events", "hidden", "suppressed"),
    [case[1:] for case in SUPPRESSION_CASES],
    ids=[case[0] for case in SUPPRESSION_CASES],
)
def test_outcomes_suppress_as_the_rules_say(
    state: DecisionState,
    rules: SuppressionRules,
    events: str,
    hidden: dict[str, int],
    suppressed: int | None,
) -> None:
    state.load_customers([ALICE])
    for outcome, offer, ts in outcomes(events):
        returned = state.record_outcome(1, offer, outcome, ts, rules)

    got = state.customer(1)
    assert got == returned
    assert got.hidden_offers == {offer: day(d) for offer, d in hidden.items()}
    assert got.marketing_suppressed_until == (None if suppressed is None else day(suppressed))
    assert (got.consents, got.held_products) == (ALICE.consents, ALICE.held_products)


# -- reservations ------------------------------------------------------------------------------

RESERVE_CASES = [
    # steps of (attempts, index reserved, blocked keys), then counter values at the end
    (
        "the first attempt that fits",
        [([push(1), sms(1)], 0, ())],
        {"cap:1:d": 1, "budget:O1": 30, "budget:O2": 0},
    ),
    (
        "a used-up budget moves on",
        [
            ([push(1)], 0, ()),
            ([push(2)], 0, ()),
            ([push(3)], 0, ()),
            ([push(4), sms(4)], 1, ("budget:O1",)),
        ],
        {"budget:O1": 90, "budget:O2": 50, "capacity:sms": 1, "cap:4:d": 1},
    ),
    ("exactly the limit fits", [([push(1, amount=100.0)], 0, ())], {"budget:O1": 100}),
    (
        "a cap blocks every attempt sharing it",
        [([push(1)], 0, ()), ([sms(1)], 0, ()), ([push(1), sms(1)], None, ("cap:1:d", "cap:1:d"))],
        {"cap:1:d": 2, "budget:O1": 30, "budget:O2": 50},
    ),
    (
        "one blocked key per attempt tried",
        [([push(1, amount=101.0), sms(1)], 1, ("budget:O1",)), ([sms(2)], None, ("budget:O2",))],
        {"cap:1:d": 1, "cap:2:d": 0, "budget:O1": 0, "budget:O2": 50},
    ),
    (
        "a key listed twice counts twice",
        [([attempt("twice", ("k", 1, 1), ("k", 1, 1))], None, ("k",))],
        {"k": 0},
    ),
    ("no counters always fit", [([attempt("free")], 0, ())], {}),
    ("a zero limit blocks", [([attempt("closed", ("stop", 1, 0))], None, ("stop",))], {"stop": 0}),
    (
        "an infinite limit never blocks",
        [([attempt("open", ("k", 1e9, math.inf))], 0, ())] * 2,
        {"k": 2e9},
    ),
    ("nothing to try", [([], None, ())], {}),
]


@pytest.mark.parametrize(
    ("steps", "values"), [c[1:] for c in RESERVE_CASES], ids=[c[0] for c in RESERVE_CASES]
)
def test_reserve_takes_the_first_attempt_that_fits(
    state: DecisionState,
    steps: list[tuple[list[ReservationAttempt], int | None, tuple[str, ...]]],
    values: dict[str, float],
) -> None:
    ids = []
    for attempts, index, blocked in steps:
        got = state.reserve(attempts, now=T0, ttl_seconds=60)
        assert (got.index, got.blocked) == (index, blocked)
        assert (got.reservation_id is None) == (index is None)
        ids.append(got.reservation_id)

    assert state.counter_values(list(values)) == [float(v) for v in values.values()]
    made = [i for i in ids if i is not None]
    assert len(set(made)) == len(made)


def test_unconfirmed_reservations_are_released_after_their_ttl(state: DecisionState) -> None:
    dropped = state.reserve([push(1)], now=T0, ttl_seconds=60)
    kept = state.reserve([push(2)], now=T0, ttl_seconds=60)
    assert dropped.reservation_id and kept.reservation_id
    assert state.confirm(kept.reservation_id)

    assert state.release_expired(T0 + timedelta(seconds=59)) == 0
    assert state.release_expired(T0 + timedelta(seconds=60)) == 1

    assert state.counter_values(["cap:1:d", "cap:2:d", "budget:O1"]) == [0.0, 1.0, 30.0]
    assert not state.confirm(dropped.reservation_id)
    assert not state.release(dropped.reservation_id)
    assert state.release_expired(day(1)) == 0


def test_release_expired_stops_at_its_limit(state: DecisionState) -> None:
    for c in range(5):
        state.reserve([attempt("a", (f"cap:{c}", 1, 1))], now=T0, ttl_seconds=10)

    assert state.release_expired(day(1), limit=2) == 2
    assert state.release_expired(day(1), limit=0) == 0
    assert state.release_expired(day(1), limit=10) == 3
    assert state.counter_values([f"cap:{c}" for c in range(5)]) == [0.0] * 5


def test_reserve_releases_timed_out_reservations_as_it_goes(state: DecisionState) -> None:
    one = attempt("a", ("k", 1, 1))
    old = state.reserve([one], now=T0, ttl_seconds=10)

    assert state.reserve([one], now=T0 + timedelta(seconds=5), ttl_seconds=10).index is None
    assert state.reserve([one], now=T0 + timedelta(seconds=11), ttl_seconds=10).index == 0
    assert old.reservation_id and not state.confirm(old.reservation_id)
    assert state.counter_values(["k"]) == [1.0]


@pytest.mark.parametrize(
    ("calls", "results", "kept"),
    [
        (["confirm", "release", "confirm", "expire"], [True, False, False, 0], 2.5),
        (["release", "confirm", "release", "expire"], [True, False, False, 0], 0.0),
        (["expire", "confirm", "release", "expire"], [1, False, False, 0], 0.0),
    ],
    ids=["confirmed first", "released first", "expired first"],
)
def test_a_reservation_ends_once(
    state: DecisionState, calls: list[str], results: list[object], kept: float
) -> None:
    rid = state.reserve([attempt("a", ("k", 2.5, 10))], now=T0, ttl_seconds=60).reservation_id
    assert rid is not None
    do = {
        "confirm": lambda: state.confirm(rid),
        "release": lambda: state.release(rid),
        "expire": lambda: state.release_expired(day(1)),
    }

    assert [do[c]() for c in calls] == results
    assert state.counter_values(["k"]) == [kept]
    assert not state.confirm("999999") and not state.release("999999")


def test_confirm_release_and_expiry_racing_end_each_reservation_once(
    new_state: StateFactory,
) -> None:
    state = new_state()
    made = [
        state.reserve([attempt("a", ("k", 1.25, 1e6))], now=T0, ttl_seconds=1) for _ in range(300)
    ]
    ids = [r.reservation_id for r in made if r.reservation_id is not None]
    confirmed: list[str] = []
    released: list[str] = []
    expired: list[int] = []

    def confirm_all(s: DecisionState) -> None:
        confirmed.extend(i for i in ids if s.confirm(i))

    def release_all(s: DecisionState) -> None:
        released.extend(i for i in reversed(ids) if s.release(i))

    def expire_all(s: DecisionState) -> None:
        while n := s.release_expired(day(1), limit=7):
            expired.append(n)

    threads = [
        threading.Thread(target=f, args=(new_state(),))
        for f in (confirm_all, release_all, expire_all)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(confirmed) + len(released) + sum(expired) == len(ids) == 300
    assert not set(confirmed) & set(released)
    assert state.counter_values(["k"]) == [1.25 * len(confirmed)]


def test_money_comes_back_exact_to_the_cent(state: DecisionState) -> None:
    rng = random.Random(7)
    kept = Decimal(0)
    for i in range(600):
        amount = rng.choice([0.01, 0.1, 0.07, 19.99, 0.3, 1234.56])
        r = state.reserve([attempt("pay", ("budget:O1", amount, 1e7))], now=T0, ttl_seconds=60)
        assert r.reservation_id is not None
        if i % 3:
            assert state.release(r.reservation_id)
        else:
            assert state.confirm(r.reservation_id)
            kept += Decimal(str(amount))

    assert state.counter_values(["budget:O1"]) == [float(kept)]


def test_concurrent_reservations_never_exceed_a_limit(new_state: StateFactory) -> None:
    customers, per_thread = 60, 2_000
    limits = {"budget:O1": 500.0, "budget:O2": 300.0, "capacity:push": 150, "capacity:in_app": 60}
    limits |= {f"cap:{c}:d": 3 for c in range(customers)}

    def attempts(c: int) -> list[ReservationAttempt]:
        cap = (f"cap:{c}:d", 1, 3)
        return [
            attempt("O1 push", cap, ("budget:O1", 3.37, 500.0), ("capacity:push", 1, 150)),
            attempt("O2 sms", cap, ("budget:O2", 2.5, 300.0)),
            attempt("O3 in_app", cap, ("capacity:in_app", 1, 60)),
        ]

    kept: list[tuple[int, int]] = []  # (customer, attempt index) of reservations confirmed

    def serve(seed: int, s: DecisionState) -> None:
        rng = random.Random(seed)
        for _ in range(per_thread):
            c = rng.randrange(customers)
            r = s.reserve(attempts(c), now=T0, ttl_seconds=3600)
            if r.reservation_id is None:
                continue
            if rng.random() < 0.25:  # some are given back, so limits fill, empty and refill
                assert s.release(r.reservation_id)
            else:
                assert s.confirm(r.reservation_id)
                kept.append((c, r.index or 0))

    threads = [threading.Thread(target=serve, args=(i, new_state())) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    counts = {i: sum(1 for _, j in kept if j == i) for i in range(3)}
    expected = {
        "budget:O1": float(Decimal("3.37") * counts[0]),
        "budget:O2": float(Decimal("2.5") * counts[1]),
        "capacity:push": counts[0],
        "capacity:in_app": counts[2],
    } | {f"cap:{c}:d": sum(1 for k, _ in kept if k == c) for c in range(customers)}
    state = new_state()
    got = dict(zip(limits, state.counter_values(list(limits)), strict=True))
    assert got == {k: float(v) for k, v in expected.items()}
    assert all(got[k] <= limit for k, limit in limits.items())
    assert sum(got[f"cap:{c}:d"] for c in range(customers)) == customers * 3  # caps did bind


# -- idempotency and the bandit ----------------------------------------------------------------


def test_first_time_is_true_once_within_the_ttl(state: DecisionState) -> None:
    assert state.first_time("request:1", 1)
    assert not state.first_time("request:1", 1)
    assert state.first_time("request:2", 1)

    time.sleep(1.1)

    assert state.first_time("request:1", 1)


def test_bandit_statistics_add_up(state: DecisionState) -> None:
    assert state.bandit_stats([]) == []
    state.bandit_update("O1:push", 1, 0)
    state.bandit_update("O1:push", 0, 2)
    state.bandit_update("O2:sms", 0.5, 0.25)

    assert state.bandit_stats(["O1:push", "never", "O2:sms"]) == [
        (1.0, 2.0),
        (0.0, 0.0),
        (0.5, 0.25),
    ]


# -- bad input ---------------------------------------------------------------------------------

INVALID = [
    (
        "negative amount",
        lambda s: s.reserve([attempt("a", ("k", -1, 5))], now=T0, ttl_seconds=60),
        ValidationError,
        "amount of counter 'k' in attempt 'a' must be a finite number",
    ),
    (
        "NaN limit",
        lambda s: s.reserve([attempt("a", ("k", 1, math.nan))], now=T0, ttl_seconds=60),
        ValidationError,
        "limit of 'k' must be a number",
    ),
    (
        "aware time",
        lambda s: s.reserve([push(1)], now=T0.replace(tzinfo=UTC), ttl_seconds=60),
        ValidationError,
        "'now' must be a naive datetime",
    ),
    (
        "zero time-out",
        lambda s: s.reserve([push(1)], now=T0, ttl_seconds=0),
        ValidationError,
        "'ttl_seconds' must be a positive number",
    ),
    (
        "zero counter ttl",
        lambda s: s.reserve(
            [ReservationAttempt("a", (Counter("k", 1, 5, ttl_seconds=0),))], now=T0, ttl_seconds=60
        ),
        ValidationError,
        "ttl_seconds of counter 'k' must be a positive int",
    ),
    (
        "unknown outcome",
        lambda s: s.record_outcome(1, "A", "clicked", T0, RULES),
        ValidationError,
        "must be 'ignored' or 'complained'. Got 'clicked'",
    ),
    (
        "ignore count 0",
        lambda s: s.record_outcome(1, "A", "ignored", T0, SuppressionRules(ignore_count=0)),
        ValidationError,
        "'ignore_count' of SuppressionRules must be ≥ 1",
    ),
    (
        "unknown channel",
        lambda s: s.set_preferences(1, consents={"fax": True}),
        ValidationError,
        "customer 1 name unknown channel",
    ),
    (
        "unknown customer",
        lambda s: s.set_preferences(404, marketing_opt_out=True),
        NotFoundError,
        "Customer 404 has no contact state",
    ),
    (
        "zero idempotency ttl",
        lambda s: s.first_time("k", 0),
        ValidationError,
        "'ttl_seconds' must be a positive number",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_bad_input_is_a_clear_error_and_changes_nothing(
    state: DecisionState, call: Callable[[DecisionState], object], error: type, message: str
) -> None:
    state.load_customers([ALICE])

    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        call(state)

    assert state.customer(1) == ALICE
    assert state.counter_values(["k", "cap:1:d", "budget:O1"]) == [0.0, 0.0, 0.0]


# -- backend specifics -------------------------------------------------------------------------


def test_open_decision_state_builds_the_configured_backend() -> None:
    assert isinstance(open_decision_state(MemoryStateConfig()), MemoryDecisionState)
    config = RedisStateConfig(
        type="redis", url="redis://127.0.0.1:6390/2", key_prefix="qm_test:x", timeout_seconds=0.25
    )
    state = open_decision_state(config)
    assert isinstance(state, RedisDecisionState)
    assert (state.url, state.key_prefix, state.timeout_seconds) == (config.url, "qm_test:x", 0.25)


def test_memory_forgets_a_counter_once_its_ttl_has_passed() -> None:
    state = MemoryDecisionState()
    cap = ReservationAttempt("a", (Counter("cap:1:d:2026-11-22", 1, 1, ttl_seconds=60),))
    first = state.reserve([cap], now=T0, ttl_seconds=10).reservation_id
    assert first is not None and state.confirm(first)

    assert state.reserve([cap], now=T0 + timedelta(seconds=30), ttl_seconds=10).index is None
    assert state.reserve([cap], now=T0 + timedelta(seconds=61), ttl_seconds=10).index == 0
    assert state.release_expired(day(1)) == 1  # the second one timed out; its key is gone
    assert state.counter_values(["cap:1:d:2026-11-22"]) == [0.0]

    late = state.reserve([cap], now=day(2), ttl_seconds=3600).reservation_id
    state.release_expired(day(2) + timedelta(seconds=61))  # forgets the key, not the reservation
    assert late is not None and state.release(late)
    assert state.counter_values(["cap:1:d:2026-11-22"]) == [0.0]  # not brought back as -1


@pytest.mark.integration
def test_redis_counters_expire_by_their_ttl(redis_url: str, redis_prefix: str) -> None:
    import redis

    state = RedisDecisionState(redis_url, key_prefix=redis_prefix)
    counters = (Counter("cap:1:d", 1, 2, ttl_seconds=3600), Counter("budget:O1", 5, 10))
    first = state.reserve([ReservationAttempt("a", counters)], now=T0, ttl_seconds=60)
    assert first.reservation_id is not None and state.confirm(first.reservation_id)

    client = redis.Redis.from_url(redis_url)
    assert 3590 < client.ttl(f"{redis_prefix}:n:cap:1:d") <= 3600
    assert client.ttl(f"{redis_prefix}:n:budget:O1") == -1  # no ttl: kept until deleted

    late = state.reserve([ReservationAttempt("a", counters)], now=day(1), ttl_seconds=60)
    client.delete(f"{redis_prefix}:n:cap:1:d")  # as if its ttl had passed
    assert late.reservation_id is not None and state.release(late.reservation_id)
    assert not client.exists(f"{redis_prefix}:n:cap:1:d")  # not brought back as -1
    assert state.counter_values(["budget:O1"]) == [5.0]
    client.close()


DOWN_URL = "redis://qm:secret@127.0.0.1:6390/0"  # nothing listens on 6390
DOWN_CALLS = [
    ("read customer 1 from", lambda s: s.customer(1)),
    ("load customer states into", lambda s: s.load_customers([ALICE])),
    (
        "set the preferences of customer 1 in",
        lambda s: s.set_preferences(1, marketing_opt_out=True),
    ),
    (
        "record an outcome of customer 1 in",
        lambda s: s.record_outcome(1, "A", "ignored", T0, RULES),
    ),
    ("reserve counters in", lambda s: s.reserve([push(1)], now=T0, ttl_seconds=60)),
    ("confirm reservation 1 in", lambda s: s.confirm("1")),
    ("release reservation 1 in", lambda s: s.release("1")),
    ("release timed-out reservations in", lambda s: s.release_expired(T0)),
    ("read counters from", lambda s: s.counter_values(["k"])),
    ("check an idempotency key in", lambda s: s.first_time("k", 60)),
    ("read bandit statistics from", lambda s: s.bandit_stats(["k"])),
    ("update bandit statistics in", lambda s: s.bandit_update("k", 1, 0)),
    ("ping", lambda s: s.ping()),
]


@pytest.mark.parametrize(("doing", "call"), DOWN_CALLS, ids=[d for d, _ in DOWN_CALLS])
def test_unreachable_redis_fails_fast_naming_the_url(
    doing: str, call: Callable[[DecisionState], object]
) -> None:
    state = RedisDecisionState(DOWN_URL, key_prefix="qm_test:down", timeout_seconds=0.5)
    start = time.monotonic()

    with pytest.raises(StoreError) as caught:
        call(state)

    assert time.monotonic() - start < 2
    assert f"Redis at redis://***@127.0.0.1:6390/0 cannot be reached to {doing} it" in str(
        caught.value
    )
    assert "secret" not in str(caught.value)
    assert isinstance(caught.value, ConnectionError)


def test_a_redis_that_never_answers_times_out() -> None:
    with socket.socket() as server:  # accepts connections (kernel backlog) but never replies
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        state = RedisDecisionState(
            f"redis://127.0.0.1:{server.getsockname()[1]}/0", timeout_seconds=0.3
        )
        start = time.monotonic()

        with pytest.raises(StoreError, match="cannot be reached to reserve counters in it"):
            state.reserve([push(1)], now=T0, ttl_seconds=60)

        assert 0.25 < time.monotonic() - start < 2


def _start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    """A private redis-server on ``port``, answering PING before this returns."""
    import redis

    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return server
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"A private redis-server on port {port} did not start.", pytrace=False)
            time.sleep(0.05)


@pytest.mark.integration
def test_the_same_instance_recovers_when_redis_comes_back(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.fail("This test starts its own redis-server; install Redis.", pytrace=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = _start_redis(port, tmp_path)
    try:
        state = RedisDecisionState(
            f"redis://127.0.0.1:{port}/0", key_prefix="qm_test:restart", timeout_seconds=0.5
        )
        state.load_customers([ALICE])
        assert state.reserve([push(1)], now=T0, ttl_seconds=60).index == 0

        server.terminate()
        server.wait(10)
        start = time.monotonic()
        with pytest.raises(StoreError, match="cannot be reached"):
            state.reserve([push(1)], now=T0, ttl_seconds=60)
        assert time.monotonic() - start < 2

        server = _start_redis(port, tmp_path)  # empty: no data, no scripts cached
        assert state.reserve([push(1)], now=T0, ttl_seconds=60).index == 0
        assert state.customer(1) is None
        assert state.counter_values(["cap:1:d"]) == [1.0]
    finally:
        server.terminate()
        server.wait(10)
