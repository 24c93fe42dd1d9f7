"""``qianmian segment``: RFM and KMeans customer segments as of a date, saved and stored."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, state

__all__ = ["register"]


def _figure(value: object, fmt: str) -> str:
    """A profile figure, blank when the data had no column for it."""
    return "" if value is None or value != value else fmt.format(value)


@friendly_errors
def segment_command(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Point in time (YYYY-MM-DD); only data strictly before it is used. "
            "Default: the day after the latest transaction.",
        ),
    ] = None,
    k: Annotated[
        int | None,
        typer.Option(
            "--k",
            min=2,
            max=30,
            help="Number of segments. Default: the best silhouette for k from 4 to 10.",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Apply a saved segment model (a version such as seg-20260801-1a2b3c4d, or "
            "'latest') instead of fitting, so segments keep their meaning month to month.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed of KMeans.")] = 0,
) -> None:
    """Segment customers (RFM and named KMeans segments), save the model and store the result."""
    from qianmian.errors import ValidationError
    from qianmian.features.compile import AsOf
    from qianmian.features.engine import latest_as_of
    from qianmian.features.segments import SEGMENT_TABLE, run_segmentation

    if k is not None and model is not None:
        raise ValidationError(
            f"--k {k} and --model {model} cannot be combined: a saved model keeps its own k. "
            "Drop one of them."
        )
    settings = state.settings
    with settings.build_store() as store:
        at = AsOf.of(as_of).at if as_of else latest_as_of(store)
        with console.status(f"Segmenting customers as of {at:%Y-%m-%d} …") as status:
            run = run_segmentation(
                store,
                settings.workspace,
                at,
                n_clusters=k,
                model=model,
                random_state=seed,
                progress=lambda step: status.update(f"{step} …"),
            )
    meta = run.artifact.metadata
    how = "fitted" if run.fitted else "reused"
    chosen = (
        f"k={meta['n_clusters']} fixed"
        if meta["k_selection"]["fixed_k"]
        else f"k={meta['n_clusters']} by silhouette over {meta['k_selection']['k_range']}"
    )
    silhouette = meta.get("silhouette")
    out = Table(
        title=f"客户分群 customer segments — {run.artifact.version} ({how}), "
        f"as of {run.as_of:%Y-%m-%d}"
    )
    for col, justify in (
        ("#", "right"),
        ("分群", "left"),
        ("segment", "left"),
        ("人数 size", "right"),
        ("占比 share", "right"),
        ("月均消费 spend/month", "right"),
        ("平均年龄 age", "right"),
        ("画像 profile (at fit)", "left"),
    ):
        out.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for seg in run.segments.to_dict(orient="records"):
        out.add_row(
            str(seg["cluster"]),
            str(seg["name_zh"]),
            str(seg["name_en"]),
            f"{seg['size']:,}",
            f"{seg['share']:.1%}",
            _figure(seg["monthly_spend"], "¥{:,.0f}"),
            _figure(seg["age"], "{:.0f}"),
            str(seg["description_zh"]),
        )
    console.print(out)

    rfm = Table(title="RFM 八类客户 (high = quintile score 4-5)")
    for col, justify in (
        ("RFM 分群", "left"),
        ("segment", "left"),
        ("rule", "left"),
        ("人数 size", "right"),
        ("占比 share", "right"),
    ):
        rfm.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in run.rfm.to_dict(orient="records"):
        rfm.add_row(
            str(r["rfm_segment"]),
            str(r["rfm_segment_en"]),
            str(r["rule"]),
            f"{r['size']:,}",
            f"{r['share']:.1%}",
        )
    console.print(rfm)
    sil = f", silhouette {silhouette:.3f}" if isinstance(silhouette, float) else ""
    console.print(
        f"{chosen}{sil}; model in {run.artifact.path}; "
        f"{run.rows_written:,} rows → table [bold]{SEGMENT_TABLE}[/]."
    )


def register(app: typer.Typer) -> None:
    app.command("segment")(segment_command)
