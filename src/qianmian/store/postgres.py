"""The production store: tables in one schema of a PostgreSQL database, through psycopg 3.

Data moves in bulk both ways: writes and Parquet loads stream CSV written by Arrow into
``COPY ... FROM STDIN``, and reads stream ``COPY (...) TO STDOUT`` into Arrow's CSV reader with the
column types known beforehand, so no value passes through a Python object. Reads return the same
Arrow types DuckDB returns for the same table. Those conversions live in
:mod:`qianmian.store.postgres_copy`; this module owns the connection, transactions and the catalog.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from qianmian.errors import NotFoundError, QianmianError, StoreError, ValidationError
from qianmian.store.base import Store, WriteMode
from qianmian.store.ddl import (
    Column,
    check_mode,
    check_table_name,
    chosen_columns,
    column_list,
    columns_for_write,
    conform,
    create_table_sql,
    excerpt,
    first_line,
    parquet_columns,
    quote_ident,
    read_schema,
    select_params,
    to_pyformat,
)

try:
    import psycopg
    from psycopg import ClientCursor
    from psycopg.conninfo import conninfo_to_dict
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError(
        "The PostgreSQL store needs psycopg 3. Install it with: pip install 'qianmian[postgres]'."
    ) from e

# imported once psycopg is known to be there: the COPY conversions use it directly
from qianmian.store.postgres_copy import (
    ARROW_BY_NAME,
    ARROW_BY_OID,
    COPYABLE,
    LOGICAL_BY_NAME,
    copy_in,
    copy_out,
    describe_result,
    fetched_array,
)

if TYPE_CHECKING:
    from qianmian.config import PostgresStoreConfig

__all__ = ["PostgresStore", "mask_dsn"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
COPY_BATCH_ROWS = 100_000
START_HINT = (
    "Start PostgreSQL (e.g. `pg_ctlcluster 15 main start`, `sudo systemctl start postgresql`, or "
    "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16`), or point "
    "QIANMIAN_STORE__DSN at a server that is running."
)


def mask_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``.

    >>> mask_dsn("postgresql://app:s3cret@db:5432/bank")
    'postgresql://app:***@db:5432/bank'
    """
    masked = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", masked, flags=re.I)


class PostgresStore(Store):
    """Tables in one schema of a PostgreSQL database.

    Parameters
    ----------
    dsn : str
        libpq connection string, e.g. ``"postgresql://postgres@127.0.0.1:5432/postgres"``.
    db_schema : str
        Schema holding the tables; created if missing and put first on the ``search_path``, so
        SQL passed to :meth:`query` names tables without a schema.

    Examples
    --------
    >>> import pyarrow as pa
    >>> dsn = "postgresql://postgres@127.0.0.1:5432/test"
    >>> with PostgresStore(dsn, db_schema="demo") as store:  # doctest: +SKIP
    ...     store.write("scores", pa.table({"customer_id": [1, 2]}), mode="replace")
    ...     store.query("SELECT count(*) AS n FROM scores WHERE customer_id > $min", {"min": 1})
    2
    pyarrow.Table
    n: int64
    ----
    n: [[1]]
    """

    def __init__(self, dsn: str, *, db_schema: str = "qianmian") -> None:
        self.dsn = dsn
        self.db_schema = db_schema
        self._lock = threading.RLock()
        self._in_transaction = False
        self._closed = False
        self._conn = self._connect()

    @classmethod
    def from_config(cls, config: PostgresStoreConfig, *, workspace: Path) -> PostgresStore:
        """Open the store ``config`` describes (``workspace`` is not used by this backend)."""
        return cls(config.dsn, db_schema=config.db_schema)

    def _connect(self) -> psycopg.Connection[Any]:
        extra: dict[str, Any] = {}
        try:
            if "connect_timeout" not in conninfo_to_dict(self.dsn):
                extra["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
            conn = psycopg.connect(self.dsn, autocommit=True, **extra)
        except psycopg.ProgrammingError as e:
            raise StoreError(
                f"The PostgreSQL DSN {mask_dsn(self.dsn)!r} is not a valid connection string: "
                f"{first_line(e)}. Fix store.dsn (QIANMIAN_STORE__DSN)."
            ) from e
        except psycopg.OperationalError as e:
            raise StoreError(
                f"Cannot connect to PostgreSQL at {mask_dsn(self.dsn)}: {first_line(e)}. "
                f"{START_HINT}"
            ) from e
        schema = quote_ident(self.db_schema)
        try:
            conn.execute("SET client_encoding TO 'UTF8'")
            conn.execute("SET DateStyle TO 'ISO, YMD'")
            conn.execute("SET extra_float_digits TO 3")  # floats print exactly (pre-12 servers)
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(f"SET search_path TO {schema}, public")
        except psycopg.Error as e:
            conn.close()
            raise StoreError(
                f"Connected to PostgreSQL at {mask_dsn(self.dsn)}, but cannot use schema "
                f"'{self.db_schema}': {first_line(e)}. Grant the user CREATE on the database or "
                "create the schema first."
            ) from e
        return conn

    # -- connection, units of work and errors --------------------------------------------------

    @contextmanager
    def _session(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """The connection, held by this thread, with psycopg errors raised as qianmian's."""
        with self._lock:
            if self._closed:
                raise StoreError(
                    f"The PostgreSQL store at {mask_dsn(self.dsn)} is closed; open a new one "
                    "with Settings.build_store()."
                )
            if self._conn.broken and not self._in_transaction:
                logger.warning("Reconnecting to PostgreSQL at %s.", mask_dsn(self.dsn))
                self._conn = self._connect()
            try:
                yield self._conn
            except QianmianError:
                raise
            except psycopg.IntegrityError as e:
                raise ValidationError(
                    f"PostgreSQL refused the data while {doing}: {first_line(e)}. Fix the rows "
                    "that break the constraint and write again."
                ) from e
            except psycopg.OperationalError as e:
                raise StoreError(
                    f"Lost PostgreSQL at {mask_dsn(self.dsn)} while {doing}: {first_line(e)}. "
                    f"{START_HINT}"
                ) from e
            except psycopg.Error as e:
                raise StoreError(
                    f"PostgreSQL failed while {doing} in schema '{self.db_schema}': "
                    f"{first_line(e)}."
                ) from e

    @contextmanager
    def _unit(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """A session that commits on success, or joins the open transaction."""
        with self._session(doing) as conn:
            if self._in_transaction:
                yield conn
                return
            with conn.transaction():
                yield conn

    @contextmanager
    def transaction(self) -> Iterator[PostgresStore]:
        """A unit of work: writes through the yielded store commit together or not at all.

        Writes made inside join the transaction rather than committing on their own; a nested
        ``transaction()`` joins the outer one. Other threads wait until it ends.
        """
        with self._session("running a transaction") as conn:
            if self._in_transaction:
                yield self
                return
            self._in_transaction = True
            try:
                with conn.transaction():
                    yield self
            finally:
                self._in_transaction = False

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    # -- catalog -------------------------------------------------------------------------------

    def _qualified(self, name: str) -> str:
        return f"{quote_ident(self.db_schema)}.{quote_ident(name)}"

    def tables(self) -> list[str]:
        with self._session("listing tables") as conn:
            rows = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_type = 'BASE TABLE'",
                (self.db_schema,),
            ).fetchall()
        return sorted(r[0] for r in rows)

    def has_table(self, name: str) -> bool:
        return self._stored(check_table_name(name)) is not None

    def _stored(self, name: str) -> list[tuple[Column, pa.DataType]] | None:
        """The stored columns of ``name`` with their Arrow types, or None if there is no table."""
        with self._session(f"describing table '{name}'") as conn:
            rows = conn.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (self.db_schema, name),
            ).fetchall()
        if not rows:
            return None
        return [
            (Column(n, LOGICAL_BY_NAME.get(t), nullable == "NO"), ARROW_BY_NAME.get(t, pa.string()))
            for n, t, nullable in rows
        ]

    def _columns(self, name: str) -> list[Column] | None:
        stored = self._stored(name)
        return None if stored is None else [c for c, _ in stored]

    def _existing(self, name: str) -> list[tuple[Column, pa.DataType]]:
        stored = self._stored(check_table_name(name))
        if stored is None:
            raise NotFoundError(
                f"There is no table '{name}' in PostgreSQL schema '{self.db_schema}' at "
                f"{mask_dsn(self.dsn)}. Existing tables: {', '.join(self.tables()) or 'none'}. "
                "Write or load it first."
            )
        return stored

    # -- reading -------------------------------------------------------------------------------

    def read(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        stored = self._existing(name)
        names = chosen_columns(name, [c for c, _ in stored], columns)
        types = {c.name: t for c, t in stored}
        schema = read_schema(name, pa.schema([pa.field(n, types[n]) for n in names]))
        with self._session(f"reading table '{name}'") as conn:
            return copy_out(
                conn, f"SELECT {column_list(names)} FROM {self._qualified(name)}", schema
            )

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        values = select_params(sql, params)
        statement = to_pyformat(sql.rstrip().rstrip(";"))
        with self._session(f"running the query {excerpt(sql)}") as conn:
            literal = ClientCursor(conn).mogrify(statement, values)
            described = describe_result(conn, literal)
            if described and COPYABLE.match(literal):
                schema = pa.schema(
                    [pa.field(n, ARROW_BY_OID.get(oid, pa.string())) for n, oid in described]
                )
                return copy_out(conn, literal, schema)
            with conn.cursor() as cur:
                cur.execute(literal)
                if cur.description is None:
                    count = [cur.rowcount] if cur.rowcount >= 0 else []
                    return pa.table({"Count": pa.array(count, pa.int64())})
                names = [d.name for d in cur.description]
                types = [ARROW_BY_OID.get(d.type_code) for d in cur.description]
                rows = cur.fetchall()
        arrays = [fetched_array([r[i] for r in rows], t) for i, t in enumerate(types)]
        return pa.Table.from_arrays(arrays, names=names)

    def count(self, name: str) -> int:
        self._existing(name)
        with self._session(f"counting table '{name}'") as conn:
            row = conn.execute(f"SELECT count(*) FROM {self._qualified(name)}").fetchone()
        return int(row[0]) if row else 0

    # -- writing -------------------------------------------------------------------------------

    def write(self, name: str, data: pa.Table, *, mode: WriteMode = "append") -> int:
        check_table_name(name)
        check_mode(mode)
        with self._unit(f"writing table '{name}'") as conn:
            existing = None if mode == "replace" else self._columns(name)
            columns = existing or columns_for_write(name, data.schema)
            rows = conform(name, data, columns)
            self._prepare_table(conn, name, columns, mode=mode, exists=existing is not None)
            written = copy_in(
                conn,
                self._qualified(name),
                columns,
                rows.to_batches(max_chunksize=COPY_BATCH_ROWS),
            )
        logger.debug("Wrote %d rows to PostgreSQL table %s (%s).", written, name, mode)
        return written

    def load_parquet(self, name: str, paths: Sequence[Path], *, mode: WriteMode = "replace") -> int:
        check_table_name(name)
        check_mode(mode)
        files = parquet_columns(paths)
        with self._unit(f"loading Parquet files into table '{name}'") as conn:
            existing = None if mode == "replace" else self._columns(name)
            columns = existing or columns_for_write(name, pa.schema(list(files.values())))
            conform(name, pa.schema(list(files.values())).empty_table(), columns)
            self._prepare_table(conn, name, columns, mode=mode, exists=existing is not None)

            def batches() -> Iterator[pa.RecordBatch]:
                for path in paths:
                    for batch in pq.ParquetFile(path).iter_batches(batch_size=COPY_BATCH_ROWS):
                        yield from conform(
                            name, pa.Table.from_batches([batch]), columns
                        ).to_batches()

            loaded = copy_in(conn, self._qualified(name), columns, batches())
        logger.debug("Loaded %d rows from %d Parquet files into %s.", loaded, len(paths), name)
        return loaded

    def _prepare_table(
        self,
        conn: psycopg.Connection[Any],
        name: str,
        columns: list[Column],
        *,
        mode: WriteMode,
        exists: bool,
    ) -> None:
        if mode == "replace":
            conn.execute(f"DROP TABLE IF EXISTS {self._qualified(name)}")
        if not exists:
            conn.execute(create_table_sql(self._qualified(name), columns, "postgres"))

    def drop(self, name: str) -> None:
        check_table_name(name)
        with self._unit(f"dropping table '{name}'") as conn:
            conn.execute(f"DROP TABLE IF EXISTS {self._qualified(name)}")
