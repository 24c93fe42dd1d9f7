"""Exploration: Beta-Bernoulli Thompson sampling over a request's candidates, and "nothing".

Each candidate's conversion rate θ has a Beta posterior whose prior is centred on the model's
prediction for this customer (or the offer's prior rate when no model scored it): with predicted
rate ``p`` and ``prior_strength`` ``n0`` pseudo-observations the prior is
``Beta(p·n0, (1−p)·n0)``, and the successes and failures observed for the candidate's arm
(:func:`arm_key`: offer × channel × context bucket, counted in
:meth:`DecisionState.bandit_update <qianmian.decide.state.base.DecisionState.bandit_update>`)
are added. The posterior mean is ``(p·n0 + s) / (n0 + s + f)``: the model decides while an arm
is new, and the arm's own record takes over as it grows.

:meth:`ThompsonBandit.select` draws θ ``n_draws`` times for every candidate at once (one numpy
call) and computes each draw's expected value ``weight × ((θ − baseline) × value − cost)``
(the factors of :func:`~qianmian.decide.arbitration.arbitration_factors`). In each draw the
winner is the candidate with the highest value, or **nothing** when no value is above 0. The
share of draws each option wins is its **action probability**; the options (candidates and
nothing) sum to 1. The choice is the winner of one of those draws picked uniformly, so it is
made with exactly the logged probability — what off-policy evaluation (inverse propensity
weighting) needs.

Rewards (:func:`outcome_reward`) are conversions, as the models define them: an ``approved``
response is a success; ``ignored`` — the pseudo response the engine records when a contact's
conversion window (30 days) closes without one — is a failure; every other response is neither
(opening or applying is not converting, and counting complaints as well would count a failure
twice: the window still closes without a conversion).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qianmian.errors import ValidationError, invalid_parameter

__all__ = [
    "NO_RESPONSE",
    "OUTCOME_REWARDS",
    "Selection",
    "ThompsonBandit",
    "arm_key",
    "outcome_reward",
]

FloatArray = NDArray[np.float64]

#: The pseudo response type for a contact whose conversion window closed without a conversion.
NO_RESPONSE = "ignored"
#: (success, failure) increments per response type; None: the response does not update the arm.
OUTCOME_REWARDS: Mapping[str, tuple[float, float] | None] = MappingProxyType(
    {
        "delivered": None,
        "opened": None,
        "clicked": None,
        "applied": None,  # not yet a conversion: the models' label is an approval
        "approved": (1.0, 0.0),
        "first_use": None,  # follows an approval already counted
        "unsubscribed": None,  # handled by the contact policy; the window still closes
        "complained": None,  # likewise; counting it too would count one failure twice
        NO_RESPONSE: (0.0, 1.0),
    }
)
_KEY_SEPARATOR = "|"
_MIN_RATE = 1e-6  # keeps both Beta parameters positive for rates of exactly 0 or 1


def arm_key(offer_id: str, channel: str, context_bucket: str) -> str:
    """The key an arm's successes and failures are counted under: ``offer|channel|bucket``.

    ``context_bucket`` groups customers who share the arm's statistics (e.g. their segment).

    >>> arm_key("OF-TRAVEL-CASHBACK", "app_push", "年轻白领")
    'OF-TRAVEL-CASHBACK|app_push|年轻白领'
    """
    parts = {"offer_id": offer_id, "channel": channel, "context_bucket": context_bucket}
    for name, part in parts.items():
        if not isinstance(part, str) or not part or _KEY_SEPARATOR in part:
            raise ValidationError(
                f"The '{name}' of a bandit arm must be a non-empty string without "
                f"'{_KEY_SEPARATOR}'. Got {part!r} instead."
            )
    return _KEY_SEPARATOR.join(parts.values())


def outcome_reward(response_type: str) -> tuple[float, float] | None:
    """The (successes, failures) a response adds to its arm, or None if it adds nothing.

    See :data:`OUTCOME_REWARDS`: ``approved`` → (1, 0); ``ignored`` (the window closed without
    a conversion) → (0, 1); other response types → None.

    >>> outcome_reward("approved"), outcome_reward("ignored"), outcome_reward("opened")
    ((1.0, 0.0), (0.0, 1.0), None)
    """
    try:
        return OUTCOME_REWARDS[response_type]
    except (KeyError, TypeError):
        raise ValidationError(
            f"Unknown response type {response_type!r}; expected one of "
            f"{', '.join(OUTCOME_REWARDS)}."
        ) from None


@dataclass(frozen=True, slots=True)
class Selection:
    """What :meth:`ThompsonBandit.select` chose, and with what probability.

    Attributes
    ----------
    chosen : int or None
        Index of the candidate to present, or None: send nothing.
    greedy : int or None
        The choice without exploration: highest expected value at the posterior means, or
        None if none is above 0.
    action_probabilities : ndarray of shape (n,)
        Probability that each candidate is chosen (share of draws it wins).
    nothing_probability : float
        Probability of choosing nothing; with ``action_probabilities`` it sums to 1.
    sampled_values : ndarray of shape (n,)
        Each candidate's expected value in the draw that made the choice.
    mean_values : ndarray of shape (n,)
        Each candidate's expected value at its posterior mean rate.
    """

    chosen: int | None
    greedy: int | None
    action_probabilities: FloatArray
    nothing_probability: float
    sampled_values: FloatArray
    mean_values: FloatArray

    @property
    def explored(self) -> bool:
        """True when the draw chose otherwise than the greedy policy would."""
        return self.chosen != self.greedy

    @property
    def probability(self) -> float:
        """The probability of the option chosen (the propensity to log)."""
        if self.chosen is None:
            return self.nothing_probability
        return float(self.action_probabilities[self.chosen])


class ThompsonBandit:
    """Thompson sampling over candidates, with priors centred on the models' predictions.

    Parameters
    ----------
    prior_strength : float, default=50.0
        Pseudo-observations ``n0`` behind the predicted rate: how many observed contacts of an
        arm weigh as much as the model's prediction.

    Examples
    --------
    >>> import numpy as np
    >>> bandit = ThompsonBandit(prior_strength=50)
    >>> s = bandit.select([0.02, 0.08], [0.01, 0.05], [800.0, 300.0], [1.0, 1.0], [1.0, 1.0],
    ...                   [(0, 0), (40, 400)], rng=np.random.default_rng(7))
    >>> s.greedy, round(float(s.action_probabilities.sum() + s.nothing_probability), 6)
    (1, 1.0)
    """

    prior_strength: float

    def __init__(self, prior_strength: float = 50.0) -> None:
        if (
            isinstance(prior_strength, bool)
            or not isinstance(prior_strength, Real)
            or not np.isfinite(prior_strength)
            or prior_strength <= 0
        ):
            raise invalid_parameter(self, "prior_strength", "a positive number", prior_strength)
        self.prior_strength = float(prior_strength)

    def __repr__(self) -> str:
        return f"ThompsonBandit(prior_strength={self.prior_strength:g})"

    def posterior(self, rates: ArrayLike, stats: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Beta parameters (alpha, beta) of each candidate's rate, shape (n,) each.

        >>> a, b = ThompsonBandit(50).posterior([0.1], [(3, 7)])
        >>> float(a[0]), float(b[0])
        (8.0, 52.0)
        """
        p = _vector("rates", rates, None)
        if ((p < 0) | (p > 1)).any():
            i = int(np.flatnonzero((p < 0) | (p > 1))[0])
            raise ValidationError(
                f"The rate of candidate {i} is {float(p[i]):g}; rates lie in [0, 1]."
            )
        counts = _stats(stats, len(p))
        p = np.clip(p, _MIN_RATE, 1.0 - _MIN_RATE)
        n0 = self.prior_strength
        return p * n0 + counts[:, 0], (1.0 - p) * n0 + counts[:, 1]

    def select(
        self,
        rates: ArrayLike,
        baselines: ArrayLike,
        values: ArrayLike,
        costs: ArrayLike,
        weights: ArrayLike,
        stats: ArrayLike,
        *,
        n_draws: int = 200,
        rng: np.random.Generator,
        explore: bool = True,
    ) -> Selection:
        """Choose a candidate (or nothing) by Thompson sampling.

        Parameters
        ----------
        rates : array-like of shape (n,)
            Predicted P(convert | contacted) of each candidate, the prior's centre.
        baselines : array-like of shape (n,)
            P(convert | not contacted); zeros to rank by response rather than uplift.
        values, costs, weights : array-like of shape (n,)
            Conversion value, cost and business weight (see
            :func:`~qianmian.decide.arbitration.arbitration_factors`).
        stats : array-like of shape (n, 2)
            Observed (successes, failures) of each candidate's arm.
        n_draws : int, default=200
            Posterior draws; the action probabilities are shares of these.
        rng : numpy.random.Generator
            The source of randomness: the same state gives the same selection.
        explore : bool, default=True
            False chooses greedily (action probability 1 for the choice) and draws nothing.

        Returns
        -------
        Selection
        """
        if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
            raise invalid_parameter(self, "n_draws", "a positive int", n_draws)
        alpha, beta = self.posterior(rates, stats)
        n = len(alpha)
        base = _vector("baselines", baselines, n)
        value = _vector("values", values, n)
        cost = _vector("costs", costs, n)
        weight = _vector("weights", weights, n)
        if (weight < 0).any():
            raise ValidationError("Bandit weights must be 0 or more (0 switches a candidate off).")
        mean_values = weight * ((alpha / (alpha + beta) - base) * value - cost)
        greedy = int(np.argmax(mean_values)) if n and mean_values.max() > 0 else None
        if not explore or n == 0:
            probabilities = np.zeros(n)
            if greedy is not None:
                probabilities[greedy] = 1.0
            return Selection(
                greedy, greedy, probabilities, float(greedy is None), mean_values, mean_values
            )
        theta = rng.beta(alpha, beta, size=(n_draws, n))
        sampled = weight * ((theta - base) * value - cost)
        # column 0 is "nothing" (value 0); argmax takes the first maximum, so a tie with
        # nothing — every value ≤ 0 — sends nothing
        winners = np.argmax(np.concatenate([np.zeros((n_draws, 1)), sampled], axis=1), axis=1)
        shares = np.bincount(winners, minlength=n + 1) / n_draws
        row = int(rng.integers(n_draws))
        return Selection(
            chosen=int(winners[row]) - 1 if winners[row] else None,
            greedy=greedy,
            action_probabilities=shares[1:],
            nothing_probability=float(shares[0]),
            sampled_values=sampled[row],
            mean_values=mean_values,
        )


def _vector(name: str, values: ArrayLike, n: int | None) -> FloatArray:
    """A finite 1-d float array of length ``n``."""
    try:
        out = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValidationError(f"Bandit '{name}' must be numbers, one per candidate: {e}") from e
    if n is not None and len(out) != n:
        raise ValidationError(
            f"Bandit '{name}' has {len(out)} values but there are {n} candidates; give one per "
            "candidate."
        )
    if not np.isfinite(out).all():
        i = int(np.flatnonzero(~np.isfinite(out))[0])
        raise ValidationError(
            f"Bandit '{name}' of candidate {i} is {float(out[i]):g}; it must be finite."
        )
    return out


def _stats(stats: ArrayLike, n: int) -> FloatArray:
    """Observed (successes, failures) as an (n, 2) array of non-negative counts."""
    try:
        counts = np.asarray(stats, dtype=np.float64).reshape(-1, 2) if n else np.zeros((0, 2))
    except (TypeError, ValueError) as e:
        raise ValidationError(
            f"Bandit 'stats' must be one (successes, failures) pair per candidate: {e}"
        ) from e
    if counts.shape != (n, 2):
        raise ValidationError(
            f"Bandit 'stats' has {counts.shape[0]} pairs but there are {n} candidates; give one "
            "(successes, failures) pair per candidate."
        )
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValidationError("Bandit 'stats' must hold finite counts of 0 or more.")
    return counts
