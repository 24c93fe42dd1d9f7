"""Catalogue revisions in the store, on DuckDB and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from qianmian.config import DuckDBStoreConfig
from qianmian.data.schema import table
from qianmian.decide import catalogue_store
from qianmian.decide.catalogue import Catalogue, starter_catalogue
from qianmian.decide.catalogue_store import VERSIONS_TABLE, CatalogueRepository, offers_rows
from qianmian.errors import ConfigError, NotFoundError, SchemaError
from qianmian.store.base import Store
from qianmian.world.catalogue import OFFERS, offers_table

SERVICE_MESSAGES = ("SV-BILL-DUE", "SV-LIMIT-GUIDE")  # the starter's, after the world's offers

BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_workspace: Path) -> Iterator[Store]:
    """An empty store of each backend in turn."""
    if request.param == "duckdb":
        from qianmian.store.duckdb import DuckDBStore

        opened: Store = DuckDBStore.from_config(DuckDBStoreConfig(), workspace=tmp_workspace)
    else:
        from qianmian.store.postgres import PostgresStore

        dsn = request.getfixturevalue("postgres_dsn")
        opened = PostgresStore(dsn, db_schema=request.getfixturevalue("postgres_schema"))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def starter() -> Catalogue:
    return starter_catalogue()


def test_revisions_are_numbered_kept_and_read_back(store: Store, starter: Catalogue) -> None:
    repository = CatalogueRepository(store)
    assert repository.current() is None and repository.revisions().num_rows == 0
    first = repository.save(starter, author="ops", note="first load", now=datetime(2026, 11, 1, 9))
    plat = starter.offer("OF-PLAT-FEEWAIVE")
    changed = starter.with_offer(plat.model_copy(update={"value": 3200.0}), version="v2")
    second = repository.save(changed, author=" 张三 ", now=datetime(2026, 11, 2, 10, 30))
    assert (first, second) == (1, 2)

    assert repository.current() == changed
    assert repository.load(1) == starter and repository.load(1).offers == starter.offers
    assert repository.load(2).offer("OF-PLAT-FEEWAIVE").value == 3200.0
    listed = repository.revisions().to_pylist()
    assert [(r["revision"], r["label"], r["author"], r["note"]) for r in listed] == [
        (1, starter.version, "ops", "first load"),
        (2, "v2", "张三", ""),
    ]
    assert listed[1]["saved_at"] == datetime(2026, 11, 2, 10, 30)
    assert [r["sha256"] for r in listed] == [starter.sha256, changed.sha256]
    with pytest.raises(NotFoundError, match=r"no offer catalogue revision 3; .*revisions 1 to 2"):
        repository.load(3)


def test_saving_replaces_the_offers_table(store: Store, starter: Catalogue) -> None:
    store.write("offers", offers_table(), mode="replace")  # as `qianmian generate` leaves it
    smaller = starter.without_offer("OF-WM-R5")
    CatalogueRepository(store).save(smaller, author="ops")
    offers = store.read("offers")
    assert offers.schema.names == table("offers").column_names
    assert offers.column("offer_id").to_pylist() == [
        *(o.offer_id for o in OFFERS if o.offer_id != "OF-WM-R5"),
        *SERVICE_MESSAGES,
    ]
    expected = offers_rows(smaller)
    assert offers.select(["offer_id", "incentive_cost"]).equals(
        expected.select(["offer_id", "incentive_cost"])
    )


def test_offers_rows_match_the_world_for_the_starter(starter: Catalogue) -> None:
    columns = ["offer_id", "offer_type", "name_zh", "name_en", "product_id", "personalised"]
    rows = offers_rows(starter).select(columns)
    marketing = rows.slice(0, len(OFFERS))
    assert marketing.equals(offers_table().select(columns))
    assert rows.column("offer_id").to_pylist()[len(OFFERS) :] == list(SERVICE_MESSAGES)
    assert set(rows.column("offer_type").to_pylist()[len(OFFERS) :]) == {"service"}


def test_a_failed_save_leaves_no_revision(
    store: Store, starter: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = CatalogueRepository(store)
    repository.save(starter, author="ops")

    def broken(catalogue: Catalogue) -> pa.Table:
        return pa.table({"offer_id": [None]}, schema=pa.schema([("offer_id", pa.string())]))

    monkeypatch.setattr(catalogue_store, "offers_rows", broken)
    with pytest.raises(SchemaError, match="offer_type"):
        repository.save(starter.with_offer(starter.offer("OF-WM-R1"), version="v9"), author="x")
    assert repository.revisions().column("revision").to_pylist() == [1]
    assert store.count("offers") == len(OFFERS) + len(SERVICE_MESSAGES)


def test_bad_author_and_missing_table(store: Store, starter: Catalogue) -> None:
    repository = CatalogueRepository(store)
    with pytest.raises(ConfigError, match=r"'author' parameter .* must be a non-empty name"):
        repository.save(starter, author="  ")
    with pytest.raises(NotFoundError, match="no revisions yet"):
        repository.load(1)
    assert not store.has_table(VERSIONS_TABLE)
