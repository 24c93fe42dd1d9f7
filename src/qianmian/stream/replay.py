"""Replay: the simulated bank's (or an imported bank's) stored events, fed through the stream.

:func:`simulated_events` reads the ``transactions`` and ``app_events`` tables of a store for a
time window and turns each row into the raw event the stream carries (the JSON that ``POST
/v1/events`` accepts): transactions become ``transaction`` events with the id
``txn-<txn_id>``; app events of type login, page_view, search and transfer_failure become
events of that type with the id ``app-<event_id>`` (other app events — transfers, bill views,
logouts — carry no trigger and no online feature, and are left out). Rows are read in pages
ordered by time, so a month of a large bank never sits in memory at once.

:func:`replay` publishes events to an :class:`~qianmian.stream.bus.base.EventBus` in batches,
either as fast as the bus takes them (``speed=0``) or paced by their own timestamps (``speed=60``
replays a simulated minute per second). Event ids come from the rows, so replaying a day twice
publishes the same ids again and the consumer's processed ledger turns the second pass into
acknowledgements only.

>>> from datetime import datetime
>>> events = [{"event_id": "e1", "ts": "2026-04-30T09:00:00"},
...           {"event_id": "e2", "ts": "2026-04-30T09:00:30"}]
>>> class Printed:
...     def publish(self, batch):
...         print([e["event_id"] for e in batch]); return [str(i) for i in range(len(batch))]
>>> replay(Printed(), events, speed=0)
['e1', 'e2']
2
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from qianmian.errors import ValidationError

if TYPE_CHECKING:
    from qianmian.store.base import Store
    from qianmian.stream.bus.base import EventBus

__all__ = ["APP_EVENT_TYPES", "count_simulated_events", "replay", "simulated_events"]

APP_EVENT_TYPES = ("login", "page_view", "search", "transfer_failure")
PAGE_ROWS = 10_000  # rows per query page
PUBLISH_BATCH = 500
_TXN_COLUMNS = ("customer_id", "amount", "category", "mcc", "merchant_id", "channel", "city")
_APP_COLUMNS = ("customer_id", "page", "search_query")
_APP_TYPES_SQL = ", ".join(f"'{t}'" for t in APP_EVENT_TYPES)


def simulated_events(
    store: Store, start: date | datetime, end: date | datetime
) -> Iterator[dict[str, Any]]:
    """The stored transactions and app events with ``start <= ts < end``, as stream events.

    Parameters
    ----------
    store : Store
        Holds ``transactions`` and ``app_events`` (a generated or imported bank).
    start, end : date or datetime
        The window, China time; a date means its midnight.

    Yields
    ------
    dict
        JSON-compatible raw events in time order (a transaction before an app event at the
        same time, then by id): ``event_id``, ``type``, ``customer_id``, ``ts`` (ISO text) and
        the type's fields (``amount``, ``category``, ``channel`` ...; a page view's
        ``page``; a search's ``query``), as :func:`~qianmian.stream.events.parse_event`
        reads them. Fields the row leaves empty are omitted.
    """
    lo, hi = _moment(start), _moment(end)
    if hi <= lo:
        raise ValidationError(
            f"The replay window ends ({hi:%Y-%m-%d %H:%M}) before it starts "
            f"({lo:%Y-%m-%d %H:%M}); give --to after --from."
        )
    transactions = _pages(store, "transactions", "txn_id", _TXN_COLUMNS, "", lo, hi)
    app = _pages(
        store,
        "app_events",
        "event_id",
        ("event_type", *_APP_COLUMNS),
        f"event_type IN ({_APP_TYPES_SQL})",
        lo,
        hi,
    )
    txn_keyed = ((r["ts"], 0, r["txn_id"], r) for r in transactions)
    app_keyed = ((r["ts"], 1, r["event_id"], r) for r in app)
    for _, kind, _, row in heapq.merge(txn_keyed, app_keyed, key=lambda k: k[:3]):
        yield _transaction_event(row) if kind == 0 else _app_event(row)


def count_simulated_events(store: Store, start: date | datetime, end: date | datetime) -> int:
    """How many events :func:`simulated_events` yields for the same window."""
    lo, hi = _moment(start), _moment(end)
    params = {"lo": lo, "hi": hi}
    n = 0
    if store.has_table("transactions"):
        q = "SELECT count(*) AS n FROM transactions WHERE ts >= $lo AND ts < $hi"
        n += int(store.query(q, params).column("n")[0].as_py())
    if store.has_table("app_events"):
        q = (
            "SELECT count(*) AS n FROM app_events WHERE ts >= $lo AND ts < $hi "
            f"AND event_type IN ({_APP_TYPES_SQL})"
        )
        n += int(store.query(q, params).column("n")[0].as_py())
    return n


def replay(
    bus: EventBus,
    events: Iterable[Mapping[str, Any]],
    *,
    speed: float,
    progress: Callable[[int], None] | None = None,
    batch_size: int = PUBLISH_BATCH,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Publish ``events`` to ``bus`` in batches, at ``speed`` times their own pace.

    Parameters
    ----------
    bus : EventBus
    events : iterable of mapping
        Raw events in time order, each with ``ts`` (ISO text or datetime), e.g. from
        :func:`simulated_events`.
    speed : float
        0: as fast as possible. Otherwise simulated seconds per wall-clock second: 1 is real
        time, 60 a simulated minute per second. An event is published once its time, scaled
        from the first event's, has come (batched with the others already due).
    progress : callable, optional
        Called with the number of events published so far, after each batch.
    batch_size : int
        Most events per ``publish`` call.
    clock, sleep : callable
        The wall clock (seconds) and how to wait; tests pass fakes.

    Returns
    -------
    int
        Events published.
    """
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not math.isfinite(speed):
        raise ValidationError(f"speed must be a number of 0 or more; got {speed!r}.")
    if speed < 0:
        raise ValidationError(f"speed must be 0 (as fast as possible) or more; got {speed}.")
    if batch_size < 1:
        raise ValidationError(f"batch_size must be a positive int; got {batch_size}.")
    published = 0
    batch: list[Mapping[str, Any]] = []

    def flush() -> None:
        nonlocal published
        if batch:
            bus.publish(batch)
            published += len(batch)
            batch.clear()
            if progress is not None:
                progress(published)

    first: tuple[datetime, float] | None = None  # (first event's time, wall clock then)
    for event in events:
        if speed > 0:
            ts = _event_time(event)
            if first is None:
                first = (ts, clock())
            due = first[1] + (ts - first[0]).total_seconds() / speed
            if due > clock():
                flush()  # what is due goes out before we wait
                wait = due - clock()
                if wait > 0:
                    sleep(wait)
        batch.append(event)
        if len(batch) >= batch_size:
            flush()
    flush()
    return published


# -- internals ---------------------------------------------------------------------------------


def _moment(value: date | datetime) -> datetime:
    """A naive datetime (a date is its midnight)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime(value.year, value.month, value.day)


def _event_time(event: Mapping[str, Any]) -> datetime:
    """The event's ``ts`` as a naive datetime (for pacing)."""
    ts = event.get("ts")
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            raise ValidationError(
                f"Event {event.get('event_id')!r} has ts {ts!r}, which is not a time like "
                "2026-08-01T09:30:00; replay paces events by their time."
            ) from None
    if not isinstance(ts, datetime):
        raise ValidationError(
            f"Event {event.get('event_id')!r} has no ts; replay paces events by their time."
        )
    return ts.replace(tzinfo=None)


def _pages(
    store: Store,
    table: str,
    id_column: str,
    columns: tuple[str, ...],
    where: str,
    lo: datetime,
    hi: datetime,
) -> Iterator[dict[str, Any]]:
    """Rows of ``table`` in (ts, id) order, read a page at a time (keyset pagination)."""
    if not store.has_table(table):
        return
    select = ", ".join((id_column, "ts", *columns))
    extra = f" AND {where}" if where else ""
    sql = (
        f"SELECT {select} FROM {table} WHERE ts >= $lo AND ts < $hi{extra} "
        f"AND (ts > $after_ts OR (ts = $after_ts AND {id_column} > $after_id)) "
        f"ORDER BY ts, {id_column} LIMIT {PAGE_ROWS}"
    )
    after_ts, after_id = lo, 0  # ids are >= 1, so the first page starts at lo itself
    while True:
        rows = store.query(
            sql, {"lo": lo, "hi": hi, "after_ts": after_ts, "after_id": after_id}
        ).to_pylist()
        yield from rows
        if len(rows) < PAGE_ROWS:
            return
        after_ts, after_id = rows[-1]["ts"], rows[-1][id_column]


def _transaction_event(row: Mapping[str, Any]) -> dict[str, Any]:
    event = {
        "event_id": f"txn-{row['txn_id']}",
        "type": "transaction",
        "ts": row["ts"].isoformat(),
    }
    event.update((k, row[k]) for k in _TXN_COLUMNS if row[k] is not None)
    return event


def _app_event(row: Mapping[str, Any]) -> dict[str, Any]:
    event = {
        "event_id": f"app-{row['event_id']}",
        "type": row["event_type"],
        "ts": row["ts"].isoformat(),
        "customer_id": row["customer_id"],
    }
    # each type carries only its own fields: a page view its page, a search its query
    if row["event_type"] == "page_view" and row["page"] is not None:
        event["page"] = row["page"]
    elif row["event_type"] == "search" and row["search_query"] is not None:
        event["query"] = row["search_query"]
    return event
