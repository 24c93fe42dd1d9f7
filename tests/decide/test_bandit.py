"""Thompson sampling over candidates: it finds the best arm, logs true propensities, is fast."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from qianmian.data.schema.vocab import RESPONSE_TYPES
from qianmian.decide.bandit import (
    NO_RESPONSE,
    OUTCOME_REWARDS,
    ThompsonBandit,
    arm_key,
    outcome_reward,
)
from qianmian.errors import ConfigError, ValidationError


def _select(bandit: ThompsonBandit, rates, stats, *, rng, values=100.0, costs=1.0, **kw):
    """Select with no baselines, one value and cost for every candidate, weights 1."""
    n = len(rates)
    return bandit.select(
        rates,
        np.zeros(n),
        np.full(n, values),
        np.full(n, costs),
        np.ones(n),
        stats,
        rng=rng,
        **kw,
    )


def test_the_prior_is_centred_on_the_models_rate_and_counts_are_added():
    alpha, beta = ThompsonBandit(prior_strength=50).posterior(
        [0.1, 0.0, 1.0], [(0, 0), (3, 7), (0, 0)]
    )
    np.testing.assert_allclose(alpha[[0, 1]], [5.0, 3.0 + 50e-6])
    np.testing.assert_allclose(beta[[0, 1]], [45.0, 7.0 + 50 * (1 - 1e-6)])
    assert (alpha > 0).all() and (beta > 0).all()  # rates of 0 and 1 stay valid Beta priors


def test_probabilities_cover_every_option_and_sum_to_one():
    rng = np.random.default_rng(1)
    # three candidates barely worth their cost (EV ≈ 0): every option has a real chance
    s = _select(ThompsonBandit(), [0.011, 0.012, 0.009], np.zeros((3, 2)), rng=rng)
    assert s.action_probabilities.shape == (3,) and s.sampled_values.shape == (3,)
    assert s.action_probabilities.sum() + s.nothing_probability == pytest.approx(1.0)
    assert s.nothing_probability > 0.1 and (s.action_probabilities > 0.1).all()
    assert s.greedy == 1 and s.chosen in (None, 0, 1, 2)
    expected = s.nothing_probability if s.chosen is None else s.action_probabilities[s.chosen]
    assert s.probability == expected > 0  # the option chosen won at least the draw that chose it
    if s.chosen is None:
        assert (s.sampled_values <= 0).all()
    else:
        assert s.sampled_values[s.chosen] == s.sampled_values.max() > 0


def test_the_same_seed_gives_the_same_selection_bit_for_bit():
    rates, stats = [0.03, 0.05, 0.04], [(1, 30), (4, 60), (0, 0)]
    a = _select(ThompsonBandit(), rates, stats, rng=np.random.default_rng(42))
    b = _select(ThompsonBandit(), rates, stats, rng=np.random.default_rng(42))
    assert a.chosen == b.chosen and a.nothing_probability == b.nothing_probability
    np.testing.assert_array_equal(a.action_probabilities, b.action_probabilities)
    np.testing.assert_array_equal(a.sampled_values, b.sampled_values)
    others = [
        _select(ThompsonBandit(), rates, stats, rng=np.random.default_rng(s)).sampled_values
        for s in range(5)
    ]
    assert len({tuple(v) for v in others}) == 5


def test_action_probabilities_match_how_often_each_option_is_chosen():
    bandit = ThompsonBandit(prior_strength=50)
    rates = [0.020, 0.030, 0.025, 0.012]
    values = [100.0, 80.0, 90.0, 100.0]
    args = (
        np.zeros(4),
        values,
        [1.5] * 4,
        [1.0, 1.0, 1.0, 1.2],
        [(0, 0), (2, 80), (1, 20), (0, 0)],
    )
    truth = bandit.select(rates, *args, n_draws=400_000, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    rounds = 4_000
    chosen = np.zeros(5)
    logged = np.zeros(5)
    for _ in range(rounds):
        s = bandit.select(rates, *args, rng=rng)
        chosen[0 if s.chosen is None else s.chosen + 1] += 1  # slot 0: nothing
        logged += np.concatenate([[s.nothing_probability], s.action_probabilities])
    expected = np.concatenate([[truth.nothing_probability], truth.action_probabilities])
    assert expected.min() > 0.02  # every option has a real chance, the nothing option included
    np.testing.assert_allclose(chosen / rounds, expected, atol=0.03)
    np.testing.assert_allclose(logged / rounds, expected, atol=0.01)


def test_nothing_is_chosen_when_no_candidate_is_worth_its_cost():
    s = _select(
        ThompsonBandit(),
        [0.01, 0.02],
        [(0, 0), (0, 0)],
        rng=np.random.default_rng(0),
        values=10.0,
        costs=5.0,
    )
    assert s.chosen is None and s.greedy is None and s.nothing_probability == 1.0
    assert s.probability == 1.0 and (s.action_probabilities == 0).all()


def test_baselines_make_the_bandit_rank_by_uplift():
    rates, baselines = [0.30, 0.10], [0.29, 0.02]  # a sure responder vs a persuadable one
    stats = [(3000, 7000), (1000, 9000)]  # well known: the means are near the rates
    s = ThompsonBandit().select(
        rates,
        baselines,
        [100.0, 100.0],
        [0.5, 0.5],
        [1.0, 1.0],
        stats,
        rng=np.random.default_rng(0),
    )
    assert s.greedy == 1 and s.action_probabilities[1] > 0.99
    flat = ThompsonBandit().select(
        rates, [0, 0], [100.0, 100.0], [0.5, 0.5], [1.0, 1.0], stats, rng=np.random.default_rng(0)
    )
    assert flat.greedy == 0


def test_without_exploration_the_greedy_choice_is_certain_and_draws_nothing():
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    s = _select(ThompsonBandit(), [0.03, 0.05], [(0, 0), (0, 0)], rng=rng, explore=False)
    assert s.chosen == s.greedy == 1 and not s.explored
    assert s.action_probabilities.tolist() == [0.0, 1.0] and s.nothing_probability == 0.0
    assert rng.bit_generator.state == before


def test_exploration_decreases_as_counts_grow():
    true = np.array([0.04, 0.06])
    shares, entropies = [], []
    for scale in (0, 50, 500, 2_000):
        stats = np.column_stack([true * scale, (1 - true) * scale])
        s = _select(
            ThompsonBandit(50), [0.05, 0.05], stats, rng=np.random.default_rng(0), n_draws=20_000
        )
        p = np.concatenate([[s.nothing_probability], s.action_probabilities])
        shares.append(s.action_probabilities[1])
        entropies.append(float(-(p[p > 0] * np.log(p[p > 0])).sum()))
    assert abs(shares[0] - 0.5) < 0.02  # no evidence: a coin toss between equal priors
    assert all(a < b for a, b in itertools.pairwise(shares)), shares
    assert all(a > b for a, b in itertools.pairwise(entropies)), entropies
    assert shares[-1] > 0.99


def test_a_simulated_stream_finds_the_best_arm_with_sublinear_regret():
    true = np.array([0.02, 0.04, 0.10, 0.06, 0.03])  # arm 2 is best
    prior = np.full(5, 0.05)  # a model that cannot tell the arms apart
    bandit, rng, world = ThompsonBandit(50), np.random.default_rng(0), np.random.default_rng(100)
    stats = np.zeros((5, 2))
    rounds = 4_000
    chosen = np.empty(rounds, dtype=int)  # -1: nothing
    regret = np.empty(rounds)
    for t in range(rounds):
        a = _select(bandit, prior, stats, rng=rng).chosen
        chosen[t] = -1 if a is None else a
        rate = 0.0 if a is None else true[a]
        regret[t] = (true.max() - rate) * 100 + (1 if a is None else 0)
        if a is not None:
            stats[a] += (1, 0) if world.random() < true[a] else (0, 1)
    counts = np.bincount(chosen[chosen >= 0], minlength=5)
    assert counts.argmax() == 2
    assert (chosen[-1_000:] == 2).mean() > 0.8
    quarter = rounds // 4
    first, last = regret[:quarter].sum(), regret[-quarter:].sum()
    assert last < 0.5 * first, (first, last)  # regret grows ever more slowly
    uniform = (true.max() - true.mean()) * 100 * rounds
    assert regret.sum() < 0.3 * uniform


def test_selecting_among_30_candidates_takes_well_under_a_millisecond():
    rng = np.random.default_rng(0)
    n = 30
    rates = rng.uniform(0.01, 0.1, n)
    args = (
        rates * 0.7,
        rng.uniform(100, 1000, n),
        np.ones(n),
        np.ones(n),
        rng.integers(0, 100, (n, 2)),
    )
    bandit = ThompsonBandit()
    for _ in range(50):
        bandit.select(rates, *args, rng=rng)
    times = []
    for _ in range(500):
        start = time.perf_counter()
        bandit.select(rates, *args, n_draws=200, rng=rng)
        times.append(time.perf_counter() - start)
    median_ms = float(np.median(times) * 1000)
    print(f"bandit select, 30 candidates × 200 draws: median {median_ms:.3f} ms")
    assert median_ms < 1.0


def test_no_candidates_means_nothing():
    s = ThompsonBandit().select([], [], [], [], [], [], rng=np.random.default_rng(0))
    assert (
        s.chosen is None and s.nothing_probability == 1.0 and s.action_probabilities.shape == (0,)
    )


@pytest.mark.parametrize(
    ("response", "reward"),
    [
        ("approved", (1.0, 0.0)),
        (NO_RESPONSE, (0.0, 1.0)),
        ("applied", None),
        ("delivered", None),
        ("opened", None),
        ("clicked", None),
        ("first_use", None),
        ("complained", None),
        ("unsubscribed", None),
    ],
)
def test_outcome_rewards(response, reward):
    assert outcome_reward(response) == reward


def test_every_response_type_has_a_reward_rule():
    assert set(RESPONSE_TYPES.values) | {NO_RESPONSE} == set(OUTCOME_REWARDS)


def test_arm_keys():
    assert arm_key("OF-WM-R2", "sms", "稳健理财") == "OF-WM-R2|sms|稳健理财"
    assert arm_key("A", "sms", "x") != arm_key("A", "sms", "y")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: outcome_reward("liked"), ValidationError, r"Unknown response type 'liked'"),
        (lambda: arm_key("OF|X", "sms", "s"), ValidationError, r"'offer_id' of a bandit arm"),
        (lambda: arm_key("OF", "", "s"), ValidationError, r"'channel' of a bandit arm"),
        (lambda: ThompsonBandit(0), ConfigError, r"'prior_strength' parameter of ThompsonBandit"),
        (lambda: ThompsonBandit(True), ConfigError, r"'prior_strength'"),
        (
            lambda: _select(
                ThompsonBandit(), [0.1], [(0, 0)], rng=np.random.default_rng(0), n_draws=0
            ),
            ConfigError,
            r"'n_draws' parameter",
        ),
        (
            lambda: _select(ThompsonBandit(), [1.2], [(0, 0)], rng=np.random.default_rng(0)),
            ValidationError,
            r"rate of candidate 0 is 1\.2",
        ),
        (
            lambda: _select(ThompsonBandit(), [0.1, 0.2], [(0, 0)], rng=np.random.default_rng(0)),
            ValidationError,
            r"'stats' has 1 pairs but there are 2",
        ),
        (
            lambda: _select(ThompsonBandit(), [0.1], [(-1, 0)], rng=np.random.default_rng(0)),
            ValidationError,
            r"counts of 0 or more",
        ),
        (
            lambda: ThompsonBandit().select(
                [0.1], [np.nan], [1], [0], [1], [(0, 0)], rng=np.random.default_rng(0)
            ),
            ValidationError,
            r"'baselines' of candidate 0 is nan",
        ),
        (
            lambda: ThompsonBandit().select(
                [0.1], [0], [1], [0], [-1], [(0, 0)], rng=np.random.default_rng(0)
            ),
            ValidationError,
            r"weights must be 0 or more",
        ),
    ],
)
def test_invalid_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
