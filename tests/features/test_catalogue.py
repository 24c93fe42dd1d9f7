"""The feature catalogue and its compiler: definitions are checked, dependencies resolved."""

from __future__ import annotations

import pytest

from qianmian.errors import SchemaError
from qianmian.features.catalogue import FEATURES, feature
from qianmian.features.compile import AsOf, check_definition, compile_features, resolve
from qianmian.features.definition import FeatureDef


def test_catalogue_covers_the_issue_families():
    groups = {f.group for f in FEATURES.values()}
    assert {
        "rfm",
        "rolling",
        "category",
        "trend",
        "channel",
        "time",
        "app",
        "holdings",
        "credit",
        "loans",
        "lifecycle",
        "profile",
    } <= groups
    windows = {f.window_days for f in FEATURES.values()}
    assert {7, 30, 90, 180} <= windows
    for f in FEATURES.values():
        assert f.zh and f.en and f.type in ("float", "int", "bool", "string")
        check_definition(f)


@pytest.mark.parametrize(
    ("build", "error", "pattern"),
    [
        (
            lambda: FeatureDef("x", "x", "x", "float", "g", "payments", "amount", "sum"),
            SchemaError,
            "reads source 'payments'",
        ),
        (
            lambda: FeatureDef("x", "x", "x", "float", "g", "transactions", "amount"),
            SchemaError,
            "has no agg",
        ),
        (
            lambda: FeatureDef("x", "x", "x", "int", "g", "customers", "age", "sum"),
            SchemaError,
            "takes no agg and no window",
        ),
        (
            lambda: FeatureDef(
                "x", "x", "x", "int", "g", "transactions", "1", "count", window_days=0
            ),
            SchemaError,
            "window_days=0",
        ),
        (
            lambda: check_definition(
                FeatureDef("x", "x", "x", "float", "g", "transactions", "salary", "sum")
            ),
            SchemaError,
            "names field 'salary' in its value, but table 'transactions' has no such field",
        ),
        (
            lambda: check_definition(
                FeatureDef(
                    "x",
                    "x",
                    "x",
                    "float",
                    "g",
                    "transactions",
                    "amount",
                    "sum",
                    where="merchant_name = 'a'",
                )
            ),
            SchemaError,
            "names field 'merchant_name' in its where",
        ),
        (
            lambda: check_definition(
                FeatureDef("x", "x", "x", "float", "g", "derived", "spend_30d / spend_31d")
            ),
            SchemaError,
            "no feature 'spend_31d'",
        ),
        (lambda: feature("spend_30"), SchemaError, "Did you mean spend_30d"),
        (lambda: AsOf.of("2026-02-30"), SchemaError, "is not a date or time"),
    ],
)
def test_bad_definitions_name_the_field(build, error, pattern):
    with pytest.raises(error, match=pattern):
        build()


def test_resolve_adds_what_derived_features_need():
    assert resolve(["share_dining_90d"]) == ["spend_90d", "spend_dining_90d", "share_dining_90d"]
    needed = resolve(["lifecycle_stage"])
    assert {"tenure_days", "recency_days", "spend_90d", "spend_180d", "spend_trend_90_180"} <= set(
        needed
    )


def test_compiled_sql_uses_only_the_past():
    sql = compile_features(["spend_7d", "utilisation_last", "n_cards", "age"], "2026-03-15")
    assert "ts < TIMESTAMP '2026-03-15 00:00:00'" in sql
    assert "statement_month < DATE '2026-02-15'" in sql  # issued statements only
    assert "opened_date < DATE '2026-03-15'" in sql
    assert "signup_date < DATE '2026-03-15'" in sql


def test_the_same_sql_transpiles_for_spark():
    sql = compile_features(None, "2026-06-01", dialect="spark")
    assert "TIMESTAMP_NTZ" in sql or "TIMESTAMP" in sql
    assert "arg_max" not in sql.lower() or "max_by" in sql.lower()


def test_as_of_one_month_back_handles_month_ends():
    assert AsOf.of("2026-03-31").minus_one_month() == "DATE '2026-02-28'"
    assert AsOf.of("2024-03-31").minus_one_month() == "DATE '2024-02-29'"
    assert AsOf.of("2026-01-15").minus_one_month() == "DATE '2025-12-15'"


def test_docs_are_generated_from_the_catalogue():
    from pathlib import Path

    from qianmian.features.catalogue import catalogue_markdown

    doc = Path(__file__).parents[2] / "docs" / "features.md"
    assert doc.read_text(encoding="utf-8").strip() == catalogue_markdown().strip(), (
        "docs/features.md is stale: run `make docs`."
    )
