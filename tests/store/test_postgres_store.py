"""What only the PostgreSQL store does: schemas, configuration and connection failures."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

from qianmian.config import load_settings
from qianmian.errors import StoreError
from qianmian.store.postgres import PostgresStore, mask_dsn

pytestmark = pytest.mark.integration


def test_settings_build_a_working_postgres_store(
    tmp_workspace: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    settings = load_settings(
        tmp_workspace, store={"type": "postgres", "dsn": postgres_dsn, "db_schema": postgres_schema}
    )

    with settings.build_store() as store:
        assert isinstance(store, PostgresStore)
        store.write("customers", pa.table({"customer_id": [1, 2], "name": ["张伟", "王芳"]}))
        assert store.query(
            "SELECT name FROM customers WHERE customer_id = $id", {"id": 2}
        ).to_pylist() == [{"name": "王芳"}]

    assert not any(tmp_workspace.iterdir())


def test_tables_live_in_the_configured_schema_with_dictionary_types(
    postgres_dsn: str, postgres_schema: str
) -> None:
    with PostgresStore(postgres_dsn, db_schema=postgres_schema) as store:
        store.write("customers", pa.table({"customer_id": [1]}))

    with psycopg.connect(postgres_dsn) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'customers' AND column_name IN "
            "('customer_id', 'name', 'birth_date', 'monthly_income', 'consent_sms') "
            "ORDER BY ordinal_position",
            (postgres_schema,),
        ).fetchall()

    assert rows == [
        ("customer_id", "bigint", "NO"),
        ("name", "text", "YES"),
        ("birth_date", "date", "YES"),
        ("monthly_income", "double precision", "YES"),
        ("consent_sms", "boolean", "YES"),
    ]


def test_stores_in_different_schemas_do_not_see_each_other(
    postgres_dsn: str, postgres_schema: str
) -> None:
    other = postgres_schema + "_b"
    try:
        with (
            PostgresStore(postgres_dsn, db_schema=postgres_schema) as a,
            PostgresStore(postgres_dsn, db_schema=other) as b,
        ):
            a.write("scores", pa.table({"x": [1]}))
            assert b.tables() == []
            assert a.tables() == ["scores"]
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{other}" CASCADE')


def test_unreachable_server_is_a_store_error_that_says_what_to_do() -> None:
    dsn = "postgresql://qianmian:hunter2@127.0.0.1:1/bank"

    with pytest.raises(StoreError) as caught:
        PostgresStore(dsn)

    message = str(caught.value)
    assert "postgresql://qianmian:***@127.0.0.1:1/bank" in message
    assert "hunter2" not in message
    assert "Start PostgreSQL" in message


def test_statements_without_rows_return_the_count_they_changed(
    postgres_dsn: str, postgres_schema: str
) -> None:
    with PostgresStore(postgres_dsn, db_schema=postgres_schema) as store:
        store.write("scores", pa.table({"x": [1, 2, 3]}))

        assert store.query("DELETE FROM scores WHERE x > $x", {"x": 1}).to_pylist() == [
            {"Count": 2}
        ]
        assert store.query("UPDATE scores SET x = x + 1 RETURNING x").to_pylist() == [{"x": 2}]
        assert store.query("SHOW DateStyle").to_pylist() == [{"DateStyle": "ISO, YMD"}]


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://app:s3cret@db:5432/bank", "postgresql://app:***@db:5432/bank"),
        ("postgresql://app@db/bank", "postgresql://app@db/bank"),
        (
            "postgresql://app@db/bank?password=s3cret&sslmode=require",
            "postgresql://app@db/bank?password=***&sslmode=require",
        ),
        (
            "host=db user=app password=s3cret dbname=bank",
            "host=db user=app password=*** dbname=bank",
        ),
        ("host=db password='s3 cret' dbname=bank", "host=db password=*** dbname=bank"),
    ],
)
def test_dsn_passwords_are_masked(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked
