"""Feature engines: compute the catalogue's features as of a time, for everyone or a few.

:class:`StoreFeatureEngine` runs the compiled SQL inside the store (DuckDB, the embedded
default). :class:`qianmian.features.spark.SparkFeatureEngine` runs the same definitions on
PySpark. Both return Arrow tables with ``customer_id``, ``as_of`` and one column per feature,
sorted by ``customer_id``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta

import pyarrow as pa

from qianmian.features.compile import AsOf, compile_features
from qianmian.store.base import Store

__all__ = ["FEATURE_TABLE", "FeatureEngine", "StoreFeatureEngine", "latest_as_of", "save_features"]

FEATURE_TABLE = "customer_features"
# Source tables a bank may not have yet; features over them then take their defaults.
OPTIONAL_SOURCE_TABLES = ("contacts", "responses")
AsOfLike = date | datetime | str


class FeatureEngine(ABC):
    """Computes features; subclasses only say how to run one compiled statement."""

    dialect = "duckdb"

    @abstractmethod
    def _run(self, sql: str) -> pa.Table:
        """Run one SQL statement (in :attr:`dialect`) and return its result."""

    def build(
        self,
        as_of: AsOfLike,
        *,
        features: Sequence[str] | None = None,
        customers: Sequence[int] | None = None,
    ) -> pa.Table:
        """Features as of ``as_of`` (only data strictly before it is used).

        Parameters
        ----------
        as_of : date, datetime or ISO string
        features : sequence of str, optional
            Feature names (default: the whole catalogue).
        customers : sequence of int, optional
            Restrict to these customer ids.

        Returns
        -------
        pyarrow.Table
            ``customer_id``, ``as_of``, then the features; one row per customer who had signed
            up before ``as_of``.
        """
        sql = compile_features(
            features,
            as_of,
            customers=customers,
            dialect=self.dialect,
            missing_tables=self._missing_tables(),
        )
        return self._run(sql)

    def _missing_tables(self) -> list[str]:
        """Optional source tables this engine cannot see (default: none)."""
        return []

    def training_set(
        self,
        as_of_dates: Iterable[AsOfLike],
        *,
        features: Sequence[str] | None = None,
        customers: Sequence[int] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> pa.Table:
        """One row per customer per as-of date, every row point-in-time correct."""
        dates = sorted({AsOf.of(d).at for d in as_of_dates})
        parts = []
        for i, d in enumerate(dates, start=1):
            parts.append(self.build(d, features=features, customers=customers))
            if progress:
                progress(i, len(dates))
        return pa.concat_tables(parts)


class StoreFeatureEngine(FeatureEngine):
    """Runs the features inside the store (DuckDB by default)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _run(self, sql: str) -> pa.Table:
        return self.store.query(sql)

    def _missing_tables(self) -> list[str]:
        # the bank's marketing history is optional: without it, marketing features are 0
        return [t for t in OPTIONAL_SOURCE_TABLES if not self.store.has_table(t)]


def save_features(store: Store, features: pa.Table, table: str = FEATURE_TABLE) -> int:
    """Store a feature table, replacing earlier rows with the same ``as_of`` (one transaction)."""
    as_ofs = sorted({v.as_py() for v in features.column("as_of").unique()})
    with store.transaction() as tx:
        if tx.has_table(table):
            for t in as_ofs:
                tx.query(f'DELETE FROM "{table}" WHERE as_of = $t', {"t": t})
        return tx.write(table, features, mode="append")


def latest_as_of(store: Store) -> datetime:
    """The day after the latest transaction in the store: "now" for a stored bank."""
    from qianmian.errors import NotFoundError

    if not store.has_table("transactions"):
        raise NotFoundError(
            "The store has no transactions: run `qianmian generate` or "
            "`qianmian import transactions FILE` first."
        )
    latest = store.query("SELECT max(ts) AS t FROM transactions").column("t")[0].as_py()
    if latest is None:
        raise NotFoundError("The transactions table is empty; give --as-of explicitly.")
    return datetime(latest.year, latest.month, latest.day) + timedelta(days=1)
