"""The production decision log: tables in a PostgreSQL schema, written in the background.

:meth:`~PostgresDecisionLog.append` only serialises the decision and hands it to a
:class:`~qianmian.decide.log.postgres_writer.DecisionWriter`, whose thread writes batches
through ``COPY`` (idempotently) and keeps in memory or spools to ``spool_dir`` whatever
PostgreSQL cannot take yet — nothing is lost while it is unreachable — setting aside decisions
it refuses as invalid.

Queries, responses and audit entries use a second connection, guarded by a lock. Queries flush
first; failures raise :class:`~qianmian.errors.StoreError` naming the DSN without its password.
"""

from __future__ import annotations

import threading
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
from qianmian.decide.log.postgres_writer import DecisionWriter
from qianmian.decide.log.records import (
    AUDIT_SCHEMA,
    CANDIDATE_SCHEMA,
    DECISION_SCHEMA,
    RESPONSE_SCHEMA,
    STORED_COLUMNS,
    china_naive,
    decision_row,
    joined_document,
    where_clause,
)
from qianmian.errors import StoreError
from qianmian.store.ddl import first_line, quote_ident
from qianmian.store.postgres import START_HINT, mask_dsn
from qianmian.store.postgres_copy import copy_out

if TYPE_CHECKING:
    from qianmian.decide.configs import PostgresLogConfig

__all__ = ["PostgresDecisionLog"]

_where = partial(where_clause, placeholder="%s")

_PG_TYPES = {
    "string": "text",
    "int64": "bigint",
    "double": "double precision",
    "bool": "boolean",
    "timestamp[us]": "timestamp",
}
_NOT_NULL = {"decision_id", "ts", "customer_id", "arm", "fallback", "candidates", "document"}
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
        self._query_lock = threading.Lock()
        self._query_conn: psycopg.Connection[Any] | None = None
        self._writer = DecisionWriter(
            self._connect,
            dsn=dsn,
            table=f"{self._schema}.decisions",
            batch_size=batch_size,
            flush_seconds=flush_seconds,
            spool_dir=self.spool_dir,
            max_pending=max_pending,
            flush_timeout_seconds=flush_timeout_seconds,
        )

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

    @property
    def _writer_conn(self) -> psycopg.Connection[Any] | None:
        """The writer thread's connection (the reconnection test ends it like a restart)."""
        return self._writer.connection

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
            if self._writer.closed:
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
        self._writer.append(decision.decision_id, tuple(row[c] for c in STORED_COLUMNS))

    def flush(self) -> None:
        """Block until every decision appended before the call (and every decision in the
        spool when the log opened) is committed; raise StoreError if PostgreSQL fails first."""
        self._writer.flush()

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
        try:
            self._writer.close()
        finally:
            with self._query_lock:
                if self._query_conn is not None:
                    self._query_conn.close()
                    self._query_conn = None


def _pg_type(column: str) -> str:
    """The PostgreSQL type of a stored decisions column."""
    if column in ("candidates", "document"):
        return "jsonb"
    return _PG_TYPES[str(DECISION_SCHEMA.field(column).type)]
