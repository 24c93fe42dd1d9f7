"""Arbitration by expected incremental value: every switch, the tie-breaks, the rules order."""

from __future__ import annotations

import numpy as np
import pytest

from qianmian.decide.arbitration import (
    ArbitrationSettings,
    arbitration_factors,
    expected_values,
    rank,
    rules_order,
)
from qianmian.errors import ValidationError

# Three candidates: a likely responder with little uplift, a persuadable one, a costly one.
P = [0.30, 0.10, 0.20]
UPLIFT = [0.01, 0.05, 0.06]
VALUE = [200.0, 500.0, 1000.0]
COST = [1.0, 5.0, 30.0]
WEIGHT = [1.0, 1.0, 0.5]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        # weight × (uplift × value − cost)
        (ArbitrationSettings(), [1.0 * (2 - 1), 1.0 * (25 - 5), 0.5 * (60 - 30)]),
        # the response probability replaces the uplift
        (ArbitrationSettings(use_uplift=False), [1.0 * (60 - 1), 1.0 * (50 - 5), 0.5 * (200 - 30)]),
        # every conversion is worth 1
        (
            ArbitrationSettings(use_value=False),
            [1.0 * (0.01 - 1), 1.0 * (0.05 - 5), 0.5 * (0.06 - 30)],
        ),
        # costs are 0
        (ArbitrationSettings(use_cost=False), [1.0 * 2, 1.0 * 25, 0.5 * 60]),
        # weights are 1
        (ArbitrationSettings(use_weights=False), [2 - 1, 25 - 5, 60 - 30]),
        # everything off: the response rate alone
        (ArbitrationSettings(False, False, False, False), P),
        # incremental conversions only
        (ArbitrationSettings(use_value=False, use_cost=False, use_weights=False), UPLIFT),
    ],
    ids=["all", "no uplift", "no value", "no cost", "no weights", "none", "uplift only"],
)
def test_each_switch_changes_the_expected_value_as_documented(settings, expected):
    ev = expected_values(P, UPLIFT, VALUE, COST, WEIGHT, settings)
    np.testing.assert_allclose(ev, expected, rtol=1e-12, atol=1e-12)
    factors = arbitration_factors(P, UPLIFT, VALUE, COST, WEIGHT, settings)
    np.testing.assert_allclose(factors.expected_values(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(factors.rates, P)


@pytest.mark.parametrize(
    ("settings", "best"),
    [
        (ArbitrationSettings(), 1),  # the persuadable one
        (ArbitrationSettings(use_uplift=False), 2),  # the likeliest value, whatever its uplift
        (ArbitrationSettings(use_value=False), 0),  # the cheapest conversions
        (ArbitrationSettings(use_cost=False), 2),  # its cost no longer counts
        (ArbitrationSettings(use_weights=False), 2),  # its low weight no longer counts
    ],
)
def test_the_switches_change_the_winner(settings, best):
    ev = expected_values(P, UPLIFT, VALUE, COST, WEIGHT, settings)
    assert rank(ev, [0, 0, 0], ["OF-A", "OF-B", "OF-C"])[0] == best


@pytest.mark.parametrize(
    ("settings", "baselines"),
    [
        (ArbitrationSettings(), [0.29, 0.05, 0.14]),
        (ArbitrationSettings(use_uplift=False), [0, 0, 0]),
    ],
)
def test_baselines_are_the_rate_without_contact(settings, baselines):
    factors = arbitration_factors(P, UPLIFT, VALUE, COST, WEIGHT, settings)
    np.testing.assert_allclose(factors.baselines, baselines, atol=1e-12)


@pytest.mark.parametrize(
    ("settings", "uplift", "value", "cost", "weight"),
    [
        (ArbitrationSettings(use_uplift=False), [None, None, None], VALUE, COST, WEIGHT),
        (ArbitrationSettings(use_value=False), UPLIFT, [None, None, None], COST, WEIGHT),
        (ArbitrationSettings(use_cost=False), UPLIFT, VALUE, [None, None, None], WEIGHT),
        (ArbitrationSettings(use_weights=False), UPLIFT, VALUE, COST, [None, -1.0, None]),
    ],
)
def test_a_factor_switched_off_may_be_missing(settings, uplift, value, cost, weight):
    assert np.isfinite(expected_values(P, uplift, value, cost, weight, settings)).all()


@pytest.mark.parametrize(
    ("p", "uplift", "value", "cost", "weight", "message"),
    [
        ([0.1, None], [0.01, 0.01], [1, 1], [0, 0], [1, 1], r"'p_response' of candidate 1 is nan"),
        ([0.1, 0.2], [0.01, np.nan], [1, 1], [0, 0], [1, 1], r"'uplift'.*use_uplift=False"),
        ([0.1, 0.2], [0.01, 0.01], [np.inf, 1], [0, 0], [1, 1], r"'value' of candidate 0 is inf"),
        ([0.1, 0.2], [0.01, 0.01], [1, 1], [None, 0], [1, 1], r"'cost'.*use_cost=False"),
        ([0.1, 0.2], [0.01, 0.01], [1, 1], [0, 0], [1, -2], r"'weight' of candidate 1 is -2"),
        ([0.1, 0.2], [0.01], [1, 1], [0, 0], [1, 1], r"'uplift' has 1 values but there are 2"),
        (
            [0.1, 0.2],
            [0.01, 0.01],
            [1, 1],
            [0, 0],
            ["x", 1],
            r"'weight' of each candidate must be a number",
        ),
    ],
)
def test_invalid_factors_are_clear_errors(p, uplift, value, cost, weight, message):
    with pytest.raises(ValidationError, match=message):
        expected_values(p, uplift, value, cost, weight)


@pytest.mark.parametrize(
    ("values", "priorities", "offer_ids", "order"),
    [
        ([3.0, 1.0, 2.0], [0, 0, 0], ["A", "B", "C"], [0, 2, 1]),  # by value
        ([1.0, 1.0, 1.0], [1, 3, 2], ["A", "B", "C"], [0, 2, 1]),  # ties: lower priority first
        ([1.0, 1.0, 1.0], [1, 1, 1], ["C", "A", "B"], [1, 2, 0]),  # then offer id
        ([1.0, 1.0, 2.0], [1, 1, 0], ["A", "A", "Z"], [2, 0, 1]),  # then input order
        ([-1.0, 0.0, -5.0], [0, 0, 9], ["A", "B", "C"], [1, 0, 2]),  # value before priority
        ([], [], [], []),
    ],
)
def test_rank_breaks_ties_by_priority_then_offer_id(values, priorities, offer_ids, order):
    assert rank(values, priorities, offer_ids).tolist() == order


def test_rank_is_the_same_whatever_order_the_candidates_come_in():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 3, 40).astype(float)  # many ties
    priorities = rng.integers(0, 3, 40)
    ids = [f"OF-{i:02d}" for i in range(40)]
    best_first = [ids[i] for i in rank(values, priorities, ids)]
    perm = rng.permutation(40)
    shuffled = rank(values[perm], priorities[perm], [ids[i] for i in perm])
    assert [ids[perm[i]] for i in shuffled] == best_first


@pytest.mark.parametrize(
    ("priorities", "offer_ids", "order"),
    [
        ([1, 3, 2], ["A", "B", "C"], [0, 2, 1]),
        ([5, 5, 5], ["OF-WM-R2", "OF-INST-6", "OF-BILL-INST"], [2, 1, 0]),
        ([0.5, 2, 0.5], ["B", "A", "A"], [2, 0, 1]),
    ],
)
def test_rules_order_is_priority_then_offer_id(priorities, offer_ids, order):
    assert rules_order(priorities, offer_ids).tolist() == order


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rank([1.0, np.nan], [0, 0], ["A", "B"]), r"'expected value' of candidate 1"),
        (lambda: rank([1.0, 2.0], [0, None], ["A", "B"]), r"'priority' of candidate 1"),
        (lambda: rank([1.0, 2.0], [0, 0], ["A"]), r"'offer_ids' has 1 values"),
        (lambda: rules_order([0, 0], ["A"]), r"'offer_ids' has 1 values"),
    ],
)
def test_invalid_rank_input_is_a_clear_error(call, message):
    with pytest.raises(ValidationError, match=message):
        call()
