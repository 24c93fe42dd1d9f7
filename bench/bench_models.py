"""Benchmark: 10 product propensity models on a simulated bank of 1M customers.

In one run, on the project's own code path:

(a) the training data: :func:`qianmian.models.datasets.contact_training_set` for ten product
    offers (cards, instalments, loan, wealth, insurance), built one campaign month at a time so
    that only one month's feature snapshot is in memory: seconds, rows, columns;
(b) training: :func:`qianmian.models.train.train_propensity` per offer (LightGBM with early
    stopping and isotonic calibration): seconds, rows, trees and test AUC per model, and the
    total for the ten;
(c) scoring: one model's ``predict_proba`` against its raw ``Booster.predict`` on the same rows
    (every customer's features at one date, one row per customer and channel, at least
    ``--score-rows``), best of ``--repeat`` each, alternated, with the same threads: rows/s and
    the ratio (goal ≥ 0.9). Below the goal (or with ``--profile``) the time of ``predict_proba``
    is split into its steps, and timed again without its input checks, to show the overhead;
(d) peak memory of this process (DuckDB runs inside it) per phase.

    python bench/bench_models.py [--customers 1000000] [--workspace DIR] [--n-jobs 2]
        [--score-rows 1000000] [--repeat 3] [--profile] [--one-call] [--discard]

The bank is generated into ``--workspace`` (default ``/tmp/qm-bench-models-<customers>``) and
kept: a later run with the same size reuses it (and its DuckDB store); ``--discard`` removes it
at the end. Generating 1M customers took 7 min and loading DuckDB 80 s on a busy 2-core machine;
the rest of the run 8 min. LightGBM's OpenMP threads wait passively unless ``OMP_WAIT_POLICY``
is set (see below).
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting for work starve each other on a shared, busy machine:
# LightGBM with 2 threads trained 8x slower than with 1 here (load average 8 on 2 cores). Waiting
# passively fixes it; libgomp reads this when LightGBM is loaded, so it is set before the imports.
# Run with OMP_WAIT_POLICY=ACTIVE to measure spinning threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import gc
import json
import math
import resource
import shutil
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sklearn.utils.validation import check_array

from qianmian.config import load_settings
from qianmian.data.schema.vocab import CONTACT_CHANNELS
from qianmian.errors import NotFoundError
from qianmian.features.engine import StoreFeatureEngine
from qianmian.models.datasets import contact_training_set, model_features, prepare_features
from qianmian.models.propensity import PropensityClassifier
from qianmian.models.train import TrainedModel, train_propensity
from qianmian.store.base import Store
from qianmian.world import BANK_TABLES, World, WorldConfig
from qianmian.world.catalogue import OFFERS

SEED = 7
# The ten most product-like offers: a product sold (card, instalment, loan, wealth, insurance),
# not a limit change or a spending coupon.
TEN_OFFERS = (
    "OF-PLAT-FEEWAIVE",
    "OF-TRAVEL-CARD",
    "OF-INST-6",
    "OF-INST-12",
    "OF-BILL-INST",
    "OF-LOAN-DISC",
    "OF-WM-R2",
    "OF-WM-R4",
    "OF-INS-HEALTH",
    "OF-INS-CHILD",
)
assert set(TEN_OFFERS) <= {o.offer_id for o in OFFERS}
GOAL = 0.9
console = Console(highlight=False, width=132)


# -- memory ------------------------------------------------------------------------------------


def _bar(label: str) -> Progress:
    """A transient progress bar: label, bar, done/total, elapsed."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def reset_peak_rss() -> float:
    """Restart this process's peak-RSS counter (Linux) so that a phase's peak can be read;
    return the peak so far in GB (getrusage's figure, which the reset does not restart)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return peak


def phase_peak_gb() -> float:
    """Peak resident memory (VmHWM) since the last reset, in GB; NaN where /proc is missing."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


# -- the bank ----------------------------------------------------------------------------------


def open_bank(args: argparse.Namespace) -> tuple[World, float | None]:
    """The bank in the workspace, generated unless one of the same config is already there."""
    manifest = args.workspace / "world" / "manifest.json"
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        config = found["config"]
        if (
            config["customers"] == args.customers
            and config["months"] == args.months
            and config["seed"] == SEED
            and found["rows"].get("contacts", 0) > 0
        ):
            return World(args.workspace), None
    with _bar("generating the bank") as bar:
        task = bar.add_task("generate", total=None)
        t0 = time.perf_counter()
        world = World.generate(
            WorldConfig(customers=args.customers, months=args.months, seed=SEED),
            args.workspace,
            workers=args.workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    return world, time.perf_counter() - t0


def load_store(world: World, store: Store, *, force: bool) -> float | None:
    """Load the bank's tables into the store (as tests/models/conftest.py does) unless they are
    there already with the manifest's row counts; seconds, or None when nothing was loaded."""
    rows = world.manifest["rows"]
    names = [t for t in BANK_TABLES if t in rows]
    if not force and all(store.has_table(t) and store.count(t) == rows[t] for t in names):
        return None
    t0 = time.perf_counter()
    for name in names:
        store.load_parquet(name, world.table_paths(name), mode="replace")
    return time.perf_counter() - t0


def campaign_months(store: Store) -> list[date]:
    """The first day of every month with contacts, oldest first."""
    rows = store.query(
        "SELECT DISTINCT CAST(date_trunc('month', ts) AS DATE) AS m FROM contacts ORDER BY m"
    ).to_pylist()
    return [r["m"] for r in rows]


def next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


# -- (a) training data -------------------------------------------------------------------------


def build_training_data(store: Store, per_month: bool) -> tuple[pd.DataFrame, float, int]:
    """The ten offers' contact training set; seconds and the number of feature snapshots."""
    months = campaign_months(store) if per_month else [None]
    snapshots = 0
    parts: list[pd.DataFrame] = []
    with _bar("(a) training data {task.description}") as bar:
        task = bar.add_task("", total=len(months))
        t0 = time.perf_counter()
        for m in months:
            bar.update(task, description=f"{m:%Y-%m}" if m else "(one call)")

            def counted(done: int, total: int) -> None:
                nonlocal snapshots
                snapshots += 1

            try:
                part = contact_training_set(
                    store,
                    offers=TEN_OFFERS,
                    start=m,
                    end=next_month(m) if m else None,
                    progress=counted,
                )
            except NotFoundError:  # a month whose outcome windows are all still open
                if m is None:
                    raise
            else:
                parts.append(part)
            bar.advance(task)
        data = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        del parts
        gc.collect()
        seconds = time.perf_counter() - t0
    return data, seconds, snapshots


# -- (b) training ------------------------------------------------------------------------------


def train_all(
    store: Store, data: pd.DataFrame, n_jobs: int
) -> tuple[list[tuple[str, float, TrainedModel]], float]:
    results: list[tuple[str, float, TrainedModel]] = []
    with _bar("(b) training {task.description}") as bar:
        task = bar.add_task("", total=len(TEN_OFFERS))
        t_all = time.perf_counter()
        for offer in TEN_OFFERS:
            bar.update(task, description=offer)
            t0 = time.perf_counter()
            trained = train_propensity(store, offer, data=data, params={"n_jobs": n_jobs})
            seconds = time.perf_counter() - t0
            results.append((offer, seconds, trained))
            m = trained.metrics
            console.print(
                f"  {offer:<18} {seconds:7.1f} s  {int(m['train_rows']):>9,} train rows  "
                f"{int(m['best_iteration']):>5} trees  test AUC {m['auc']:.3f}"
            )
            bar.advance(task)
        total = time.perf_counter() - t_all
    return results, total


# -- (c) scoring -------------------------------------------------------------------------------


def scoring_frame(store: Store, as_of: date, rows: int, features: list[str]) -> pd.DataFrame:
    """Every customer's features at ``as_of``, one row per customer and channel (cycling through
    the channels) until ``rows`` rows, as the model matrix."""
    customers = StoreFeatureEngine(store).build(as_of).to_pandas()
    channels = list(CONTACT_CHANNELS.values)
    copies = max(1, math.ceil(rows / len(customers)))
    parts = []
    for k in range(copies):
        part = customers.copy(deep=False)
        part["channel"] = [channels[(i + k) % len(channels)] for i in range(len(customers))]
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True).iloc[: max(rows, len(customers))]
    del customers, parts
    X = prepare_features(frame, features)
    del frame
    gc.collect()
    return X.reset_index(drop=True)


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, out


def alternated(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    """Seconds of each call over ``repeat`` rounds, the order rotated every round, so that all
    see the same (shared, busy) machine and none is always first after a large free."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for k in range(repeat):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def profile_predict_proba(
    model: PropensityClassifier, X: pd.DataFrame, repeat: int
) -> tuple[list[tuple[str, float]], dict[str, list[float]]]:
    """Where ``predict_proba`` spends its time beyond the booster.

    The steps it runs (best of ``repeat`` each): validation and copy of the input (``_features``),
    the calibration wrapper's booster call (through LGBMClassifier.predict) and the calibration
    map. Then, alternated: ``predict_proba``, the same without ``_features`` (what it would cost if
    the input were passed on as it is) and the raw booster.
    """
    steps: list[tuple[str, float]] = []
    t, _, feats = best_of(lambda: model._features(X, reset=False), repeat)
    steps.append(("PropensityClassifier._features (validate_data, X.copy, check_array)", t))
    t, _, _ = best_of(lambda: X.copy(), repeat)
    steps.append(("  of which X.copy()", t))
    t, _, _ = best_of(
        lambda: check_array(
            X.select_dtypes(include="number"), ensure_all_finite="allow-nan", dtype=None
        ),
        repeat,
    )
    steps.append(("  of which select_dtypes + check_array (finite check)", t))
    t, _, margin = best_of(lambda: model.lgbm_.predict(feats, raw_score=True), repeat)
    steps.append(("LGBMClassifier.predict(raw_score=True) (in the calibration wrapper)", t))
    feats = None  # free the copy before the timed rounds
    calibrated = model.calibrator_.calibrated_classifiers_
    iso = calibrated[0].calibrators[0]
    t, _, _ = best_of(lambda: iso.predict(margin), repeat)
    steps.append((f"isotonic map on the margin ({len(calibrated)} calibrated classifier(s))", t))
    rounds = alternated(
        {
            "ours": lambda: model.predict_proba(X),
            "without _features": lambda: model.calibrator_.predict_proba(X),
            "raw": lambda: model.booster_.predict(
                X, num_iteration=model.best_iteration_, num_threads=model.n_jobs
            ),
        },
        repeat,
    )
    return steps, rounds


# -- the run -----------------------------------------------------------------------------------


def row(label: str, value: str, note: str = "") -> None:
    console.print(f"  {label:<48}{value:>16}  {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2, help="processes generating the bank")
    ap.add_argument(
        "--workspace",
        type=Path,
        help="where the bank is generated and kept (default /tmp/qm-bench-models-<customers>); "
        "reused when run again with the same size",
    )
    ap.add_argument("--discard", action="store_true", help="remove the workspace at the end")
    ap.add_argument(
        "--one-call",
        action="store_true",
        help="build the training data in one call instead of month by month (more memory)",
    )
    ap.add_argument("--n-jobs", type=int, default=2, help="LightGBM threads (train and score)")
    ap.add_argument("--score-rows", type=int, default=1_000_000, help="rows scored (at least)")
    ap.add_argument("--score-offer", default=TEN_OFFERS[0], choices=TEN_OFFERS)
    ap.add_argument("--repeat", type=int, default=3, help="scoring runs (best of)")
    ap.add_argument("--profile", action="store_true", help="split predict_proba into steps")
    args = ap.parse_args()
    args.workspace = args.workspace or Path(f"/tmp/qm-bench-models-{args.customers}")
    load1 = os.getloadavg()[0]
    t_run = time.perf_counter()
    peaks: dict[str, float] = {}
    try:
        reset_peak_rss()
        world, generated = open_bank(args)
        rows = world.manifest["rows"]
        console.print(
            f"simulated bank: {args.customers:,} customers, {args.months} months; "
            f"{rows['contacts']:,} contacts, {rows['responses']:,} responses; workspace "
            f"{args.workspace}"
        )
        row(
            "generation",
            "reused" if generated is None else f"{generated:.1f} s",
            f"{args.workers} workers" if generated is not None else "",
        )
        with load_settings(args.workspace).build_store() as store:
            loaded = load_store(world, store, force=generated is not None)
            row("DuckDB load", "already loaded" if loaded is None else f"{loaded:.1f} s")
            peaks["generation + load"] = phase_peak_gb()

            # (a) ------------------------------------------------------------------------------
            reset_peak_rss()
            data, data_s, snapshots = build_training_data(store, per_month=not args.one_call)
            peaks["(a) training data"] = phase_peak_gb()
            data_gb = data.memory_usage(deep=True).sum() / 1024**3
            row(
                "(a) training data, 10 offers",
                f"{data_s:.1f} s",
                f"{len(data):,} rows × {data.shape[1]} columns ({data_gb:.2f} GB), "
                f"{snapshots} feature snapshots, "
                f"{'one call' if args.one_call else 'month by month'}",
            )

            # (b) ------------------------------------------------------------------------------
            reset_peak_rss()
            results, train_s = train_all(store, data, args.n_jobs)
            peaks["(b) training"] = phase_peak_gb()
            del data
            gc.collect()

            # (c) ------------------------------------------------------------------------------
            reset_peak_rss()
            trained = dict((o, t) for o, _, t in results)[args.score_offer]
            model: PropensityClassifier = trained.model
            end = date.fromisoformat(world.manifest["config"]["end"])
            as_of = (end.replace(day=1) - timedelta(days=1)).replace(day=1)
            t0 = time.perf_counter()
            X = scoring_frame(store, as_of, args.score_rows, model_features(("channel",)))
            frame_s = time.perf_counter() - t0
        n = len(X)
        ours_all: list[float] = []
        raw_all: list[float] = []

        def ours() -> np.ndarray:
            return model.predict_proba(X)

        def booster() -> np.ndarray:
            return model.booster_.predict(
                X, num_iteration=model.best_iteration_, num_threads=model.n_jobs
            )

        # alternated, and each first in turn, so both see the same (shared, busy) machine
        for k in range(args.repeat):
            for fn, times in [(ours, ours_all), (booster, raw_all)][:: 1 if k % 2 == 0 else -1]:
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
                if fn is ours:
                    proba = out
                else:
                    raw = out
        ours_t, raw_t = min(ours_all), min(raw_all)
        ratio = raw_t / ours_t
        # same rows, same trees: the calibrated score is a non-decreasing function of the raw one
        order = np.argsort(raw, kind="stable")
        monotone = bool(np.all(np.diff(proba[order, 1]) >= -1e-12))
        steps, rounds = (
            profile_predict_proba(model, X, args.repeat)
            if args.profile or ratio < GOAL
            else ([], {})
        )
        peaks["(c) scoring"] = phase_peak_gb()

        # ---- figures ---------------------------------------------------------------------
        console.print(
            f"\nfigures ({args.customers:,} customers; machine load average {load1:.1f} at "
            f"start, {os.getloadavg()[0]:.1f} now; LightGBM n_jobs={args.n_jobs}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}):"
        )
        table = Table(title="(b) 10 propensity models (train_propensity)", title_justify="left")
        for col in ("offer", "seconds", "train rows", "test rows", "trees", "test AUC", "ECE"):
            table.add_column(col, justify="left" if col == "offer" else "right")
        for offer, seconds, t in results:
            m = t.metrics
            table.add_row(
                offer,
                f"{seconds:.1f}",
                f"{int(m['train_rows']):,}",
                f"{int(m['test_rows']):,}",
                f"{int(m['best_iteration'])}",
                f"{m['auc']:.3f}",
                f"{m['ece']:.4f}",
            )
        train_rows = sum(int(t.metrics["train_rows"]) for _, _, t in results)
        table.add_row("total", f"{train_s:.1f}", f"{train_rows:,}", "", "", "", "")
        console.print(table)
        row("(a) build the training data (10 offers)", f"{data_s:.1f} s")
        row(
            "(b) train 10 models",
            f"{train_s:.1f} s",
            f"{train_s / len(results):.1f} s a model, {train_rows / train_s:,.0f} train rows/s",
        )
        row("    (a) + (b)", f"{data_s + train_s:.1f} s")
        row(
            f"(c) scoring frame ({n:,} rows × {X.shape[1]})",
            f"{frame_s:.1f} s",
            f"features as of {as_of}, model {args.score_offer} "
            f"({model.best_iteration_} trees, isotonic)",
        )
        row(
            "    predict_proba (ours)",
            f"{n / ours_t:,.0f} rows/s",
            f"best of {len(ours_all)}: {', '.join(f'{t:.2f}' for t in ours_all)} s",
        )
        row(
            "    Booster.predict (raw LightGBM)",
            f"{n / raw_t:,.0f} rows/s",
            f"best of {len(raw_all)}: {', '.join(f'{t:.2f}' for t in raw_all)} s",
        )
        row(
            f"    ratio ours / raw (goal ≥ {GOAL})",
            f"{ratio:.2f}",
            f"{'meets the goal' if ratio >= GOAL else 'BELOW the goal'}; calibrated scores "
            f"{'are' if monotone else 'are NOT'} non-decreasing in the raw ones",
        )
        if steps:
            console.print("    predict_proba, step by step (best of each):")
            for label, t in steps:
                console.print(f"      {t:6.2f} s  {label}")
            raw2 = min(rounds["raw"])
            for name in ("ours", "without _features"):
                row(
                    f"    {'predict_proba' if name == 'ours' else '  without _features'}"
                    " ÷ raw, again",
                    f"{raw2 / min(rounds[name]):.2f}",
                    f"alternated with the raw booster, best of {args.repeat}: "
                    + ", ".join(f"{t:.2f}" for t in rounds[name])
                    + " s vs raw "
                    + ", ".join(f"{t:.2f}" for t in rounds["raw"])
                    + " s",
                )
        console.print("peak memory of this process (DuckDB inside):")
        for phase, gb in peaks.items():
            row(f"  {phase}", f"{gb:.2f} GB")
        row("  whole run (highest phase)", f"{max(peaks.values()):.2f} GB")
        if generated is not None and world.report is not None:
            row("  generation workers (largest)", f"{world.report.peak_worker_rss_gb:.2f} GB")
        row("whole run", f"{time.perf_counter() - t_run:.0f} s", f"ended {datetime.now():%H:%M}")
    finally:
        if args.discard:
            shutil.rmtree(args.workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
