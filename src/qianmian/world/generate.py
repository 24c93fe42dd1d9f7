"""Generate a whole simulated bank into a workspace, in parallel chunks of customers.

Customers are generated in fixed chunks of :data:`CHUNK_SIZE`; chunk ``k`` draws from its own
random stream ``SeedSequence(seed, spawn_key=(1, k))``, so the result depends only on the seed,
the size and the window, never on how many processes ran it. Each chunk writes one Parquet part
per table; identifiers (unique across the whole bank) are drawn afterwards in one pass.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from qianmian import __version__
from qianmian.errors import ConfigError, invalid_parameter
from qianmian.world import tables as T
from qianmian.world.app_activity import draw_app_events
from qianmian.world.calendar import SPRING_FESTIVAL
from qianmian.world.campaigns import simulate_campaign_history
from qianmian.world.catalogue import offers_table, products_table
from qianmian.world.holdings import draw_holdings, draw_loans, draw_statements
from qianmian.world.identifiers import identifiers_table, sightings_table
from qianmian.world.life_events import draw_life_events
from qianmian.world.merchants import build_merchants
from qianmian.world.pii import names
from qianmian.world.population import CHANNELS, draw_population
from qianmian.world.spending import draw_transactions
from qianmian.world.truth import Oracle

__all__ = ["BANK_TABLES", "CHUNK_SIZE", "HIDDEN_TABLES", "WorldConfig", "generate_world"]

CHUNK_SIZE = 25_000
BANK_TABLES = (
    "customers",
    "identifiers",
    "identifier_sightings",
    "products",
    "holdings",
    "loans",
    "statements",
    "merchants",
    "transactions",
    "app_events",
    "offers",
    "contacts",
    "responses",
)
CHUNKED = ("customers", "holdings", "loans", "statements", "transactions", "app_events")
HIDDEN_TABLES = ("traits", "life_events", "identity_truth")


@dataclass(frozen=True)
class WorldConfig:
    """What determines a simulated bank: same config → the same data, bit for bit."""

    customers: int = 20_000
    months: int = 12
    seed: int = 7
    start: date = date(2025, 11, 1)

    def __post_init__(self) -> None:
        if not isinstance(self.customers, int) or self.customers < 1:
            raise invalid_parameter(self, "customers", "a positive int", self.customers)
        if not isinstance(self.months, int) or not 1 <= self.months <= 60:
            raise invalid_parameter(self, "months", "an int from 1 to 60", self.months)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise invalid_parameter(self, "seed", "a non-negative int", self.seed)
        years = range(self.start.year, self.end.year + 2)
        if any(y not in SPRING_FESTIVAL for y in years):
            raise ConfigError(
                f"The simulated calendar knows Spring Festival only for {min(SPRING_FESTIVAL)}-"
                f"{max(SPRING_FESTIVAL)}; a window from {self.start} for {self.months} months "
                "needs more. Choose an earlier or a later start date."
            )

    @property
    def end(self) -> date:
        """First day after the window."""
        m = self.start.month - 1 + self.months
        return date(self.start.year + m // 12, m % 12 + 1, 1)

    @property
    def chunks(self) -> list[tuple[int, int, int]]:
        """(chunk number, first customer id, size) of each chunk."""
        return [
            (k, 1 + k * CHUNK_SIZE, min(CHUNK_SIZE, self.customers - k * CHUNK_SIZE))
            for k in range((self.customers + CHUNK_SIZE - 1) // CHUNK_SIZE)
        ]


@dataclass
class GenerationReport:
    config: WorldConfig
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    peak_worker_rss_gb: float = 0.0


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _write(tbl: pa.Table, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(tbl, path, compression="snappy", row_group_size=1 << 20)
    return tbl.num_rows


def _generate_chunk(
    config: WorldConfig, k: int, first_id: int, n: int, data_dir: str, hidden_dir: str
) -> tuple[dict[str, int], float]:
    """Generate and write chunk ``k``; return its row counts and the process's peak RSS (GB)."""
    rng = _rng(config.seed, 1, k)
    merchants = build_merchants(_rng(config.seed, 0))
    pop = draw_population(rng, first_id, n, config.start, config.end)
    events = draw_life_events(rng, pop, config.start, config.end)
    tx = draw_transactions(rng, pop, events, merchants, config.start, config.end)
    app = draw_app_events(rng, pop, events, config.start, config.end)
    hold = draw_holdings(rng, pop, config.start, config.end)
    loans = draw_loans(rng, pop, events, tx, config.start, config.end)
    stmts = draw_statements(rng, pop, hold, tx, config.start, config.end)
    part = f"part-{k:05d}.parquet"
    data, hidden = Path(data_dir), Path(hidden_dir)
    out = {
        "customers": _write(
            T.customers_table(pop, names(rng, pop.gender), rng), data / "customers" / part
        ),
        "transactions": _write(
            T.transactions_table(pop, tx, merchants), data / "transactions" / part
        ),
        "app_events": _write(T.app_events_table(pop, app), data / "app_events" / part),
        "holdings": _write(T.holdings_table(pop, hold), data / "holdings" / part),
        "loans": _write(T.loans_table(pop, loans), data / "loans" / part),
        "statements": _write(T.statements_table(pop, stmts), data / "statements" / part),
        "traits": _write(T.traits_table(pop, stmts, loans), hidden / "traits" / part),
        "life_events": _write(T.life_events_table(pop, events), hidden / "life_events" / part),
    }
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return out, peak_gb


def _campaign_history(
    config: WorldConfig, data_dir: Path, hidden_dir: Path
) -> tuple[pa.Table, pa.Table]:
    """The bank's past randomised campaigns, drawn from the oracle over the finished tables."""
    columns = [
        "customer_id",
        "signup_date",
        "marketing_opt_out",
        *(f"consent_{c}" for c in CHANNELS if c != "in_app"),
    ]
    oracle = Oracle(
        customers=pq.read_table(hidden_dir / "traits").to_pandas(),
        events=pq.read_table(
            hidden_dir / "life_events", columns=["customer_id", "event_type", "day"]
        ).to_pandas(),
        holdings=pq.read_table(
            data_dir / "holdings", columns=["customer_id", "product_id", "opened_date"]
        ).to_pandas(),
    )
    customers = pq.read_table(data_dir / "customers", columns=columns).to_pandas()
    return simulate_campaign_history(oracle, customers, config.start, config.end, config.seed)


def generate_world(
    config: WorldConfig,
    data_dir: Path,
    hidden_dir: Path,
    *,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationReport:
    """Write every table of the simulated bank as Parquet.

    Parameters
    ----------
    config : WorldConfig
    data_dir : Path
        Where the bank's tables go, one folder per table (``<data_dir>/<table>/*.parquet``).
    hidden_dir : Path
        Where the hidden truth goes (traits, life events) and ``manifest.json``.
    workers : int
        Processes to use; the data do not depend on it.
    progress : callable, optional
        Called as ``progress(done, total)`` after each step.
    """
    t0 = time.perf_counter()
    for d in (data_dir, hidden_dir):
        for name in (*BANK_TABLES, *HIDDEN_TABLES):
            folder = d / name
            if folder.is_dir():
                for old in folder.glob("*.parquet"):
                    old.unlink()
    chunks = config.chunks
    total = len(chunks) + 2
    report = GenerationReport(config)
    done = 0

    def add(rows: dict[str, int], peak_gb: float = 0.0) -> None:
        nonlocal done
        report.peak_worker_rss_gb = max(report.peak_worker_rss_gb, peak_gb)
        for key, v in rows.items():
            report.rows[key] = report.rows.get(key, 0) + v
        done += 1
        if progress:
            progress(done, total)

    if workers <= 1 or len(chunks) == 1:
        for k, first, n in chunks:
            add(*_generate_chunk(config, k, first, n, str(data_dir), str(hidden_dir)))
    else:
        ctx = mp.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [
                pool.submit(_generate_chunk, config, k, first, n, str(data_dir), str(hidden_dir))
                for k, first, n in chunks
            ]
            for fut in as_completed(futures):
                add(*fut.result())

    merchants = build_merchants(_rng(config.seed, 0))
    identifiers = identifiers_table(_rng(config.seed, 2), data_dir, hidden_dir)
    sightings, identity_truth = sightings_table(
        _rng(config.seed, 4), identifiers, pq.read_table(data_dir / "holdings")
    )
    part0 = "part-00000.parquet"
    add(
        {
            "products": _write(products_table(), data_dir / "products" / part0),
            "offers": _write(offers_table(), data_dir / "offers" / part0),
            "merchants": _write(merchants.table, data_dir / "merchants" / part0),
            "identifiers": _write(identifiers, data_dir / "identifiers" / part0),
            "identifier_sightings": _write(sightings, data_dir / "identifier_sightings" / part0),
            "identity_truth": _write(identity_truth, hidden_dir / "identity_truth" / part0),
        }
    )
    contacts, responses = _campaign_history(config, data_dir, hidden_dir)
    add(
        {
            "contacts": _write(contacts, data_dir / "contacts" / part0),
            "responses": _write(responses, data_dir / "responses" / part0),
        }
    )
    report.seconds = time.perf_counter() - t0
    manifest = {
        "qianmian_version": __version__,
        "config": {
            **asdict(config),
            "start": config.start.isoformat(),
            "end": config.end.isoformat(),
        },
        "rows": dict(sorted(report.rows.items())),
    }
    (hidden_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    return report
