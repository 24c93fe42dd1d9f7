"""The :class:`Store` interface: where qianmian's tables live.

Every part of qianmian reads and writes tables through a ``Store``; which backend stands behind it
(DuckDB in the workspace by default, PostgreSQL in production) is chosen once by
:class:`qianmian.config.Settings`. Data crosses the interface as Apache Arrow tables. SQL passed to
:meth:`Store.query` must keep to the common subset of DuckDB and PostgreSQL, with ``%s``-free,
named parameters written as ``$name``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

__all__ = ["Store", "WriteMode"]

WriteMode = Literal["append", "replace"]


class Store(ABC):
    """Tables by name, written and read as Arrow.

    Tables named in the data dictionary are created with the dictionary's column types; other
    tables (feature tables, model outputs) take the types of the first Arrow table written.
    """

    @abstractmethod
    def tables(self) -> list[str]:
        """Names of the tables that exist, sorted."""

    def has_table(self, name: str) -> bool:
        return name in self.tables()

    @abstractmethod
    def write(self, name: str, data: pa.Table, *, mode: WriteMode = "append") -> int:
        """Write ``data`` to table ``name`` (created if missing); return the rows written."""

    @abstractmethod
    def read(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Return the whole of table ``name`` (or the given columns); unknown name → NotFoundError."""

    @abstractmethod
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run one SQL statement and return its result as Arrow."""

    @abstractmethod
    def load_parquet(self, name: str, paths: Sequence[Path], *, mode: WriteMode = "replace") -> int:
        """Load Parquet files into table ``name``; return the rows loaded."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Drop table ``name`` if it exists."""

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """A unit of work: writes through the yielded store commit together or not at all."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def count(self, name: str) -> int:
        """Number of rows in table ``name``."""
        result = self.query(f'SELECT count(*) AS n FROM "{name}"')
        return int(result.column("n")[0].as_py())

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
