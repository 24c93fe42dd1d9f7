"""``qianmian keys`` (API keys and their roles) and ``qianmian catalogue`` (the offer catalogue)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, state

if TYPE_CHECKING:
    from qianmian.service.keys import ApiKeyStore

__all__ = ["register"]

keys_app = typer.Typer(
    help="API keys of the decision service (API密钥) and their roles.", no_args_is_help=True
)
catalogue_app = typer.Typer(
    help="The offer catalogue (权益目录): validate, load and list revisions.",
    no_args_is_help=True,
)


def _key_store() -> ApiKeyStore:
    from qianmian.service.app import DEFAULT_KEYS_FILE
    from qianmian.service.keys import ApiKeyStore

    settings = state.settings
    return ApiKeyStore(settings.service.api_keys_file or settings.workspace / DEFAULT_KEYS_FILE)


@keys_app.command("create")
@friendly_errors
def create_key(
    name: Annotated[str, typer.Argument(help="Who or what uses the key, e.g. mobile-app.")],
    role: Annotated[
        str, typer.Option(help="marketer, analyst, engineer, admin or compliance.")
    ] = "engineer",
    rate_limit: Annotated[
        str | None, typer.Option(help="Own request limit, e.g. '100/second'.")
    ] = None,
) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    key = _key_store().create(name, role, rate_limit=rate_limit)
    console.print(f"API key for [bold]{name}[/] ({role}) — keep it, it is not shown again:")
    console.print(key, highlight=False, soft_wrap=True)


@keys_app.command("list")
@friendly_errors
def list_keys() -> None:
    """The keys: name, role, limit, created, disabled (never the key itself)."""
    table = Table(title="API keys")
    for col in ("name", "role", "rate limit", "created", "disabled"):
        table.add_column(col)
    for record in _key_store().records():
        table.add_row(
            record.name,
            record.role,
            record.rate_limit or "(service default)",
            f"{record.created_at:%Y-%m-%d %H:%M}",
            "yes" if record.disabled else "",
        )
    console.print(table)


@keys_app.command("disable")
@friendly_errors
def disable_key(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Disable a key at once (running servers pick it up within a second)."""
    _key_store().disable(name)
    console.print(f"Key '{name}' is disabled.")


@catalogue_app.command("validate")
@friendly_errors
def validate(
    path: Annotated[Path, typer.Argument(help="A catalogue YAML file or a folder of them.")],
) -> None:
    """Check a catalogue: every error names the file, the line and the field."""
    from qianmian.decide.catalogue import load_catalogue

    catalogue = load_catalogue(path)
    console.print(
        f"{path}: catalogue {catalogue.version} is valid — {len(catalogue.offers)} offers, "
        f"{len(catalogue.campaigns)} campaigns (sha256 {catalogue.sha256[:12]})."
    )


@catalogue_app.command("load")
@friendly_errors
def load(
    path: Annotated[Path, typer.Argument(help="A catalogue YAML file or a folder of them.")],
    author: Annotated[str, typer.Option(help="Who is making the change (audit).")],
    note: Annotated[str, typer.Option(help="Why.")] = "",
) -> None:
    """Validate a catalogue and save it as the store's next revision (used at the next start)."""
    from qianmian.decide.catalogue import load_catalogue
    from qianmian.decide.catalogue_store import CatalogueRepository

    catalogue = load_catalogue(path)
    with state.settings.build_store() as store:
        revision = CatalogueRepository(store).save(catalogue, author=author, note=note)
    console.print(f"Saved catalogue {catalogue.version} as revision {revision}.")


@catalogue_app.command("revisions")
@friendly_errors
def revisions() -> None:
    """The catalogue revisions saved in the store, oldest first."""
    from qianmian.decide.catalogue_store import CatalogueRepository

    with state.settings.build_store() as store:
        rows = CatalogueRepository(store).revisions().to_pylist()
    if not rows:
        console.print("No catalogue revision is saved yet; decisions use the starter catalogue.")
        return
    table = Table(title="offer catalogue revisions")
    for col in ("revision", "label", "saved at", "author", "note", "sha256"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["revision"]),
            r["label"],
            f"{r['saved_at']:%Y-%m-%d %H:%M}",
            r["author"],
            r["note"] or "",
            r["sha256"][:12],
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.add_typer(catalogue_app, name="catalogue")
