"""Value coercion (text → dictionary types): a table of cases and Hypothesis round trips."""

from __future__ import annotations

import datetime as dt

import hypothesis.strategies as st
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given

from qianmian.data.validate import coerce

CASES = [
    # (field type, text, expected value, expected invalid)
    ("int", "42", 42, False),
    ("int", " -7 ", -7, False),
    ("int", "1,234", 1234, False),
    ("int", "3.0", 3, False),
    ("int", "3.5", None, True),
    ("int", "abc", None, True),
    ("int", "1e3", None, True),
    ("int", "99999999999999999999", None, True),
    ("int", "", None, False),
    ("int", "NULL", None, False),
    ("float", "1.5", 1.5, False),
    ("float", "1,234.5", 1234.5, False),
    ("float", ".5", 0.5, False),
    ("float", "-2e-3", -0.002, False),
    ("float", "inf", None, True),
    ("float", "1.2.3", None, True),
    ("bool", "是", True, False),
    ("bool", "否", False, False),
    ("bool", "Y", True, False),
    ("bool", "n", False, False),
    ("bool", "TRUE", True, False),
    ("bool", "0", False, False),
    ("bool", "maybe", None, True),
    ("date", "2024-01-31", dt.date(2024, 1, 31), False),
    ("date", "2024/1/31", dt.date(2024, 1, 31), False),
    ("date", "2024.01.31", dt.date(2024, 1, 31), False),
    ("date", "20240131", dt.date(2024, 1, 31), False),
    ("date", "2024年1月31日", dt.date(2024, 1, 31), False),
    ("date", "2024-01-31 00:00:00", dt.date(2024, 1, 31), False),
    ("date", "2024-01-31 10:00", None, True),
    ("date", "2024-02-30", None, True),
    ("date", "2023-02-29", None, True),
    ("date", "2024-02-29", dt.date(2024, 2, 29), False),
    ("date", "2024-13-01", None, True),
    ("date", "0000-01-01", None, True),
    ("date", "31/01/2024", None, True),
    ("timestamp", "2024-01-31 10:11:12", dt.datetime(2024, 1, 31, 10, 11, 12), False),
    ("timestamp", "2024-01-31T10:11:12.5", dt.datetime(2024, 1, 31, 10, 11, 12, 500000), False),
    ("timestamp", "2024/1/31 08:05", dt.datetime(2024, 1, 31, 8, 5), False),
    ("timestamp", "20240131101112", dt.datetime(2024, 1, 31, 10, 11, 12), False),
    ("timestamp", "2024年1月31日 10时05分", dt.datetime(2024, 1, 31, 10, 5), False),
    ("timestamp", "2024-01-31", dt.datetime(2024, 1, 31), False),
    ("timestamp", "2024-01-31 24:00", None, True),
    ("timestamp", "2024-01-31 10:61", None, True),
    ("string", "  张伟 ", "张伟", False),
    ("string", "", None, False),
]


@pytest.mark.parametrize(("field_type", "text", "expected", "invalid"), CASES)
def test_coerce_parses_text(field_type: str, text: str, expected: object, invalid: bool) -> None:
    result = coerce([text], field_type)
    assert result.values.to_pylist() == [expected]
    assert result.invalid.tolist() == [invalid]


def test_coerce_keeps_typed_input_and_rejects_dates_python_cannot_hold() -> None:
    assert coerce(pa.array([1, 2], pa.int32()), "int").values.type == pa.int64()
    assert coerce(pa.array([1, None], pa.int64()), "float").values.to_pylist() == [1.0, None]
    far = pa.array([-800_000, 0], pa.date32())  # year -221 and 1970-01-01
    result = coerce(far, "date")
    assert result.invalid.tolist() == [True, False]
    assert result.values.to_pylist() == [None, dt.date(1970, 1, 1)]


DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日"]


@given(
    st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.sampled_from(DATE_FORMATS),
    st.booleans(),
)
def test_date_round_trip(day: dt.date, fmt: str, strip_zeros: bool) -> None:
    text = day.strftime(fmt)
    if strip_zeros and fmt != "%Y%m%d":  # 2024/1/5 as well as 2024/01/05
        text = text[:4] + text[4:].replace("/0", "/").replace("-0", "-").replace("年0", "年")
    result = coerce([text], "date")
    assert result.values.to_pylist() == [day]
    assert not result.invalid.any()


@given(st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31)))
def test_timestamp_round_trip(moment: dt.datetime) -> None:
    for text in (moment.isoformat(sep=" "), moment.isoformat()):
        assert coerce([text], "timestamp").values.to_pylist() == [moment]


@given(st.integers(min_value=-(10**18) + 1, max_value=10**18 - 1))
def test_int_round_trip(number: int) -> None:
    assert coerce([str(number), f"{number:,}"], "int").values.to_pylist() == [number, number]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trip(number: float) -> None:
    assert coerce([repr(number)], "float").values.to_pylist() == [number]


@given(
    st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=20),
    st.sampled_from(["int", "float", "bool", "date", "timestamp", "string"]),
)
def test_coerce_never_raises_and_flags_every_unconverted_value(
    texts: list[str | None], field_type: str
) -> None:
    result = coerce(texts, field_type)
    assert len(result.values) == len(texts)
    converted = np.asarray(result.values.is_valid())
    assert not (converted & result.invalid).any()  # a value is either converted or flagged ...
    stripped = [
        t is not None
        and t.strip() not in ("", "NULL", "null", "None", "NaN", "nan", "N/A", "#N/A", "\\N")
        for t in texts
    ]
    assert (converted | result.invalid).tolist() == stripped  # ... or was missing to begin with
