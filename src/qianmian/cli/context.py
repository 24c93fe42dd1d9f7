"""What every command shares: the console, the settings of the chosen workspace, error display."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from qianmian.config import Settings, load_settings
from qianmian.errors import QianmianError

__all__ = ["AppState", "console", "err_console", "friendly_errors", "progress_bar", "state"]

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AppState:
    """Global options set by the root callback."""

    workspace: str | None = None
    debug: bool = False

    @functools.cached_property
    def settings(self) -> Settings:
        return load_settings(self.workspace)

    def reset(self, workspace: str | None, debug: bool) -> None:
        """Start a new invocation: forget settings built for an earlier one."""
        self.workspace, self.debug = workspace, debug
        self.__dict__.pop("settings", None)


state = AppState()


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Show a qianmian error as one red line (the traceback only with ``--debug``)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (QianmianError, FileNotFoundError, PermissionError) as e:
            if state.debug:
                raise
            err_console.print(f"[bold red]Error:[/] {escape(str(e))}", highlight=False)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]Interrupted.[/]")
            raise typer.Exit(code=130) from None

    return wrapper


def configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def progress_bar() -> Progress:
    """The progress bar every long command shows: description, bar, done/total, time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
