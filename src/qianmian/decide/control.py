"""Random control groups and pilot traffic, drawn by a stable hash so every process agrees.

Whether a customer is held out of a campaign must not depend on which server answered, on a
restart, or on the order requests came in: it is a pure function of (campaign, period,
customer). :func:`hash_unit` maps its parts to a number uniform on [0, 1) with BLAKE2b (never
Python's ``hash()``, which is salted per process), and a customer is in a group when that number
is below the group's share.

* :func:`in_control` — held out of ``campaign`` for ``period`` (``"2026-11"``): a fresh draw
  each period, so nobody is held out of a campaign for ever and the control group of each
  period is a new random sample.
* :func:`in_pilot` — in the pilot of ``campaign``: stable across periods, so a pilot keeps the
  same customers while it runs.

The two draws hash different strings under different BLAKE2b personalisations (``control`` and
``pilot``), so they are independent of each other and of the draws of other campaigns. Each has
a vectorised twin for arrays of customer ids (batch runs) that gives exactly the same answers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from qianmian.errors import invalid_parameter

__all__ = [
    "GRANULARITIES",
    "Granularity",
    "control_period",
    "hash_unit",
    "hash_units",
    "in_control",
    "in_control_many",
    "in_pilot",
    "in_pilot_many",
]

Granularity = Literal["day", "week", "month", "quarter", "year"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month", "quarter", "year")

_DIGEST_BYTES = 8
_SCALE = float(2**64)  # 8 digest bytes → an integer below 2**64 → [0, 1)
_CONTROL = "control"
_PILOT = "pilot"


def _hasher(domain: str) -> hashlib.blake2b:
    try:
        return hashlib.blake2b(digest_size=_DIGEST_BYTES, person=domain.encode("utf-8"))
    except ValueError as e:  # BLAKE2b personalisation is at most 16 bytes
        raise invalid_parameter("hash_unit", "domain", "at most 16 bytes of UTF-8", domain) from e


def hash_unit(*parts: object, domain: str = "") -> float:
    """A number in [0, 1), uniform and stable, from ``parts`` joined by ``|``.

    Parameters
    ----------
    *parts : object
        Joined as ``"|".join(str(p) for p in parts)`` and hashed with BLAKE2b (8 bytes).
    domain : str, default=""
        BLAKE2b personalisation (up to 16 bytes): the same parts under another domain give an
        independent number.

    Returns
    -------
    float

    Examples
    --------
    >>> u = hash_unit("CMP-SPRING", "2026-11", 1001)
    >>> 0.0 <= u < 1.0 and u == hash_unit("CMP-SPRING", "2026-11", 1001)
    True
    >>> u == hash_unit("CMP-SPRING", "2026-11", 1001, domain="pilot")
    False
    """
    h = _hasher(domain)
    h.update("|".join(str(p) for p in parts).encode("utf-8"))
    return int.from_bytes(h.digest(), "big") / _SCALE


def hash_units(
    prefix: Iterable[object], customer_ids: Iterable[object], *, domain: str = ""
) -> NDArray[np.float64]:
    """:func:`hash_unit` of ``(*prefix, customer_id)`` for each customer id, as an array.

    Equal, element by element, to ``hash_unit(*prefix, customer_id, domain=domain)``; the hash
    state of the shared prefix is computed once.

    >>> units = hash_units(["CMP-SPRING", "2026-11"], [1001, 1002])
    >>> bool(units[0] == hash_unit("CMP-SPRING", "2026-11", 1001))
    True
    """
    head = _hasher(domain)
    parts = [str(p) for p in prefix]
    head.update(("|".join(parts) + "|" if parts else "").encode("utf-8"))
    ids = _id_strings(customer_ids)
    out = np.empty(len(ids), dtype=np.float64)
    for i, text in enumerate(ids):
        h = head.copy()
        h.update(text.encode("utf-8"))
        out[i] = int.from_bytes(h.digest(), "big") / _SCALE
    return out


def _id_strings(customer_ids: Iterable[object]) -> list[str]:
    """Customer ids as the text :func:`hash_unit` would join (numpy ints print as ints)."""
    if isinstance(customer_ids, np.ndarray):
        customer_ids = customer_ids.tolist()  # numpy scalars → Python ints/strs
    return [str(c) for c in customer_ids]


def _check_share(function: str, share: float) -> float:
    try:
        value = float(share)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(share, bool) or not 0.0 <= value <= 1.0:  # NaN fails too
        raise invalid_parameter(function, "share", "a fraction from 0 to 1", share)
    return value


def in_control(customer_id: object, campaign_id: str, period: str, share: float) -> bool:
    """Whether ``customer_id`` is in the random control group of ``campaign_id`` for ``period``.

    Parameters
    ----------
    customer_id : int or str
    campaign_id : str
    period : str
        From :func:`control_period`, e.g. ``"2026-11"``; a new period draws a new group.
    share : float
        Fraction of customers held out, 0 to 1.

    Returns
    -------
    bool

    Examples
    --------
    >>> in_control(1001, "CMP-SPRING", "2026-11", 0.0), in_control(1001, "CMP-SPRING", "2026-11", 1.0)
    (False, True)
    >>> sum(in_control(c, "CMP-SPRING", "2026-11", 0.1) for c in range(10_000))
    1031
    """
    share = _check_share("in_control", share)
    return hash_unit(campaign_id, period, customer_id, domain=_CONTROL) < share


def in_control_many(
    customer_ids: Iterable[object], campaign_id: str, period: str, share: float
) -> NDArray[np.bool_]:
    """:func:`in_control` for each of ``customer_ids``, as a boolean array."""
    share = _check_share("in_control_many", share)
    return hash_units([campaign_id, period], customer_ids, domain=_CONTROL) < share


def in_pilot(customer_id: object, campaign_id: str, share: float) -> bool:
    """Whether ``customer_id`` is in the pilot of ``campaign_id`` (the same in every period).

    Parameters
    ----------
    customer_id : int or str
    campaign_id : str
    share : float
        Fraction of customers in the pilot, 0 to 1; raising it keeps everyone already in.

    Returns
    -------
    bool

    Examples
    --------
    >>> in_pilot(1001, "CMP-SPRING", 1.0), in_pilot(1001, "CMP-SPRING", 0.0)
    (True, False)
    """
    share = _check_share("in_pilot", share)
    return hash_unit(campaign_id, customer_id, domain=_PILOT) < share


def in_pilot_many(
    customer_ids: Iterable[object], campaign_id: str, share: float
) -> NDArray[np.bool_]:
    """:func:`in_pilot` for each of ``customer_ids``, as a boolean array."""
    share = _check_share("in_pilot_many", share)
    return hash_units([campaign_id], customer_ids, domain=_PILOT) < share


def control_period(ts: datetime | date, granularity: Granularity = "month") -> str:
    """The period a control group is drawn for: ``2026-11-22``, ``2026-W47``, ``2026-11``,
    ``2026-Q4`` or ``2026``.

    Weeks are ISO weeks (Monday first; the ISO year, so 2027-01-01 is in ``2026-W53``).

    >>> from datetime import datetime
    >>> ts = datetime(2026, 11, 22, 9, 30)
    >>> [control_period(ts, g) for g in GRANULARITIES]
    ['2026-11-22', '2026-W47', '2026-11', '2026-Q4', '2026']
    """
    if not isinstance(ts, date):
        raise invalid_parameter("control_period", "ts", "a datetime or date", ts)
    if granularity == "day":
        return f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}"
    if granularity == "week":
        year, week, _ = ts.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if granularity == "month":
        return f"{ts.year:04d}-{ts.month:02d}"
    if granularity == "quarter":
        return f"{ts.year:04d}-Q{(ts.month - 1) // 3 + 1}"
    if granularity == "year":
        return f"{ts.year:04d}"
    raise invalid_parameter("control_period", "granularity", f"one of {GRANULARITIES}", granularity)
