"""Shared data for the need-forecast tests: a small simulated bank and hand-made panels.

The bank is generated once per test process (3,000 customers over 12 months, ~3 s) and loaded
into its workspace's store; tests must not modify it (:func:`copy_tables` gives a private copy).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from qianmian.config import load_settings
from qianmian.models.forecast.sequences import APP_CHANNELS, GROUP_NAMES, DailyPanel
from qianmian.store.base import Store
from qianmian.world import BANK_TABLES, World, WorldConfig

CONFIG = WorldConfig(customers=3_000, months=12, seed=31)
# The world runs 2025-11-01 .. 2026-10-31: the last 30-day window starts on 2026-10-02.
TEST_AS_OF = date(2026, 10, 2)
_CACHE: dict[str, World] = {}


def forecast_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The shared bank (generated on first use in this process)."""
    if "world" not in _CACHE:
        ws = tmp_path_factory.mktemp("forecast-world")
        world = World.generate(CONFIG, ws, workers=1)
        with load_settings(ws).build_store() as store:
            for name in BANK_TABLES:
                store.load_parquet(name, world.table_paths(name), mode="replace")
        _CACHE["world"] = world
    return _CACHE["world"]


def copy_tables(src: Store, dst: Store, tables: tuple[str, ...]) -> None:
    """Copy tables between stores (for tests that modify data)."""
    for name in tables:
        dst.write(name, src.read(name), mode="replace")


def workspace_store(workspace: Path) -> Store:
    return load_settings(workspace).build_store()


def hand_panel(
    spend: dict[tuple[int, int, str], float],
    customers: int = 2,
    days: int = 40,
    start: date = date(2026, 1, 1),
) -> DailyPanel:
    """A panel from {(customer row, day, group): CNY}; everyone signed up long before."""
    values = np.zeros((customers, days, len(GROUP_NAMES)), np.float32)
    for (row, day, group), amount in spend.items():
        values[row, day, GROUP_NAMES.index(group)] = amount
    from datetime import timedelta

    return DailyPanel(
        start=start,
        end=start + timedelta(days=days),
        customer_id=np.arange(1, customers + 1, dtype=np.int64),
        signup=np.full(customers, np.datetime64("2024-01-01", "D")),
        spend=values,
        app=np.zeros((customers, days, len(APP_CHANNELS)), np.float32),
    )
