"""Failing fast while a backend is down.

When Redis stops answering, every call waits for its time-out (0.5 s by default) before it
fails; a server that kept calling would answer nothing for as long as the outage lasts. So once
a part has failed, decisions skip it for ``retry_seconds`` and decide as if it were down (no
marketing without the decision state; rules without live features), then try it again.

>>> outages = Outages(retry_seconds=60)
>>> outages.down("decision state") is None
True
>>> outages.failed("decision state", ConnectionError("Redis at 127.0.0.1:6379 refused"))
>>> outages.down("decision state")
'Redis at 127.0.0.1:6379 refused; not retried for 60 s'
>>> outages.recovered("decision state")
>>> outages.down("decision state") is None
True
"""

from __future__ import annotations

import threading
import time

__all__ = ["FEATURES", "STATE", "Outages"]

STATE = "decision state"
FEATURES = "live features"


class Outages:
    """Parts that failed recently, and until when they are skipped."""

    def __init__(self, retry_seconds: float = 1.0) -> None:
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._until: dict[str, tuple[float, str]] = {}

    def down(self, part: str) -> str | None:
        """Why ``part`` is skipped now (its last error), or None to call it."""
        entry = self._until.get(part)
        if entry is None or time.monotonic() >= entry[0]:
            return None
        return entry[1]

    def failed(self, part: str, error: BaseException) -> None:
        """``part`` just failed: skip it for ``retry_seconds``."""
        if self.retry_seconds <= 0:
            return
        message = f"{error}; not retried for {self.retry_seconds:g} s"
        with self._lock:
            self._until[part] = (time.monotonic() + self.retry_seconds, message)

    def recovered(self, part: str) -> None:
        """``part`` answered: call it normally."""
        if part in self._until:
            with self._lock:
                self._until.pop(part, None)
