"""Random control groups and pilots drawn by a stable hash: shares, independence, reshuffles."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime

import numpy as np
import pytest
from scipy.stats import binomtest, chi2_contingency, kstest

from qianmian.decide.control import (
    control_period,
    hash_unit,
    hash_units,
    in_control,
    in_control_many,
    in_pilot,
    in_pilot_many,
)
from qianmian.errors import ConfigError

IDS = np.arange(1, 100_001)


def test_the_same_inputs_give_the_same_draw_in_another_process():
    code = (
        "from qianmian.decide.control import hash_unit, in_control;"
        "print(repr(hash_unit('CMP-A', '2026-11', 42)), in_control(42, 'CMP-A', '2026-11', 0.5))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert float(out[0]) == hash_unit("CMP-A", "2026-11", 42)
    assert out[1] == str(in_control(42, "CMP-A", "2026-11", 0.5))


def test_hash_units_are_uniform_on_the_unit_interval():
    units = hash_units(["CMP-A", "2026-11"], IDS)
    assert ((units >= 0) & (units < 1)).all()
    assert kstest(units, "uniform").pvalue > 0.001


@pytest.mark.parametrize(
    ("many", "one"),
    [
        (
            lambda ids: in_control_many(ids, "CMP-A", "2026-11", 0.1),
            lambda c: in_control(c, "CMP-A", "2026-11", 0.1),
        ),
        (lambda ids: in_pilot_many(ids, "CMP-A", 0.2), lambda c: in_pilot(c, "CMP-A", 0.2)),
        (
            lambda ids: hash_units(["x", 3], ids, domain="d"),
            lambda c: hash_unit("x", 3, c, domain="d"),
        ),
    ],
    ids=["control", "pilot", "hash"],
)
def test_the_vectorised_draws_equal_the_single_ones(many, one):
    ids = np.array([1, 7, 123_456, 99_999_999_999], dtype=np.int64)
    assert many(ids).tolist() == [one(int(c)) for c in ids]
    assert many(list(ids.tolist())).tolist() == many(ids).tolist()  # lists as arrays
    assert many(["C0001", "C0002"]).tolist() == [one("C0001"), one("C0002")]


@pytest.mark.parametrize("share", [0.0, 0.01, 0.1, 0.5, 1.0])
def test_control_shares_are_within_binomial_tolerance(share):
    held = int(in_control_many(IDS, "CMP-A", "2026-11", share).sum())
    if share in (0.0, 1.0):
        assert held == share * len(IDS)
    else:
        assert binomtest(held, len(IDS), share).pvalue > 0.001, held


@pytest.mark.parametrize("share", [0.05, 0.3])
def test_pilot_shares_are_within_binomial_tolerance(share):
    piloted = int(in_pilot_many(IDS, "CMP-A", share).sum())
    assert binomtest(piloted, len(IDS), share).pvalue > 0.001, piloted


def _independent(a: np.ndarray, b: np.ndarray) -> float:
    """p-value of the chi-square test that two boolean draws are independent."""
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    return float(chi2_contingency(table).pvalue)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            lambda: in_control_many(IDS, "CMP-A", "2026-11", 0.5),
            lambda: in_control_many(IDS, "CMP-B", "2026-11", 0.5),
        ),
        (
            lambda: in_control_many(IDS, "CMP-A", "2026-11", 0.5),
            lambda: in_pilot_many(IDS, "CMP-A", 0.5),
        ),
        (lambda: in_pilot_many(IDS, "CMP-A", 0.5), lambda: in_pilot_many(IDS, "CMP-B", 0.5)),
        (
            lambda: in_control_many(IDS, "CMP-A", "2026-11", 0.5),
            lambda: in_control_many(IDS, "CMP-A", "2026-12", 0.5),
        ),
    ],
    ids=["two campaigns", "control and pilot", "two pilots", "two periods"],
)
def test_draws_are_independent(first, second):
    a, b = first(), second()
    assert 0.45 < a.mean() < 0.55 and 0.45 < b.mean() < 0.55
    assert _independent(a, b) > 0.001


def test_a_new_period_reshuffles_the_control_group_but_not_the_pilot():
    nov = in_control_many(IDS, "CMP-A", "2026-11", 0.1)
    dec = in_control_many(IDS, "CMP-A", "2026-12", 0.1)
    overlap = int((nov & dec).sum())
    # held out both months: about 0.1 × 0.1 of customers, not 0.1 as with a fixed group
    assert binomtest(overlap, len(IDS), 0.01).pvalue > 0.001, overlap
    assert (in_pilot_many(IDS, "CMP-A", 0.1) == in_pilot_many(IDS, "CMP-A", 0.1)).all()


def test_raising_a_share_keeps_everyone_already_in():
    small = in_pilot_many(IDS, "CMP-A", 0.05)
    large = in_pilot_many(IDS, "CMP-A", 0.2)
    assert (large[small]).all() and large.sum() > small.sum()


@pytest.mark.parametrize(
    ("ts", "granularity", "period"),
    [
        (datetime(2026, 11, 22, 23, 59), "month", "2026-11"),
        (date(2026, 1, 1), "month", "2026-01"),
        (datetime(2026, 11, 22), "day", "2026-11-22"),
        (datetime(2027, 1, 1), "week", "2026-W53"),
        (datetime(2026, 12, 31), "quarter", "2026-Q4"),
        (datetime(2026, 4, 1), "quarter", "2026-Q2"),
        (datetime(2026, 4, 1), "year", "2026"),
    ],
)
def test_control_periods(ts, granularity, period):
    assert control_period(ts, granularity) == period


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: in_control(1, "C", "2026-11", 1.5), r"'share' parameter of in_control"),
        (lambda: in_control(1, "C", "2026-11", float("nan")), r"from 0 to 1\. Got nan"),
        (lambda: in_pilot_many([1], "C", -0.1), r"'share' parameter of in_pilot_many"),
        (lambda: in_pilot(1, "C", "half"), r"from 0 to 1\. Got 'half'"),
        (lambda: in_pilot(1, "C", True), r"Got True"),
        (lambda: control_period(datetime(2026, 1, 1), "hour"), r"'granularity'.*Got 'hour'"),
        (lambda: control_period("2026-11-01"), r"'ts' parameter of control_period"),
        (lambda: hash_unit(1, domain="a-domain-longer-than-16"), r"'domain' parameter"),
    ],
)
def test_invalid_input_is_a_clear_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
