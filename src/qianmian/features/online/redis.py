"""The production online feature store: vectors in Redis, shared by every serving process.

Key layout under ``key_prefix`` (``P``), for snapshot version ``N``::

    P:current        N, the version readers use (switched atomically by load)
    P:seq            the last version number handed out
    P:vN:meta        the snapshot's columns, kinds, string categories and as_of (JSON)
    P:vN:c:<id>      the customer's vector: little-endian float64 per feature (8 bytes each)
    P:vN:d:<id>      HASH of the customer's accumulators since as_of (events)
    P:vN:s:<id>      SET of the customer's applied event ids and distinct-value markers

``load`` writes version N+1 beside N with pipelined ``MSET`` batches, switches ``P:current``
(only forwards), then deletes every older version. ``get`` is one Lua call that checks the
version and reads the vector and the accumulators together, so a reader never mixes versions;
``apply_event`` is one Lua call that checks the version, records the event id and applies
every increment, so concurrent events never lose an update and a repeated id changes nothing;
``apply_events`` does the same for a whole batch in one call (one round trip), in order.
Scripts touch the version key and the customer's keys together: use a single Redis (with
replicas or Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

from qianmian.errors import StoreError, ValidationError
from qianmian.features.online.base import (
    EventOutcome,
    EventSource,
    OnlineFeatureStore,
    check_event,
)
from qianmian.features.online.configs import RedisOnlineConfig
from qianmian.features.online.updates import Op, UpdatePlan
from qianmian.features.online.vector import VectorLayout

if TYPE_CHECKING:
    import redis

__all__ = ["RedisOnlineStore"]

logger = logging.getLogger(__name__)

LOAD_BATCH = 5_000
READ_BATCH = 500
DELETE_BATCH = 5_000
APPLY_BATCH = 1_000  # events per script call: bounds how long one call holds Redis

_READ = """
local v = redis.call('GET', KEYS[1])
if v ~= ARGV[1] then return {v or false} end
local out = {v}
for i = 2, #KEYS, 2 do
  out[#out + 1] = redis.call('GET', KEYS[i])
  out[#out + 1] = table.concat(redis.call('HGETALL', KEYS[i + 1]), ' ')
end
return out
"""
# Applies one (op, field, arg) to accumulators D with seen-set S; shared by both scripts.
_APPLY_OP = """
local function apply_op(D, S, op, field, arg)
  if op == 'add' then
    redis.call('HINCRBYFLOAT', D, field, arg)
  elseif op == 'addi' then
    redis.call('HINCRBY', D, field, arg)
  elseif op == 'max' or op == 'min' then
    local cur = redis.call('HGET', D, field)
    local x = tonumber(arg)
    if not cur or (op == 'max' and x > tonumber(cur)) or (op == 'min' and x < tonumber(cur)) then
      redis.call('HSET', D, field, arg)
    end
  elseif op == 'distinct' then
    if redis.call('SADD', S, 'd:' .. arg) == 1 then
      redis.call('HINCRBY', D, field, 1)
    end
  end
end
"""
# KEYS: current, vector, accumulators, seen. ARGV: version, event id, then (op, field, arg)*.
_APPLY = (
    _APPLY_OP
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
if redis.call('SADD', KEYS[4], 'e:' .. ARGV[2]) == 0 then return 0 end
for i = 3, #ARGV, 3 do apply_op(KEYS[3], KEYS[4], ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
return 1
"""
)
# A batch, in order. KEYS: current, then (vector, accumulators, seen) per event. ARGV: version,
# then per event its id and its ops packed in one string, "op US field US arg RS" each (US, RS:
# the ASCII unit and record separators; one string per event packs far faster than three
# arguments per op). One outcome per event.
_APPLY_MANY = (
    _APPLY_OP
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end
local US, RS = string.char(31), string.char(30)
local OP = '([^' .. US .. ']*)' .. US .. '([^' .. US .. ']*)' .. US .. '([^' .. RS .. ']*)' .. RS
local out, a = {}, 2
for k = 2, #KEYS, 3 do
  local D, S = KEYS[k + 1], KEYS[k + 2]
  if redis.call('EXISTS', KEYS[k]) == 0 then
    out[#out + 1] = -1
  elseif redis.call('SADD', S, 'e:' .. ARGV[a]) == 0 then
    out[#out + 1] = 0
  else
    for op, field, arg in string.gmatch(ARGV[a + 1], OP) do apply_op(D, S, op, field, arg) end
    out[#out + 1] = 1
  end
  a = a + 2
end
return out
"""
)
# Switch to ARGV[1] only forwards; returns the version replaced (or the newer one that won).
_SWITCH = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return cur
"""
_OUTCOMES: dict[int, EventOutcome] = {1: "applied", 0: "duplicate", -1: "unknown_customer"}


@dataclass(frozen=True)
class _Served:
    version: bytes
    layout: VectorLayout
    plan: UpdatePlan


def _packed(key: str, ops: list[Op]) -> str:
    """An event's ops as one string for the batch script (``str`` of a float is its repr)."""
    text = "".join([f"{op}\x1f{fld}\x1f{arg}\x1e" for op, fld, arg in ops])
    if text.count("\x1e") != len(ops) or text.count("\x1f") != 2 * len(ops):
        raise ValidationError(
            f"Event {key} has a value holding an ASCII separator (\\x1e or \\x1f), which "
            "the online store cannot count; remove control characters from the event."
        )
    return text


class RedisOnlineStore(OnlineFeatureStore):
    """:class:`~qianmian.features.online.base.OnlineFeatureStore` in Redis (redis-py).

    Parameters
    ----------
    url : str
        Redis URL, e.g. ``redis://127.0.0.1:6379/0``.
    key_prefix : str
        Every key written starts with it (several stores can share one Redis).
    timeout_seconds : float
        Connect and command timeout.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key_prefix: str = "qianmian:online",
        timeout_seconds: float = 2.0,
    ) -> None:
        try:
            import redis
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise StoreError(
                "The Redis online store needs redis-py: pip install 'qianmian[redis]'."
            ) from e
        self.url = url
        self.key_prefix = key_prefix
        self._redis_errors = (redis.RedisError,)
        self._connection_errors = (redis.ConnectionError, redis.TimeoutError)
        self._client: redis.Redis = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds
        )
        self._read = self._client.register_script(_READ)
        self._apply = self._client.register_script(_APPLY)
        self._apply_many = self._client.register_script(_APPLY_MANY)
        self._switch = self._client.register_script(_SWITCH)
        self._current = f"{key_prefix}:current"
        self._served: _Served | None = None  # the version last seen, replaced as one object

    @classmethod
    def from_config(cls, config: RedisOnlineConfig) -> RedisOnlineStore:
        return cls(config.url, key_prefix=config.key_prefix, timeout_seconds=config.timeout_seconds)

    # -- keys ------------------------------------------------------------------------------------

    def _key(self, version: bytes | int, kind: str, customer_id: int | None = None) -> str:
        v = version.decode() if isinstance(version, bytes) else version
        tail = "" if customer_id is None else f":{customer_id}"
        return f"{self.key_prefix}:v{v}:{kind}{tail}"

    # -- the interface ---------------------------------------------------------------------------

    def load(self, features: pa.Table) -> int:
        layout, ids, matrix = VectorLayout.pack(features)
        width = matrix.shape[1] * 8
        with self._errors("load a snapshot into"):
            version = int(self._client.incr(f"{self.key_prefix}:seq"))
            id_list = ids.tolist()
            for start in range(0, len(id_list), LOAD_BATCH):
                chunk = id_list[start : start + LOAD_BATCH]
                blob = matrix[start : start + LOAD_BATCH].astype("<f8", copy=False).tobytes()
                rows = {
                    self._key(version, "c", c): blob[i * width : (i + 1) * width]
                    for i, c in enumerate(chunk)
                }
                self._client.mset(rows)
            self._client.set(self._key(version, "meta"), layout.to_json())
            replaced = int(self._switch(keys=[self._current], args=[version]))
            if replaced > version:  # a newer load won the race: this snapshot is not served
                logger.warning(
                    "Snapshot v%s was superseded by v%s before it was served.", version, replaced
                )
            self._delete_versions_before(max(version, replaced))
        return len(id_list)

    def get(self, customer_id: int) -> dict[str, Any] | None:
        return self.get_many([customer_id])[0]

    def read(self, customer_id: int) -> tuple[dict[str, Any] | None, datetime | None]:
        with self._errors("read features from"):
            vectors, served = self._read_batch_served([int(customer_id)])
        return vectors[0], None if served is None else served.layout.as_of

    def get_many(self, customer_ids: Sequence[int]) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        with self._errors("read features from"):
            for start in range(0, len(customer_ids), READ_BATCH):
                out.extend(
                    self._read_batch([int(c) for c in customer_ids[start : start + READ_BATCH]])
                )
        return out

    def apply_event(
        self, event_id: str | int, source: EventSource, event: Mapping[str, Any]
    ) -> EventOutcome:
        key, customer, event = check_event(event_id, source, event)
        with self._errors("apply an event in"):
            served = self._served or self._refresh()
            for _ in range(3):  # a reload between our version check and the script: retry
                if served is None:
                    return "no_snapshot"
                version = served.version
                if event["ts"] < served.layout.as_of:
                    return "before_snapshot"
                ops = served.plan.ops(source, event)
                args: list[Any] = [version, key]
                for op, fld, arg in ops:
                    args += [op, fld, repr(arg) if isinstance(arg, float) else arg]
                keys = [self._current, *(self._key(version, k, customer) for k in "cds")]
                result = int(self._apply(keys=keys, args=args))
                if result != -2:
                    return _OUTCOMES[result]
                served = self._refresh()
        raise StoreError(  # pragma: no cover - needs three reloads during one event
            f"The online snapshot in Redis at {self._safe_url} kept changing while event {key} "
            "was applied; retry the event."
        )

    def apply_events(
        self, items: Sequence[tuple[str | int, EventSource, Mapping[str, Any]]]
    ) -> list[EventOutcome]:
        checked = [(check_event(i, s, e), s) for i, s, e in items]  # all valid before any applied
        outcomes: list[EventOutcome] = []
        with self._errors("apply events in"):
            for start in range(0, len(checked), APPLY_BATCH):
                outcomes += self._apply_chunk(checked[start : start + APPLY_BATCH])
        return outcomes

    def as_of(self) -> datetime | None:
        with self._errors("read the snapshot time from"):
            served = self._refresh()
        return None if served is None else served.layout.as_of

    def close(self) -> None:
        self._client.close()

    # -- internals -------------------------------------------------------------------------------

    def _apply_chunk(
        self, checked: list[tuple[tuple[str, int, dict[str, Any]], EventSource]]
    ) -> list[EventOutcome]:
        """Apply validated events in one script call (retried if a reload intervenes)."""
        served = self._served or self._refresh()
        for _ in range(3):
            if served is None:
                return ["no_snapshot"] * len(checked)
            version, as_of = served.version, served.layout.as_of
            outcomes: list[EventOutcome | None] = []
            keys: list[str] = [self._current]
            args: list[Any] = [version]
            for (key, customer, event), source in checked:
                if event["ts"] < as_of:
                    outcomes.append("before_snapshot")
                    continue
                outcomes.append(None)  # answered by the script, in this order
                ops = served.plan.ops(source, event)
                keys += [self._key(version, k, customer) for k in "cds"]
                args += [key, _packed(key, ops)]
            if len(keys) == 1:
                return cast("list[EventOutcome]", outcomes)
            reply = self._apply_many(keys=keys, args=args)
            if isinstance(reply, list):
                answers = iter(reply)
                return [o if o is not None else _OUTCOMES[int(next(answers))] for o in outcomes]
            served = self._refresh()  # reloaded meanwhile: nothing was applied, redo
        raise StoreError(  # pragma: no cover - needs three reloads during one batch
            f"The online snapshot in Redis at {self._safe_url} kept changing while a batch of "
            f"{len(checked)} events was applied; retry the batch."
        )

    def _read_batch(self, ids: list[int]) -> list[dict[str, Any] | None]:
        return self._read_batch_served(ids)[0]

    def _read_batch_served(
        self, ids: list[int]
    ) -> tuple[list[dict[str, Any] | None], _Served | None]:
        """The vectors of ``ids`` and the snapshot they were read from (one round trip)."""
        served = self._served or self._refresh()
        for _ in range(3):
            if served is None:
                return [None] * len(ids), None
            version = served.version
            keys = [self._current]
            for c in ids:
                keys += [self._key(version, "c", c), self._key(version, "d", c)]
            reply = self._read(keys=keys, args=[version])
            if reply[0] != version:  # reloaded: read the new snapshot's layout and retry
                served = self._refresh()
                continue
            out: list[dict[str, Any] | None] = []
            for i in range(len(ids)):
                blob, flat = reply[1 + 2 * i], reply[2 + 2 * i]
                if blob is None:
                    out.append(None)
                    continue
                vector = served.layout.decode_bytes(blob)
                if flat:  # "field value field value ..." (one string parses faster than a list)
                    parts = flat.decode().split(" ")
                    deltas = dict(zip(parts[::2], map(float, parts[1::2]), strict=True))
                    served.plan.apply(vector, deltas)
                out.append(vector)
            return out, served
        raise StoreError(  # pragma: no cover - needs three reloads during one read
            f"The online snapshot in Redis at {self._safe_url} kept changing during a read; retry."
        )

    def _refresh(self) -> _Served | None:
        """Read the current version and, if new, its layout; None if nothing is loaded."""
        version = cast("bytes | None", self._client.get(self._current))  # bytes: no decoding
        served = self._served
        if version is None:
            self._served = None
            return None
        if served is None or version != served.version:
            meta = self._client.get(self._key(version, "meta"))
            if meta is None:
                raise StoreError(
                    f"Redis at {self._safe_url} serves online snapshot v{version.decode()} "
                    f"but its metadata key {self._key(version, 'meta')} is missing; reload it."
                )
            layout = VectorLayout.from_json(meta)
            served = _Served(version, layout, UpdatePlan(layout.names))
            self._served = served
        return served

    def _delete_versions_before(self, version: int) -> None:
        """Remove every key of versions older than ``version`` (old snapshots, failed loads)."""
        pattern = re.compile(rf"^{re.escape(self.key_prefix)}:v(\d+):".encode())
        doomed: list[bytes] = []
        for key in self._client.scan_iter(match=f"{self.key_prefix}:v*", count=DELETE_BATCH):
            m = pattern.match(key)
            if m and int(m.group(1)) < version:
                doomed.append(key)
                if len(doomed) >= DELETE_BATCH:
                    self._client.unlink(*doomed)
                    doomed.clear()
        if doomed:
            self._client.unlink(*doomed)

    @property
    def _safe_url(self) -> str:
        return re.sub(r"//[^@/]*@", "//***@", self.url)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except self._connection_errors as e:
            raise StoreError(
                f"Redis at {self._safe_url} cannot be reached ({e}). Start Redis or set the "
                "online store's url (QIANMIAN_ONLINE__URL)."
            ) from e
        except self._redis_errors as e:
            raise StoreError(f"Could not {doing} Redis at {self._safe_url}: {e}.") from e
