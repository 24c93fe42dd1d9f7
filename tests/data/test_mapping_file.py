"""Mapping files: parsing with line-numbered errors, and applying rules to source columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from qianmian.data.mapping import ColumnMapping, load_mapping, map_columns, parse_mapping
from qianmian.data.schema import table
from qianmian.errors import MappingError, ValidationError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "mappings"

SOURCE = pa.table(
    {
        "ID": ["1", "2", "3"],
        "sex": ["男", "女", "?"],
        "age": ["30", "x", None],
        "job": ["admin.", "unknown", "pilot"],
    }
)

INVALID_MAPPINGS = [
    # (YAML text, exception, message pattern)
    (
        "table: customers\ncolumns:\n  gender: {from: sex\n",
        MappingError,
        r"not valid YAML at line 4, column 1: .*indentation",
    ),
    ("- just\n- a list\n", MappingError, r"must be a YAML mapping .* holds list"),
    ("columns: {}\n", MappingError, r"invalid: table: Field required"),
    ("table: customers\ncolums: {}\n", MappingError, r"line 2, colums: is not a known key"),
    (
        "table: customers\ncolumns:\n  gender: {form: sex}\n",
        MappingError,
        r"line 3, columns\.gender\.form: is not a known key",
    ),
    (
        "table: customers\ncolumns:\n  gender: {from: sex, expr: 'upper(sex)'}\n",
        MappingError,
        r"line 3, columns\.gender: give exactly one of 'from', 'constant' or 'expr', not from "
        r"and expr",
    ),
    (
        "table: customers\ncolumns:\n  gender: {values: {男: M}}\n",
        MappingError,
        r"give exactly one of",
    ),
    (
        "table: customers\ncolumns:\n  gender: {constant: M, values: {男: M}}\n",
        MappingError,
        r"'values' recodes a source column, so it needs 'from'",
    ),
    (
        "table: customers\nsource: {delimiter: ';;'}\ncolumns: {}\n",
        MappingError,
        r"line 2, source\.delimiter: the delimiter must be one character",
    ),
    (
        "table: customers\nsource: {encoding: klingon}\ncolumns: {}\n",
        MappingError,
        r"unknown encoding 'klingon'; use e\.g\. utf-8, gbk or gb18030",
    ),
    (
        "table: customers\nsource: {format: xlsx}\ncolumns: {}\n",
        MappingError,
        r"source\.format: Input should be 'csv' or 'parquet'",
    ),
]


@pytest.mark.parametrize(("text", "exception", "message"), INVALID_MAPPINGS)
def test_invalid_mapping_files_are_explained(
    text: str, exception: type[Exception], message: str
) -> None:
    with pytest.raises(exception, match=message):
        parse_mapping(text, name="map.yaml")


INVALID_RULES = [
    # (YAML columns block, message pattern)
    (
        "  birthdate: {from: age}",
        r"field 'birthdate' \(map\.yaml, line 3\), which table "
        r"'customers' does not have\. Did you mean birth_date\?",
    ),
    (
        "  gender: {from: gender_code}",
        r"source column 'gender_code' \(map\.yaml, line 3\), "
        r"which the file does not have\..*columns are: ID, sex, age, job",
    ),
    (
        "  birth_date: {expr: 'make_date(agee, 1, 1)'}",
        r"expression for field 'birth_date' "
        r"\(map\.yaml, line 3\) cannot be used: Binder Error: .*agee",
    ),
    ("  birth_date: {expr: 'make_date(('}", r"expression for field 'birth_date' .*cannot be used"),
    (
        "  gender: sex",
        r"Table 'customers' requires customer_id, but the file has no column of "
        r"that name and the mapping gives no rule for it",
    ),
]


@pytest.mark.parametrize(("columns", "message"), INVALID_RULES)
def test_rules_that_do_not_fit_the_table_or_file_are_explained(columns: str, message: str) -> None:
    mapping = parse_mapping(
        f"table: customers\ncolumns:\n{columns}\n  customer_id: ID\n"
        if "customer_id" not in message
        else f"table: customers\ncolumns:\n{columns}\n",
        name="map.yaml",
    )
    with pytest.raises(MappingError, match=message):
        map_columns(table("customers"), SOURCE, mapping)


def test_mapping_for_another_table_is_refused() -> None:
    mapping = parse_mapping("table: offers\ncolumns: {}\n")
    with pytest.raises(MappingError, match=r"for table 'offers' .* into 'customers'"):
        map_columns(table("customers"), SOURCE, mapping)


def test_mapping_errors_are_validation_errors() -> None:
    assert issubclass(MappingError, ValidationError)


def test_yes_no_and_numbers_stay_text_in_value_maps() -> None:
    mapping = parse_mapping(
        "table: customers\ncolumns:\n  consent_sms:\n    from: sms\n"
        "    values: {yes: 'true', N: 'false', 1: 'true', true: 'true'}\n"
    )
    rule = mapping.columns["consent_sms"]
    assert rule.values == {"yes": "true", "N": "false", "1": "true", "true": "true"}


def test_rules_build_the_target_columns() -> None:
    mapping = parse_mapping(
        "table: customers\n"
        "columns:\n"
        "  customer_id: {expr: row_number}\n"
        "  gender: {from: SEX, values: {男: M, 女: F}}\n"
        "  occupation: {from: job, values: {admin.: 企业白领, unknown: null}}\n"
        "  birth_date: {expr: 'make_date(2024 - CAST(age AS INTEGER), 1, 1)'}\n"
        "  city_tier: {constant: 二线}\n"
        "  consent_sms: {constant: false}\n"
    )
    mapped = map_columns(
        table("customers"), SOURCE, mapping, row_numbers=[1, 2, 4], line_numbers=[2, 3, 5]
    )
    data = mapped.data.to_pydict()
    assert data["customer_id"] == [1, 2, 4]
    assert data["gender"] == ["M", "F", "?"]  # unmapped values pass through to validation
    assert data["occupation"] == ["企业白领", None, "pilot"]
    assert [d and d.year for d in data["birth_date"]] == [1994, None, None]
    assert data["city_tier"] == ["二线"] * 3 and data["consent_sms"] == ["false"] * 3
    # age "x" fails the expression; a missing age gives NULL, which is not a failure
    assert mapped.problems[["row_index", "field", "check"]].values.tolist() == [
        [1, "birth_date", "expression"]
    ]
    assert "Could not convert string 'x'" in mapped.problems["reason"][0]
    assert mapped.unused_columns == ["ID"]


def test_expression_failures_are_isolated_among_many_rows() -> None:
    ages = [str(20 + i % 50) for i in range(5000)]
    for bad in (7, 4000, 4999):
        ages[bad] = "n/a"
    source = pa.table({"cid": [str(i + 1) for i in range(5000)], "age": ages})
    mapping = parse_mapping(
        "table: customers\ncolumns:\n  customer_id: cid\n"
        "  birth_date: {expr: 'make_date(2024 - CAST(age AS INTEGER), 1, 1)'}\n"
    )
    mapped = map_columns(table("customers"), source, mapping)
    assert mapped.problems["row_index"].tolist() == [7, 4000, 4999]
    assert mapped.data["birth_date"].null_count == 3


def test_without_a_mapping_fields_match_columns_ignoring_case() -> None:
    source = pa.table({"Customer_ID": ["1"], "GENDER": ["M"], "extra": ["x"]})
    mapped = map_columns(table("customers"), source)
    assert mapped.data.column_names == ["customer_id", "gender"]
    assert mapped.unused_columns == ["extra"]


def test_pii_source_columns_are_named_for_masking() -> None:
    source = pa.table({"id": ["1"], "full_name": ["张伟"], "first": ["伟"]})
    mapping = parse_mapping(
        "table: customers\ncolumns:\n  customer_id: id\n  name: {expr: \"full_name || ''\"}\n"
    )
    assert map_columns(table("customers"), source, mapping).source_pii == {"full_name": "name"}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_mappings_are_valid(path: Path) -> None:
    mapping = load_mapping(path)
    assert isinstance(mapping, ColumnMapping)
    for name in mapping.columns:
        assert table(mapping.table).has_field(name)


def test_unreadable_mapping_file_is_a_mapping_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"cannot be read .* check the path"):
        load_mapping(tmp_path / "missing.yaml")


def test_expression_errors_do_not_leak_personal_data() -> None:
    source = pa.table(
        {
            "id": ["1", "2"],
            "sfz": ["110105194912310021", "11010519491231002X"],
            "who": ["张伟", "王芳"],
        }
    )
    mapping = parse_mapping(
        "table: customers\ncolumns:\n  customer_id: id\n"
        "  credit_score: {expr: 'CAST(sfz AS BIGINT) % 1000'}\n"
        "  name: {expr: 'CAST(who AS INTEGER)'}\n"
    )
    problems = map_columns(table("customers"), source, mapping).problems
    assert sorted(problems["field"]) == ["credit_score", "name", "name"]
    text = " ".join(problems["reason"])
    assert "Could not convert string '110***********002X'" in text
    for secret in ("11010519491231002X", "张伟", "王芳"):
        assert secret not in text
    assert "message withheld" in text
