"""The production decision state: caps, budgets and preferences in Redis, shared by every process.

Key layout under ``key_prefix`` (``P``)::

    P:n:<counter key>  a counter, in integer units of 1/10,000 (INCRBY/DECRBY; EXPIRE by its ttl)
    P:r:<id>           HASH of a pending reservation: counter key → units it added
    P:pending          ZSET of pending reservation ids, scored by their time-out (epoch seconds
                       of the naive ``now`` passed in, plus ``ttl_seconds``)
    P:rseq             the last reservation id handed out
    P:c:<customer id>  HASH of a customer: k (consented channels, comma-separated), m (marketing
                       opt-out 0/1), p (personalisation opt-out 0/1), h (held products,
                       comma-separated), s (marketing suppressed until), x:<offer> (offer hidden
                       until), i:<offer> (recent ignore times, space-separated); times are
                       microseconds since 1970-01-01 of the naive datetimes passed in
    P:o:<key>          first_time markers (SET NX PX)
    P:b:<key>          HASH of a bandit key's successes s and failures f (HINCRBYFLOAT)

Amounts are integers (see :data:`~qianmian.decide.state.units.UNITS_PER_ONE`) rather than
INCRBYFLOAT, so a CNY budget reserved and released a million times comes back to the cent.
``reserve`` is one EVALSHA: it releases a few timed-out reservations, finds the first attempt
that fits, applies it and records it. A reservation leaves ``P:pending`` exactly once — by
confirm, release or time-out — so it is never both confirmed and released. Scripts name keys
they build from the prefix: use a single Redis (with replicas or Sentinel), not Redis Cluster.

The client is never retried automatically: a reservation whose reply timed out may have run,
and running it again would reserve twice. A stopped Redis fails within ``timeout_seconds``
with :class:`~qianmian.errors.StoreError`; broken connections are replaced on the next call,
so the same instance works again once Redis is back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from qianmian.decide.configs import RedisStateConfig
from qianmian.decide.state import redis_scripts
from qianmian.decide.state.base import (
    CustomerContactState,
    DecisionState,
    Outcome,
    Reservation,
    ReservationAttempt,
    SuppressionRules,
)
from qianmian.decide.state.units import (
    EXPIRED_PER_RESERVE,
    check_consents,
    check_outcome,
    check_positive,
    epoch_micros,
    epoch_seconds,
    from_epoch_micros,
    from_units,
    plan_attempts,
)
from qianmian.errors import NotFoundError, StoreError, ValidationError

if TYPE_CHECKING:
    import redis

__all__ = ["RedisDecisionState"]

LOAD_BATCH = 5_000  # customers per pipelined round trip in load_customers
_DAY_MICROS = 86_400_000_000


class RedisDecisionState(DecisionState):
    """:class:`~qianmian.decide.state.base.DecisionState` in Redis (redis-py, Lua scripts).

    Parameters
    ----------
    url : str
        Redis URL, e.g. ``redis://127.0.0.1:6379/0`` (a password in it is never shown in errors).
    key_prefix : str
        Every key written starts with it (several states can share one Redis).
    timeout_seconds : float
        Connect and command timeout: how long a call waits for a stopped or stuck Redis.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key_prefix: str = "qianmian:decide",
        timeout_seconds: float = 0.5,
    ) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise StoreError(
                "The Redis decision state needs redis-py: pip install 'qianmian[redis]'."
            ) from e
        self.url = url
        self.key_prefix = key_prefix
        self.timeout_seconds = timeout_seconds
        self._redis_errors = (redis.RedisError,)
        self._connection_errors = (redis.ConnectionError, redis.TimeoutError)
        self._client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),  # never re-run a script that may have run (see above)
        )
        self._reserve = self._client.register_script(redis_scripts.RESERVE)
        self._confirm = self._client.register_script(redis_scripts.CONFIRM)
        self._release = self._client.register_script(redis_scripts.RELEASE)
        self._release_expired = self._client.register_script(redis_scripts.RELEASE_EXPIRED)
        self._set_preferences = self._client.register_script(redis_scripts.SET_PREFERENCES)
        self._record_outcome = self._client.register_script(redis_scripts.RECORD_OUTCOME)
        self._pending = f"{key_prefix}:pending"
        self._sequence = f"{key_prefix}:rseq"
        self._reservation_prefix = f"{key_prefix}:r:"

    @classmethod
    def from_config(cls, config: RedisStateConfig) -> RedisDecisionState:
        return cls(config.url, key_prefix=config.key_prefix, timeout_seconds=config.timeout_seconds)

    def _customer_key(self, customer_id: int) -> str:
        return f"{self.key_prefix}:c:{int(customer_id)}"

    # -- customers -------------------------------------------------------------------------------

    def load_customers(self, customers: Iterable[CustomerContactState]) -> int:
        n = 0
        with self._errors("load customer states into"):
            pipe = self._client.pipeline(transaction=False)
            for c in customers:
                consents = ",".join(sorted(check_consents(c.consents, c.customer_id)))
                held = ",".join(sorted(c.held_products))
                if held.count(",") != max(len(c.held_products) - 1, 0):
                    raise ValidationError(
                        f"The held products of customer {c.customer_id} include an id with a "
                        f"comma ({held!r}); product ids may not contain commas."
                    )
                # HSET leaves the suppression fields (s, x:*, i:*) as they are.
                pipe.execute_command(
                    "HSET",
                    self._customer_key(c.customer_id),
                    "k",
                    consents,
                    "m",
                    int(bool(c.marketing_opt_out)),
                    "p",
                    int(bool(c.personalisation_opt_out)),
                    "h",
                    held,
                )
                n += 1
                if n % LOAD_BATCH == 0:
                    pipe.execute()
            pipe.execute()
        return n

    def customer(self, customer_id: int) -> CustomerContactState | None:
        with self._errors(f"read customer {customer_id} from"):
            fields = cast(
                "dict[bytes, bytes]", self._client.hgetall(self._customer_key(customer_id))
            )
        return _customer_state(customer_id, fields) if b"k" in fields else None

    def set_preferences(
        self,
        customer_id: int,
        *,
        consents: Mapping[str, bool] | None = None,
        marketing_opt_out: bool | None = None,
        personalisation_opt_out: bool | None = None,
    ) -> CustomerContactState:
        changes = dict(consents or {})
        check_consents(changes, customer_id)
        args: list[Any] = [_flag(marketing_opt_out), _flag(personalisation_opt_out)]
        for channel, on in sorted(changes.items()):
            args += [channel, "1" if on else "0"]
        with self._errors(f"set the preferences of customer {customer_id} in"):
            reply = self._set_preferences(keys=[self._customer_key(customer_id)], args=args)
        if reply is None:
            raise NotFoundError(
                f"Customer {customer_id} has no contact state in Redis at {self._safe_url}; "
                "load the customers first with qianmian.decide.profiles.load_customer_states."
            )
        return _customer_state(customer_id, _pairs(reply))

    def record_outcome(
        self,
        customer_id: int,
        offer_id: str,
        outcome: Outcome,
        ts: datetime,
        rules: SuppressionRules,
    ) -> CustomerContactState:
        check_outcome(outcome, rules)
        ts_us = epoch_micros(ts, "outcome time 'ts'")
        window = round(rules.ignore_window_days * _DAY_MICROS)
        days = rules.hide_days if outcome == "ignored" else rules.complaint_days
        args: list[Any] = [outcome, offer_id, ts_us, rules.ignore_count, ts_us - window]
        args += [ts_us + round(days * _DAY_MICROS), window]
        with self._errors(f"record an outcome of customer {customer_id} in"):
            reply = self._record_outcome(keys=[self._customer_key(customer_id)], args=args)
        return _customer_state(customer_id, _pairs(reply))

    # -- counters and reservations ---------------------------------------------------------------

    def reserve(
        self, attempts: Sequence[ReservationAttempt], *, now: datetime, ttl_seconds: float
    ) -> Reservation:
        plans = plan_attempts(attempts)
        check_positive("ttl_seconds", ttl_seconds)
        now_s = epoch_seconds(now, "reservation time 'now'")
        keys = [self._pending, self._sequence]
        args: list[Any] = [self._reservation_prefix, now_s, now_s + ttl_seconds]
        args += [EXPIRED_PER_RESERVE, len(plans), *(len(p) for p in plans)]
        names: list[str] = []
        for plan in plans:
            for key, units, limit, ttl in plan:
                keys.append(f"{self.key_prefix}:n:{key}")
                names.append(key)
                args += [units, limit, ttl]
        with self._errors("reserve counters in"):
            index, reservation_id, blocked = self._reserve(keys=keys, args=args)
        return Reservation(
            int(index) - 1 if index else None,
            None if reservation_id is None else str(reservation_id),
            tuple(names[int(b) - 1] for b in blocked),
        )

    def confirm(self, reservation_id: str) -> bool:
        with self._errors(f"confirm reservation {reservation_id} in"):
            done = self._confirm(
                keys=[self._pending], args=[self._reservation_prefix, reservation_id]
            )
        return bool(done)

    def release(self, reservation_id: str) -> bool:
        with self._errors(f"release reservation {reservation_id} in"):
            done = self._release(
                keys=[self._pending], args=[self._reservation_prefix, reservation_id]
            )
        return bool(done)

    def release_expired(self, now: datetime, limit: int = 1000) -> int:
        now_s = epoch_seconds(now, "time 'now'")
        with self._errors("release timed-out reservations in"):
            released = self._release_expired(
                keys=[self._pending], args=[self._reservation_prefix, now_s, int(limit)]
            )
        return int(released)

    def counter_values(self, keys: Sequence[str]) -> list[float]:
        if not keys:
            return []
        with self._errors("read counters from"):
            values = self._client.mget([f"{self.key_prefix}:n:{k}" for k in keys])
        return [from_units(int(v)) if v is not None else 0.0 for v in values]

    # -- idempotency and the bandit --------------------------------------------------------------

    def first_time(self, key: str, ttl_seconds: int) -> bool:
        check_positive("ttl_seconds", ttl_seconds)
        millis = max(1, round(ttl_seconds * 1000))
        with self._errors("check an idempotency key in"):
            done = self._client.set(f"{self.key_prefix}:o:{key}", 1, nx=True, px=millis)
        return bool(done)

    def bandit_stats(self, keys: Sequence[str]) -> list[tuple[float, float]]:
        if not keys:
            return []
        with self._errors("read bandit statistics from"):
            pipe = self._client.pipeline(transaction=False)
            for k in keys:
                pipe.hmget(f"{self.key_prefix}:b:{k}", "s", "f")
            replies = pipe.execute()
        return [(float(s or 0.0), float(f or 0.0)) for s, f in replies]

    def bandit_update(self, key: str, successes: float, failures: float) -> None:
        name = f"{self.key_prefix}:b:{key}"
        with self._errors("update bandit statistics in"):
            pipe = self._client.pipeline(transaction=True)  # both fields move together
            pipe.hincrbyfloat(name, "s", float(successes))
            pipe.hincrbyfloat(name, "f", float(failures))
            pipe.execute()

    # -- connection ------------------------------------------------------------------------------

    def ping(self) -> None:
        with self._errors("ping"):
            self._client.ping()

    def close(self) -> None:
        self._client.close()

    @property
    def _safe_url(self) -> str:
        return re.sub(r"//[^@/]*@", "//***@", self.url)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except self._connection_errors as e:
            # every pooled connection went to the same server: drop them all, so that once it
            # is back the next call connects afresh instead of failing on each stale one
            self._client.connection_pool.disconnect()
            raise StoreError(
                f"Redis at {self._safe_url} cannot be reached to {doing} it ({e}). Start Redis "
                "or set the decision state's url (QIANMIAN_STATE__URL)."
            ) from e
        except self._redis_errors as e:
            raise StoreError(f"Could not {doing} Redis at {self._safe_url}: {e}.") from e


def _flag(value: bool | None) -> str:
    """A preference argument: '' keeps the stored value, '0'/'1' sets it."""
    return "" if value is None else str(int(bool(value)))


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """A flat [field, value, ...] reply as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _customer_state(customer_id: int, fields: Mapping[bytes, bytes]) -> CustomerContactState:
    """A customer's hash (see the module docstring) as a :class:`CustomerContactState`."""
    consents = fields.get(b"k", b"")
    held = fields.get(b"h", b"")
    suppressed = fields.get(b"s")
    hidden = {
        f[2:].decode(): from_epoch_micros(int(v)) for f, v in fields.items() if f[:2] == b"x:"
    }
    return CustomerContactState(
        customer_id,
        frozenset(consents.decode().split(",")) if consents else frozenset(),
        fields.get(b"m") == b"1",
        fields.get(b"p") == b"1",
        frozenset(held.decode().split(",")) if held else frozenset(),
        None if suppressed is None else from_epoch_micros(int(suppressed)),
        hidden,
    )
