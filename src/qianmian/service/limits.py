"""Per-key request limits: a moving window per API key, in the serving process's memory.

Each key may make at most its own ``rate_limit`` requests (or the service's
``service.rate_limit`` when it has none) in any window of that length — a moving window, so a
burst across a boundary cannot double the rate. Beyond it a request gets 429 with
``Retry-After``: the seconds until the oldest request in the window leaves it. Limits are per
process; behind several workers each enforces its own.

>>> from datetime import datetime
>>> from qianmian.service.keys import ApiKey
>>> key = ApiKey(key_id="0123456789ab", name="app", role="engineer", key_hash="0" * 64,
...              rate_limit="2/minute", created_at=datetime(2026, 1, 1))
>>> limiter = RequestLimiter("1000/second")
>>> limiter.check(key); limiter.check(key)
>>> limiter.check(key)
Traceback (most recent call last):
...
qianmian.service.errors.TooManyRequests: The API key 'app' made its 2 requests per minute; wait 60 s before the next.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from qianmian.errors import ConfigError
from qianmian.service.errors import TooManyRequests
from qianmian.service.keys import ApiKey

__all__ = ["RequestLimiter"]


class RequestLimiter:
    """Counts each key's requests and refuses those over its limit.

    Parameters
    ----------
    default_limit : str
        The limit of keys without their own, in the ``limits`` notation (``"2000/second"``).

    Raises
    ------
    ConfigError
        If ``default_limit`` cannot be read.
    """

    def __init__(self, default_limit: str) -> None:
        self.default_limit = default_limit
        self._default = self._parse(default_limit, "service.rate_limit")
        self._items: dict[str, RateLimitItem] = {}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @staticmethod
    def _parse(text: str, where: str) -> RateLimitItem:
        try:
            return parse(text)
        except ValueError as e:
            raise ConfigError(
                f"The request limit '{where}' must look like '<count>/<period>' (e.g. "
                f"'100/minute'). Got {text!r} instead."
            ) from e

    def _item(self, key: ApiKey) -> RateLimitItem:
        if key.rate_limit is None:
            return self._default
        item = self._items.get(key.rate_limit)
        if item is None:  # parsed once per distinct limit, not per request
            item = self._items[key.rate_limit] = self._parse(
                key.rate_limit, f"{key.name}.rate_limit"
            )
        return item

    def check(self, key: ApiKey) -> None:
        """Count one request of ``key``; raise :class:`TooManyRequests` if over its limit."""
        item = self._item(key)
        if self._limiter.hit(item, key.key_id):
            return
        reset_at = self._limiter.get_window_stats(item, key.key_id).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        unit = item.GRANULARITY.name
        window = f"{item.multiples} {unit}s" if item.multiples > 1 else unit
        raise TooManyRequests(
            f"The API key '{key.name}' made its {item.amount} requests per {window}; wait "
            f"{retry_after} s before the next.",
            retry_after,
        )
