"""Serving processes for the decision-engine concurrency test, importable by "spawn" children.

Each worker process builds its own :class:`~qianmian.decide.engine.DecisionEngine` over the
shared Redis decision state (same URL and key prefix) and the shared PostgreSQL decision log
(same schema), as separate ``qianmian serve`` processes would, and decides from several
threads at once. Features come from an in-process online store per process, loaded from the
world's feature table: features are not what the test is about.

The catalogue is the starter's, cut to a few offers with tight limits: caps of 1–2 contacts
per customer, channel and period, offer and campaign budgets (counts and CNY) that run out,
and a call-centre capacity per day.

>>> catalogue = tight_catalogue()
>>> sorted(catalogue.campaigns)
['CP-FAMILY', 'CP-WEEKEND-DINING', 'CP-YOUTH-POINTS']
>>> catalogue.channels["call_center"].capacity_per_day == CALL_CENTER_CAPACITY
True
"""

from __future__ import annotations

import random
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from qianmian.decide.catalogue import Catalogue, starter_catalogue
from qianmian.decide.catalogue_schema import CatalogueSpec
from qianmian.decide.decision import DecisionRequest
from qianmian.decide.engine import DecisionEngine

__all__ = [
    "ALL_CHANNEL_CAPS",
    "CALL_CENTER_CAPACITY",
    "CHANNEL_CAPS",
    "DAYS",
    "RESERVATION_TTL_SECONDS",
    "WorkerConfig",
    "WorkerReport",
    "run_worker",
    "tight_catalogue",
]

# Tight caps: with ~11 requests per customer a day, every day, week and month cap binds.
CHANNEL_CAPS = {"day": 1, "week": 2, "month": 2}  # every channel, in-app banners included
ALL_CHANNEL_CAPS = {"day": 2, "week": 3, "month": 4}
CALL_CENTER_CAPACITY = 25
# Offer and campaign budgets (count, CNY) sized to run out part-way through the run; the
# always-on fund offer has none, so caps keep binding after the budgets are spent.
OFFER_BUDGETS = {"OF-INS-HEALTH": (1_500, None), "OF-DINING-COUPON": (None, 15_000.0)}
CAMPAIGN_BUDGETS = {"CP-FAMILY": (None, 70_000.0), "CP-YOUTH-POINTS": (500, None)}
# Six simulated days: Fri to Sun of ISO week 39, then Wed 30 September, Thu 1 and Fri 2
# October of week 40, so one week spans two months and every cap (day, week and month, per
# channel and over all channels) is reached by some customer before the run ends.
DAYS = (
    date(2026, 9, 25),
    date(2026, 9, 26),
    date(2026, 9, 27),
    date(2026, 9, 30),
    date(2026, 10, 1),
    date(2026, 10, 2),
)
# Far beyond the run's simulated span (6 days), so no reservation is released by time-out
# while the run lasts: every contact the log shows presented still holds its counters, and
# the log alone says what Redis must hold.
RESERVATION_TTL_SECONDS = 30 * 86_400
# What a request asks for: a channel (None: the engine chooses) and, now and then, an event
# that makes a mandatory service message applicable (they use no caps or budgets).
_CHANNELS = (None, None, "in_app", "app_push", "sms", "wechat", "call_center", "email")
_SERVICE_SHARE = 0.05
_TWO_OFFERS_SHARE = 0.2


def tight_catalogue() -> Catalogue:
    """The starter catalogue cut to seven offers with the tight limits of this module."""
    data: dict[str, Any] = starter_catalogue().spec.model_dump(mode="json")
    keep = {
        "OF-INS-HEALTH",
        "OF-INS-CHILD",
        "OF-YOUTH-CARD",
        "OF-COBRAND-POINTS",
        "OF-DINING-COUPON",
        "OF-WM-R4",
        "SV-LIMIT-GUIDE",
    }
    offers = [o for o in data["offers"] if o["id"] in keep]
    for offer in offers:
        offer["budget_count"], offer["budget_cny"] = OFFER_BUDGETS.get(offer["id"], (None, None))
        if offer["id"] == "OF-INS-HEALTH":  # the only call-centre contact: capacity binds
            offer["treatments"].append(
                {
                    "channel": "call_center",
                    "copy_zh": "您好，这里是{{ bank }}。百万医疗险首月仅需1元，请问您是否方便了解一下？",
                    "copy_en": "Hello from {{ bank }}: medical cover from ¥1 the first month.",
                }
            )
    campaigns = [c for c in data["campaigns"] if c["id"] in CAMPAIGN_BUDGETS or "DINING" in c["id"]]
    for campaign in campaigns:
        campaign["budget_count"], campaign["budget_cny"] = CAMPAIGN_BUDGETS.get(
            campaign["id"], (None, None)
        )
        campaign["status"], campaign["audience"] = "full", None
        campaign["offers"] = [o for o in campaign["offers"] if o in keep]
    data["offers"], data["campaigns"] = offers, campaigns
    data["version"] = "concurrency-tight"
    data["channels"]["call_center"]["capacity_per_day"] = CALL_CENTER_CAPACITY
    policy = data["contact_policy"]
    policy["caps"] = {
        "per_channel": {channel: dict(CHANNEL_CAPS) for channel in data["channels"]},
        "all_channels": dict(ALL_CHANNEL_CAPS),
    }
    policy["reservation_ttl_seconds"] = RESERVATION_TTL_SECONDS
    return Catalogue.from_spec(CatalogueSpec.model_validate(data))


@dataclass(frozen=True)
class WorkerConfig:
    """What one serving process needs (picklable: it crosses the "spawn" boundary)."""

    index: int
    redis_url: str
    redis_prefix: str
    postgres_dsn: str
    db_schema: str
    features_path: Path
    registry_root: Path | None  # None: no model, the rules decide
    threads: int
    decisions_per_thread: int
    seed: int


@dataclass(frozen=True)
class WorkerReport:
    """What a process did: decisions made, seconds deciding and until its log was flushed."""

    index: int
    decisions: int
    decide_seconds: float
    closed_seconds: float
    error: str | None = None


def _engine(config: WorkerConfig) -> DecisionEngine:
    """This process's own engine: its own Redis client, PostgreSQL log and feature store."""
    import pyarrow.parquet as pq

    from qianmian.decide.log.postgres import PostgresDecisionLog
    from qianmian.decide.scoring import UpliftModelScorer
    from qianmian.decide.scoring_guard import GuardedScorer
    from qianmian.decide.state.redis import RedisDecisionState
    from qianmian.features.online import MemoryOnlineStore
    from qianmian.features.tags import TagLibrary
    from qianmian.models.registry import ModelRegistry

    features = MemoryOnlineStore()
    features.load(pq.read_table(config.features_path))
    scorer = None
    if config.registry_root is not None:
        model = UpliftModelScorer.from_registry(ModelRegistry(config.registry_root))
        scorer = GuardedScorer(model, budget_ms=2_000, failures=5, reset_seconds=30)
    return DecisionEngine(
        catalogue=tight_catalogue(),
        state=RedisDecisionState(config.redis_url, key_prefix=config.redis_prefix),
        log=PostgresDecisionLog(config.postgres_dsn, db_schema=config.db_schema),
        features=features,
        scorer=scorer,
        scorer_reason="rules only in the concurrency test",
        tags=TagLibrary.load(),
        language="en",
        seed=config.seed,
    )


def _decide_many(engine: DecisionEngine, config: WorkerConfig, customers: list[int], k: int) -> int:
    """One thread's decisions for random customers, walking through :data:`DAYS` in order."""
    rng = random.Random(config.seed * 1_000 + k)
    n = config.decisions_per_thread
    for i in range(n):
        day = DAYS[i * len(DAYS) // n]
        ts = datetime.combine(day, datetime.min.time()) + timedelta(
            hours=10,
            seconds=rng.randrange(10 * 3600),  # 10:00–20:00, outside quiet hours
        )
        service = rng.random() < _SERVICE_SHARE
        engine.decide(
            DecisionRequest(
                customer_id=rng.choice(customers),
                ts=ts,
                channel="in_app" if service else rng.choice(_CHANNELS),
                event={"type": "transfer_failure"} if service else None,
                max_offers=2 if rng.random() < _TWO_OFFERS_SHARE else 1,
                request_id=f"w{config.index}-t{k}-{i}",
            )
        )
    return n


def run_worker(config: WorkerConfig, start: Any, results: Any) -> None:
    """Process entry: build the engine, wait for the others, decide, close the log, report."""
    decided, deciding, closing = 0, 0.0, 0.0
    try:
        import pyarrow.parquet as pq

        customers = pq.read_table(config.features_path, columns=["customer_id"])
        ids = customers.column("customer_id").to_pylist()
        engine = _engine(config)
        start.wait(timeout=300)
        began = time.perf_counter()
        with ThreadPoolExecutor(config.threads) as pool:
            counts = pool.map(lambda k: _decide_many(engine, config, ids, k), range(config.threads))
            decided = sum(counts)
        deciding = time.perf_counter() - began
        engine.log.close()  # flushes: every decision is in PostgreSQL before the report
        engine.state.close()
        closing = time.perf_counter() - began
    except BaseException:
        results.put(WorkerReport(config.index, decided, deciding, closing, traceback.format_exc()))
        return
    results.put(WorkerReport(config.index, decided, deciding, closing))
