"""``qianmian features list|build``: the feature catalogue and point-in-time feature tables."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, state

__all__ = ["register"]

features_app = typer.Typer(help="Customer features (客户特征).", no_args_is_help=True)


@features_app.command("list")
@friendly_errors
def list_command(
    group: Annotated[str | None, typer.Option(help="Only this family (rfm, app, ...).")] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print Markdown (the docs).")
    ] = False,
) -> None:
    """List the feature catalogue: name, family, type, window and description."""
    from qianmian.features.catalogue import FEATURES, catalogue_markdown

    if markdown:
        print(catalogue_markdown())
        return

    out = Table(title=f"特征目录 feature catalogue ({len(FEATURES)})")
    for col in ("feature", "group", "type", "window", "说明", "description"):
        out.add_column(col, overflow="fold")
    for f in FEATURES.values():
        if group and f.group != group:
            continue
        window = f"{f.window_days}d" if f.window_days else ""
        out.add_row(f.name, f.group, f.type, window, f.zh, f.en)
    console.print(out)


@features_app.command("build")
@friendly_errors
def build_command(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Point in time (YYYY-MM-DD); only data strictly before it is used. "
            "Default: the day after the latest transaction.",
        ),
    ] = None,
) -> None:
    """Compute every feature for every customer as of a date and store them."""
    from qianmian.features.compile import AsOf
    from qianmian.features.engine import (
        FEATURE_TABLE,
        StoreFeatureEngine,
        latest_as_of,
        save_features,
    )

    t0 = time.perf_counter()
    with state.settings.build_store() as store:
        at = AsOf.of(as_of).at if as_of else latest_as_of(store)
        with console.status(f"Computing features as of {at:%Y-%m-%d} …"):
            table = StoreFeatureEngine(store).build(at)
            save_features(store, table)
    console.print(
        f"{table.num_rows:,} customers × {table.num_columns - 2} features as of "
        f"{at:%Y-%m-%d} → table [bold]{FEATURE_TABLE}[/] "
        f"({time.perf_counter() - t0:.1f} s)."
    )


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
