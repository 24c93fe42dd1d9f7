"""Commands of the simulated bank: ``generate`` and ``demo``."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    return None
