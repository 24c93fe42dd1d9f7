"""The production event bus: a Redis Stream with one consumer group, shared by every process.

Key layout under ``key_prefix`` (``P``)::

    P:events      the STREAM of events; each entry has one field ``e``, the event's JSON
    P:processed   the SET of processed event ids (the ledger)
    P:dead        the STREAM of dead letters: ``e`` (event JSON), ``r`` (reason), ``t`` (time,
                  ISO, China time), ``m`` (the message id it had in ``P:events``)

The consumer group is created (``XGROUP CREATE ... 0 MKSTREAM``) on first use, from the
stream's start, so events published before any consumer started are delivered too. A
:meth:`~RedisEventBus.read` is one Lua call in the usual case: ``XAUTOCLAIM`` of pending
entries idle ``reclaim_idle_ms`` or more (with their delivery counts from ``XPENDING``), then
``XREADGROUP >`` for new ones; only when that finds nothing does a second call block for new
entries (``BLOCK block_ms``). The reclaim cursor is kept per consumer name, so successive reads
walk the pending list instead of rescanning it.

Both streams are capped approximately at ``max_length`` (``XADD MAXLEN ~``); size it well
above the longest backlog, since an entry trimmed before it was read is lost (it is logged
when XAUTOCLAIM reports it). The ledger grows by one id per event (about 60–90 bytes each):
1 GB holds some 12 million ids. A bus needs a single Redis (with replicas or Sentinel).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast

import orjson

from qianmian.errors import StoreError, invalid_parameter
from qianmian.stream.bus import check_read, encode_events
from qianmian.stream.bus.base import BusStatus, DeadLetter, Delivery, EventBus
from qianmian.stream.configs import RedisBusConfig

if TYPE_CHECKING:
    import redis

__all__ = ["RedisEventBus"]

logger = logging.getLogger(__name__)

BATCH = 1_000  # commands per pipelined round trip
_CHINA = timezone(timedelta(hours=8))

# KEYS: stream. ARGV: group, consumer, min idle ms, cursor, count.
# → {next cursor, reclaimed entries, their delivery counts, ids trimmed while pending, new entries}
_READ = """
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
                           'COUNT', ARGV[5])
local attempts = {}
for i, entry in ipairs(claimed[2]) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
  attempts[i] = p[1] and p[1][4] or 1
end
local fresh = {}
local room = tonumber(ARGV[5]) - #claimed[2]
if room > 0 then
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', room,
                       'STREAMS', KEYS[1], '>')
  if r then fresh = r[1][2] end
end
return {claimed[1], claimed[2], attempts, claimed[3], fresh}
"""


class RedisEventBus(EventBus):
    """:class:`~qianmian.stream.bus.base.EventBus` on Redis Streams (redis-py).

    Parameters
    ----------
    url : str
        Redis URL, e.g. ``redis://127.0.0.1:6379/0`` (a password in it is never shown in errors).
    key_prefix : str
        Every key written starts with it (several buses can share one Redis).
    group : str
        The consumer group every consumer of this bus reads in.
    max_length : int
        Approximate cap on the event and dead-letter streams (``XADD MAXLEN ~``).
    reclaim_idle_ms : int
        A pending entry idle this long (ms) is reclaimed by the next read (``XAUTOCLAIM``).
    timeout_seconds : float
        Connect and command timeout; a blocking read waits at most a little less.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key_prefix: str = "qianmian:stream",
        group: str = "qianmian",
        max_length: int = 5_000_000,
        reclaim_idle_ms: int = 30_000,
        timeout_seconds: float = 2.0,
    ) -> None:
        for name, value, least in (
            ("max_length", max_length, 1),
            ("reclaim_idle_ms", reclaim_idle_ms, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise invalid_parameter(self, name, f"an int ≥ {least}", value)
        if not isinstance(timeout_seconds, int | float) or not timeout_seconds > 0:
            raise invalid_parameter(self, "timeout_seconds", "a positive number", timeout_seconds)
        try:
            import redis
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise StoreError(
                "The Redis event bus needs redis-py: pip install 'qianmian[redis]'."
            ) from e
        self.url = url
        self.key_prefix = key_prefix
        self.group = group
        self.max_length = max_length
        self.reclaim_idle_ms = reclaim_idle_ms
        self.timeout_seconds = timeout_seconds
        self._redis_errors = (redis.RedisError,)
        self._connection_errors = (redis.ConnectionError, redis.TimeoutError)
        self._response_error = redis.ResponseError
        self._client: redis.Redis = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds
        )
        self._read = self._client.register_script(_READ)
        self._stream = f"{key_prefix}:events"
        self._ledger = f"{key_prefix}:processed"
        self._dead = f"{key_prefix}:dead"
        self._group_ready = False
        self._cursors: dict[str, str] = {}  # consumer → where its next XAUTOCLAIM starts

    @classmethod
    def from_config(cls, config: RedisBusConfig) -> RedisEventBus:
        return cls(
            config.url,
            key_prefix=config.key_prefix,
            group=config.group,
            max_length=config.max_length,
            reclaim_idle_ms=config.reclaim_idle_ms,
            timeout_seconds=config.timeout_seconds,
        )

    # -- the interface ---------------------------------------------------------------------------

    def publish(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        encoded = encode_events(events)
        ids: list[str] = []
        with self._errors("publish events to"):
            for start in range(0, len(encoded), BATCH):
                pipe = self._client.pipeline(transaction=False)
                for blob in encoded[start : start + BATCH]:
                    pipe.xadd(self._stream, {"e": blob}, maxlen=self.max_length, approximate=True)
                ids.extend(i.decode() for i in pipe.execute())
        return ids

    def read(self, consumer: str, *, count: int = 500, block_ms: int = 100) -> list[Delivery]:
        check_read(consumer, count, block_ms)
        with self._errors("read events from"):
            out = self._with_group(lambda: self._claim_and_read(consumer, count))
            # leave the socket time to answer: a read blocked past its timeout would fail
            block = min(block_ms, int(self.timeout_seconds * 1000) - 100)
            if not out and block > 0:
                out = self._with_group(lambda: self._read_blocking(consumer, count, block))
        return out

    def ack(self, message_ids: Sequence[str]) -> int:
        ids = [str(m) for m in message_ids]
        with self._errors("acknowledge messages in"):
            pipe = self._client.pipeline(transaction=False)
            for start in range(0, len(ids), BATCH):
                pipe.xack(self._stream, self.group, *ids[start : start + BATCH])
            return sum(int(n) for n in pipe.execute())

    def mark_processed(self, event_ids: Sequence[str]) -> None:
        ids = [str(e) for e in event_ids]
        with self._errors("record processed events in"):
            pipe = self._client.pipeline(transaction=False)
            for start in range(0, len(ids), BATCH):
                pipe.sadd(self._ledger, *ids[start : start + BATCH])
            pipe.execute()

    def processed(self, event_ids: Sequence[str]) -> list[bool]:
        ids = [str(e) for e in event_ids]
        with self._errors("read the processed ledger from"):
            pipe = self._client.pipeline(transaction=False)
            for start in range(0, len(ids), BATCH):
                pipe.smismember(self._ledger, ids[start : start + BATCH])
            return [bool(flag) for reply in pipe.execute() for flag in reply]

    def dead_letter(self, deliveries: Sequence[tuple[Delivery, str]]) -> None:
        now = datetime.now(_CHINA).replace(tzinfo=None).isoformat()
        letters: list[dict[Any, Any]] = [
            {"e": blob, "r": str(reason), "t": now, "m": d.message_id}
            for (d, reason), blob in zip(
                deliveries, encode_events([d.event for d, _ in deliveries]), strict=True
            )
        ]
        with self._errors("keep dead letters in"):
            pipe = self._client.pipeline(transaction=False)
            for fields in letters:
                pipe.xadd(self._dead, fields, maxlen=self.max_length, approximate=True)
            pipe.execute()

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        with self._errors("read dead letters from"):
            entries = cast("list[Any]", self._client.xrevrange(self._dead, "+", "-", count=limit))
        return [
            DeadLetter(
                message_id=f[b"m"].decode(),
                event=_decode(message_id, f.get(b"e")),
                reason=f[b"r"].decode(),
                ts=datetime.fromisoformat(f[b"t"].decode()),
            )
            for message_id, f in entries
        ]

    def status(self) -> BusStatus:
        with self._errors("read the status of"):
            self._ensure_group()
            pipe = self._client.pipeline(transaction=False)
            pipe.xinfo_groups(self._stream)
            pipe.xlen(self._stream)
            pipe.xinfo_consumers(self._stream, self.group)
            pipe.scard(self._ledger)
            pipe.xlen(self._dead)
            groups, length, consumers, processed, dead = pipe.execute()
            group = next(g for g in groups if g["name"].decode() == self.group)
            lag = group["lag"]
            if lag is None:  # Redis cannot tell (entries deleted by XDEL): count them
                lag = self._count_after(group["last-delivered-id"].decode())
        return BusStatus(
            length=int(length),
            lag=int(lag),
            pending=int(group["pending"]),
            dead_letters=int(dead),
            processed=int(processed),
            consumers={c["name"].decode(): int(c["pending"]) for c in consumers},
        )

    def close(self) -> None:
        self._client.close()

    # -- internals -------------------------------------------------------------------------------

    def _claim_and_read(self, consumer: str, count: int) -> list[Delivery]:
        """Reclaimed idle entries, then new ones (one round trip)."""
        cursor = self._cursors.get(consumer, "0-0")
        args: list[str | int] = [self.group, consumer, self.reclaim_idle_ms, cursor, count]
        reply: Any = self._read(keys=[self._stream], args=args)
        next_cursor, claimed, attempts, trimmed, fresh = reply
        self._cursors[consumer] = next_cursor.decode()
        if trimmed:
            logger.warning(
                "%d pending events of %s were trimmed from the stream before they were "
                "processed (MAXLEN %d); raise the bus's max_length: %s",
                len(trimmed),
                self._stream,
                self.max_length,
                ", ".join(t.decode() for t in trimmed[:10]),
            )
        out = [
            Delivery(m.decode(), _decode(m, _field(fields)), int(n))
            for (m, fields), n in zip(claimed, attempts, strict=True)
        ]
        out.extend(Delivery(m.decode(), _decode(m, _field(fields))) for m, fields in fresh)
        return out

    def _read_blocking(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """New entries, waiting up to ``block_ms`` for the first."""
        reply: Any = self._client.xreadgroup(
            self.group, consumer, {self._stream: ">"}, count=count, block=block_ms
        )
        return [
            Delivery(m.decode(), _decode(m, fields.get(b"e")))
            for _, entries in reply or ()
            for m, fields in entries
        ]

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self._client.xgroup_create(self._stream, self.group, id="0", mkstream=True)
        except self._response_error as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    def _with_group(self, call: Any) -> Any:
        """``call()``, creating the group first on first use, and again if it was deleted."""
        self._ensure_group()
        try:
            return call()
        except self._response_error as e:
            if "NOGROUP" not in str(e):
                raise
            self._group_ready = False  # the stream was deleted (a flush): start afresh
            self._cursors.clear()
            self._ensure_group()
            return call()

    def _count_after(self, last_id: str) -> int:
        """How many entries follow ``last_id`` (paged XRANGE; only when XINFO has no lag)."""
        n, start = 0, f"({last_id}"
        while True:
            page = cast("list[Any]", self._client.xrange(self._stream, start, "+", count=10_000))
            n += len(page)
            if len(page) < 10_000:
                return n
            start = f"({page[-1][0].decode()}"

    @property
    def _safe_url(self) -> str:
        return re.sub(r"//[^@/]*@", "//***@", self.url)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except self._connection_errors as e:
            raise StoreError(
                f"Redis at {self._safe_url} cannot be reached to {doing} it ({e}). Start Redis "
                "or set the event bus's url (QIANMIAN_STREAM__URL)."
            ) from e
        except self._redis_errors as e:
            raise StoreError(
                f"Could not {doing} the event stream {self._stream} in Redis at "
                f"{self._safe_url}: {e}."
            ) from e


def _field(flat: list[bytes]) -> bytes | None:
    """The ``e`` value of an entry's flat field list (as a Lua script returns it)."""
    for i in range(0, len(flat) - 1, 2):
        if flat[i] == b"e":
            return flat[i + 1]
    return None


def _decode(message_id: bytes | str, blob: bytes | None) -> dict[str, Any]:
    """The event of an entry; an entry that is not an event's JSON is kept whole for the
    consumer to dead-letter, never dropped."""
    try:
        event = orjson.loads(blob) if blob is not None else None
    except orjson.JSONDecodeError:
        event = None
    if isinstance(event, dict):
        return event
    logger.warning("Stream entry %r does not hold an event's JSON.", message_id)
    return {"_unreadable": None if blob is None else blob.decode("utf-8", "replace")}
