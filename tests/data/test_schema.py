"""The data dictionary: complete, consistent, and the docs generated from it are current."""

from __future__ import annotations

from pathlib import Path

import pytest

from qianmian.data.schema import TABLES, Field, Table, table
from qianmian.data.schema.render import dictionary_markdown
from qianmian.errors import SchemaError

DOCS = Path(__file__).parents[2] / "docs" / "data-dictionary.md"


def test_docs_are_generated_from_the_dictionary():
    assert DOCS.read_text(encoding="utf-8").strip() == dictionary_markdown().strip(), (
        "docs/data-dictionary.md is stale: run `make docs`."
    )


@pytest.mark.parametrize("name", list(TABLES))
def test_every_field_is_described_in_both_languages(name):
    t = TABLES[name]
    assert t.zh and t.en
    for f in t.fields:
        assert f.zh.strip() and f.en.strip(), (name, f.name)


@pytest.mark.parametrize("name", list(TABLES))
def test_references_point_to_real_fields(name):
    for f in TABLES[name].fields:
        if f.references:
            parent, column = f.references.split(".")
            assert TABLES[parent].has_field(column), (name, f.name, f.references)
            assert TABLES[parent].field(column).type == f.type


def test_required_issue_tables_exist():
    needed = {
        "customers",
        "identifiers",
        "products",
        "holdings",
        "transactions",
        "app_events",
        "offers",
        "contacts",
        "responses",
    }
    assert needed <= set(TABLES)
    assert set(table("identifiers").field("id_type").enum) == {
        "mobile",
        "email",
        "device_id",
        "app_user_id",
        "card_number",
        "national_id",
    }
    assert set(table("responses").field("response_type").enum) == {
        "delivered",
        "opened",
        "clicked",
        "applied",
        "approved",
        "first_use",
        "unsubscribed",
        "complained",
    }
    assert set(table("products").field("card_tier").enum) == {
        "标准卡",
        "金卡",
        "白金卡",
        "联名卡",
        "青年卡",
    }
    assert table("products").field("risk_level").enum == ("R1", "R2", "R3", "R4", "R5")


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: table("nope"), "no table 'nope'.*Known tables: customers"),
        (lambda: table("customers").field("salary"), "Table 'customers' has no field 'salary'"),
        (lambda: Field("x", "decimal", "x", "x"), "type 'decimal', which is not one of"),
        (
            lambda: Table("t", "t", "t", (Field("a", "int", "a", "a"),), primary_key=("b",)),
            "primary key column 'b', which is not a field",
        ),
        (
            lambda: Table(
                "t", "t", "t", (Field("a", "int", "a", "a"), Field("a", "int", "a", "a"))
            ),
            "declares a field twice",
        ),
    ],
)
def test_bad_definitions_are_clear_errors(build, pattern):
    with pytest.raises(SchemaError, match=pattern):
        build()


def test_conform_fills_optional_and_rejects_missing_required():
    import pyarrow as pa

    t = table("offers")
    out = t.conform(pa.table({"offer_id": ["A"], "offer_type": ["wealth"], "name_zh": ["甲"]}))
    assert out.schema == t.arrow_schema and out.column("end_date").null_count == 1
    with pytest.raises(SchemaError, match="needs column 'name_zh'"):
        t.conform(pa.table({"offer_id": ["A"], "offer_type": ["wealth"]}))
