"""Arbitration: rank a request's surviving candidates by expected incremental value.

The value of sending a candidate is what it adds over not sending it::

    expected value = weight × (uplift × value − cost)

with ``uplift`` = P(convert | contacted) − P(convert | not contacted), ``value`` the worth of a
conversion to the bank (CNY), ``cost`` the channel cost plus the expected incentive cost (CNY),
and ``weight`` the business lever (offer weight × campaign weight). Each factor can be switched
off with :class:`ArbitrationSettings` — to measure what it is worth, or when it is not
available:

========== ===================================================================
switch off effect
========== ===================================================================
use_uplift the response probability replaces the uplift (response-rate ranking)
use_value  every conversion is worth 1 (rank by incremental conversions)
use_cost   every cost is 0
use_weights every weight is 1 (no business levers)
========== ===================================================================

Ties are broken by the offer's priority (lower first, as the catalogue orders offers), then its offer id, then the order the
candidates came in, so the same request always gets the same ranking. :func:`rules_order` is the
ranking of the rules-only fallback, when no model can score: priority, then offer id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qianmian.errors import ValidationError

__all__ = [
    "ArbitrationFactors",
    "ArbitrationSettings",
    "arbitration_factors",
    "expected_values",
    "rank",
    "rules_order",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ArbitrationSettings:
    """Which factors of the expected value arbitration uses (all, by default)."""

    use_uplift: bool = True
    use_value: bool = True
    use_cost: bool = True
    use_weights: bool = True


@dataclass(frozen=True, slots=True)
class ArbitrationFactors:
    """The factors in effect once :class:`ArbitrationSettings` are applied, shape (n,) each.

    ``rates`` is P(convert | contacted) and ``baselines`` P(convert | not contacted) (0 when the
    uplift is switched off), so the expected value is
    ``weights × ((rates − baselines) × values − costs)``. They are what
    :meth:`ThompsonBandit.select <qianmian.decide.bandit.ThompsonBandit.select>` takes, so that
    exploration ranks by the same value as arbitration.
    """

    rates: FloatArray
    baselines: FloatArray
    values: FloatArray
    costs: FloatArray
    weights: FloatArray

    def expected_values(self) -> FloatArray:
        """``weights × ((rates − baselines) × values − costs)``."""
        return self.weights * ((self.rates - self.baselines) * self.values - self.costs)


def _column(name: str, values: ArrayLike, n: int | None) -> FloatArray:
    """A 1-d float array (None → NaN) of length ``n``."""
    try:
        out = np.asarray(
            [np.nan if v is None else v for v in np.asarray(values, dtype=object).reshape(-1)],
            dtype=np.float64,
        )
    except (TypeError, ValueError) as e:
        raise ValidationError(f"The '{name}' of each candidate must be a number: {e}") from e
    if n is not None and len(out) != n:
        raise ValidationError(
            f"'{name}' has {len(out)} values but there are {n} candidates; give one per candidate."
        )
    return out


def _require_finite(name: str, values: FloatArray, hint: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValidationError(
            f"The '{name}' of candidate {int(bad[0])} is {float(values[bad[0]]):g} "
            f"({len(bad)} candidate(s) lack a finite '{name}'); {hint}."
        )


def arbitration_factors(
    p_response: ArrayLike,
    uplift: ArrayLike,
    value: ArrayLike,
    cost: ArrayLike,
    weight: ArrayLike,
    settings: ArbitrationSettings | None = None,
) -> ArbitrationFactors:
    """The factors arbitration uses, with the switches of ``settings`` applied.

    Parameters
    ----------
    p_response, uplift, value, cost, weight : array-like of shape (n,)
        Per candidate (``None`` allowed where the factor is switched off).
    settings : ArbitrationSettings, optional
        Default: every factor on.

    Returns
    -------
    ArbitrationFactors

    Raises
    ------
    ValidationError
        A factor in use is missing or not finite, lengths differ, or a weight is negative.

    Examples
    --------
    >>> f = arbitration_factors([0.10], [0.04], [500.0], [2.0], [1.5])
    >>> f.baselines.round(2).tolist(), f.expected_values().round(6).tolist()
    ([0.06], [27.0])
    """
    settings = settings or ArbitrationSettings()
    rates = _column("p_response", p_response, None)
    n = len(rates)
    _require_finite("p_response", rates, "score it or give the offer's prior rate")
    if settings.use_uplift:
        lift = _column("uplift", uplift, n)
        _require_finite("uplift", lift, "score it with an uplift model or set use_uplift=False")
        baselines = rates - lift
    else:
        baselines = np.zeros(n)
    ones = np.ones(n)
    values = _column("value", value, n) if settings.use_value else ones
    _require_finite("value", values, "give every offer a conversion value or set use_value=False")
    costs = _column("cost", cost, n) if settings.use_cost else np.zeros(n)
    _require_finite("cost", costs, "give every channel and offer a cost or set use_cost=False")
    weights = _column("weight", weight, n) if settings.use_weights else ones
    _require_finite("weight", weights, "weights are 1 unless a lever is set")
    if (weights < 0).any():
        i = int(np.flatnonzero(weights < 0)[0])
        raise ValidationError(
            f"The 'weight' of candidate {i} is {float(weights[i]):g}; weights must be 0 or more "
            "(0 switches a candidate off, 1 leaves it as the models value it)."
        )
    return ArbitrationFactors(rates, baselines, values, costs, weights)


def expected_values(
    p_response: ArrayLike,
    uplift: ArrayLike,
    value: ArrayLike,
    cost: ArrayLike,
    weight: ArrayLike,
    settings: ArbitrationSettings | None = None,
) -> FloatArray:
    """Expected incremental value of each candidate: ``weight × (uplift × value − cost)``.

    With ``use_uplift=False`` the response probability replaces the uplift; ``use_value=False``
    sets every value to 1, ``use_cost=False`` every cost to 0, ``use_weights=False`` every
    weight to 1. Parameters and errors as :func:`arbitration_factors`.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> expected_values([0.10, 0.30], [0.04, 0.01], [500.0, 500.0], [2.0, 2.0], [1.0, 1.0]).tolist()
    [18.0, 3.0]
    >>> off = ArbitrationSettings(use_uplift=False)
    >>> expected_values([0.10, 0.30], [0.04, 0.01], [500.0, 500.0], [2.0, 2.0], [1.0, 1.0], off).tolist()
    [48.0, 148.0]
    """
    settings = settings or ArbitrationSettings()
    f = arbitration_factors(p_response, uplift, value, cost, weight, settings)
    # uplift × value directly (not (rate − baseline) × value) so the figure is exact
    lift = _column("uplift", uplift, len(f.rates)) if settings.use_uplift else f.rates
    return f.weights * (lift * f.values - f.costs)


def _order(keys: Sequence[tuple[float, float, str]]) -> NDArray[np.int64]:
    # sorted() is stable: equal keys keep the order the candidates came in
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def rank(values: ArrayLike, priorities: ArrayLike, offer_ids: Sequence[str]) -> NDArray[np.int64]:
    """Candidate indices, best first: by expected value, then priority (lower first), then
    offer id, then input order.

    Parameters
    ----------
    values : array-like of shape (n,)
        Expected values (:func:`expected_values`), finite.
    priorities : array-like of shape (n,)
        The offers' priorities from the catalogue (the lower number wins a tie).
    offer_ids : sequence of str

    Returns
    -------
    ndarray of int, shape (n,)

    Examples
    --------
    >>> rank([5.0, 9.0, 5.0, 5.0], [1, 0, 2, 1], ["OF-B", "OF-C", "OF-D", "OF-A"]).tolist()
    [1, 3, 0, 2]
    """
    ev = _column("expected value", values, None)
    n = len(ev)
    _require_finite("expected value", ev, "compute it with expected_values()")
    prio = _column("priority", priorities, n)
    _require_finite("priority", prio, "give every offer a numeric priority")
    ids = _offer_ids(offer_ids, n)
    return _order([(-ev[i], prio[i], ids[i]) for i in range(n)])


def rules_order(priorities: ArrayLike, offer_ids: Sequence[str]) -> NDArray[np.int64]:
    """The rules-only ranking (no model): priority (lower first), then offer id.

    >>> rules_order([1, 3, 3], ["OF-A", "OF-C", "OF-B"]).tolist()
    [0, 2, 1]
    """
    prio = _column("priority", priorities, None)
    _require_finite("priority", prio, "give every offer a numeric priority")
    ids = _offer_ids(offer_ids, len(prio))
    return _order([(0.0, prio[i], ids[i]) for i in range(len(prio))])


def _offer_ids(offer_ids: Sequence[str], n: int) -> list[str]:
    ids = [str(o) for o in offer_ids]
    if len(ids) != n:
        raise ValidationError(
            f"'offer_ids' has {len(ids)} values but there are {n} candidates; give one per "
            "candidate."
        )
    return ids
