"""Commands that look into the store: ``tables`` and ``show`` (PII masked by default)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, state

__all__ = ["register"]


@friendly_errors
def tables_command() -> None:
    """List the tables in the store with their row counts."""
    with state.settings.build_store() as store:
        out = Table(title=f"store: {state.settings.store.type} — {state.settings.workspace}")
        out.add_column("table")
        out.add_column("rows", justify="right")
        for name in store.tables():
            out.add_row(name, f"{store.count(name):,}")
    console.print(out)


@friendly_errors
def show_command(
    table_name: Annotated[str, typer.Argument(help="Table to show.")],
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10_000, help="Rows to show.")
    ] = 10,
    where: Annotated[str | None, typer.Option(help="customer_id to show rows of.")] = None,
) -> None:
    """Show rows of a stored table. Personal data (name, ID, mobile, card, email) is masked."""
    from qianmian.data.masking import mask_frame
    from qianmian.data.schema import TABLES
    from qianmian.errors import NotFoundError, ValidationError

    with state.settings.build_store() as store:
        if not store.has_table(table_name):
            raise NotFoundError(
                f"The store has no table '{table_name}'. Tables: "
                f"{', '.join(store.tables()) or '(none — run qianmian generate)'}."
            )
        params: dict[str, object] = {"n": limit}
        sql = f'SELECT * FROM "{table_name}"'
        if where is not None:
            if not where.isdigit():
                raise ValidationError(f"--where must be a customer_id (digits); got '{where}'.")
            sql += " WHERE customer_id = $cid"
            params["cid"] = int(where)
        data = store.query(sql + " LIMIT $n", params)
    if table_name in TABLES:
        data = mask_frame(data, table_name)
    frame = data.to_pandas()
    cell = lambda v: "" if v is None or v != v else str(v)  # noqa: E731 — NaN/None → blank
    if len(frame.columns) <= 8:
        out = Table(title=f"{table_name} ({len(frame)} rows, PII masked)")
        for col in frame.columns:
            out.add_column(col, overflow="fold")
        for row in frame.itertuples(index=False):
            out.add_row(*(cell(v) for v in row))
        console.print(out)
        return
    # Wide tables: one vertical card per row.
    for i, row in enumerate(frame.itertuples(index=False), start=1):
        card = Table(title=f"{table_name} row {i}/{len(frame)} (PII masked)", show_header=False)
        card.add_column("field", style="bold cyan")
        card.add_column("value")
        for col, v in zip(frame.columns, row, strict=True):
            card.add_row(col, cell(v))
        console.print(card)


def register(app: typer.Typer) -> None:
    app.command("tables")(tables_command)
    app.command("show")(show_command)
