"""Test data for the recommender tests: a generated bank shared per process, and tiny stores.

Each ``test_recommend_*`` module that needs the generated bank calls :func:`generated_bank` from
a session fixture; the bank is generated once per test process (cached by the session's base
temporary directory) and must not be modified.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from qianmian.config import load_settings
from qianmian.store.base import Store
from qianmian.world import BANK_TABLES, World, WorldConfig

WORLD_CONFIG = WorldConfig(customers=4_000, months=12, seed=21)
CUTOFF = "2026-08-01"
HORIZON_DAYS = 92
_BANKS: dict[Path, Path] = {}


def generated_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Workspace of a 4,000-customer, 12-month bank loaded into its store (read-only)."""
    key = tmp_path_factory.getbasetemp()
    if key not in _BANKS:
        ws = tmp_path_factory.mktemp("recommend-world")
        world = World.generate(WORLD_CONFIG, ws, workers=1)
        with load_settings(ws).build_store() as store:
            for name in BANK_TABLES:
                store.load_parquet(name, world.table_paths(name), mode="replace")
        _BANKS[key] = ws
    return _BANKS[key]


def write_tables(store: Store, tables: dict[str, pd.DataFrame]) -> None:
    """Write small frames as the store's tables (replacing them)."""
    for name, frame in tables.items():
        store.write(name, pa.Table.from_pandas(frame, preserve_index=False), mode="replace")


def planted_interactions(
    n_customers: int = 600, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Holdings whose second product follows the first, and side features that reveal it.

    Products A–F. Every customer holds one "anchor": A (segment ``x``) or C (segment ``y``).
    Four in five of the ``x`` customers also hold B, of the ``y`` customers D; E is held by a
    third of everyone, F by a tenth. Customers 1..n; the side features have ``segment`` and a
    noisy number ``score`` (higher for ``x``).

    Returns
    -------
    (pairs, side)
        ``pairs``: customer_id, product_id; ``side``: indexed by customer_id.
    """
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n_customers + 1)
    segment = np.where(rng.random(n_customers) < 0.5, "x", "y")
    rows: list[tuple[int, str]] = []
    for cid, seg in zip(ids, segment, strict=True):
        anchor, partner = ("A", "B") if seg == "x" else ("C", "D")
        rows.append((int(cid), anchor))
        if rng.random() < 0.8:
            rows.append((int(cid), partner))
        if rng.random() < 1 / 3:
            rows.append((int(cid), "E"))
        if rng.random() < 0.1:
            rows.append((int(cid), "F"))
    pairs = pd.DataFrame(rows, columns=["customer_id", "product_id"])
    side = pd.DataFrame(
        {
            "segment": segment,
            "score": np.where(segment == "x", 1.0, -1.0) + rng.normal(0, 0.5, n_customers),
        },
        index=pd.Index(ids, name="customer_id"),
    )
    return pairs, side
