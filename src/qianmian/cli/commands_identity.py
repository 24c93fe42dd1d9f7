"""``qianmian identity resolve``: unify customers seen in several systems into one customer id."""

from __future__ import annotations

from typing import Annotated

import pyarrow as pa
import typer
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, state

__all__ = ["register"]

identity_app = typer.Typer(help="Unified customer id (统一客户号).", no_args_is_help=True)


@identity_app.command("resolve")
@friendly_errors
def resolve_command(
    max_records: Annotated[
        int,
        typer.Option(
            "--max-records",
            min=2,
            help="An identifier seen on more records than this is a hub "
            "(a shared phone or device) and links nothing.",
        ),
    ] = 20,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Number customers from scratch instead of keeping the ids of the "
            "existing identity_map.",
        ),
    ] = False,
) -> None:
    """Resolve ``identifier_sightings`` into ``identity_map`` (connected components).

    Records of different systems that share an identifier (mobile, email, device, app user id,
    card number, national ID) become one customer. Customer ids stay stable across runs: the
    existing ``identity_map`` is kept unless ``--fresh``.
    """
    from qianmian.data.identity import resolve_identities
    from qianmian.data.schema import table
    from qianmian.errors import NotFoundError

    with state.settings.build_store() as store:
        if not store.has_table("identifier_sightings"):
            raise NotFoundError(
                "The store has no 'identifier_sightings' table: import one with "
                "`qianmian import identifier_sightings FILE` or run "
                "`qianmian generate`."
            )
        with console.status("Resolving identities …"):
            sightings = store.read("identifier_sightings")
            existing = (
                store.read("identity_map")
                if store.has_table("identity_map") and not fresh
                else None
            )
            result = resolve_identities(
                sightings, max_records_per_identifier=max_records, existing=existing
            )
            mapping = table("identity_map").conform(
                pa.Table.from_pandas(result.mapping, preserve_index=False)
            )
            with store.transaction() as tx:
                tx.write("identity_map", mapping, mode="replace")
    s = result.stats
    out = Table(title="统一客户号 identity resolution")
    out.add_column("")
    out.add_column("count", justify="right")
    for label, value in (
        ("sightings", s.sightings),
        ("source records", s.records),
        ("distinct identifiers", s.identifiers),
        ("customers", s.customers),
        ("customers joining 2+ records", s.merged_customers),
        ("hub identifiers ignored", s.hub_identifiers),
        ("ID-number conflicts split", s.conflicts_split),
        ("conflicts left unresolved", s.conflicts_unresolved),
        ("existing customers merged", s.existing_merges),
    ):
        out.add_row(label, f"{value:,}")
    console.print(out)
    console.print("identity_map written to the store.")


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")
