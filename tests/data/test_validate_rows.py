"""validate_rows: each check, several problems per row, keys, references, and no row lost."""

from __future__ import annotations

import re

import hypothesis.strategies as st
import pyarrow as pa
import pytest
from hypothesis import given, settings

from qianmian.data.schema import table
from qianmian.data.validate import PROBLEM_COLUMNS, validate_rows
from qianmian.errors import SchemaError

CONTACT = {
    "contact_id": "1",
    "customer_id": "1",
    "offer_id": "OF1",
    "channel": "sms",
    "ts": "2024-01-31 10:00",
    "campaign_id": "SPRING-2024",
    "action_probability": "0.5",
    "cost": "0.05",
    "is_holdout": "否",
}

# (field, bad text, check, reason pattern)
INVALID_VALUES = [
    ("contact_id", "x", "type", r"^is not a whole number$"),
    ("contact_id", "0", "range", r"^is below the minimum 1$"),
    ("contact_id", "", "required", r"^is required but missing$"),
    ("ts", "2024-02-30 10:00", "type", r"^is not a valid date-time"),
    ("ts", "", "required", r"required"),
    ("channel", "carrier_pigeon", "enum", r"^is not one of the allowed values \(app_push, "),
    ("channel", "SMS", "enum", r"did you mean 'sms'\?$"),
    ("campaign_id", "bad id!", "pattern", r"^does not match the pattern "),
    ("action_probability", "1.5", "range", r"^is above the maximum 1$"),
    ("action_probability", "half", "type", r"^is not a number$"),
    ("cost", "-1", "range", r"^is below the minimum 0$"),
    ("is_holdout", "maybe", "type", r"^is not a yes/no value"),
]


def contacts(*rows: dict[str, str]) -> pa.Table:
    return pa.table({k: [r.get(k, "") for r in rows] for k in CONTACT})


PARENTS = {"customers.customer_id": pa.array([1, 2]), "offers.offer_id": pa.array(["OF1"])}


@pytest.mark.parametrize(("field", "text", "check", "reason"), INVALID_VALUES)
def test_each_invalid_value_is_reported_with_field_and_reason(
    field: str, text: str, check: str, reason: str
) -> None:
    result = validate_rows(
        table("contacts"),
        contacts(CONTACT, {**CONTACT, "contact_id": "2", field: text}),
        row_numbers=[2, 3],
        parent_keys=PARENTS,
    )
    assert result.good["contact_id"].to_pylist() == [1]
    [problem] = result.problems.to_dict("records")
    assert (problem["row_number"], problem["field"], problem["check"]) == (3, field, check)
    assert problem["value"] == text  # the text as read, not the parsed value
    assert re.search(reason, problem["reason"]), problem["reason"]


def test_one_row_with_several_problems_gets_one_quarantine_row_each() -> None:
    bad = {**CONTACT, "contact_id": "x", "channel": "fax", "cost": "-3"}
    result = validate_rows(table("contacts"), contacts(bad), row_numbers=[7], parent_keys=PARENTS)
    assert result.rows_good == 0 and result.rows_quarantined == 1
    assert sorted(result.problems["field"]) == ["channel", "contact_id", "cost"]
    assert set(result.problems["row_number"]) == {7}
    assert list(result.problems.columns) == PROBLEM_COLUMNS


def test_duplicate_keys_keep_the_first_row_and_name_its_line() -> None:
    rows = [{**CONTACT, "contact_id": i} for i in ("5", "6", "5", "5")]
    result = validate_rows(
        table("contacts"), contacts(*rows), row_numbers=[2, 3, 4, 9], parent_keys=PARENTS
    )
    assert result.good["contact_id"].to_pylist() == [5, 6]
    assert result.problems["row_number"].tolist() == [4, 9]
    assert set(result.problems["reason"]) == {"duplicate key contact_id=5, first seen on line 2"}


def test_keys_already_stored_are_quarantined() -> None:
    rows = [{**CONTACT, "contact_id": i} for i in ("1", "2")]
    result = validate_rows(
        table("contacts"),
        contacts(*rows),
        parent_keys=PARENTS,
        stored_keys=pa.table({"contact_id": [2, 3]}),
    )
    assert result.good["contact_id"].to_pylist() == [1]
    assert result.problems[["row_number", "check"]].values.tolist() == [[2, "stored"]]


def test_composite_keys_are_compared_as_a_whole() -> None:
    data = pa.table(
        {"customer_id": ["1", "1", "1"], "statement_month": ["2024-01-01", "2024/2/1", "20240101"]}
    )
    result = validate_rows(
        table("statements"), data, parent_keys={"customers.customer_id": pa.array([1])}
    )
    assert result.problems["row_number"].tolist() == [3]
    assert "customer_id=1, statement_month=2024-01-01" in result.problems["reason"][0]


def test_dangling_references_name_the_parent_and_missing_parents_say_import_it() -> None:
    rows = [
        {**CONTACT, "contact_id": "1", "customer_id": "9"},
        {**CONTACT, "contact_id": "2", "offer_id": "OF1"},
    ]
    result = validate_rows(
        table("contacts"),
        contacts(*rows),
        parent_keys={"customers.customer_id": pa.array([1]), "offers.offer_id": None},
    )
    found = result.problems[["row_number", "field"]].values.tolist()
    assert found == [[1, "customer_id"], [1, "offer_id"], [2, "offer_id"]]
    reasons = dict(zip(result.problems["field"], result.problems["reason"], strict=False))
    assert "customers.customer_id" in reasons["customer_id"]
    assert "import it first" in reasons["offer_id"]


def test_self_reference_accepts_good_rows_of_the_same_input() -> None:
    from qianmian.data.schema import Field, Table

    tree = Table(
        "branches",
        "网点",
        "branches",
        primary_key=("id",),
        fields=(
            Field("id", "int", "", "", required=True),
            Field("parent", "int", "", "", references="branches.id"),
            Field("code", "string", "", "", pattern=r"[A-Z]+"),
        ),
    )
    data = pa.table(
        {"id": ["1", "2", "3", "4"], "parent": ["", "1", "4", "3"], "code": ["A", "B", "C", "bad"]}
    )
    result = validate_rows(tree, data, parent_keys={"branches.id": pa.array([], pa.int64())})
    # 4 has a bad code, so 3 (pointing at 4) dangles, so 4 would point at a bad row too
    assert result.good["id"].to_pylist() == [1, 2]
    assert sorted(map(tuple, result.problems[["row_number", "check"]].values.tolist())) == [
        (3, "reference"),
        (4, "pattern"),
        (4, "reference"),
    ]


def test_unknown_columns_are_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"Table 'contacts' has no field 'colour'"):
        validate_rows(table("contacts"), pa.table({"colour": ["red"]}))


def test_good_rows_conform_to_the_dictionary() -> None:
    result = validate_rows(table("contacts"), contacts(CONTACT), parent_keys=PARENTS)
    assert result.good.schema == table("contacts").arrow_schema
    assert result.good["is_holdout"].to_pylist() == [False]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["1", "2", "x", "", "0", "1,000"]),
            st.sampled_from(["sms", "fax", ""]),
            st.sampled_from(["2024-01-31", "2024-02-30", "", "20240101 08:00"]),
        ),
        min_size=0,
        max_size=30,
    )
)
def test_every_row_is_either_good_or_quarantined(rows: list[tuple[str, str, str]]) -> None:
    data = contacts(*[{**CONTACT, "contact_id": c, "channel": ch, "ts": ts} for c, ch, ts in rows])
    result = validate_rows(table("contacts"), data, parent_keys=PARENTS)
    bad = set(result.problems["row_index"])
    assert set(result.good_rows.tolist()).isdisjoint(bad)
    assert set(result.good_rows.tolist()) | bad == set(range(len(rows)))


def test_pii_is_masked_in_values_reasons_and_raw_rows() -> None:
    from qianmian.data.masking import mask_value

    data = pa.table(
        {
            "customer_id": ["1", "1", "x"],
            "id_type": ["mobile"] * 3,
            "id_value": ["13812345678", "13812345678", "13987654321"],
        }
    )
    result = validate_rows(
        table("identifiers"), data, parent_keys={"customers.customer_id": pa.array([1])}
    )
    text = result.problems[["value", "reason", "raw"]].to_string()
    assert "13812345678" not in text and "13987654321" not in text
    duplicate = result.problems[result.problems["check"] == "duplicate"].iloc[0]
    assert mask_value("13812345678", "identifier") in duplicate["reason"]
    assert duplicate["row_number"] == 2
