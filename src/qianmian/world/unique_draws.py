"""Draw unique values reproducibly: draw for every row, then redraw only the later duplicates.

Drawing from a large space rarely repeats a value, so a few rounds of redrawing the duplicates
make the values unique while every value that was already unique stays as first drawn; the
result is bit-for-bit the same for a seed. Used by the identifier generators of
:mod:`qianmian.world.pii`.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> values = draw_unique(50, lambda rows: rng.integers(0, 60, rows.size))
>>> len(set(values.tolist()))
50
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from qianmian.errors import ValidationError

__all__ = ["MAX_ROUNDS", "draw_unique", "string_hash"]

#: Rounds of redrawing duplicates before concluding that the value space is too small.
MAX_ROUNDS = 64
_HASH_MULTIPLIERS = np.random.default_rng(2026).integers(1, 2**63, 64, dtype=np.uint64) * 2 + 1


def draw_unique(
    n: int,
    draw: Callable[[np.ndarray], np.ndarray],
    key: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Draw values for rows ``0..n-1`` with ``draw(rows)``; redraw only the later duplicates.

    ``key`` maps values to integers that are equal whenever the values are (a hash is fine: a
    collision only costs a needless redraw).
    """
    key = key or (lambda v: v)
    values = draw(np.arange(n))
    keys = key(values)
    for _ in range(MAX_ROUNDS):
        dup = pd.Series(keys).duplicated(keep="first").to_numpy()
        if not dup.any():
            return values
        rows = np.flatnonzero(dup)
        values[rows] = draw(rows)
        keys[rows] = key(values[rows])
    raise ValidationError(
        f"Could not draw {n} unique values in {MAX_ROUNDS} rounds; the value space is too "
        "small for this many. Ask for fewer values or widen the space (more prefixes, BINs or "
        "region codes)."
    )


def string_hash(values: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each string of a fixed-width unicode array (equal strings, equal hash)."""
    width = values.dtype.itemsize // 4
    codes = values.view(np.uint32).reshape(values.size, width).astype(np.uint64)
    return (codes * _HASH_MULTIPLIERS[:width]).sum(axis=1)
