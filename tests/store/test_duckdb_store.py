"""What only the DuckDB store does: where its file lives and how DuckDB is configured."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from qianmian.config import DuckDBStoreConfig, load_settings
from qianmian.errors import StoreError
from qianmian.store.duckdb import DuckDBStore


def test_default_file_is_in_the_workspace_which_is_created(tmp_path: Path) -> None:
    workspace = tmp_path / "new" / "workspace"

    with load_settings(workspace).build_store() as store:
        assert isinstance(store, DuckDBStore)
        store.write("scores", pa.table({"x": [1]}))

    assert (workspace / "qianmian.duckdb").is_file()


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("db/store.duckdb", "workspace/db/store.duckdb"),
        ("{tmp}/elsewhere/store.duckdb", "elsewhere/store.duckdb"),
    ],
)
def test_configured_path_is_taken_inside_the_workspace_unless_absolute(
    tmp_workspace: Path, configured: str, expected: str
) -> None:
    config = DuckDBStoreConfig(path=Path(configured.format(tmp=tmp_workspace.parent)))

    with DuckDBStore.from_config(config, workspace=tmp_workspace) as store:
        assert store.path == tmp_workspace.parent / expected


def test_data_outlives_the_store_object(tmp_workspace: Path) -> None:
    config = DuckDBStoreConfig()
    with DuckDBStore.from_config(config, workspace=tmp_workspace) as store:
        store.write("scores", pa.table({"x": [1, 2]}))

    with DuckDBStore.from_config(config, workspace=tmp_workspace) as store:
        assert store.count("scores") == 2


def test_threads_and_memory_limit_are_honoured(tmp_workspace: Path) -> None:
    config = DuckDBStoreConfig(threads=1, memory_limit="256MB")

    with DuckDBStore.from_config(config, workspace=tmp_workspace) as store:
        got = store.query(
            "SELECT current_setting('threads') AS t, current_setting('memory_limit') AS m"
        ).to_pylist()[0]

    assert got["t"] == 1
    assert got["m"] in ("256.0 MB", "244.1 MiB")


def test_bad_settings_are_a_store_error_naming_them(tmp_workspace: Path) -> None:
    with pytest.raises(StoreError, match=r"memory_limit=lots.*store\.memory_limit"):
        DuckDBStore(tmp_workspace / "x.duckdb", memory_limit="lots")


def test_dictionary_tables_get_the_dictionary_sql_types(tmp_workspace: Path) -> None:
    with DuckDBStore(tmp_workspace / "x.duckdb") as store:
        store.write("customers", pa.table({"customer_id": [1]}))
        got = store.query(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = 'customers' AND column_name IN ('customer_id', 'name', "
            "'birth_date', 'monthly_income', 'consent_sms') ORDER BY ordinal_position"
        ).to_pylist()

    assert [(r["column_name"], r["data_type"], r["is_nullable"]) for r in got] == [
        ("customer_id", "BIGINT", "NO"),
        ("name", "VARCHAR", "YES"),
        ("birth_date", "DATE", "YES"),
        ("monthly_income", "DOUBLE", "YES"),
        ("consent_sms", "BOOLEAN", "YES"),
    ]


def test_in_memory_database_needs_no_file(tmp_workspace: Path) -> None:
    config = DuckDBStoreConfig(path=Path(":memory:"))

    with DuckDBStore.from_config(config, workspace=tmp_workspace) as store:
        store.write("scores", pa.table({"x": [1]}))
        assert store.count("scores") == 1

    assert list(tmp_workspace.iterdir()) == []
