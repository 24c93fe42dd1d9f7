"""The root ``qianmian`` command: global options and the sub-commands of each part."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qianmian import __version__
from qianmian.cli.context import configure_logging, console, state

app = typer.Typer(
    name="qianmian",
    help="千面 qianmian — the right offer, on the right channel, at the right moment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"qianmian {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Workspace folder (default ./qianmian-workspace, or $QIANMIAN_WORKSPACE).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """千面 qianmian command line."""
    state.reset(str(workspace) if workspace is not None else None, debug)
    configure_logging(debug)


def _register() -> None:
    """Attach each part's commands (kept in their own modules)."""
    from qianmian.cli import (
        commands_data,
        commands_decide,
        commands_features,
        commands_identity,
        commands_models,
        commands_policy,
        commands_profile,
        commands_segments,
        commands_store,
        commands_stream,
        commands_tags,
        commands_train,
        commands_world,
    )

    commands_world.register(app)
    commands_data.register(app)
    commands_store.register(app)
    commands_identity.register(app)
    commands_features.register(app)
    commands_tags.register(app)
    commands_segments.register(app)
    commands_profile.register(app)
    commands_models.register(app)
    commands_train.register(app)
    commands_decide.register(app)
    commands_policy.register(app)
    commands_stream.register(app)


_register()


def main() -> None:
    app()
