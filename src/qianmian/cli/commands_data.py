"""Commands of the data layer: ``schema``, ``import``, ``identity``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qianmian.cli.context import console, friendly_errors

if TYPE_CHECKING:
    from rich.console import Group

    from qianmian.data.importer import ImportReport

__all__ = ["register"]


class SchemaFormat(StrEnum):
    table = "table"
    markdown = "markdown"


@friendly_errors
def schema_command(
    tables: Annotated[
        list[str] | None, typer.Argument(help="Tables to show (default: all).")
    ] = None,
    fmt: Annotated[
        SchemaFormat, typer.Option("--format", "-f", help="Output format.")
    ] = SchemaFormat.table,
    lang: Annotated[str, typer.Option(help="Description language first: zh or en.")] = "zh",
) -> None:
    """Print the data dictionary (数据字典): every table, field, type and constraint."""
    from qianmian.data.schema import table
    from qianmian.data.schema.render import dictionary_markdown, dictionary_rich

    names = [table(n).name for n in tables] if tables else None
    if fmt is SchemaFormat.markdown:
        print(dictionary_markdown(names))
    else:
        console.print(dictionary_rich(names, lang))


@friendly_errors
def import_command(
    table_name: Annotated[
        str,
        typer.Argument(metavar="TABLE", help="Dictionary table to import into, e.g. customers."),
    ],
    path: Annotated[Path, typer.Argument(metavar="PATH", help="CSV or Parquet file to import.")],
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", "-m", help="Column mapping YAML (see examples/mappings/)."),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", "-e", help="CSV text encoding, e.g. gbk (default utf-8)."),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter", "-d", help="CSV delimiter, e.g. ';' or tab (default: detected)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and validate, show the summary, write nothing.")
    ] = False,
) -> None:
    """Import a bank's CSV/Parquet file (导入数据); bad rows are quarantined with their reasons."""
    from qianmian.cli.context import state
    from qianmian.data.importer import import_table

    store = state.settings.build_store()
    try:
        with console.status(f"Reading {path} …") as status:
            report = import_table(
                store,
                table_name,
                path,
                mapping,
                encoding,
                delimiter=delimiter,
                dry_run=dry_run,
                on_stage=lambda stage: status.update(f"{stage} …"),
            )
    finally:
        store.close()
    console.print(import_summary(report))


def import_summary(report: ImportReport) -> Group:
    """The Rich summary of an import: counts, the most frequent problems, where to find them."""
    from rich.console import Group
    from rich.table import Table

    counts = Table(
        title=f"Import into {report.table_name}"
        + (" (dry run: nothing written)" if report.dry_run else ""),
        show_header=False,
        title_justify="left",
    )
    counts.add_column(style="bold")
    counts.add_column(justify="right")
    for label, value in (
        ("Rows read 读取", f"{report.rows_read:,}"),
        ("Loaded 入库", f"[green]{report.rows_loaded:,}[/]"),
        ("Quarantined 隔离", f"[yellow]{report.rows_quarantined:,}[/]"),
        ("Import id 批次", report.import_id),
        ("Source 源文件", report.source),
    ):
        counts.add_row(label, value)
    parts: list[object] = [counts]
    if report.unused_columns:
        parts.append(f"[dim]Columns not imported: {', '.join(report.unused_columns)}[/]")
    reasons = report.top_reasons()
    if reasons:
        top = Table(title="Top reasons 隔离原因", title_justify="left")
        for name, justify in (
            ("Field", "left"),
            ("Reason", "left"),
            ("Rows", "right"),
            ("Example lines", "left"),
        ):
            top.add_column(name, justify=justify)  # type: ignore[arg-type]
        for r in reasons:
            top.add_row(
                r.field or "(whole row)",
                r.reason,
                f"{r.rows:,}",
                ", ".join(map(str, r.example_lines)),
            )
        parts.append(top)
        if not report.dry_run:
            parts.append(
                f"[dim]All problems: SELECT * FROM quarantine WHERE import_id = "
                f"'{report.import_id}'[/]"
            )
    return Group(*parts)  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    app.command("schema")(schema_command)
    app.command("import")(import_command)
