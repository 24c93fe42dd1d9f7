"""The production decision log: tables in a PostgreSQL schema, written in the background.

:meth:`~PostgresDecisionLog.append` only serialises the decision and puts it on an in-memory
queue; it never waits for PostgreSQL. One writer thread drains the queue every
``flush_seconds`` (sooner once ``batch_size`` decisions wait, or a caller flushes): each batch
goes through ``COPY`` into a temporary staging table, then ``INSERT ... SELECT ... ON CONFLICT
(decision_id) DO NOTHING``, so writing a batch twice stores it once.

Nothing is lost when PostgreSQL is unreachable: the writer retries with back-off while the
decisions wait in memory; beyond ``max_pending`` (and on close) it spills them to JSON-lines
files in ``spool_dir``, which it replays — idempotently — once PostgreSQL answers again (also
files left by an earlier process). A batch PostgreSQL refuses as invalid data is set aside in
``spool_dir`` as ``rejected-*.jsonl`` and logged, so one bad decision cannot block the rest.

Queries, responses and audit entries use a second connection, guarded by a lock. Queries flush
first; failures raise :class:`~qianmian.errors.StoreError` naming the DSN without its password.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import pyarrow as pa

try:
    import psycopg
    from psycopg import ClientCursor
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.types.json import set_json_loads
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError(
        "The PostgreSQL decision log needs psycopg 3. Install it with: "
        "pip install 'qianmian[postgres]'."
    ) from e

from qianmian.decide.decision import Decision
from qianmian.decide.log.base import (
    AUDIT_COLUMNS,
    DECISION_COLUMNS,
    RESPONSE_COLUMNS,
    AuditEntry,
    DecisionLog,
    ResponseRecord,
)
from qianmian.decide.log.records import (
    AUDIT_SCHEMA,
    CANDIDATE_SCHEMA,
    DECISION_SCHEMA,
    RESPONSE_SCHEMA,
    STORED_COLUMNS,
    china_naive,
    decision_row,
    joined_document,
    row_from_spool,
    spool_line,
    where_clause,
)
from qianmian.errors import StoreError
from qianmian.store.ddl import first_line, quote_ident
from qianmian.store.postgres import START_HINT, mask_dsn
from qianmian.store.postgres_copy import copy_out

if TYPE_CHECKING:
    from qianmian.decide.configs import PostgresLogConfig

__all__ = ["PostgresDecisionLog"]

logger = logging.getLogger(__name__)
_where = partial(where_clause, placeholder="%s")

_PG_TYPES = {
    "string": "text",
    "int64": "bigint",
    "double": "double precision",
    "bool": "boolean",
    "timestamp[us]": "timestamp",
}
_NOT_NULL = {"decision_id", "ts", "customer_id", "arm", "fallback", "candidates", "document"}
_COLUMNS_SQL = ", ".join(quote_ident(c) for c in STORED_COLUMNS)
_REPLAY_ROWS = 1_000
_RESCAN_SECONDS = 30.0
_Entry = tuple[int, tuple[Any, ...]]  # (sequence number, stored row)
_T = TypeVar("_T")
_OWN = [f for f in CANDIDATE_SCHEMA if f.name not in ("decision_id", "ts", "customer_id")]
# candidates unnested in the server, typed by jsonb_to_recordset, in their stored order
_CANDIDATES_SQL = (
    "SELECT d.decision_id, d.ts, d.customer_id, "
    + ", ".join(f"c.{f.name}" for f in _OWN)
    + " FROM {schema}.decisions AS d CROSS JOIN LATERAL ROWS FROM (jsonb_to_recordset("
    + "d.candidates) AS ("
    + ", ".join(f"{f.name} {_PG_TYPES[str(f.type)]}" for f in _OWN)
    + ")) WITH ORDINALITY AS c("
    + ", ".join(f.name for f in _OWN)
    + ", n){where} ORDER BY d.ts, d.seq, c.n"
)


class PostgresDecisionLog(DecisionLog):
    """Decisions, responses and the audit trail in a PostgreSQL schema.

    Parameters
    ----------
    dsn : str
        libpq connection string, e.g. ``"postgresql://postgres@127.0.0.1:5432/postgres"``.
    db_schema : str
        Schema holding the ``decisions``, ``responses`` and ``audit`` tables (created if missing).
    batch_size : int
        Waiting decisions that make the writer write at once.
    flush_seconds : float
        Longest a decision waits in memory while PostgreSQL is up.
    spool_dir : Path or None
        Folder for decisions that cannot be written yet (beyond ``max_pending``, or on close).
        None: they stay in memory, and :meth:`close` raises if any are left unwritten.
    max_pending : int
        Decisions kept in memory while PostgreSQL is unreachable before spilling to the spool.
    flush_timeout_seconds : float
        Longest :meth:`flush` (and so a query) waits for the writer.
    connect_timeout_seconds : int
        How long a connection attempt may take (unless the DSN sets ``connect_timeout``).

    Examples
    --------
    Settings open it through :func:`~qianmian.decide.log.open_decision_log`; by hand::

        log = PostgresDecisionLog(
            "postgresql://app@db:5432/bank", spool_dir=Path("ws/spool/decisions")
        )
        log.append(decision)  # returns at once; the writer thread stores it
        log.get(decision.decision_id)  # flushes first, so it reads its own write
        log.close()  # writes what PostgreSQL takes, spools the rest
    """

    def __init__(
        self,
        dsn: str,
        *,
        db_schema: str = "qianmian_log",
        batch_size: int = 200,
        flush_seconds: float = 0.2,
        spool_dir: Path | None = None,
        max_pending: int = 10_000,
        flush_timeout_seconds: float = 30.0,
        connect_timeout_seconds: int = 5,
    ) -> None:
        self.dsn = dsn
        self.db_schema = db_schema
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.spool_dir = None if spool_dir is None else Path(spool_dir)
        self.max_pending = max_pending
        self.flush_timeout_seconds = flush_timeout_seconds
        self.connect_timeout_seconds = connect_timeout_seconds
        try:
            self._conninfo = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as e:
            raise StoreError(
                f"The PostgreSQL DSN {mask_dsn(dsn)!r} is not a valid connection string: "
                f"{first_line(e)}. Fix decision_log.dsn (QIANMIAN_DECISION_LOG__DSN)."
            ) from e
        self._schema = quote_ident(db_schema)
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
        self._writer_conn: psycopg.Connection[Any] | None = None
        self._query_lock = threading.Lock()
        self._query_conn: psycopg.Connection[Any] | None = None
        if self.spool_dir is not None:
            try:
                self.spool_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(
                    f"Cannot create the decision spool folder {self.spool_dir}: {e}. Make the "
                    "workspace writable."
                ) from e
            self._scan_spool()
        self._writer = threading.Thread(
            target=self._write_loop, name="qianmian-decision-log-writer", daemon=True
        )
        self._writer.start()

    @classmethod
    def from_config(cls, config: PostgresLogConfig, *, workspace: Path) -> PostgresDecisionLog:
        """Open the log ``config`` describes, spooling to ``<workspace>/spool/decisions``."""
        return cls(
            config.dsn,
            db_schema=config.db_schema,
            batch_size=config.batch_size,
            flush_seconds=config.flush_seconds,
            spool_dir=Path(workspace) / "spool" / "decisions",
        )

    # -- connections and schema --------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection with the tables in place (psycopg errors are left to the caller)."""
        extra: dict[str, Any] = {}
        if "connect_timeout" not in self._conninfo:
            extra["connect_timeout"] = self.connect_timeout_seconds
        conn = psycopg.connect(self.dsn, autocommit=True, **extra)
        try:
            set_json_loads(orjson.loads, conn)
            conn.execute("SET client_encoding TO 'UTF8'")
            conn.execute("SET DateStyle TO 'ISO, YMD'")
            conn.execute("SET extra_float_digits TO 3")  # floats print exactly (pre-12 servers)
            with conn.transaction():
                # concurrent CREATE ... IF NOT EXISTS from two processes can collide
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._schema,))
                for statement in self._ddl():
                    conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def _ddl(self) -> list[str]:
        s = self._schema
        columns = ", ".join(
            f"{quote_ident(c)} {_pg_type(c)}{' NOT NULL' if c in _NOT_NULL else ''}"
            for c in STORED_COLUMNS
        )
        return [
            f"CREATE SCHEMA IF NOT EXISTS {s}",
            f"CREATE TABLE IF NOT EXISTS {s}.decisions (seq bigint GENERATED ALWAYS AS IDENTITY, "
            f"{columns}, PRIMARY KEY (decision_id))",
            f"CREATE INDEX IF NOT EXISTS decisions_customer_ts ON {s}.decisions (customer_id, ts)",
            f"CREATE INDEX IF NOT EXISTS decisions_ts ON {s}.decisions (ts)",
            f"CREATE INDEX IF NOT EXISTS decisions_campaign_ts ON {s}.decisions (campaign_id, ts)",
            f"CREATE INDEX IF NOT EXISTS decisions_offer_ts ON {s}.decisions (offer_id, ts)",
            f"CREATE TABLE IF NOT EXISTS {s}.responses (seq bigint GENERATED ALWAYS AS IDENTITY, "
            "response_id text PRIMARY KEY, decision_id text, customer_id bigint NOT NULL, "
            "offer_id text, response_type text NOT NULL, ts timestamp NOT NULL, "
            "value double precision)",
            f"CREATE INDEX IF NOT EXISTS responses_customer_ts ON {s}.responses (customer_id, ts)",
            f"CREATE INDEX IF NOT EXISTS responses_ts ON {s}.responses (ts)",
            f"CREATE TABLE IF NOT EXISTS {s}.audit (seq bigint GENERATED ALWAYS AS IDENTITY "
            "PRIMARY KEY, ts timestamp NOT NULL, actor text NOT NULL, role text NOT NULL, "
            "action text NOT NULL, target text NOT NULL, detail text NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS audit_ts ON {s}.audit (ts)",
        ]

    def _on_query_conn(self, doing: str, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``work(connection)`` on the query connection, under its lock; psycopg errors are
        raised as StoreError. A connection that died while idle is replaced, once."""
        with self._query_lock:
            if self._closed:
                raise StoreError(
                    f"The PostgreSQL decision log at {mask_dsn(self.dsn)} is closed; open a new "
                    "one with Settings.build_decision_log()."
                )
            if self._query_conn is not None and not self._query_conn.broken:
                try:
                    return work(self._query_conn)
                except psycopg.OperationalError:
                    self._query_conn.close()  # a restart or a proxy's timeout: try a new one
                except psycopg.Error as e:
                    raise self._query_error(doing, e) from e
            self._query_conn = None
            try:
                self._query_conn = self._connect()
                return work(self._query_conn)
            except psycopg.Error as e:
                raise self._query_error(doing, e) from e

    def _query_error(self, doing: str, e: psycopg.Error) -> StoreError:
        if isinstance(e, psycopg.OperationalError):
            return StoreError(
                f"Cannot reach the PostgreSQL decision log at {mask_dsn(self.dsn)} while "
                f"{doing}: {first_line(e)}. {START_HINT}"
            )
        return StoreError(
            f"PostgreSQL failed while {doing} in schema '{self.db_schema}' at "
            f"{mask_dsn(self.dsn)}: {first_line(e)}."
        )

    # -- the request path ----------------------------------------------------------------------

    def append(self, decision: Decision) -> None:
        row = decision_row(decision)
        values = tuple(row[c] for c in STORED_COLUMNS)
        with self._cond:
            if self._closed:
                raise StoreError(
                    f"Cannot append decision '{decision.decision_id}': the PostgreSQL decision "
                    f"log at {mask_dsn(self.dsn)} is closed. Open a new one with "
                    "Settings.build_decision_log()."
                )
            self._seq += 1
            self._queue.append((self._seq, values))
            if len(self._queue) == self.batch_size or len(self._queue) > self.max_pending:
                self._cond.notify_all()

    def flush(self) -> None:
        """Block until every decision appended before the call (and every decision in the
        spool when the log opened) is committed; raise StoreError if PostgreSQL fails first."""
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
                        partial(self._writer_has_work, seen, backoff),
                        timeout=backoff or self.flush_seconds,
                    )
                stopping, seen = self._closed, self._flush_asked
            fresh, retry_now = self._writer_conn is None, False
            try:
                if probe or backoff:  # in an outage, try even with nothing queued
                    probe = False
                    self._writer_connection()
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
                    self._close_writer_conn()
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
                self._close_writer_conn()
                return

    def _writer_has_work(self, seen: int, backoff: float) -> bool:
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
        self._close_writer_conn()
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

    def _writer_connection(self) -> psycopg.Connection[Any]:
        if self._writer_conn is None or self._writer_conn.broken:
            self._close_writer_conn()
            conn = self._connect()
            conn.execute(
                "CREATE TEMP TABLE decisions_in ON COMMIT DELETE ROWS AS "
                f"SELECT {_COLUMNS_SQL} FROM {self._schema}.decisions WITH NO DATA"
            )
            self._writer_conn = conn
        return self._writer_conn

    def _close_writer_conn(self) -> None:
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None

    def _write_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """COPY ``rows`` into staging, then insert those not stored yet; one transaction."""
        conn = self._writer_connection()
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(f"COPY decisions_in ({_COLUMNS_SQL}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO {self._schema}.decisions ({_COLUMNS_SQL}) SELECT {_COLUMNS_SQL} "
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

    # -- responses, audit and queries --------------------------------------------------------

    def record_response(self, response: ResponseRecord) -> bool:
        values = [getattr(response, c) for c in RESPONSE_COLUMNS]
        values[RESPONSE_COLUMNS.index("ts")] = china_naive(response.ts)
        sql = (
            f"INSERT INTO {self._schema}.responses ({', '.join(RESPONSE_COLUMNS)}) VALUES "
            f"({', '.join(['%s'] * len(values))}) ON CONFLICT (response_id) DO NOTHING"
        )
        return self._on_query_conn(
            f"recording response '{response.response_id}'",
            lambda conn: conn.execute(sql, values).rowcount == 1,
        )

    def record_audit(self, entry: AuditEntry) -> None:
        values = [getattr(entry, c) for c in AUDIT_COLUMNS]
        values[0] = china_naive(entry.ts)
        sql = (
            f"INSERT INTO {self._schema}.audit ({', '.join(AUDIT_COLUMNS)}) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        )
        self._on_query_conn(
            f"recording audit entry {entry.action!r}", lambda conn: conn.execute(sql, values)
        )

    def _select(self, sql: str, params: Sequence[Any], schema: pa.Schema, doing: str) -> pa.Table:
        """Flush, then run one query into Arrow through COPY."""
        self.flush()
        return self._on_query_conn(
            doing, lambda conn: copy_out(conn, ClientCursor(conn).mogrify(sql, params), schema)
        )

    def decisions(
        self,
        *,
        customer_id: int | None = None,
        offer_id: str | None = None,
        campaign_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        filters = {"customer_id": customer_id, "offer_id": offer_id, "campaign_id": campaign_id}
        where, params = _where({**filters, "since": since, "until": until})
        sql = (
            f"SELECT {', '.join(DECISION_COLUMNS)} FROM {self._schema}.decisions{where} "
            f"ORDER BY ts, seq{'' if limit is None else f' LIMIT {int(limit)}'}"
        )
        return self._select(sql, params, DECISION_SCHEMA, "reading decisions")

    def candidates(
        self,
        *,
        decision_ids: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pa.Table:
        where, params = _where({"since": since, "until": until}, table="d.")
        if decision_ids is not None:
            where += (" AND " if where else " WHERE ") + "d.decision_id = ANY(%s)"
            params.append(list(decision_ids))
        sql = _CANDIDATES_SQL.format(schema=self._schema, where=where)
        return self._select(sql, params, CANDIDATE_SCHEMA, "reading candidates")

    def get(self, decision_id: str) -> dict[str, Any] | None:
        self.flush()
        sql = f"SELECT document, candidates FROM {self._schema}.decisions WHERE decision_id = %s"
        row = self._on_query_conn(
            f"reading decision '{decision_id}'",
            lambda conn: conn.execute(sql, (decision_id,)).fetchone(),
        )
        return None if row is None else joined_document(row[0], row[1])

    def responses(
        self, *, customer_id: int | None = None, since: datetime | None = None
    ) -> pa.Table:
        where, params = _where({"customer_id": customer_id, "since": since})
        sql = (
            f"SELECT {', '.join(RESPONSE_COLUMNS)} FROM {self._schema}.responses{where} "
            "ORDER BY ts, seq"
        )
        return self._select(sql, params, RESPONSE_SCHEMA, "reading responses")

    def audit(self, *, since: datetime | None = None, limit: int | None = None) -> pa.Table:
        where, params = _where({"since": since})
        sql = (
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM {self._schema}.audit{where} "
            f"ORDER BY ts, seq{'' if limit is None else f' LIMIT {int(limit)}'}"
        )
        return self._select(sql, params, AUDIT_SCHEMA, "reading the audit trail")

    def close(self) -> None:
        """Write what PostgreSQL takes now, spool the rest, and release the connections."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._writer.join()
        with self._query_lock:
            if self._query_conn is not None:
                self._query_conn.close()
                self._query_conn = None
        with self._cond:
            left = len(self._queue)
        if left:
            raise StoreError(
                f"{left} decisions could not be written to PostgreSQL at {mask_dsn(self.dsn)} "
                f"({self._last_error}) and there is no spool folder to keep them in; they are "
                "lost. Give the log a spool_dir so decisions survive an outage."
            )


def _refused(error: Exception) -> bool:
    """Whether ``error`` says the data is bad (retrying cannot help), not the database."""
    if isinstance(error, psycopg.ProgrammingError):
        return error.sqlstate is None  # raised by psycopg itself: a value it cannot send
    return isinstance(error, (psycopg.DataError, psycopg.IntegrityError, TypeError, ValueError))


def _pg_type(column: str) -> str:
    """The PostgreSQL type of a stored decisions column."""
    if column in ("candidates", "document"):
        return "jsonb"
    return _PG_TYPES[str(DECISION_SCHEMA.field(column).type)]
