"""The ``tags`` command: the tag library and how many customers carry each tag."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, state
from qianmian.errors import ConfigError
from qianmian.features.engine import latest_as_of

if TYPE_CHECKING:
    from qianmian.features.tags import Tag

__all__ = ["register"]


class Lang(StrEnum):
    zh = "zh"
    en = "en"


def _parse_as_of(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ConfigError(f"The --as-of date '{value}' is not a date like 2026-08-01.") from None


def _group(tags: list[Tag], i: int, table: Table, lang: Lang) -> str:
    """The category cell of row ``i``: named on a group's first row, after a rule line."""
    from qianmian.features.tags import CATEGORIES

    name = tags[i].category
    if i and name == tags[i - 1].category:
        return ""
    if i:
        table.add_section()
    return CATEGORIES.get(name, name) if lang is Lang.en else name


@friendly_errors
def tags_command(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Compute features as of this date (YYYY-MM-DD); default: the day after the "
            "latest transaction in the store.",
        ),
    ] = None,
    lang: Annotated[Lang, typer.Option("--lang", help="Language of tag names.")] = Lang.zh,
    list_only: Annotated[
        bool, typer.Option("--list", help="Only list the tags and their rules; compute nothing.")
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A tag library YAML (default: the one shipped with qianmian)."),
    ] = None,
) -> None:
    """Customer tags (客户标签): each tag's rule, or how many customers carry it."""
    from qianmian.features.tags import CATEGORIES, TagLibrary

    library = TagLibrary.load(file)
    order = {c: i for i, c in enumerate(CATEGORIES)}
    tags = sorted(library, key=lambda t: order.get(t.category, len(order)))
    if list_only:
        out = Table(title=f"客户标签 tag library — {len(library)} tags")
        for col in ("category", "tag", "id", "rule"):
            out.add_column(col, overflow="fold")
        for i, tag in enumerate(tags):
            out.add_row(_group(tags, i, out, lang), tag.name(lang.value), tag.id, tag.when)
        console.print(out)
        return

    from qianmian.features.engine import StoreFeatureEngine

    with state.settings.build_store() as store:
        day = _parse_as_of(as_of) if as_of else latest_as_of(store).date()
        with console.status(f"计算特征 building features as of {day}"):
            features = StoreFeatureEngine(store).build(day, features=list(library.fields_used))
    coverage = library.coverage(features)
    counts = dict(
        zip(
            coverage["tag"], zip(coverage["customers"], coverage["share"], strict=True), strict=True
        )
    )
    out = Table(title=f"客户标签覆盖 tag coverage — as of {day}, {features.num_rows:,} customers")
    for col in ("category", "tag", "id"):
        out.add_column(col, overflow="fold")
    out.add_column("customers", justify="right")
    out.add_column("%", justify="right")
    for i, tag in enumerate(tags):
        customers, share = counts[tag.id]
        out.add_row(
            _group(tags, i, out, lang),
            tag.name(lang.value),
            tag.id,
            f"{customers:,}",
            f"{100 * share:.1f}%",
        )
    console.print(out)


def register(app: typer.Typer) -> None:
    app.command("tags")(tags_command)
