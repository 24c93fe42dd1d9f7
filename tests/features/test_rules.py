"""The rule language: validation, NULL logic, vectorised = one customer = DuckDB."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qianmian.errors import QianmianError, SchemaError, ValidationError
from qianmian.features.rules import Rule, RuleError, parse_rule

# A small schema of our own: one field of each type (nulls allowed everywhere).
FIELDS = {"a": "float", "b": "float", "n": "int", "s": "string", "f": "bool"}
NAN = float("nan")

# Eight customers covering NULLs, zero divisors, equal values and every text value.
DATA = pd.DataFrame(
    {
        "a": [1.0, 5.0, NAN, -2.0, 0.0, 10.0, 3.0, NAN],
        "b": [2.0, 0.0, 1.0, NAN, 0.0, 5.0, 3.0, NAN],
        "n": [1, 2, 3, 4, 5, 6, 7, 8],
        "s": ["一线", "二线", None, "新一线", "一线", "三线", "企业白领", None],
        "f": [True, False, None, True, False, None, True, False],
    }
)
DATA["f"] = DATA["f"].astype(object)


def columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy() for c in frame.columns}


def rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    return frame.to_dict("records")


def duckdb_eval(rule: Rule, frame: pd.DataFrame) -> np.ndarray:
    """The rule's SQL run by DuckDB on the frame (NaN/None become SQL NULL)."""
    table = pa.table(
        {
            "a": pa.array(frame["a"], type=pa.float64(), from_pandas=True),
            "b": pa.array(frame["b"], type=pa.float64(), from_pandas=True),
            "n": pa.array(frame["n"], type=pa.int64()),
            "s": pa.array(frame["s"].tolist(), type=pa.string(), from_pandas=True),
            "f": pa.array(frame["f"].tolist(), type=pa.bool_(), from_pandas=True),
        }
    )
    con = duckdb.connect()
    con.register("t", table)
    out = con.execute(f"SELECT {rule.to_sql()} AS r FROM t").fetchnumpy()["r"]
    return np.asarray(out, dtype=bool)


# ---- valid rules: hand-computed answers on DATA ----------------------------------------------
VALID = [
    ("a > 2", [0, 1, 0, 0, 0, 1, 1, 0]),
    ("a <> 3", [1, 1, 0, 1, 1, 1, 0, 0]),
    ("a != 3", [1, 1, 0, 1, 1, 1, 0, 0]),
    ("a = b", [0, 0, 0, 0, 1, 0, 1, 0]),
    ("a / b >= 0.5", [1, 0, 0, 0, 0, 1, 1, 0]),  # x / 0 is NULL, so false
    ("a + b * 2 < 5", [0, 0, 0, 0, 1, 0, 0, 0]),
    ("-a > 1", [0, 0, 0, 1, 0, 0, 0, 0]),
    ("(a - 1) * 2 = 0", [1, 0, 0, 0, 0, 0, 0, 0]),
    ("NOT a > 2", [1, 0, 0, 1, 1, 0, 0, 0]),  # NOT NULL is NULL: rows 2 and 7 stay false
    ("a > 2 OR f", [1, 1, 0, 1, 0, 1, 1, 0]),
    ("a > 2 AND NOT f", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("a IS NULL", [0, 0, 1, 0, 0, 0, 0, 1]),
    ("s IS NOT NULL AND b IS NULL", [0, 0, 0, 1, 0, 0, 0, 0]),
    ("a BETWEEN 0 AND 3", [1, 0, 0, 0, 1, 0, 1, 0]),
    ("a NOT BETWEEN 0 AND 3", [0, 1, 0, 1, 0, 1, 0, 0]),
    ("n IN (2, 4, 6)", [0, 1, 0, 1, 0, 1, 0, 0]),
    ("n NOT IN (2, 4, 6)", [1, 0, 1, 0, 1, 0, 1, 1]),
    ("s IN ('一线', '新一线')", [1, 0, 0, 1, 1, 0, 0, 0]),
    ("s NOT IN ('一线', '新一线')", [0, 1, 0, 0, 0, 1, 1, 0]),
    ("s = '二线'", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("s LIKE '%线'", [1, 1, 0, 1, 1, 1, 0, 0]),
    ("s NOT LIKE '_线'", [0, 0, 0, 1, 0, 0, 1, 0]),
    ("f", [1, 0, 0, 1, 0, 0, 1, 0]),
    ("f = FALSE", [0, 1, 0, 0, 1, 0, 0, 1]),
    ("f <> TRUE", [0, 1, 0, 0, 1, 0, 0, 1]),
    ("COALESCE(a, 0) = 0", [0, 0, 1, 0, 1, 0, 0, 1]),
    ("COALESCE(a, b, -1) < 0", [0, 0, 0, 1, 0, 0, 0, 1]),
    ("COALESCE(f, TRUE)", [1, 0, 1, 1, 0, 1, 1, 0]),
    ("COALESCE(s, '无') = '无'", [0, 0, 1, 0, 0, 0, 0, 1]),
    ("ABS(a) >= 2", [0, 1, 0, 1, 0, 1, 1, 0]),
    ("LEAST(a, b) >= 1", [1, 0, 1, 0, 0, 1, 1, 0]),  # LEAST skips NULLs, as SQL does
    ("GREATEST(a, b, 4) = 4", [1, 0, 1, 1, 1, 0, 1, 1]),
    ("CASE WHEN s = '一线' THEN a ELSE b END > 0.5", [1, 0, 1, 0, 0, 1, 1, 0]),
    ("CASE WHEN a > 2 THEN 'big' WHEN a > 0 THEN 'small' END = 'small'", [1, 0, 0, 0, 0, 0, 0, 0]),
    ("CASE WHEN n > 6 THEN TRUE ELSE f END", [1, 0, 0, 1, 0, 0, 1, 1]),
    ("TRUE", [1] * 8),
    ("a > 0 AND (b > 0 OR s = '一线')", [1, 0, 0, 0, 0, 1, 1, 0]),
    ("a > 1e0", [0, 1, 0, 0, 0, 1, 1, 0]),
    ('"a" == 10', [0, 0, 0, 0, 0, 1, 0, 0]),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t for t, _ in VALID])
def test_valid_rules_give_the_hand_computed_answer_every_way(text, expected):
    rule = parse_rule(text, FIELDS)
    want = np.array(expected, dtype=bool)
    got = rule.evaluate(columns(DATA))
    if rule.fields_used:
        assert got.dtype == bool and got.tolist() == want.tolist()
    assert [rule.evaluate(r) for r in rows(DATA)] == want.tolist()
    assert duckdb_eval(rule, DATA).tolist() == want.tolist()


# ---- invalid rules: (text, message pattern) --------------------------------------------------
INVALID = [
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("x > 1", "unknown field 'x'"),
    ("aa > 1", r"unknown field 'aa'\. Did you mean a"),
    ("A > 1", r"unknown field 'A'\. Did you mean a"),
    ("t.a > 1", "names a table"),
    ("upper(s) = 'A'", r"function UPPER\(\) is not allowed.*ABS, COALESCE, GREATEST, LEAST"),
    ("my_udf(a) > 1", r"function MY_UDF\(\) is not allowed"),
    ("sqrt(a) > 1", r"function SQRT\(\) is not allowed"),
    ("a IN (SELECT 1)", "IN takes a list of values"),
    ("a > (SELECT max(a) FROM t)", "sub-queries are not allowed"),
    ("EXISTS (SELECT 1)", "is not allowed"),
    ("*", "'\\*' is not allowed"),
    ("a > 1; DROP TABLE customers", "contains ';'"),
    ("a > 1;", "contains ';'"),
    ("s = 1", r"compares feature 's' \(string\), which is text, with the number 1"),
    ("a = '1'", r"compares feature 'a' \(float\), which is a number, with the text '1'"),
    ("f = 1", r"feature 'f' \(bool\), which is true/false, with the number 1"),
    ("s + 1 > 2", r"needs a number, but feature 's' \(string\) is text"),
    ("a", "is a number, not a condition"),
    ("s", r"is text, not a condition; compare it, e\.g\. 's = '\.\.\.''"),
    ("NULL", "NULL alone is not a condition"),
    ("a + 1", "not a condition"),
    ("a AND f", "is a number, not a condition"),
    ("NOT s", "is text, not a condition"),
    ("a = NULL", "IS NULL"),
    ("a <> NULL", "IS NULL"),
    ("a IN (1, NULL)", "every IN value must be a number or text literal"),
    ("a IN (1, b)", "every IN value must be a number or text literal"),
    ("a IN (1, '2')", "looks for the text '2' in feature 'a'"),
    ("f IN (TRUE)", "needs a number or text"),
    ("f > FALSE", "only = and <> apply"),
    ("a IS 1", "IS only tests for NULL"),
    ("f IS TRUE", "IS only tests for NULL"),
    ("s LIKE s", "pattern must be a text literal"),
    ("a LIKE '1%'", "needs text"),
    ("s ILIKE 'a%'", "is not allowed"),
    ("a % 2 = 0", "Mod.*is not allowed"),
    ("a // 2 = 0", "is not allowed"),
    ("CAST(a AS INT) = 1", r"CAST\(\) is not allowed|Cast.*not allowed"),
    ("CASE a WHEN 1 THEN TRUE END", "write CASE WHEN"),
    ("a BETWEEN SYMMETRIC 3 AND 1", "without SYMMETRIC"),
    ("s LIKE ANY ('x', 'y')", "pattern must be a text literal"),
    ("s LIKE 'x' ESCAPE '!'", "Escape.*is not allowed"),
    ("CASE WHEN a > 1 THEN 1 ELSE 'x' END = 1", "CASE mixes kinds of value"),
    ("COALESCE(a, 'x') = 1", r"COALESCE\(\) mixes kinds"),
    ("COALESCE(NULL, NULL) IS NULL", "gives only NULL"),
    ("a > 1 b", "is not one condition"),
    ("a >", "does not parse"),
    ("(a > 1", "does not parse"),
    ("a > 1 AND", "does not parse"),
    ("'x' x", "not one condition|not allowed"),
    ("a" + " + a" * 2_500 + " > 1", "at most 4,000"),
]


@pytest.mark.parametrize(("text", "pattern"), INVALID, ids=[t[:40] for t, _ in INVALID])
def test_invalid_rules_are_refused_with_a_reason(text, pattern):
    with pytest.raises(RuleError, match=pattern) as info:
        parse_rule(text, FIELDS)
    assert isinstance(info.value, SchemaError | QianmianError | ValueError)
    if len(text) < 200:
        assert text.strip() in str(info.value) or not text.strip()


def test_unknown_field_is_a_schema_error_naming_the_field_and_close_matches():
    with pytest.raises(SchemaError) as info:
        parse_rule("monetary_90 > 10000 AND city_tier = '一线'")  # default: the catalogue
    message = str(info.value)
    assert "'monetary_90'" in message and "monetary_90d" in message
    assert "monetary_90 > 10000 AND city_tier = '一线'" in message


def test_the_default_fields_are_the_feature_catalogue():
    rule = parse_rule("spend_90d / 3 > 10000 AND city_tier IN ('一线', '新一线') AND holds_wealth")
    assert rule.fields_used == ("city_tier", "holds_wealth", "spend_90d")
    assert rule.evaluate({"spend_90d": 36_000, "city_tier": "一线", "holds_wealth": True})
    assert not rule.evaluate({"spend_90d": 36_000, "city_tier": "二线", "holds_wealth": True})


def test_a_field_of_unknown_type_is_refused():
    with pytest.raises(SchemaError, match="Field 'x' has type 'decimal'"):
        parse_rule("x > 1", {"x": "decimal"})


# ---- NULL semantics ----------------------------------------------------------------------------
NULL_CASES = [
    # (rule, one customer, result): unknown counts as False, but only at the very end
    ("a > 1", {"a": None}, False),
    ("a > 1", {"a": NAN}, False),
    ("a > 1", {"a": pd.NA}, False),
    ("NOT a > 1", {"a": None}, False),
    ("NOT (a > 1 AND b > 1)", {"a": None, "b": 0.0}, True),  # NULL AND FALSE is FALSE
    ("NOT (a > 1 OR b > 1)", {"a": None, "b": 0.0}, False),  # NULL OR FALSE is NULL
    ("a > 1 OR b > 1", {"a": None, "b": 2.0}, True),
    ("a IS NULL", {"a": NAN}, True),
    ("s IS NULL", {"s": NAN}, True),  # pandas writes missing text as NaN
    ("f IS NULL", {"f": pd.NA}, True),
    ("a <> 1", {"a": None}, False),
    ("a / b > 0", {"a": 1.0, "b": 0.0}, False),
    ("(a / b) IS NULL", {"a": 1.0, "b": 0}, True),
    ("COALESCE(a / b, 0) = 0", {"a": 1.0, "b": 0.0}, True),
    ("s NOT IN ('x')", {"s": None}, False),
]


@pytest.mark.parametrize(("text", "row", "expected"), NULL_CASES)
def test_null_uses_three_valued_logic_and_counts_as_false_at_the_end(text, row, expected):
    rule = parse_rule(text, FIELDS)
    assert rule.evaluate(row) is expected
    vec = rule.evaluate({k: np.array([v, v], dtype=object) for k, v in row.items()})
    assert vec.tolist() == [expected, expected]


# ---- inputs ----------------------------------------------------------------------------------
def test_every_kind_of_column_gives_the_same_answer():
    rule = parse_rule("a > 2 AND s IN ('二线', '三线') OR f", FIELDS)
    want = rule.evaluate(columns(DATA))
    as_arrow = pa.Table.from_pandas(DATA[["a", "s"]])
    kinds = [
        {c: DATA[c] for c in DATA.columns},  # pandas Series
        {c: DATA[c].tolist() for c in DATA.columns},  # lists
        {"a": as_arrow.column("a"), "s": as_arrow.column("s"), "f": DATA["f"].tolist()},
        {
            "a": DATA["a"].astype("Float64"),
            "s": DATA["s"].astype("string"),
            "f": DATA["f"].astype("boolean"),
        },  # pandas nullable types (pd.NA)
    ]
    for cols in kinds:
        assert rule.evaluate(cols).tolist() == want.tolist()


def test_scalars_broadcast_against_columns():
    rule = parse_rule("a > b", FIELDS)
    assert rule.evaluate({"a": np.array([1.0, 3.0]), "b": 2.0}).tolist() == [False, True]


def test_one_customer_of_numpy_scalars():
    rule = parse_rule("n >= 2 AND a < 1 AND f", FIELDS)
    assert rule.evaluate({"n": np.int64(3), "a": np.float32(0.5), "f": np.bool_(True)}) is True


@pytest.mark.parametrize(
    ("row", "error", "pattern"),
    [
        ({"a": 1.0}, SchemaError, r"needs the feature\(s\) s, which the input does not have"),
        ({"a": "many", "s": "x"}, ValidationError, "Feature 'a' must be a number; got the text"),
        ({"a": 1.0, "s": 3}, ValidationError, "Feature 's' must be text; got 3"),
        ({"a": [1.0, "x"], "s": ["a", "b"]}, ValidationError, "Feature 'a' must be a number"),
    ],
)
def test_bad_input_names_the_feature(row, error, pattern):
    rule = parse_rule("a > 0 AND s = 'x'", FIELDS)
    with pytest.raises(error, match=pattern):
        rule.evaluate(row)


def test_a_bad_bool_value_is_refused():
    with pytest.raises(ValidationError, match="Feature 'f' must be true or false; got 'yes'"):
        parse_rule("f", FIELDS).evaluate({"f": "yes"})


def test_sql_for_other_engines_guards_division():
    rule = parse_rule("monetary_90d / frequency_90d > 500 AND city_tier = '一线'")
    sql = rule.to_sql("spark")
    assert "NULLIF(frequency_90d, 0)" in sql and sql.startswith("COALESCE(")
    assert "NULLIF" not in parse_rule("spend_90d / 3 > 1").to_sql()
    assert rule.to_sql(null_as_false=False).startswith("monetary_90d / NULLIF")


# ---- properties: random data and random rules ------------------------------------------------
_num = st.one_of(
    st.none(),
    st.integers(-4, 4).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
)
_row = st.fixed_dictionaries(
    {
        "a": _num,
        "b": _num,
        "n": st.integers(-5, 5),
        "s": st.sampled_from([None, "一线", "二线", "x"]),
        "f": st.sampled_from([None, True, False]),
    }
)
_OPS = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "=": "eq", "<>": "ne"}


def _cmp(op: str, x, y):
    if x is None or y is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return getattr(x, f"__{_OPS[op]}__")(y)


@st.composite
def _numeric_term(draw):
    """A numeric expression as (SQL text, reference function of one row)."""
    choice = draw(st.sampled_from(["field", "literal", "sum", "ratio", "scaled"]))
    field = draw(st.sampled_from(["a", "b", "n"]))
    other = draw(st.sampled_from(["a", "b", "n"]))
    k = draw(st.integers(-3, 3))
    if choice == "field":
        return field, lambda r: None if r[field] is None else float(r[field])
    if choice == "literal":
        return str(k), lambda r: float(k)

    def both(r, op):
        x, y = r[field], r[other]
        return None if x is None or y is None else op(float(x), float(y))

    if choice == "sum":
        return f"({field} + {other})", lambda r: both(r, float.__add__)
    if choice == "ratio":
        return (
            f"({field} / {other})",
            lambda r: both(r, lambda x, y: None if y == 0 else x / y),
        )
    return f"({field} * {k})", lambda r: None if r[field] is None else float(r[field]) * k


@st.composite
def _condition(draw, depth: int = 0):
    """A random condition as (SQL text, three-valued reference: True, False or None)."""
    kind = draw(
        st.sampled_from(["cmp", "cmp", "str", "bool", "null"] + ["and", "or", "not"] * (depth < 3))
    )
    if kind == "cmp":
        (lt, lf), (rt, rf) = draw(_numeric_term()), draw(_numeric_term())
        op = draw(st.sampled_from(list(_OPS)))
        return f"{lt} {op} {rt}", lambda r: _cmp(op, lf(r), rf(r))
    if kind == "str":
        value = draw(st.sampled_from(["一线", "二线", "x"]))
        return f"s = '{value}'", lambda r: None if r["s"] is None else r["s"] == value
    if kind == "bool":
        return "f", lambda r: r["f"]
    if kind == "null":
        field = draw(st.sampled_from(["a", "s", "f"]))
        return f"{field} IS NULL", lambda r: r[field] is None
    if kind == "not":
        text, fn = draw(_condition(depth + 1))
        return f"NOT ({text})", lambda r: None if fn(r) is None else not fn(r)
    (lt, lf), (rt, rf) = draw(_condition(depth + 1)), draw(_condition(depth + 1))
    if kind == "and":

        def both(r):
            x, y = lf(r), rf(r)
            return False if False in (x, y) else (None if None in (x, y) else True)

        return f"({lt}) AND ({rt})", both

    def either(r):
        x, y = lf(r), rf(r)
        return True if True in (x, y) else (None if None in (x, y) else False)

    return f"({lt}) OR ({rt})", either


@settings(max_examples=300, deadline=None)
@given(_condition(), st.lists(_row, min_size=1, max_size=12))
def test_random_rules_match_a_direct_computation(condition, data):
    text, reference = condition
    rule = parse_rule(text, FIELDS)
    expected = [reference(r) is True for r in data]
    frame = pd.DataFrame(data, columns=list(FIELDS)).astype(
        {"a": float, "b": float, "s": object, "f": object}
    )
    assert [rule.evaluate(r) for r in data] == expected
    assert rule.evaluate(columns(frame)).tolist() == expected
    assert [rule.evaluate(r) for r in rows(frame)] == expected  # NaN rather than None


@settings(max_examples=100, deadline=None)
@given(_condition(), st.lists(_row, min_size=1, max_size=12))
def test_random_rules_give_the_same_answer_in_duckdb(condition, data):
    text, _ = condition
    rule = parse_rule(text, FIELDS)
    frame = pd.DataFrame(data, columns=list(FIELDS)).astype(
        {"a": float, "b": float, "s": object, "f": object}
    )
    assert duckdb_eval(rule, frame).tolist() == rule.evaluate(columns(frame)).tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=False, width=64), min_size=1, max_size=20),
    st.floats(-1e9, 1e9, allow_nan=False),
    st.sampled_from(list(_OPS)),
)
def test_a_comparison_equals_numpy(values, threshold, op):
    x = np.array(values)
    rule = parse_rule(f"a {op} {threshold!r}", FIELDS)
    with np.errstate(invalid="ignore"):
        direct = getattr(
            np,
            {
                "lt": "less",
                "le": "less_equal",
                "gt": "greater",
                "ge": "greater_equal",
                "eq": "equal",
                "ne": "not_equal",
            }[_OPS[op]],
        )(x, threshold) & ~np.isnan(x)
    assert rule.evaluate({"a": x}).tolist() == direct.tolist()


def test_columns_of_different_lengths_are_refused():
    with pytest.raises(ValidationError, match="differ in length: a has 2, b has 3"):
        parse_rule("a > b", FIELDS).evaluate({"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]})


def test_a_rule_that_reads_no_field_takes_its_length_from_the_columns():
    assert parse_rule("1 < 2", FIELDS).evaluate({"a": np.zeros(3)}).tolist() == [True] * 3
    assert parse_rule("1 > 2", FIELDS).evaluate({}) is False
