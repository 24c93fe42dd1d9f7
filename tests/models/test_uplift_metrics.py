"""Qini and uplift metrics: by hand, against scikit-uplift, ties, errors, the chart."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import auc
from sklift import metrics as sklift

from qianmian.errors import ConfigError, ValidationError
from qianmian.models.uplift import (
    arm_vs_control,
    auuc,
    perfect_qini_curve,
    perfect_uplift_curve,
    qini_auc,
    qini_coefficient,
    qini_curve,
    qini_figure,
    uplift_at_k,
    uplift_curve,
)

# sklift calls sklearn's deprecated stable_cumsum.
pytestmark = pytest.mark.filterwarnings("ignore:.*stable_cumsum.*:FutureWarning")

# Six customers, best score first: treated responder, control non-responder, treated
# non-responder, control responder, treated responder, control non-responder.
HAND_Y = [1, 0, 0, 1, 1, 0]
HAND_T = [1, 0, 1, 0, 1, 0]
HAND_S = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]


def test_qini_by_hand():
    x, q = qini_curve(HAND_Y, HAND_S, HAND_T)
    # Y_T - Y_C * N_T / N_C after 1..6 customers: 1, 1, 1, 1 - 1*2/2, 2 - 1*3/2, 2 - 1*3/3.
    assert x.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert q.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.5, 1.0]
    # Trapezoids 0.5 + 1 + 1 + 0.5 + 0.25 + 0.75 = 4, random line 6 * 1 / 2 = 3.
    assert qini_auc(HAND_Y, HAND_S, HAND_T) == pytest.approx(1.0, abs=1e-12)
    # Perfect: both treated responders (x=2, q=2), the three with score 0 as one block (x=5,
    # q=2 - 0), the control responder last (x=6, q=1): area 2 + 6 + 1.5 = 9.5, minus 3.
    px, pq = perfect_qini_curve(HAND_Y, HAND_T)
    assert px.tolist() == [0, 2, 5, 6]
    assert pq.tolist() == [0.0, 2.0, 2.0, 1.0]
    assert qini_coefficient(HAND_Y, HAND_S, HAND_T) == pytest.approx(1.0 / 6.5, abs=1e-12)


def test_uplift_curve_and_at_k_by_hand():
    _, u = uplift_curve(HAND_Y, HAND_S, HAND_T)
    # (Y_T/N_T - Y_C/N_C) * x: 1*1, 1*2, 0.5*3, 0*4, (2/3 - 1/2)*5, (2/3 - 1/3)*6.
    np.testing.assert_allclose(u, [0.0, 1.0, 2.0, 1.5, 0.0, 5 / 6, 2.0], atol=1e-12)
    # Trapezoids 0.5 + 1.5 + 1.75 + 0.75 + 5/12 + 17/12 = 19/3.
    assert auuc(HAND_Y, HAND_S, HAND_T, normalize=False) == pytest.approx(19 / 3, abs=1e-12)
    # Top 3: treated rate 1/2 (rows 1, 3), control rate 0 (row 2).
    assert uplift_at_k(HAND_Y, HAND_S, HAND_T, k=3) == pytest.approx(0.5)
    assert uplift_at_k(HAND_Y, HAND_S, HAND_T, k=0.5) == pytest.approx(0.5)
    # By group, half of each: treated row 1 (rate 1) against control row 2 (rate 0).
    assert uplift_at_k(HAND_Y, HAND_S, HAND_T, k=0.5, strategy="by_group") == pytest.approx(1.0)


def test_tied_scores_form_one_block_whatever_the_row_order():
    y, t, s = [1, 0, 0, 1], [1, 0, 1, 0], [1.0, 1.0, 0.0, 0.0]
    x, q = qini_curve(y, s, t)
    # Block {1, 2}: 1 - 0; block {3, 4}: 1 - 1 * 2 / 2.
    assert x.tolist() == [0, 2, 4]
    assert q.tolist() == [0.0, 1.0, 0.0]
    order = [1, 0, 3, 2]
    x2, q2 = qini_curve(np.take(y, order), np.take(s, order), np.take(t, order))
    assert x2.tolist() == x.tolist() and q2.tolist() == q.tolist()


def test_the_perfect_score_has_coefficient_one_and_a_constant_score_zero():
    rng = np.random.default_rng(3)
    y, t = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    assert qini_coefficient(y, y * t - y * (1 - t), t) == pytest.approx(1.0, abs=1e-12)
    assert qini_coefficient(y, np.zeros(500), t) == pytest.approx(0.0, abs=1e-12)
    assert auuc(y, np.zeros(500), t) == pytest.approx(0.0, abs=1e-12)


def _random_case(seed: int, levels: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random 0/1 outcomes and treatment; scores with ``levels`` distinct values (ties)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 600))
    y, t = rng.integers(0, 2, n), rng.integers(0, 2, n)
    t[:2] = [0, 1]
    s = rng.normal(size=n) if levels is None else rng.integers(0, levels, n) / levels
    return y, s, t


def _realish_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A campaign of 5,000 customers at a 12% base rate, scored by a noisy, rounded model."""
    rng = np.random.default_rng(11)
    n = 5_000
    x = rng.normal(size=(n, 3))
    base = 1 / (1 + np.exp(-(-2.0 + 0.7 * x[:, 0])))
    lift = 0.08 / (1 + np.exp(-2 * x[:, 1])) - 0.06 * (x[:, 2] > 1.3)
    t = (rng.random(n) < 0.6).astype(int)
    y = (rng.random(n) < np.clip(base + t * lift, 0, 1)).astype(int)
    score = np.round(lift + rng.normal(scale=0.03, size=n), 2)  # rounding makes many ties
    return y, score, t


CASES = [
    pytest.param(*_random_case(seed, levels), id=f"seed{seed}-{levels or 'no'}ties")
    for seed in range(6)
    for levels in (None, 2, 7, 40)
] + [pytest.param(*_realish_case(), id="realish")]


@pytest.mark.parametrize(("y", "s", "t"), CASES)
def test_curves_agree_with_sklift(y, s, t):
    pairs = [
        (qini_curve(y, s, t), sklift.qini_curve(y, s, t)),
        (uplift_curve(y, s, t), sklift.uplift_curve(y, s, t)),
        (perfect_qini_curve(y, t), sklift.perfect_qini_curve(y, t)),
        (perfect_uplift_curve(y, t), sklift.perfect_uplift_curve(y, t)),
    ]
    for (x, v), (sx, sv) in pairs:
        np.testing.assert_array_equal(x, sx)
        np.testing.assert_allclose(v, sv, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("y", "s", "t"), CASES)
def test_scores_agree_with_sklift(y, s, t):
    assert qini_coefficient(y, s, t) == pytest.approx(sklift.qini_auc_score(y, s, t), abs=1e-9)
    assert auuc(y, s, t) == pytest.approx(sklift.uplift_auc_score(y, s, t), abs=1e-9)
    sx, sq = sklift.qini_curve(y, s, t)
    expected = auc(sx, sq) - sx[-1] * sq[-1] / 2
    assert qini_auc(y, s, t) == pytest.approx(expected, abs=1e-9)
    ux, uv = sklift.uplift_curve(y, s, t)
    assert auuc(y, s, t, normalize=False) == pytest.approx(auc(ux, uv), abs=1e-9)
    total = np.sum(y[t == 1]) - np.sum(t) * np.sum(y[t == 0]) / np.sum(t == 0)
    if total >= 0:  # sklift cannot draw this perfect curve when the offer lost responders
        assert qini_coefficient(y, s, t, negative_effect=False) == pytest.approx(
            sklift.qini_auc_score(y, s, t, negative_effect=False), abs=1e-9
        )


@pytest.mark.parametrize("strategy", ["overall", "by_group"])
@pytest.mark.parametrize("k", [0.1, 0.3, 0.75, 50, 200])
def test_uplift_at_k_agrees_with_sklift(strategy, k):
    y, _, t = _realish_case()
    s = np.random.default_rng(5).normal(size=len(y))  # no ties: both take the same top k
    ours = uplift_at_k(y, s, t, k=k, strategy=strategy)
    assert ours == pytest.approx(sklift.uplift_at_k(y, s, t, strategy=strategy, k=k), abs=1e-12)


def test_realish_score_beats_random_and_its_reverse_loses():
    y, s, t = _realish_case()
    assert qini_coefficient(y, s, t) > 0.02 and qini_auc(y, s, t) > 0
    assert qini_coefficient(y, -s, t) < -0.02 and qini_auc(y, -s, t) < 0


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (
            lambda: qini_curve([1, 0], [0.1], [1, 0]),
            ValidationError,
            "uplift has 1 rows but y has 2",
        ),
        (lambda: qini_curve([1, 0], [0.1, 0.2], [1]), ValidationError, "treatment has 1 rows"),
        (
            lambda: qini_curve([1, 0], [0.1, np.nan], [1, 0]),
            ValidationError,
            "uplift has 1 missing",
        ),
        (
            lambda: qini_curve([1, 0], [0.1, 0.2], [1, 2]),
            ValidationError,
            "treatment must hold only 0 and 1",
        ),
        (
            lambda: qini_curve([1, 0], [0.1, 0.2], [1, 1]),
            ValidationError,
            "both treated .1. and control",
        ),
        (
            lambda: qini_curve([[1, 0]], [0.1, 0.2], [1, 0]),
            ValidationError,
            "y must be one-dimensional",
        ),
        (lambda: qini_curve(["a", "b"], [0.1, 0.2], [1, 0]), ValidationError, "y must be numeric"),
        (
            lambda: qini_coefficient([2, 0], [0.1, 0.2], [1, 0]),
            ValidationError,
            "y must hold only 0 and 1",
        ),
        (
            lambda: qini_coefficient([0, 0, 0], [0.1, 0.2, 0.3], [1, 0, 1]),
            ValidationError,
            "undefined",
        ),
        (
            lambda: perfect_qini_curve([0, 1], [1, 0], negative_effect=False),
            ValidationError,
            "lost 1 responders",
        ),
        (
            lambda: perfect_qini_curve([0, 1], [1, 0], negative_effect=1),
            ConfigError,
            "'negative_effect'",
        ),
        (lambda: uplift_at_k(HAND_Y, HAND_S, HAND_T, k=1.5), ConfigError, "'k' parameter"),
        (lambda: uplift_at_k(HAND_Y, HAND_S, HAND_T, k=7), ConfigError, "an int from 1 to 6"),
        (lambda: uplift_at_k(HAND_Y, HAND_S, HAND_T, strategy="all"), ConfigError, "'strategy'"),
        (lambda: uplift_at_k(HAND_Y, HAND_S, HAND_T, k=1), ValidationError, "no control row"),
        (
            lambda: arm_vs_control(["a", "b"], "a"),
            ValidationError,
            "no row labelled control 'control'",
        ),
        (lambda: arm_vs_control(["a", "control"], "c"), ValidationError, "no row labelled 'c'"),
    ],
)
def test_bad_input_is_named(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_qini_figure_draws_each_curve_and_one_random_line():
    y, s, t = _realish_case()
    model = qini_curve(y, s, t)
    fig = qini_figure(
        {"model": model, "reversed": qini_curve(y, -s, t)}, perfect=perfect_qini_curve(y, t)
    )
    assert [tr.name for tr in fig.data] == ["model", "reversed", "perfect", "random"]
    random_line = fig.data[-1]
    assert list(random_line.x) == [0.0, float(model[0][-1])]
    assert list(random_line.y) == [0.0, pytest.approx(float(model[1][-1]))]
    assert "Qini" in fig.layout.title.text


def test_qini_figure_draws_a_random_line_per_data_set():
    fig = qini_figure({"a": ([0, 2], [0.0, 1.0]), "b": ([0, 4], [0.0, 3.0])}, title="t")
    assert [tr.name for tr in fig.data] == ["a", "b", "random 1", "random 2"]
    assert list(fig.data[-1].y) == [0.0, 3.0]


def test_qini_figure_rejects_bad_curves():
    with pytest.raises(ValidationError, match="curves is empty"):
        qini_figure({})
    with pytest.raises(ValidationError, match="curve 'm' needs x and y"):
        qini_figure({"m": ([0, 1, 2], [0.0, 1.0])})
