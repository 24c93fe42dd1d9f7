"""The tag library: hand-made customers, the shipped tags on the simulated bank, bad YAML, CLI."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from qianmian.cli import commands_tags
from qianmian.cli.context import state
from qianmian.errors import ConfigError, NotFoundError, SchemaError
from qianmian.features.catalogue import FEATURES
from qianmian.features.rules import RuleError
from qianmian.features.tags import CATEGORIES, TagLibrary


@pytest.fixture(scope="module")
def library() -> TagLibrary:
    return TagLibrary.load()


# ---- hand-made customers -----------------------------------------------------------------------
def _plain_customer(library: TagLibrary) -> dict[str, object]:
    """A customer who should carry no tag: mid-aged, modest, active, clean credit."""
    zero = {"float": 0.0, "int": 0, "bool": False, "string": ""}
    row = {name: zero[FEATURES[name].type] for name in library.fields_used}
    row.update(
        age=40, tenure_days=1000, days_since_login=5, logins_30d=2, frequency_90d=5,
        monthly_income=8000.0, credit_score=700, risk_level=3, city_tier="二线", gender="M",
        occupation="工人", lifecycle_stage="mature", spend_trend_30_90=1.0,
        spend_trend_90_180=1.0, share_qr_90d=0.3, share_pos_90d=0.2, share_online_90d=0.3,
    )  # fmt: skip
    return row


CUSTOMERS = [
    ("plain", {}, set()),
    (
        "big spender in a tier-1 city",
        dict(spend_90d=36_000.0, spend_180d=70_000.0, monetary_365d=130_000.0, city_tier="一线",
             gender="F", spend_apparel_90d=1_200.0),
        {"monthly_spend_over_10k", "tier1_city", "her_economy", "platinum_prospect"},
    ),
    (
        "retired cautious saver",
        dict(age=65, occupation="退休", holds_wealth=True, max_wealth_risk=2,
             wealth_balance=250_000.0, risk_level=2),
        {"silver_age", "wealth_holder", "prefers_stable_wealth", "high_net_worth_prospect"},
    ),
    (
        "young parent buying baby goods",
        dict(age=30, children=1, spend_baby_90d=500.0),
        {"young_parents", "mother_and_baby", "insurance_gap"},
    ),
    (
        "credit under stress",
        dict(utilisation_last=0.97, revolving_months_6m=5, views_limit_30d=1),
        {"tight_credit_limit", "revolver", "repayment_risk"},
    ),
    (
        "dormant and silent",
        dict(lifecycle_stage="dormant", days_since_login=200, tenure_days=2_000),
        {"dormant", "app_silent"},
    ),
    (
        "traveller planning a trip",
        dict(spend_travel_90d=3_000.0, spend_hotel_90d=1_500.0, views_travel_7d=2),
        {"frequent_traveller", "travel_browsing"},
    ),
    (
        "young night owl paying by QR",
        dict(age=24, occupation="企业白领", share_night_90d=0.3, frequency_90d=20,
             share_qr_90d=0.7),
        {"night_owl", "qr_payer", "young_professional", "youth_card_prospect"},
    ),
    (
        "unknowns everywhere count as false",
        dict(city_tier=None, gender=None, occupation=None, lifecycle_stage=None, age=None,
             share_qr_90d=float("nan"), share_night_90d=float("nan"), utilisation_last=None,
             spend_trend_90_180=float("nan"), monthly_income=float("nan")),
        set(),
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def customers(library: TagLibrary) -> pd.DataFrame:
    rows = [{**_plain_customer(library), **changes} for _, changes, _ in CUSTOMERS]
    return pd.DataFrame(rows).assign(customer_id=range(1, len(rows) + 1))


def test_hand_made_customers_get_exactly_the_expected_tags(library, customers):
    flags = library.evaluate(customers)
    assert list(flags.columns) == ["customer_id", *(t.id for t in library)]
    assert flags["customer_id"].tolist() == customers["customer_id"].tolist()
    for i, (who, _, expected) in enumerate(CUSTOMERS):
        vectorised = {t for t in flags.columns[1:] if flags.at[i, t]}
        one = {t.id for t in library.tags_of(customers.iloc[i])}
        assert vectorised == expected, who
        assert one == expected, who


def test_the_same_tags_from_an_arrow_table(library, customers):
    table = pa.Table.from_pandas(customers, preserve_index=False)
    assert library.evaluate(table).equals(library.evaluate(customers))


# ---- the shipped library on the simulated bank --------------------------------------------------
def test_the_shipped_library_is_complete(library):
    assert len(library) >= 30
    assert {t.category for t in library} == set(CATEGORIES)
    for tag in library:
        assert tag.name_zh and tag.name_en and tag.description_zh and tag.description_en
        assert tag.rule.fields_used and tag.line is not None
    names = {t.name_zh for t in library}
    assert {
        "月消费超1万元",
        "偏好稳健理财",
        "近6个月有消费贷款记录",
        "差旅达人",
        "白金卡潜客",
    } <= names


def test_every_shipped_tag_covers_a_plausible_share_of_the_bank(library, feature_table):
    coverage = library.coverage(feature_table)
    print("\n" + coverage.to_string(index=False, float_format=lambda x: f"{x:.1%}"))
    assert coverage["tag"].tolist() == [t.id for t in library]
    assert (coverage["customers"] == (coverage["share"] * feature_table.num_rows).round()).all()
    assert ((coverage["share"] > 0) & (coverage["share"] < 0.9)).all(), coverage
    # A tag library is for targeting: most tags should mark a minority worth a campaign.
    assert ((coverage["share"] > 0.01) & (coverage["share"] < 0.6)).mean() >= 0.9


def test_one_customer_at_a_time_equals_the_vectorised_answer(library, feature_table):
    flags = library.evaluate(feature_table)
    frame = feature_table.to_pandas()
    for i in np.random.default_rng(0).choice(len(frame), size=200, replace=False):
        row = frame.iloc[i].to_dict()
        assert {t.id for t in library.tags_of(row)} == {
            t for t in flags.columns[1:] if flags.at[i, t]
        }


def test_the_tags_sql_gives_the_same_answer_in_duckdb(library, feature_table):
    selects = ", ".join(f"{t.rule.to_sql()} AS {t.id}" for t in library)
    con = duckdb.connect()
    con.register("features", feature_table)
    in_sql = con.execute(f"SELECT customer_id, {selects} FROM features").df()
    in_python = library.evaluate(feature_table)
    for tag in library:
        assert in_sql[tag.id].astype(bool).tolist() == in_python[tag.id].tolist(), tag.id


# ---- errors ------------------------------------------------------------------------------------
GOOD = """\
version: 1
tags:
  - id: rich
    name_zh: 有钱
    name_en: Rich
    category: 理财
    description_zh: 理财持仓超过10万元。
    description_en: Over ¥100k in wealth products.
    when: wealth_balance > 100000
  - id: young
    name_zh: 年轻
    name_en: Young
    category: 人群
    description_zh: 30岁以下。
    description_en: Under 30.
    when: age < 30
"""

BAD_YAML = [
    # (change to GOOD, error class, message pattern)
    (
        ("age < 30", "agee < 30"),
        SchemaError,
        r"line 16: tag 'young' \(年轻\): The rule 'agee < 30' uses an unknown field 'agee'\. "
        r"Did you mean age",
    ),
    (
        ("age < 30", "upper(occupation) = 'X'"),
        RuleError,
        r"line 16: tag 'young'.*UPPER\(\) is not allowed",
    ),
    (("age < 30", "age < '30'"), RuleError, r"line 16: tag 'young'.*compares feature 'age'"),
    (("age < 30", "age < 30; DROP TABLE x"), RuleError, r"line 16: tag 'young'.*';'"),
    (
        ("id: young", "id: rich"),
        ConfigError,
        r"line 10: the tag id 'rich' is already used at line 3",
    ),
    (("id: young", "id: Young"), ConfigError, r"line 10: tag 'Young' is invalid: 'id'"),
    (
        ("category: 人群", "category: 人类"),
        ConfigError,
        r"line 13: tag 'young' is invalid: 'category'.*人类",
    ),
    (
        ("    when: age < 30\n", ""),
        ConfigError,
        r"line 10: tag 'young' is invalid: 'when'.*required",
    ),
    (
        ("when: age < 30\n", "when: age < 30\n    colour: red\n"),
        ConfigError,
        r"line 17: tag 'young' is invalid: 'colour'.*not permitted",
    ),
    (
        ("when: age < 30\n", "when: age < 30\n    when: age < 20\n"),
        ConfigError,
        r"line 17: the tag at line 10 sets 'when' twice",
    ),
    (("when: age < 30", "when: 30"), ConfigError, r"line 16: tag 'young' is invalid: 'when'"),
    (("name_en: Young", "name_en: [Young"), ConfigError, r"line 1[2-4]: the YAML does not parse"),
    (("version: 1", "version: 2"), ConfigError, r"version"),
    (("  - id: rich", "  - rich\n  - id: rich2"), ConfigError, r"line 3: a tag must be a mapping"),
    (("tags:", "tag:"), ConfigError, r"a mapping with a 'tags:' list"),
]


@pytest.mark.parametrize(
    ("change", "error", "pattern"), BAD_YAML, ids=[c[1][:30] for c, _, _ in BAD_YAML]
)
def test_a_bad_library_names_the_file_line_tag_and_field(change, error, pattern):
    old, new = change
    assert old in GOOD
    with pytest.raises(error, match=pattern) as info:
        TagLibrary.from_yaml(GOOD.replace(old, new, 1), source="my_tags.yaml")
    assert str(info.value).startswith("my_tags.yaml")


def test_a_good_library_loads_from_a_file(tmp_path):
    path = tmp_path / "tags.yaml"
    path.write_text(GOOD, encoding="utf-8")
    library = TagLibrary.load(path)
    assert [t.id for t in library] == ["rich", "young"]
    assert library["young"].line == 10 and library["young"].when == "age < 30"
    with pytest.raises(NotFoundError, match=r"There is no tag 'yung'\. Did you mean young"):
        library["yung"]
    with pytest.raises(ConfigError, match="does not exist"):
        TagLibrary.load(tmp_path / "missing.yaml")


def test_a_library_with_its_own_fields():
    text = GOOD.replace("wealth_balance", "aum").replace("age", "years")
    library = TagLibrary.from_yaml(text, fields={"aum": "float", "years": "int"})
    assert library.tags_of({"aum": 2e5, "years": 20}) == list(library)


def test_missing_feature_columns_are_named_with_the_tags_that_need_them():
    library = TagLibrary.from_yaml(GOOD)
    with pytest.raises(SchemaError, match=r"no column 'age' \(needed by young\)"):
        library.evaluate(pd.DataFrame({"customer_id": [1], "wealth_balance": [1.0]}))
    with pytest.raises(SchemaError, match="no column 'customer_id'"):
        library.evaluate(pd.DataFrame({"age": [1], "wealth_balance": [1.0]}))
    with pytest.raises(SchemaError, match="needs the feature"):
        library.tags_of({"age": 20})
    with pytest.raises(SchemaError, match="pyarrow Table or a pandas DataFrame"):
        library.evaluate({"age": [1]})


# ---- the command line --------------------------------------------------------------------------
@pytest.fixture()
def tags_app(feature_workspace):
    """The ``tags`` command on a local Typer app, run against the simulated bank's workspace."""
    app = typer.Typer()
    commands_tags.register(app)

    @app.callback()
    def root() -> None:  # keeps 'tags' a sub-command, as in the real app
        """Test root."""

    state.reset(str(feature_workspace), False)
    yield app
    state.reset(None, False)


runner = CliRunner()


def test_cli_prints_coverage_grouped_by_category(tags_app):
    result = runner.invoke(tags_app, ["tags", "--as-of", "2026-08-01"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "as of 2026-08-01, 3,939 customers" in out
    assert "月消费超1万元" in out and "偏好稳健理财" in out and "%" in out
    positions = [out.index(c) for c in CATEGORIES]
    assert positions == sorted(positions)  # grouped, in category order


def test_cli_defaults_to_the_day_after_the_last_transaction_and_speaks_english(tags_app):
    result = runner.invoke(tags_app, ["tags", "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "as of 2026-11-01" in result.output
    assert "Frequent traveller" in result.output and "spending" in result.output


def test_cli_lists_tags_without_computing(tags_app, tmp_path):
    state.reset(str(tmp_path / "empty"), False)  # no store needed
    result = runner.invoke(tags_app, ["tags", "--list"])
    assert result.exit_code == 0, result.output
    assert "差旅达人" in result.output and "spend_travel_90d" in result.output


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--as-of", "yesterday"], "not a date like 2026-08-01"),
        (["--file", "/no/such/tags.yaml"], "does not exist"),
    ],
)
def test_cli_errors_are_one_clear_line(tags_app, args, pattern):
    result = runner.invoke(tags_app, ["tags", *args])
    assert result.exit_code == 1
    assert result.output.startswith("Error:") and pattern in " ".join(result.output.split())


def test_cli_on_an_empty_workspace_says_what_to_do(tags_app, tmp_path):
    state.reset(str(tmp_path / "empty"), False)
    result = runner.invoke(tags_app, ["tags"])
    assert result.exit_code == 1
    assert "no transactions" in result.output and "qianmian generate" in result.output
