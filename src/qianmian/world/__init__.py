"""The simulated bank (千面银行): customers, cards, holdings, transactions, app events, and the
hidden ground truth of how each customer responds to each offer on each channel.

Example (needs a generated bank, so it is not run as a doctest)::

    from qianmian.world import World, WorldConfig
    world = World.generate(WorldConfig(customers=2000, seed=1), "/tmp/qm-doctest")
    world.oracle().truth(requests)

Everything is deterministic from :class:`WorldConfig`; the assumptions are in docs/world.md.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from qianmian.errors import NotFoundError
from qianmian.world.generate import (
    BANK_TABLES,
    HIDDEN_TABLES,
    GenerationReport,
    WorldConfig,
    generate_world,
)
from qianmian.world.respond import draw_responses
from qianmian.world.truth import TRUTH_COLUMNS, Oracle

__all__ = ["BANK_TABLES", "TRUTH_COLUMNS", "GenerationReport", "Oracle", "World", "WorldConfig"]


class World:
    """A generated simulated bank in a workspace.

    The bank's tables are in ``<workspace>/data/<table>/``; the hidden truth, which only the
    oracle and :meth:`respond` read, is in ``<workspace>/world/``.
    """

    def __init__(self, workspace: Path | str) -> None:
        self.workspace = Path(workspace)
        self.data_dir = self.workspace / "data"
        self.hidden_dir = self.workspace / "world"
        manifest = self.hidden_dir / "manifest.json"
        if not manifest.is_file():
            raise NotFoundError(
                f"No simulated bank in {self.workspace}: {manifest} is missing. "
                "Run `qianmian generate` first."
            )
        self.manifest = json.loads(manifest.read_text())
        self.seed = int(self.manifest["config"]["seed"])
        self.report: GenerationReport | None = None  # set when generated in this process

    @classmethod
    def generate(
        cls,
        config: WorldConfig,
        workspace: Path | str,
        *,
        workers: int = 2,
        progress: Callable[[int, int], None] | None = None,
    ) -> World:
        """Generate a bank into ``workspace`` (replacing any earlier one) and open it."""
        ws = Path(workspace)
        report = generate_world(
            config, ws / "data", ws / "world", workers=workers, progress=progress
        )
        world = cls(ws)
        world.report = report
        return world

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """One of the bank's tables (or a hidden one) as Arrow."""
        if name in BANK_TABLES:
            folder = self.data_dir / name
        elif name in HIDDEN_TABLES:
            folder = self.hidden_dir / name
        else:
            raise NotFoundError(
                f"The simulated bank has no table '{name}'. "
                f"Tables: {', '.join(BANK_TABLES + HIDDEN_TABLES)}."
            )
        return pq.read_table(folder, columns=columns)

    def table_paths(self, name: str) -> list[Path]:
        return sorted((self.data_dir / name).glob("*.parquet"))

    @functools.cache  # noqa: B019 — one oracle per World object, by design
    def oracle(self) -> Oracle:
        """The ground truth (loads the hidden traits and life events)."""
        return Oracle(
            customers=self.table("traits").to_pandas(),
            events=self.table("life_events", ["customer_id", "event_type", "day"]).to_pandas(),
            holdings=self.table(
                "holdings", ["customer_id", "product_id", "opened_date"]
            ).to_pandas(),
        )

    def respond(
        self, contacts: pd.DataFrame, *, seed: int = 0, history: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Draw the responses of the bank's customers to ``contacts``.

        Parameters
        ----------
        contacts : DataFrame
            ``customer_id``, ``offer_id``, ``channel``, ``ts``; optional ``contact_id`` and
            ``is_holdout`` (held-out rows are not contacted but may convert on their own).
        seed : int
            Same contacts and seed → the same responses.
        history : DataFrame, optional
            Earlier contacts (``customer_id``, ``ts``) that count towards fatigue.

        Returns
        -------
        DataFrame
            The ``responses`` table: response_id, contact_id, customer_id, offer_id,
            response_type, ts, value (on ``approved`` rows).
        """
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(3, seed)))
        return draw_responses(self.oracle(), contacts, rng, history)
