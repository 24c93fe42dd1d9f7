"""Commands of the data layer: ``schema``, ``import``, ``identity``."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from qianmian.cli.context import console, friendly_errors

__all__ = ["register"]


class SchemaFormat(str, Enum):
    table = "table"
    markdown = "markdown"


@friendly_errors
def schema_command(
    tables: Annotated[list[str] | None, typer.Argument(help="Tables to show (default: all).")]
    = None,
    fmt: Annotated[SchemaFormat, typer.Option("--format", "-f", help="Output format.")]
    = SchemaFormat.table,
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


def register(app: typer.Typer) -> None:
    app.command("schema")(schema_command)
