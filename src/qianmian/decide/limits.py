"""Which counters a contact uses: caps per customer and period, budgets, channel capacity.

A candidate that would be sent becomes a :class:`~qianmian.decide.state.base.ReservationAttempt`
listing every counter it adds to, each with its limit. The decision state reserves the first
attempt that fits, atomically, so concurrent decisions never exceed any of them.

Periods are calendar periods in China time (a day, an ISO week, a month): "at most 2 SMS a
week" means Monday to Sunday, as banks' contact rules are written. Money reserved for a contact
is its channel cost plus the offer's incentive cost — the most the contact can cost if it
converts — so a budget can never be overspent however many contacts convert.

>>> from datetime import datetime
>>> period_keys(datetime(2026, 11, 22, 9, 30))
{'day': 'd:2026-11-22', 'week': 'w:2026-W47', 'month': 'm:2026-11'}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from qianmian.decide.state.base import Counter, ReservationAttempt

__all__ = ["PERIODS", "blocked_reason", "contact_attempt", "period_keys"]

PERIODS = ("day", "week", "month")
_TTL = {"day": 2 * 86_400, "week": 9 * 86_400, "month": 33 * 86_400}
_PERIOD_ZH = {"day": "每天", "week": "每周", "month": "每月"}
_PERIOD_EN = {"day": "a day", "week": "a week", "month": "a month"}


def period_keys(ts: datetime) -> dict[str, str]:
    """The day, ISO week and month ``ts`` falls in, as key parts."""
    year, week, _ = ts.isocalendar()
    return {
        "day": f"d:{ts:%Y-%m-%d}",
        "week": f"w:{year}-W{week:02d}",
        "month": f"m:{ts:%Y-%m}",
    }


def contact_attempt(
    label: str,
    *,
    customer_id: int,
    channel: str,
    offer_id: str,
    campaign_id: str | None,
    ts: datetime,
    money: float,
    channel_caps: Mapping[str, int | None],
    all_caps: Mapping[str, int | None],
    offer_budget: tuple[int | None, float | None],
    campaign_budget: tuple[int | None, float | None],
    capacity_per_day: int | None,
    service: bool = False,
) -> ReservationAttempt:
    """The counters one contact adds to (service messages use no caps and no budgets).

    ``channel_caps``/``all_caps`` map a period ("day", "week", "month") to its cap (None: no
    cap); budgets are (count, CNY) pairs with None for "no limit".
    """
    counters: list[Counter] = []
    periods = period_keys(ts)
    if not service:
        for scope, caps in ((channel, channel_caps), ("all", all_caps)):
            for period in PERIODS:
                cap = caps.get(period)
                if cap is not None:
                    key = f"cap:{customer_id}:{scope}:{periods[period]}"
                    counters.append(Counter(key, 1.0, float(cap), _TTL[period]))
        for scope, (count, cny) in (
            (f"offer:{offer_id}", offer_budget),
            (f"campaign:{campaign_id}", campaign_budget if campaign_id else (None, None)),
        ):
            if count is not None:
                counters.append(Counter(f"budget:{scope}:n", 1.0, float(count)))
            if cny is not None:
                counters.append(Counter(f"budget:{scope}:cny", round(money, 2), float(cny)))
    if capacity_per_day is not None:
        key = f"capacity:{channel}:{periods['day']}"
        counters.append(Counter(key, 1.0, float(capacity_per_day), _TTL["day"]))
    return ReservationAttempt(label, tuple(counters))


def blocked_reason(key: str, language: str = "zh") -> str:
    """A person's reading of the counter key that blocked a contact.

    >>> blocked_reason("cap:7:sms:w:2026-W47", "en")
    'the sms contact cap a week is reached'
    >>> blocked_reason("budget:campaign:CMP-PLAT:cny")
    '活动 CMP-PLAT 的预算(金额)已用完'
    """
    parts = key.split(":")
    zh = language == "zh"
    if parts[0] == "cap":
        scope = parts[2]
        period = {"d": "day", "w": "week", "m": "month"}[parts[3]]
        if zh:
            what = "全渠道" if scope == "all" else scope
            return f"{what}{_PERIOD_ZH[period]}触达次数已达上限"
        what = "all-channel" if scope == "all" else scope
        return f"the {what} contact cap {_PERIOD_EN[period]} is reached"
    if parts[0] == "budget":
        kind, name, unit = parts[1], ":".join(parts[2:-1]), parts[-1]
        if zh:
            return (
                f"{'活动' if kind == 'campaign' else '权益'} {name} 的预算"
                f"({'金额' if unit == 'cny' else '数量'})已用完"
            )
        return f"the {kind} {name} budget ({'CNY' if unit == 'cny' else 'count'}) is used up"
    if parts[0] == "cooldown":
        key = ":".join(parts[1:])
        return f"冷却期内已推荐过 ({key})" if zh else f"in the cooldown of {key}"
    if parts[0] == "capacity":
        return (
            f"{parts[1]} 渠道当天容量已满" if zh else f"the {parts[1]} capacity for the day is used"
        )
    return key
