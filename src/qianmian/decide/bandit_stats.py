"""The bandit's counts, read through a short-lived in-process cache.

Each decision needs the (successes, failures) of every candidate's arm. Reading them from Redis
costs a round trip per decision, yet they change only as responses arrive, and Thompson
sampling does not need them to the second. So a serving process keeps each arm's counts for
``ttl_seconds`` (1 s by default): at most that much of other processes' learning is missed,
and this process's own updates are seen at once (:meth:`CachedBanditStats.forget`).

>>> cache = CachedBanditStats(ttl_seconds=60)
>>> calls = []
>>> def fetch(keys):
...     calls.append(list(keys))
...     return [(1.0, 9.0) for _ in keys]
>>> cache.get(["a", "b"], fetch), cache.get(["b", "c"], fetch)
([(1.0, 9.0), (1.0, 9.0)], [(1.0, 9.0), (1.0, 9.0)])
>>> calls
[['a', 'b'], ['c']]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

__all__ = ["CachedBanditStats"]

Stats = tuple[float, float]


class CachedBanditStats:
    """Arm counts kept for ``ttl_seconds`` (0: always read through)."""

    def __init__(self, ttl_seconds: float = 1.0, *, max_keys: int = 100_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, Stats]] = {}

    def get(
        self, keys: Sequence[str], fetch: Callable[[Sequence[str]], list[Stats]]
    ) -> list[Stats]:
        """The counts of ``keys``; those not kept (or expired) come from one ``fetch`` call."""
        if self.ttl_seconds <= 0:
            return fetch(keys)
        now = time.monotonic()
        with self._lock:
            kept = {k: v for k in keys if (v := self._kept.get(k)) is not None and v[0] > now}
        missing = [k for k in dict.fromkeys(keys) if k not in kept]
        if missing:
            fetched = fetch(missing)
            until = now + self.ttl_seconds
            with self._lock:
                if len(self._kept) + len(missing) > self.max_keys:
                    self._kept.clear()  # arms are few; this only guards against a leak
                for key, stats in zip(missing, fetched, strict=True):
                    self._kept[key] = (until, stats)
                    kept[key] = (until, stats)
        return [kept[k][1] for k in keys]

    def forget(self, key: str) -> None:
        """Drop one arm's counts (this process just updated them)."""
        with self._lock:
            self._kept.pop(key, None)
