"""The background writer of the PostgreSQL decision log: queue, batches, spool, refused rows.

:meth:`DecisionWriter.append` only puts a stored row on an in-memory queue; it never waits for
PostgreSQL. One writer thread drains the queue every ``flush_seconds`` (sooner once
``batch_size`` decisions wait, or a caller flushes): each batch goes through ``COPY`` into a
temporary staging table, then ``INSERT ... SELECT ... ON CONFLICT (decision_id) DO NOTHING``,
so writing a batch twice stores it once.

Nothing is lost when PostgreSQL is unreachable: the writer retries with back-off while the
decisions wait in memory; beyond ``max_pending`` (and on close) it spills them to JSON-lines
files in ``spool_dir``, which it replays — idempotently — once PostgreSQL answers again (also
files left by an earlier process). A batch PostgreSQL refuses as invalid data is set aside in
``spool_dir`` as ``rejected-*.jsonl`` and logged, so one bad decision cannot block the rest.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psycopg

from qianmian.decide.log.records import STORED_COLUMNS, row_from_spool, spool_line
from qianmian.errors import StoreError
from qianmian.store.ddl import first_line, quote_ident
from qianmian.store.postgres import START_HINT, mask_dsn

__all__ = ["DecisionWriter"]

# under the log's own name, so logging set up for the PostgreSQL decision log still sees it
logger = logging.getLogger("qianmian.decide.log.postgres")

_COLUMNS_SQL = ", ".join(quote_ident(c) for c in STORED_COLUMNS)
_REPLAY_ROWS = 1_000
_RESCAN_SECONDS = 30.0
_Entry = tuple[int, tuple[Any, ...]]  # (sequence number, stored row)


class DecisionWriter:
    """One thread writing queued decision rows to PostgreSQL, spooling what it cannot write.

    Parameters
    ----------
    connect : callable
        Opens a new connection with the log's tables in place (psycopg errors propagate).
    dsn : str
        The connection string, named (without its password) in messages.
    table : str
        The quoted ``schema.decisions`` table the rows go to.
    batch_size, flush_seconds, spool_dir, max_pending, flush_timeout_seconds
        As in :class:`~qianmian.decide.log.postgres.PostgresDecisionLog`.

    Notes
    -----
    The thread starts with the writer (after taking on the spool files already present) and
    ends with :meth:`close`.
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        *,
        dsn: str,
        table: str,
        batch_size: int,
        flush_seconds: float,
        spool_dir: Path | None,
        max_pending: int,
        flush_timeout_seconds: float,
    ) -> None:
        self.dsn = dsn
        self.table = table
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.spool_dir = spool_dir
        self.max_pending = max_pending
        self.flush_timeout_seconds = flush_timeout_seconds
        self._connect = connect
        self._cond = threading.Condition()
        self._queue: deque[_Entry] = deque()
        # rows out of the queue but not yet committed (a batch, a spill, a spool file) → the
        # lowest sequence number among them; flush waits until none is at or below its target
        self._holds: dict[object, int] = {}
        self._seq = 0
        self._failures = 0  # write attempts that failed since the writer started
        self._last_error = ""
        self._flush_asked = 0  # flushes begun: each wakes the writer once, even in back-off
        self._closed = False
        self._can_spill = spool_dir is not None  # False after the spool failed, till it works
        self._conn: psycopg.Connection[Any] | None = None
        if self.spool_dir is not None:
            try:
                self.spool_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(
                    f"Cannot create the decision spool folder {self.spool_dir}: {e}. Make the "
                    "workspace writable."
                ) from e
            self._scan_spool()
        self._thread = threading.Thread(
            target=self._write_loop, name="qianmian-decision-log-writer", daemon=True
        )
        self._thread.start()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has begun."""
        return self._closed

    @property
    def connection(self) -> psycopg.Connection[Any] | None:
        """The writer thread's connection (None while it has none)."""
        return self._conn

    # -- the request path ----------------------------------------------------------------------

    def append(self, decision_id: str, values: tuple[Any, ...]) -> None:
        """Queue one stored row (``values`` in STORED_COLUMNS order); never waits."""
        with self._cond:
            if self._closed:
                raise StoreError(
                    f"Cannot append decision '{decision_id}': the PostgreSQL decision "
                    f"log at {mask_dsn(self.dsn)} is closed. Open a new one with "
                    "Settings.build_decision_log()."
                )
            self._seq += 1
            self._queue.append((self._seq, values))
            if len(self._queue) == self.batch_size or len(self._queue) > self.max_pending:
                self._cond.notify_all()

    def flush(self) -> None:
        """Block until every row appended before the call (and every row in the spool when
        the writer started) is committed; raise StoreError if PostgreSQL fails first."""
        with self._cond:
            target, failures = self._seq, self._failures
            if self._low_water() > target:
                return
            self._flush_asked += 1
            self._cond.notify_all()
            done = self._cond.wait_for(
                lambda: self._low_water() > target or self._failures > failures or self._closed,
                timeout=self.flush_timeout_seconds,
            )
            if self._low_water() > target:
                return
            held = len(self._queue)
            reason = self._last_error if done else f"not done in {self.flush_timeout_seconds} s"
        kept = f"spooled to {self.spool_dir}" if self.spool_dir else "kept in memory as well"
        raise StoreError(
            f"Decisions are not yet written to PostgreSQL at {mask_dsn(self.dsn)} ({reason}). "
            f"Nothing is lost: {held} wait in memory (any beyond {self.max_pending} are {kept}) "
            f"and are written when it answers again. {START_HINT}"
        )

    def close(self) -> None:
        """Write what PostgreSQL takes now, spool the rest, and stop the thread; raise
        StoreError if decisions are left with no spool folder to keep them in."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        with self._cond:
            left = len(self._queue)
        if left:
            raise StoreError(
                f"{left} decisions could not be written to PostgreSQL at {mask_dsn(self.dsn)} "
                f"({self._last_error}) and there is no spool folder to keep them in; they are "
                "lost. Give the log a spool_dir so decisions survive an outage."
            )

    def _low_water(self) -> int:
        """The lowest sequence number not yet committed (or one past the last appended)."""
        lowest = self._queue[0][0] if self._queue else self._seq + 1
        return min(lowest, *self._holds.values()) if self._holds else lowest

    # -- the writer thread ---------------------------------------------------------------------

    def _write_loop(self) -> None:
        """Drain the spool and the queue until closed; on failure back off, spilling excess."""
        next_scan = time.monotonic() + _RESCAN_SECONDS
        backoff, seen = 0.0, 0
        probe = True  # connect at once, so a wrong DSN is logged before the first decision
        retry_now = False
        while True:
            with self._cond:
                if not retry_now:
                    self._cond.wait_for(
                        partial(self._has_work, seen, backoff),
                        timeout=backoff or self.flush_seconds,
                    )
                stopping, seen = self._closed, self._flush_asked
            fresh, retry_now = self._conn is None, False
            try:
                if probe or backoff:  # in an outage, try even with nothing queued
                    probe = False
                    self._connection()
                if self.spool_dir is not None and time.monotonic() >= next_scan:
                    self._scan_spool()
                    next_scan = time.monotonic() + _RESCAN_SECONDS
                self._replay_spool()
                while self._write_next_batch():
                    pass
            except Exception as e:  # the database, the network or the disk: retry later
                if not fresh:
                    # a connection that died while idle (a restart, a proxy's timeout) is not
                    # an outage yet: reconnect at once, without failing anyone's flush
                    self._close_connection()
                    retry_now = True
                    continue
                backoff = self._note_failure(e, backoff)
                if stopping or len(self._queue) > self.max_pending:
                    self._spill()
            else:
                if backoff:
                    logger.warning("PostgreSQL at %s answers again.", mask_dsn(self.dsn))
                backoff, self._can_spill = 0.0, self.spool_dir is not None
            if stopping:
                self._close_connection()
                return

    def _has_work(self, seen: int, backoff: float) -> bool:
        """Whether the writer should stop waiting (under the lock); in back-off only a close,
        a new flush or a full memory wakes it."""
        if self._closed or (len(self._queue) > self.max_pending and self._can_spill):
            return True
        if self._flush_asked != seen and (
            self._queue or any(isinstance(k, Path) for k in self._holds)
        ):
            return True
        return not backoff and len(self._queue) >= self.batch_size

    def _note_failure(self, error: BaseException, backoff: float) -> float:
        """Log the first failure of an outage, wake flushers, and return the next back-off."""
        self._close_connection()
        with self._cond:
            self._failures += 1
            self._last_error = first_line(error)
            self._cond.notify_all()
            waiting = len(self._queue)
        if not backoff:
            logger.warning(
                "Cannot write decisions to PostgreSQL at %s: %s. Keeping %d in memory (up to %d, "
                "then spooling to %s) and retrying.",
                mask_dsn(self.dsn),
                self._last_error,
                waiting,
                self.max_pending,
                self.spool_dir,
            )
        return min(max(backoff * 2, 0.1), 5.0)

    def _connection(self) -> psycopg.Connection[Any]:
        """The writer's connection, with its staging table (a new one if there is none)."""
        if self._conn is None or self._conn.broken:
            self._close_connection()
            conn = self._connect()
            conn.execute(
                "CREATE TEMP TABLE decisions_in ON COMMIT DELETE ROWS AS "
                f"SELECT {_COLUMNS_SQL} FROM {self.table} WITH NO DATA"
            )
            self._conn = conn
        return self._conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """COPY ``rows`` into staging, then insert those not stored yet; one transaction."""
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(f"COPY decisions_in ({_COLUMNS_SQL}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO {self.table} ({_COLUMNS_SQL}) SELECT {_COLUMNS_SQL} "
                "FROM decisions_in ORDER BY ts ON CONFLICT (decision_id) DO NOTHING"
            )

    def _write_isolating(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write ``rows``; if PostgreSQL refuses the data, write them one by one and set aside
        only those it refuses (one bad decision must not hold back the rest)."""
        try:
            self._write_rows(rows)
        except Exception as e:
            if not _refused(e):
                raise
            if len(rows) == 1:
                self._set_aside(rows, e)
                return
            for row in rows:
                self._write_isolating([row])

    def _write_next_batch(self) -> bool:
        """Write up to ``batch_size`` queued decisions; False if the queue was empty."""
        token = object()
        with self._cond:
            if not self._queue:
                return False
            batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
            self._holds[token] = batch[0][0]
        try:
            self._write_isolating([row for _, row in batch])
        except BaseException:
            with self._cond:
                self._queue.extendleft(reversed(batch))
            raise
        finally:
            with self._cond:
                del self._holds[token]
                self._cond.notify_all()
        return True

    # -- the spool -------------------------------------------------------------------------------

    def _scan_spool(self) -> None:
        """Take on spool files written by anyone (earlier runs, other processes) to replay."""
        assert self.spool_dir is not None
        with self._cond:
            for path in self.spool_dir.glob("*.jsonl"):
                if not path.name.startswith("rejected-"):
                    self._holds.setdefault(path, 0)

    def _replay_spool(self) -> None:
        """Write every known spool file into PostgreSQL, oldest first, and delete it."""
        with self._cond:
            files = sorted(k for k in self._holds if isinstance(k, Path))
        for path in files:
            try:
                rows = [row_from_spool(line) for line in path.read_bytes().splitlines() if line]
            except FileNotFoundError:  # another process replayed it
                rows = []
            except (orjson.JSONDecodeError, KeyError, ValueError) as e:
                self._reject_file(path, e)
                rows = []
            for start in range(0, len(rows), _REPLAY_ROWS):
                self._write_isolating(rows[start : start + _REPLAY_ROWS])
            path.unlink(missing_ok=True)
            with self._cond:
                self._holds.pop(path, None)
                self._cond.notify_all()
            if rows:
                logger.info("Replayed %d spooled decisions from %s.", len(rows), path)

    def _spill(self) -> None:
        """Move every queued decision to a new spool file (kept queued if there is no spool)."""
        with self._cond:
            if self.spool_dir is None or not self._queue:
                return
            entries = list(self._queue)
            self._queue.clear()
            token = object()
            self._holds[token] = entries[0][0]
        try:
            path = self._write_spool_file("", [row for _, row in entries])
        except OSError as e:
            logger.error("Cannot spool decisions to %s: %s.", self.spool_dir, e)
            with self._cond:
                self._queue.extendleft(reversed(entries))
                del self._holds[token]
                self._can_spill = False  # retried with the next write, not at every append
            return
        with self._cond:
            self._holds[path] = entries[0][0]
            del self._holds[token]
            self._can_spill = True
        logger.warning("Spooled %d decisions to %s.", len(entries), path)

    def _write_spool_file(self, prefix: str, rows: Sequence[tuple[Any, ...]]) -> Path:
        """Write ``rows`` to a new spool file atomically (a complete file or none)."""
        assert self.spool_dir is not None
        name = f"{prefix}{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        temporary, path = self.spool_dir / f".{name}.tmp", self.spool_dir / f"{name}.jsonl"
        with temporary.open("wb") as out:
            out.writelines(spool_line(row) for row in rows)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(path)
        folder = os.open(self.spool_dir, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself survives a power cut
        finally:
            os.close(folder)
        return path

    def _set_aside(self, rows: Sequence[tuple[Any, ...]], error: BaseException) -> None:
        """Keep decisions PostgreSQL refuses as invalid in a rejected file, and say so."""
        ids = [row[0] for row in rows]
        if self.spool_dir is None:
            logger.error("PostgreSQL refused decisions %s: %s. They are dropped.", ids, error)
            return
        path = self._write_spool_file("rejected-", rows)
        logger.error("PostgreSQL refused decisions %s: %s. Set aside in %s.", ids, error, path)

    def _reject_file(self, path: Path, error: BaseException) -> None:
        logger.error(
            "Cannot replay spool file %s: %s. Renamed rejected-%s.", path, error, path.name
        )
        path.replace(path.with_name(f"rejected-{path.name}"))


def _refused(error: Exception) -> bool:
    """Whether ``error`` says the data is bad (retrying cannot help), not the database."""
    if isinstance(error, psycopg.ProgrammingError):
        return error.sqlstate is None  # raised by psycopg itself: a value it cannot send
    return isinstance(error, (psycopg.DataError, psycopg.IntegrityError, TypeError, ValueError))
