"""The :class:`OnlineFeatureStore` interface: one customer's features, fast, for live decisions.

A store serves a **snapshot** — a batch feature table (:meth:`StoreFeatureEngine.build
<qianmian.features.engine.FeatureEngine.build>`) loaded whole — plus the **events** that
arrived after the snapshot's ``as_of``. Semantics, stated plainly:

* ``load`` replaces the snapshot atomically: readers see the old vectors or the new ones, never
  a mix. Events applied to the old snapshot are dropped with it (the new batch contains them if
  they happened before its ``as_of``); the event stream replays events from the new ``as_of``,
  and events dated before it are ignored, so a replay is safe.
* ``apply_event`` **adds** a transaction or app event to the windows that count it (spend and
  count windows, category spend, logins, page views, searches, failed transfers ...), keeps
  maxima, running means and "days since" (→ 0) current, and recomputes the derived features
  that depend on them (category shares, trends, lifecycle stage). The rules come from the
  catalogue's definitions (:class:`~qianmian.features.online.updates.UpdatePlan`).
* Windows are **not slid forward**: a 7-day window keeps counting the rows that were inside it
  at ``as_of`` until the next batch, so it grows by the events since ``as_of`` and never
  shrinks. Until the next batch, "spend_7d" means "spend in the 7 days before as_of, plus
  everything since". Likewise "days since" features do not grow day by day: they keep the
  snapshot's value until an event sets them to 0. The event stream will add expiry.
* Features that no event changes (profile, holdings, statements, loans, age, tenure) are the
  snapshot's. Distinct-day counts (``active_days_30d``) are exact when ``as_of`` is a midnight,
  as batch snapshots are; otherwise the as-of day may be counted twice.
* Each event carries an id; an id already applied for that customer in this snapshot is
  ignored (at-least-once delivery becomes exactly-once in effect); ids are kept until the
  next load.

Backends: :class:`~qianmian.features.online.memory.MemoryOnlineStore` (in-process, the
embedded default) and :class:`~qianmian.features.online.redis.RedisOnlineStore`; they pass the
same contract tests.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from numbers import Real
from typing import Any, Literal

import pyarrow as pa

from qianmian.errors import ValidationError
from qianmian.features.online.updates import EVENT_SOURCES, EventSource

__all__ = ["EventOutcome", "EventSource", "OnlineFeatureStore", "check_event"]

EventOutcome = Literal["applied", "duplicate", "before_snapshot", "unknown_customer", "no_snapshot"]
_CHINA = timezone(timedelta(hours=8))


class OnlineFeatureStore(ABC):
    """Feature vectors by customer id: a batch snapshot plus the events since its as_of.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from datetime import datetime
    >>> from qianmian.features.online import MemoryOnlineStore
    >>> store = MemoryOnlineStore()
    >>> store.load(pa.table({"customer_id": [7], "as_of": [datetime(2026, 8, 1)],
    ...                      "spend_7d": [120.0], "txn_count_7d": [2]}))
    1
    >>> store.apply_event("txn-1", "transactions",
    ...                   {"customer_id": 7, "ts": "2026-08-01 09:30", "amount": 30.0})
    'applied'
    >>> store.get(7)
    {'spend_7d': 150.0, 'txn_count_7d': 3}
    """

    @abstractmethod
    def load(self, features: pa.Table) -> int:
        """Replace the snapshot with ``features``, atomically; return the customers loaded.

        Parameters
        ----------
        features : pyarrow.Table
            ``customer_id`` (int, unique), ``as_of`` (one value), then one column per feature
            (numbers, booleans, strings), as built by ``StoreFeatureEngine.build``.
        """

    @abstractmethod
    def get(self, customer_id: int) -> dict[str, Any] | None:
        """The customer's current feature vector (feature → value), or None if not loaded."""

    def read(self, customer_id: int) -> tuple[dict[str, Any] | None, datetime | None]:
        """:meth:`get` and the as-of time of the snapshot it was read from, together.

        Backends override it to answer from one read (the live decision path calls it once per
        request); the default calls :meth:`get` then :meth:`as_of`.
        """
        return self.get(customer_id), self.as_of()

    def get_many(self, customer_ids: Sequence[int]) -> list[dict[str, Any] | None]:
        """:meth:`get` for several customers: one vector (or None) per id, in order."""
        return [self.get(c) for c in customer_ids]

    @abstractmethod
    def apply_event(
        self, event_id: str | int, source: EventSource, event: Mapping[str, Any]
    ) -> EventOutcome:
        """Add one event to its customer's vector.

        Parameters
        ----------
        event_id : str or int
            Unique per customer; a repeated id is ignored (``"duplicate"``).
        source : {"transactions", "app_events"}
        event : mapping
            A row of that table: ``customer_id``, ``ts`` (datetime or ISO text, China time)
            and the columns the features read (``amount``, ``category``, ``channel`` /
            ``event_type``, ``page`` ...).

        Returns
        -------
        {"applied", "duplicate", "before_snapshot", "unknown_customer", "no_snapshot"}
            ``before_snapshot``: the event is older than ``as_of`` (the batch has it).
        """

    def apply_events(
        self, items: Sequence[tuple[str | int, EventSource, Mapping[str, Any]]]
    ) -> list[EventOutcome]:
        """Add several events, in order: the outcome of each, as :meth:`apply_event` gives it.

        The result equals applying them one by one (a repeated id later in the batch is a
        ``"duplicate"``). Every event is validated before any is applied, so a bad one leaves
        the store unchanged. Backends override it to apply a batch in one round trip (the
        event stream's consumer calls it once per batch); the default is a loop.

        Parameters
        ----------
        items : sequence of (event_id, source, event)
            As the arguments of :meth:`apply_event`.

        Raises
        ------
        ValidationError
            An event is malformed (nothing is applied).

        Examples
        --------
        >>> import pyarrow as pa
        >>> from datetime import datetime
        >>> from qianmian.features.online import MemoryOnlineStore
        >>> store = MemoryOnlineStore()
        >>> store.load(pa.table({"customer_id": [7], "as_of": [datetime(2026, 8, 1)],
        ...                      "spend_7d": [120.0]}))
        1
        >>> e = {"customer_id": 7, "ts": "2026-08-01 09:30", "amount": 30.0}
        >>> store.apply_events([("t1", "transactions", e), ("t1", "transactions", e),
        ...                     ("t2", "transactions", {**e, "customer_id": 8})])
        ['applied', 'duplicate', 'unknown_customer']
        """
        for event_id, source, event in items:
            check_event(event_id, source, event)
        return [self.apply_event(event_id, source, event) for event_id, source, event in items]

    @abstractmethod
    def as_of(self) -> datetime | None:
        """The loaded snapshot's as-of time (None before the first load)."""

    def close(self) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Release connections (nothing to release by default)."""

    def __enter__(self) -> OnlineFeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_event(
    event_id: str | int, source: str, event: Mapping[str, Any]
) -> tuple[str, int, dict[str, Any]]:
    """Validate an event: (event id as text, customer id, the event with ``ts`` a datetime)."""
    if source not in EVENT_SOURCES:
        raise ValidationError(
            f"Event source '{source}' is not one the online store counts; use one of "
            f"{', '.join(EVENT_SOURCES)}."
        )
    key = str(event_id)
    if not key or isinstance(event_id, bool):
        raise ValidationError(f"The event id {event_id!r} is empty; every event needs an id.")
    customer = event.get("customer_id")
    if isinstance(customer, bool) or not isinstance(customer, int):
        try:
            customer = int(customer)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValidationError(
                f"Event {key} has customer_id {customer!r}; it must be an integer."
            ) from None
    out = dict(event)
    out["ts"] = _timestamp(key, event.get("ts"))
    amount = out.get("amount")
    if amount is not None and (
        isinstance(amount, bool) or not isinstance(amount, Real) or not math.isfinite(amount)
    ):
        raise ValidationError(f"Event {key} has amount {amount!r}; it must be a finite number.")
    return key, customer, out


def _timestamp(key: str, ts: Any) -> datetime:
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            raise ValidationError(
                f"Event {key} has ts {ts!r}, which is not a time like 2026-08-01 09:30:00."
            ) from None
    elif isinstance(ts, date) and not isinstance(ts, datetime):
        ts = datetime(ts.year, ts.month, ts.day)
    if not isinstance(ts, datetime):
        raise ValidationError(f"Event {key} has ts {ts!r}; every event needs its time.")
    if ts.tzinfo is not None:  # the bank's data is naive China time
        ts = ts.astimezone(_CHINA).replace(tzinfo=None)
    return ts
