"""Commands of the simulated bank: ``generate`` and ``demo``."""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, progress_bar, state
from qianmian.errors import ConfigError

if TYPE_CHECKING:
    from qianmian.analytics.customer_summary import CustomerSummary

__all__ = ["customer_360", "register"]


def _parse_date(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ConfigError(f"The --start date '{value}' is not a date like 2025-11-01.") from None


def generate_bank(
    customers: int, months: int, seed: int, start: date, workers: int, load: bool = True
) -> dict[str, int]:
    """Generate the simulated bank into the workspace and load its tables into the store."""
    from qianmian.world import BANK_TABLES, World, WorldConfig

    config = WorldConfig(customers=customers, months=months, seed=seed, start=start)
    settings = state.settings
    with progress_bar() as progress:
        task = progress.add_task("生成模拟银行 generating", total=len(config.chunks) + 1)
        world = World.generate(
            config,
            settings.workspace,
            workers=workers,
            progress=lambda done, total: progress.update(task, completed=done),
        )
        if load:
            load_task = progress.add_task("载入存储 loading store", total=len(BANK_TABLES))
            with settings.build_store() as store:
                for name in BANK_TABLES:
                    store.load_parquet(name, world.table_paths(name), mode="replace")
                    progress.advance(load_task)
    return {k: v for k, v in world.manifest["rows"].items()}


@friendly_errors
def generate_command(
    customers: Annotated[
        int, typer.Option("--customers", "-n", min=1, help="Number of customers.")
    ] = 20_000,
    months: Annotated[
        int, typer.Option("--months", "-m", min=1, max=60, help="Months of history.")
    ] = 12,
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Random seed.")] = 7,
    start: Annotated[
        str, typer.Option(help="First day of the window (YYYY-MM-DD).")
    ] = "2025-11-01",
    workers: Annotated[
        int, typer.Option(min=1, help="Processes (the data do not depend on it).")
    ] = 2,
    load: Annotated[
        bool, typer.Option("--load/--no-load", help="Also load the tables into the store.")
    ] = True,
) -> None:
    """Generate the simulated bank (模拟银行) into the workspace as Parquet, and load the store."""
    t0 = time.perf_counter()
    rows = generate_bank(customers, months, seed, _parse_date(start), workers, load)
    seconds = time.perf_counter() - t0
    table = Table(title=f"模拟银行 simulated bank — {state.settings.workspace}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in rows.items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    console.print(f"Done in {seconds:.1f} s.")


def customer_360(as_of: datetime) -> CustomerSummary:
    """Features, tags and segments of the stored bank as of ``as_of`` (the demo's second act)."""
    from qianmian.analytics.customer_summary import CustomerSummary, segment_profile_index
    from qianmian.features.engine import StoreFeatureEngine, save_features
    from qianmian.features.segments import run_segmentation
    from qianmian.features.tags import TagLibrary

    settings = state.settings
    with settings.build_store() as store, progress_bar() as progress:
        task = progress.add_task("客户360 customer 360", total=3)
        features = StoreFeatureEngine(store).build(as_of)
        save_features(store, features)
        progress.advance(task)
        frame = features.to_pandas()
        coverage = TagLibrary.load().coverage(frame)
        progress.advance(task)
        run = run_segmentation(store, settings.workspace, as_of)
        progress.advance(task)
    names = dict(zip(run.segments["cluster"], run.segments["name_zh"], strict=True))
    return CustomerSummary(
        segments=run.segments,
        rfm=run.rfm,
        profile_index=segment_profile_index(frame, run.assignments, names),
        tag_coverage=coverage,
    )


@friendly_errors
def demo_command(
    customers: Annotated[
        int, typer.Option("--customers", "-n", min=100, help="Customers in the demo bank.")
    ] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """The end-to-end demo on the embedded default: a bank, its customer 360, and the summary."""
    from qianmian.analytics.bank_summary import summarise_bank, write_summary_html
    from qianmian.analytics.customer_summary import customer_figures
    from qianmian.features.engine import latest_as_of

    t0 = time.perf_counter()
    console.rule("[bold]千面 qianmian demo")
    generate_bank(customers, 12, seed, date(2025, 11, 1), workers=2)
    settings = state.settings
    with settings.build_store() as store:
        summary = summarise_bank(store)
        as_of = latest_as_of(store)
    c360 = customer_360(as_of)
    path = write_summary_html(
        summary,
        Path(settings.workspace) / "reports" / "bank_summary.html",
        extra_figures=customer_figures(c360),
    )
    for k, v in summary.key_figures.items():
        console.print(f"  {k}: [bold]{v}[/]")
    console.print(
        f"  客户分群 segments: [bold]{len(c360.segments)}[/] — "
        + "、".join(c360.segments.sort_values("size", ascending=False)["name_zh"])
    )
    top_tags = c360.tag_coverage.sort_values("share", ascending=False).head(5)
    console.print(
        "  热门标签 top tags: "
        + "、".join(f"{r.name_zh} {r.share:.0%}" for r in top_tags.itertuples())
    )
    console.print(
        f"\nSummary written to [bold green]{path.resolve()}[/] ({time.perf_counter() - t0:.1f} s)."
    )


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)
    app.command("demo")(demo_command)
