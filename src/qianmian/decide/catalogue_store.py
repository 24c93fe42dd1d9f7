"""Revisions of the offer catalogue kept in the store, and the data dictionary's ``offers`` table.

Every :meth:`CatalogueRepository.save` appends one row to the table ``catalogue_versions``
(``revision``, ``label``, ``saved_at``, ``author``, ``note``, ``sha256`` and the whole catalogue
as ``yaml``) and replaces the ``offers`` table of the data dictionary with the catalogue's
offers, in one store transaction: analysts joining contacts to offers see the catalogue the
engine decides with. Nothing is ever overwritten, so any past revision can be read back and
compared. The same code runs on DuckDB and on PostgreSQL.

>>> from qianmian.decide.catalogue import starter_catalogue
>>> from qianmian.store.duckdb import DuckDBStore
>>> with DuckDBStore(":memory:") as store:
...     repository = CatalogueRepository(store)
...     repository.save(starter_catalogue(), author="ops", note="first load")
...     repository.current() == starter_catalogue(), store.count("offers")
1
(True, 20)
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pyarrow as pa

from qianmian.data.schema import table
from qianmian.data.schema.vocab import OFFER_TYPES
from qianmian.decide.catalogue import Catalogue, parse_catalogue
from qianmian.errors import NotFoundError, invalid_parameter
from qianmian.store.base import Store

__all__ = ["VERSIONS_TABLE", "CatalogueRepository", "offers_rows"]

logger = logging.getLogger(__name__)

VERSIONS_TABLE = "catalogue_versions"
_CHINA = ZoneInfo("Asia/Shanghai")
_SCHEMA = pa.schema(
    [
        pa.field("revision", pa.int64()),
        pa.field("label", pa.string()),
        pa.field("saved_at", pa.timestamp("us")),
        pa.field("author", pa.string()),
        pa.field("note", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("yaml", pa.string()),
    ]
)
_LISTED = [f.name for f in _SCHEMA if f.name != "yaml"]


class CatalogueRepository:
    """Catalogue revisions in a :class:`~qianmian.store.base.Store`.

    Parameters
    ----------
    store : Store
        Where ``catalogue_versions`` and ``offers`` live (DuckDB or PostgreSQL).
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(
        self, catalogue: Catalogue, *, author: str, note: str = "", now: datetime | None = None
    ) -> int:
        """Store ``catalogue`` as a new revision and make its offers the ``offers`` table.

        Parameters
        ----------
        catalogue : Catalogue
        author : str
            Who made the change (a user or an API key's name); required.
        note : str
            Why, in a sentence.
        now : datetime, optional
            The time recorded (naive China time); default the clock.

        Returns
        -------
        int
            The new revision number (1 for the first).
        """
        if not isinstance(author, str) or not author.strip():
            raise invalid_parameter(
                "CatalogueRepository.save", "author", "a non-empty name", author
            )
        saved_at = now if now is not None else datetime.now(_CHINA).replace(tzinfo=None)
        with self.store.transaction() as store:
            revision = _last_revision(store) + 1
            row = {
                "revision": [revision],
                "label": [catalogue.version],
                "saved_at": [saved_at],
                "author": [author.strip()],
                "note": [note],
                "sha256": [catalogue.sha256],
                "yaml": [catalogue.to_yaml()],
            }
            store.write(VERSIONS_TABLE, pa.table(row, schema=_SCHEMA), mode="append")
            store.write("offers", offers_rows(catalogue), mode="replace")
        logger.info(
            "Saved offer catalogue %s as revision %d (%d offers) for %s.",
            catalogue.version,
            revision,
            len(catalogue.offers),
            author,
        )
        return revision

    def current(self) -> Catalogue | None:
        """The latest revision, or None if no catalogue was ever saved."""
        revision = _last_revision(self.store)
        return self.load(revision) if revision else None

    def load(self, revision: int) -> Catalogue:
        """Revision ``revision``; :class:`~qianmian.errors.NotFoundError` if there is none."""
        found = None
        if self.store.has_table(VERSIONS_TABLE):
            found = self.store.query(
                f"SELECT yaml, sha256 FROM {VERSIONS_TABLE} WHERE revision = $revision",
                {"revision": int(revision)},
            )
        if found is None or found.num_rows == 0:
            last = _last_revision(self.store)
            known = f"revisions 1 to {last}" if last else "no revisions yet"
            raise NotFoundError(
                f"There is no offer catalogue revision {revision}; the store holds {known}."
            )
        text, sha = found.column("yaml")[0].as_py(), found.column("sha256")[0].as_py()
        catalogue = parse_catalogue(text, name=f"catalogue revision {revision}")
        if catalogue.sha256 != sha:  # e.g. a newer qianmian fills a new default differently
            logger.warning(
                "Catalogue revision %d reads back with sha256 %s, not the %s it was saved "
                "with; its content is as stored, but defaults may have changed since.",
                revision,
                catalogue.sha256[:12],
                sha[:12],
            )
        return catalogue

    def revisions(self) -> pa.Table:
        """Every revision, oldest first: revision, label, saved_at, author, note, sha256."""
        if not self.store.has_table(VERSIONS_TABLE):
            return _SCHEMA.empty_table().select(_LISTED)
        listed = self.store.query(
            f"SELECT {', '.join(_LISTED)} FROM {VERSIONS_TABLE} ORDER BY revision"
        )
        return listed.cast(pa.schema([_SCHEMA.field(n) for n in _LISTED]))


def offers_rows(catalogue: Catalogue) -> pa.Table:
    """The catalogue's offers as the data dictionary's ``offers`` table.

    Service messages are left out while the dictionary's offer types do not include
    ``service`` (they are not marketing offers).
    """
    offers = [o for o in catalogue.offers.values() if o.type in OFFER_TYPES.values]
    data = {
        "offer_id": [o.id for o in offers],
        "offer_type": [o.type for o in offers],
        "name_zh": [o.name_zh for o in offers],
        "name_en": [o.name_en for o in offers],
        "product_id": [o.product_id for o in offers],
        "personalised": [o.personalised for o in offers],
        "incentive_cost": [o.incentive_cost for o in offers],
        "start_date": pa.array([o.start_date for o in offers], pa.date32()),
        "end_date": pa.array([o.end_date for o in offers], pa.date32()),
    }
    return table("offers").conform(pa.table(data))


def _last_revision(store: Store) -> int:
    """The highest revision stored (0 when none)."""
    if not store.has_table(VERSIONS_TABLE):
        return 0
    result = store.query(f"SELECT max(revision) AS revision FROM {VERSIONS_TABLE}")
    value = result.column("revision")[0].as_py()
    return int(value) if value is not None else 0
