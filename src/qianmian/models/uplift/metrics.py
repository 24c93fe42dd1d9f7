"""How well an uplift score targets: Qini and uplift curves, their areas, and uplift at k.

Every function takes the realised outcome ``y``, a score ``uplift`` (higher = target first) and
a binary ``treatment`` (1 = treated, 0 = control) of the same customers. With several offers,
evaluate one offer against the control group at a time (:func:`arm_vs_control` picks the rows).

Definitions (they agree with scikit-uplift's ``sklift.metrics`` to rounding error; the tests check
it). Customers are sorted by score, best first; after the first ``x`` customers, with ``N_T, N_C``
treated and control customers and ``Y_T, Y_C`` the sum of their outcomes:

* **Qini curve** (Radcliffe 2007): ``Y_T - Y_C * N_T / N_C`` — the incremental responders among
  the treated customers targeted so far (``0`` while ``N_C = 0``).
* **Uplift curve**: ``(Y_T / N_T - Y_C / N_C) * x`` — the incremental responders had all ``x``
  customers been treated (each rate ``0`` while its group is empty).
* **Random line**: the straight line from ``(0, 0)`` to the curve's last point, what random
  targeting gets on average.

**Ties.** Customers with equal scores form one block: the curve has a point only after each
whole block, so between block ends it is a straight line — the average over every order of the
tied customers — and the result never depends on row order. ``(0, 0)`` is always the first
point. :func:`uplift_at_k` must cut a block in two, and takes tied customers in row order.

Example:

    >>> y = [1, 0, 1, 0, 1, 0]
    >>> t = [1, 0, 1, 0, 1, 0]
    >>> x, q = qini_curve(y, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], t)
    >>> x.tolist(), q.tolist()
    ([0, 1, 2, 3, 4, 5, 6], [0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qianmian.errors import ValidationError, invalid_parameter

__all__ = [
    "arm_vs_control",
    "auuc",
    "perfect_qini_curve",
    "perfect_uplift_curve",
    "qini_auc",
    "qini_coefficient",
    "qini_curve",
    "uplift_at_k",
    "uplift_curve",
]

Curve = tuple[NDArray[np.int64] | NDArray[np.float64], NDArray[np.float64]]


def _column(name: str, values: ArrayLike) -> NDArray[np.float64]:
    """A 1-D float column with finite values, or a :class:`ValidationError` naming it."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValidationError(f"{name} must be one-dimensional; got shape {arr.shape}.")
    if arr.dtype.kind not in "biuf":
        raise ValidationError(f"{name} must be numeric; got values of dtype {arr.dtype}.")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        raise ValidationError(
            f"{name} has {int((~np.isfinite(out)).sum())} missing or infinite values."
        )
    return out


def _binary(name: str, values: NDArray[np.float64]) -> None:
    bad = (values != 0) & (values != 1)
    if bad.any():
        raise ValidationError(
            f"{name} must hold only 0 and 1; got {values[bad][0]:g} at row {int(np.argmax(bad))}."
        )


def _inputs(
    y: ArrayLike, uplift: ArrayLike | None, treatment: ArrayLike, *, binary_y: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Checked ``(y, uplift, treatment)``; ``uplift`` is zeros when ``None``."""
    y_ = _column("y", y)
    t_ = _column("treatment", treatment)
    s_ = np.zeros_like(y_) if uplift is None else _column("uplift", uplift)
    for name, arr in (("uplift", s_), ("treatment", t_)):
        if len(arr) != len(y_):
            raise ValidationError(f"{name} has {len(arr)} rows but y has {len(y_)}.")
    _binary("treatment", t_)
    if binary_y:
        _binary("y", y_)
    if len(t_) == 0 or t_.all() or not t_.any():
        raise ValidationError(
            "treatment must hold both treated (1) and control (0) rows; "
            f"got {int(t_.sum())} treated of {len(t_)}."
        )
    return y_, s_, t_


def _blocks(y: NDArray, uplift: NDArray, treatment: NDArray) -> tuple[NDArray, ...]:
    """Cumulative counts after each block of tied scores, best scores first.

    Returns ``x, n_t, y_t, n_c, y_c`` (customers so far, treated count and outcome sum, control
    count and outcome sum), one entry per block end.
    """
    order = np.argsort(-uplift, kind="stable")
    s, y, t = uplift[order], y[order], treatment[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    n_t = np.cumsum(t)[ends]
    y_t = np.cumsum(y * t)[ends]
    y_c = np.cumsum(y * (1.0 - t))[ends]
    x = ends + 1
    return x, n_t, y_t, x - n_t, y_c


def _ratio(num: NDArray, den: NDArray) -> NDArray[np.float64]:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den != 0)


def _from_origin(x: NDArray, values: NDArray) -> Curve:
    return np.r_[0, x].astype(np.int64), np.r_[0.0, values].astype(np.float64)


def qini_curve(y: ArrayLike, uplift: ArrayLike, treatment: ArrayLike) -> Curve:
    """The Qini curve: incremental responders among the treated, by customers targeted.

    Parameters
    ----------
    y : array-like of shape (n,)
        Realised outcome (binary, or any number such as spend).
    uplift : array-like of shape (n,)
        Score; customers with higher scores are targeted first.
    treatment : array-like of shape (n,)
        1 = treated, 0 = control.

    Returns
    -------
    x : ndarray of int, shape (m,)
        Customers targeted, from 0 to n (one point per block of tied scores).
    qini : ndarray of float, shape (m,)
        ``Y_T - Y_C * N_T / N_C`` at each ``x``.
    """
    y_, s, t = _inputs(y, uplift, treatment, binary_y=False)
    x, n_t, y_t, n_c, y_c = _blocks(y_, s, t)
    return _from_origin(x, y_t - y_c * _ratio(n_t, n_c))


def uplift_curve(y: ArrayLike, uplift: ArrayLike, treatment: ArrayLike) -> Curve:
    """The uplift curve: ``(Y_T / N_T - Y_C / N_C) * x``, by customers targeted ``x``.

    Same parameters and return shapes as :func:`qini_curve`.
    """
    y_, s, t = _inputs(y, uplift, treatment, binary_y=False)
    x, n_t, y_t, n_c, y_c = _blocks(y_, s, t)
    return _from_origin(x, (_ratio(y_t, n_t) - _ratio(y_c, n_c)) * x)


def perfect_qini_curve(
    y: ArrayLike, treatment: ArrayLike, *, negative_effect: bool = True
) -> Curve:
    """The best Qini curve any score could reach on these customers (binary ``y``).

    With ``negative_effect=True`` the ideal score targets treated responders first and control
    responders (the customers the offer may have put off) last. With ``False``, the curve is
    ``(0, 0) → (q, q) → (n, q)`` where ``q`` is the total incremental responders: every
    incremental responder found first and no negative effect at all (sklift's convention).
    """
    y_, _, t = _inputs(y, None, treatment, binary_y=True)
    if not isinstance(negative_effect, bool):
        raise invalid_parameter("perfect_qini_curve", "negative_effect", "a bool", negative_effect)
    if negative_effect:
        return qini_curve(y_, y_ * t - y_ * (1.0 - t), t)
    q = y_[t == 1].sum() - (t == 1).sum() * y_[t == 0].sum() / (t == 0).sum()
    if q < 0:
        raise ValidationError(
            f"The offer lost {-q:g} responders overall, so a perfect curve without negative "
            "effects is undefined; use negative_effect=True."
        )
    return np.array([0.0, q, len(y_)]), np.array([0.0, q, q])


def perfect_uplift_curve(y: ArrayLike, treatment: ArrayLike) -> Curve:
    """The ideal uplift curve (binary ``y``), as scikit-uplift draws it.

    The ideal score puts treated responders first, control non-responders next, then treated
    non-responders and control responders — whichever group is smaller first (Devriendt, Guns and
    Verbeke, 2020).
    """
    y_, _, t = _inputs(y, None, treatment, binary_y=True)
    control_responders = int(((y_ == 1) & (t == 0)).sum())
    treated_non_responders = int(((y_ == 0) & (t == 1)).sum())
    tiebreak = y_ if control_responders > treated_non_responders else t
    return uplift_curve(y_, 2.0 * (y_ == t) + tiebreak, t)


def _area(curve: Curve) -> float:
    x, v = curve
    return float(np.trapezoid(v, x))


def _random_area(curve: Curve) -> float:
    x, v = curve
    return 0.5 * float(x[-1]) * float(v[-1])


def _normalised(curve: Curve, perfect: Curve, what: str) -> float:
    """Area between ``curve`` and its random line over the same area for ``perfect``."""
    base = _random_area(curve)
    best = _area(perfect) - base
    if best == 0:
        raise ValidationError(
            f"The perfect {what} curve is no better than random here (for example, y is the "
            "same for every customer), so the normalised area is undefined."
        )
    return (_area(curve) - base) / best


def qini_auc(y: ArrayLike, uplift: ArrayLike, treatment: ArrayLike) -> float:
    """Area between the Qini curve and the random line (customers × incremental responders).

    Positive when the score targets better than chance; not comparable across data sets of
    different size (see :func:`qini_coefficient`).
    """
    curve = qini_curve(y, uplift, treatment)
    return _area(curve) - _random_area(curve)


def qini_coefficient(
    y: ArrayLike, uplift: ArrayLike, treatment: ArrayLike, *, negative_effect: bool = True
) -> float:
    """The Qini coefficient: :func:`qini_auc` over the same area for the perfect Qini curve.

    1 is the best possible ordering, 0 is random, negative is worse than random. Needs binary
    ``y``. Equals ``sklift.metrics.qini_auc_score``.
    """
    curve = qini_curve(y, uplift, treatment)
    perfect = perfect_qini_curve(y, treatment, negative_effect=negative_effect)
    return _normalised(curve, perfect, "Qini")


def auuc(y: ArrayLike, uplift: ArrayLike, treatment: ArrayLike, *, normalize: bool = True) -> float:
    """Area under the uplift curve.

    Parameters
    ----------
    normalize : bool, default=True
        ``True``: the area between the uplift curve and its random line, over the same area for
        :func:`perfect_uplift_curve` (1 = ideal, 0 = random; needs binary ``y``; equals
        ``sklift.metrics.uplift_auc_score``). ``False``: the raw trapezoid area under the curve,
        in customers × incremental responders.
    """
    curve = uplift_curve(y, uplift, treatment)
    if not normalize:
        return _area(curve)
    return _normalised(curve, perfect_uplift_curve(y, treatment), "uplift")


def uplift_at_k(
    y: ArrayLike,
    uplift: ArrayLike,
    treatment: ArrayLike,
    *,
    k: float = 0.3,
    strategy: str = "overall",
) -> float:
    """Treated minus control response rate among the customers with the top scores.

    Parameters
    ----------
    k : float in (0, 1) or int >= 1, default=0.3
        Share (rounded down, as sklift does) or number of customers kept.
    strategy : {"overall", "by_group"}, default="overall"
        ``"overall"``: the top ``k`` of all customers, then the rate of each group among them.
        ``"by_group"``: the top ``k`` of the treated and, separately, of the control customers
        (a share of each group, or ``k`` of each).

    Tied scores are taken in row order (earlier rows first).
    """
    y_, s, t = _inputs(y, uplift, treatment, binary_y=False)
    if strategy not in ("overall", "by_group"):
        raise invalid_parameter("uplift_at_k", "strategy", "'overall' or 'by_group'", strategy)
    is_share = isinstance(k, Real) and not isinstance(k, Integral) and 0.0 < float(k) < 1.0
    is_count = isinstance(k, Integral) and not isinstance(k, bool) and 1 <= int(k) <= len(y_)
    if not (is_share or is_count):
        raise invalid_parameter(
            "uplift_at_k", "k", f"a float in (0, 1) or an int from 1 to {len(y_)}", k
        )
    order = np.argsort(-s, kind="stable")
    y_, t = y_[order], t[order]

    def top(group: NDArray[np.bool_]) -> int:
        return int(group.sum() * k) if is_share else int(k)

    if strategy == "overall":
        n = top(np.ones(len(y_), dtype=bool))
        treated, control = y_[:n][t[:n] == 1], y_[:n][t[:n] == 0]
    else:
        treated, control = y_[t == 1][: top(t == 1)], y_[t == 0][: top(t == 0)]
    for name, group in (("treated", treated), ("control", control)):
        if len(group) == 0:
            raise ValidationError(f"The top k={k} customers hold no {name} row; choose a larger k.")
    return float(treated.mean() - control.mean())


def arm_vs_control(
    treatment: ArrayLike, arm: object, *, control: object = "control"
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Rows of one offer and the control group, and their 0/1 treatment, for the metrics above.

    >>> rows, treated = arm_vs_control(["a", "control", "b", "a"], "a")
    >>> rows.tolist(), treated.tolist()
    ([True, True, False, True], [1, 0, 1])
    """
    labels = np.asarray(treatment, dtype=object)
    is_arm, is_control = labels == arm, labels == control
    for name, mask in ((repr(arm), is_arm), (f"control {control!r}", is_control)):
        if not mask.any():
            raise ValidationError(f"treatment has no row labelled {name}.")
    rows = is_arm | is_control
    return rows, is_arm[rows].astype(np.int64)
