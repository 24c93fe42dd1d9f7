"""The embedded store: every table in one DuckDB file in the workspace.

Arrow tables go in and come out through DuckDB's native Arrow support (no row loops), and
Parquet files load in one ``INSERT ... SELECT FROM read_parquet([...])``, which DuckDB runs in
parallel. One connection serves the store; a lock serialises its use across threads.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from qianmian.errors import NotFoundError, QianmianError, StoreError, ValidationError
from qianmian.store.base import Store, WriteMode
from qianmian.store.ddl import (
    SQL_TYPES,
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
)

if TYPE_CHECKING:
    from qianmian.config import DuckDBStoreConfig

__all__ = ["DuckDBStore"]

logger = logging.getLogger(__name__)

DEFAULT_FILE_NAME = "qianmian.duckdb"

# DuckDB's names for the types a column may already have, as the data dictionary's logical types.
_LOGICAL: dict[str, Any] = {
    "VARCHAR": "string",
    "BIGINT": "int",
    "INTEGER": "int",
    "SMALLINT": "int",
    "TINYINT": "int",
    "DOUBLE": "float",
    "FLOAT": "float",
    "BOOLEAN": "bool",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}


class DuckDBStore(Store):
    """Tables in one DuckDB database file.

    Parameters
    ----------
    path : str or Path
        Database file (created, with its folder, if missing), or ``":memory:"``.
    threads : int, optional
        Worker threads DuckDB may use; default all cores.
    memory_limit : str, optional
        Memory DuckDB may use, e.g. ``"4GB"``; default 80% of RAM.

    Examples
    --------
    >>> import pyarrow as pa
    >>> with DuckDBStore(":memory:") as store:
    ...     store.write("scores", pa.table({"customer_id": [1, 2], "score": [0.5, 0.25]}))
    ...     store.query("SELECT score FROM scores WHERE customer_id = $id", {"id": 2}).num_rows
    2
    1
    """

    def __init__(
        self, path: str | Path, *, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        self.path = path if str(path) == ":memory:" else Path(path)
        self.threads = threads
        self.memory_limit = memory_limit
        self._lock = threading.RLock()
        self._in_transaction = False
        self._con: duckdb.DuckDBPyConnection | None = self._connect()

    @classmethod
    def from_config(cls, config: DuckDBStoreConfig, *, workspace: Path) -> DuckDBStore:
        """Open the store ``config`` describes; a relative ``path`` is inside ``workspace``."""
        path = config.path if config.path is not None else Path(DEFAULT_FILE_NAME)
        if str(path) != ":memory:" and not path.is_absolute():
            path = Path(workspace) / path
        return cls(path, threads=config.threads, memory_limit=config.memory_limit)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        settings: dict[str, Any] = {}
        if self.threads is not None:
            settings["threads"] = self.threads
        if self.memory_limit is not None:
            settings["memory_limit"] = self.memory_limit
        try:
            if isinstance(self.path, Path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(self.path), config=settings)
            # qianmian draws its own progress bars (Rich); DuckDB's would interleave with them.
            con.execute("SET enable_progress_bar = false")
            return con
        except (duckdb.Error, OSError) as e:
            raise StoreError(
                f"Cannot open the DuckDB database at {self.path} (threads={self.threads}, "
                f"memory_limit={self.memory_limit}): {first_line(e)}. If another process holds "
                "the file, stop it; otherwise check store.path, store.threads and "
                "store.memory_limit."
            ) from e

    # -- connection, units of work and errors --------------------------------------------------

    @contextmanager
    def _session(self, doing: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection, held by this thread, with DuckDB errors raised as qianmian's."""
        with self._lock:
            if self._con is None:
                raise StoreError(
                    f"The DuckDB store at {self.path} is closed; open a new one with "
                    "Settings.build_store()."
                )
            try:
                yield self._con
            except QianmianError:
                raise
            except duckdb.ConstraintException as e:
                raise ValidationError(
                    f"DuckDB refused the data while {doing}: {first_line(e)}. Fix the rows that "
                    "break the constraint and write again."
                ) from e
            except duckdb.Error as e:
                raise StoreError(
                    f"DuckDB failed while {doing} in {self.path}: {first_line(e)}."
                ) from e

    @contextmanager
    def _unit(self, doing: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A session that commits on success, or joins the open transaction."""
        with self._session(doing) as con:
            if self._in_transaction:
                yield con
                return
            con.begin()
            try:
                yield con
            except BaseException:
                con.rollback()
                raise
            con.commit()

    @contextmanager
    def transaction(self) -> Iterator[DuckDBStore]:
        """A unit of work: writes through the yielded store commit together or not at all.

        Writes made inside join the transaction rather than committing on their own; a nested
        ``transaction()`` joins the outer one. Other threads wait until it ends.
        """
        with self._session("running a transaction") as con:
            if self._in_transaction:
                yield self
                return
            con.begin()
            self._in_transaction = True
            try:
                yield self
            except BaseException:
                con.rollback()
                raise
            finally:
                self._in_transaction = False
            con.commit()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    # -- catalog -------------------------------------------------------------------------------

    def tables(self) -> list[str]:
        with self._session("listing tables") as con:
            rows = con.sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                "current_schema() AND table_catalog = current_database() AND table_type = "
                "'BASE TABLE' ORDER BY table_name"
            ).fetchall()
        return [r[0] for r in rows]

    def has_table(self, name: str) -> bool:
        return self._columns(check_table_name(name)) is not None

    def _columns(self, name: str) -> list[Column] | None:
        """The stored columns of table ``name``, or None if there is no such table."""
        with self._session(f"describing table '{name}'") as con:
            rows = con.sql(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_catalog = current_database() "
                "AND table_name = $name ORDER BY ordinal_position",
                params={"name": name},
            ).fetchall()
        if not rows:
            return None
        return [Column(n, _LOGICAL.get(t), nullable == "NO") for n, t, nullable in rows]

    def _existing_columns(self, name: str) -> list[Column]:
        columns = self._columns(check_table_name(name))
        if columns is None:
            raise NotFoundError(
                f"There is no table '{name}' in the DuckDB store at {self.path}. Existing "
                f"tables: {', '.join(self.tables()) or 'none'}. Write or load it first."
            )
        return columns

    # -- reading -------------------------------------------------------------------------------

    def read(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        names = chosen_columns(name, self._existing_columns(name), columns)
        with self._session(f"reading table '{name}'") as con:
            result = con.sql(f"SELECT {column_list(names)} FROM {quote_ident(name)}")
            data = result.to_arrow_table()
        return data.cast(read_schema(name, data.schema))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        values = select_params(sql, params)
        with self._session(f"running the query {excerpt(sql)}") as con:
            relation = con.sql(sql, params=values or None)
            return relation.to_arrow_table() if relation is not None else pa.table({})

    def count(self, name: str) -> int:
        self._existing_columns(name)
        with self._session(f"counting table '{name}'") as con:
            rows = con.sql(f"SELECT count(*) FROM {quote_ident(name)}").fetchall()
        return int(rows[0][0])

    # -- writing -------------------------------------------------------------------------------

    def write(self, name: str, data: pa.Table, *, mode: WriteMode = "append") -> int:
        check_table_name(name)
        check_mode(mode)
        with self._unit(f"writing table '{name}'") as con:
            existing = None if mode == "replace" else self._columns(name)
            columns = existing or columns_for_write(name, data.schema)
            rows = conform(name, data, columns)
            self._prepare_table(con, name, columns, mode=mode, exists=existing is not None)
            view = f"_qm_write_{uuid.uuid4().hex}"
            con.register(view, rows)
            try:
                names = column_list(c.name for c in columns)
                con.execute(f"INSERT INTO {quote_ident(name)} ({names}) SELECT {names} FROM {view}")
            finally:
                con.unregister(view)
        logger.debug("Wrote %d rows to DuckDB table %s (%s).", rows.num_rows, name, mode)
        return rows.num_rows

    def load_parquet(self, name: str, paths: Sequence[Path], *, mode: WriteMode = "replace") -> int:
        check_table_name(name)
        check_mode(mode)
        files = parquet_columns(paths)
        with self._unit(f"loading Parquet files into table '{name}'") as con:
            existing = None if mode == "replace" else self._columns(name)
            columns = existing or columns_for_write(name, pa.schema(list(files.values())))
            conform(name, pa.schema(list(files.values())).empty_table(), columns)
            self._prepare_table(con, name, columns, mode=mode, exists=existing is not None)
            select = ", ".join(_cast_or_null(c, present=c.name in files) for c in columns)
            row = con.execute(
                f"INSERT INTO {quote_ident(name)} ({column_list(c.name for c in columns)}) "
                f"SELECT {select} FROM read_parquet($paths, union_by_name = true)",
                {"paths": [str(p) for p in paths]},
            ).fetchone()
        loaded = int(row[0]) if row else 0
        logger.debug("Loaded %d rows from %d Parquet files into %s.", loaded, len(paths), name)
        return loaded

    def _prepare_table(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        columns: list[Column],
        *,
        mode: WriteMode,
        exists: bool,
    ) -> None:
        if mode == "replace":
            con.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")
        if not exists:
            con.execute(create_table_sql(quote_ident(name), columns, "duckdb"))

    def drop(self, name: str) -> None:
        check_table_name(name)
        with self._unit(f"dropping table '{name}'") as con:
            con.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")


def _cast_or_null(column: Column, *, present: bool) -> str:
    ident = quote_ident(column.name)
    if column.type is None:
        return ident if present else f"NULL AS {ident}"
    sql_type = SQL_TYPES["duckdb"][column.type]
    return f"CAST({ident if present else 'NULL'} AS {sql_type}) AS {ident}"
