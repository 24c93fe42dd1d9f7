"""The contact policy: may this customer be contacted with this offer, on this channel, now?

Checked in this order, the first failing rule giving the reason:

1. The customer's preferences could not be read → no marketing (fail closed).
2. The one-click opt-out of all marketing.
3. Consent for the channel (in-app banners need none).
4. Refusal of personalised marketing (PIPL Art. 24): only offers marked non-personalised.
5. A complaint in the last ``complaint_days``: no marketing.
6. The offer ignored ``ignore_count`` times within ``ignore_window_days``: hidden for a while.
7. Quiet hours of the channel (e.g. no SMS or push from 21:00 to 08:00).

Mandatory service messages (``service: true`` in the catalogue) skip rules 1–6 and the contact
caps, but not quiet hours. Caps per period are not checked here: they are counters reserved
atomically with budgets (:mod:`qianmian.decide.limits`).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qianmian.decide.catalogue import Catalogue
    from qianmian.decide.state.base import CustomerContactState

__all__ = ["contact_reason", "in_quiet_hours"]


def _say(language: str, zh: str, en: str) -> str:
    return zh if language == "zh" else en


def in_quiet_hours(ts: datetime, start: str, end: str) -> bool:
    """Whether ``ts`` falls in the quiet hours from ``start`` to ``end`` ("HH:MM"; may wrap).

    >>> in_quiet_hours(datetime(2026, 11, 22, 23, 5), "21:00", "08:00")
    True
    >>> in_quiet_hours(datetime(2026, 11, 22, 8, 0), "21:00", "08:00")
    False
    """
    begin, finish, now = time.fromisoformat(start), time.fromisoformat(end), ts.time()
    if begin <= finish:
        return begin <= now < finish
    return now >= begin or now < finish


def contact_reason(
    catalogue: Catalogue,
    *,
    offer_id: str,
    channel: str,
    personalised: bool,
    service: bool,
    contact: CustomerContactState | None,
    ts: datetime,
    language: str = "zh",
) -> str | None:
    """Why the contact is not allowed (None: allowed). See the module docstring for the order."""
    if not service:
        if contact is None:
            return _say(
                language,
                "无法读取客户的授权与退订状态，不发送营销内容",
                "consent and opt-out could not be read: no marketing without them",
            )
        if contact.marketing_opt_out:
            return _say(language, "客户已退订全部营销", "opted out of all marketing")
        if catalogue.channels[channel].needs_consent and channel not in contact.consents:
            return _say(
                language, f"客户未授权 {channel} 渠道营销", f"no consent to marketing by {channel}"
            )
        if personalised and contact.personalisation_opt_out:
            return _say(
                language,
                "客户拒绝个性化推荐(个保法第24条)，仅可发送非个性化权益",
                "refuses personalised marketing (PIPL Art. 24): non-personalised offers only",
            )
        until = contact.marketing_suppressed_until
        if until is not None and ts < until:
            return _say(
                language,
                f"客户投诉后暂停营销至 {until:%Y-%m-%d}",
                f"complained: no marketing until {until:%Y-%m-%d}",
            )
        hidden = contact.hidden_offers.get(offer_id)
        if hidden is not None and ts < hidden:
            rules = catalogue.suppression_rules()
            return _say(
                language,
                f"{rules.ignore_window_days}天内忽略{rules.ignore_count}次，隐藏至 {hidden:%Y-%m-%d}",
                f"ignored {rules.ignore_count} times in {rules.ignore_window_days} days: hidden "
                f"until {hidden:%Y-%m-%d}",
            )
    quiet = catalogue.channels[channel].quiet_hours
    if quiet is not None and in_quiet_hours(ts, quiet.start, quiet.end):
        return _say(
            language,
            f"{channel} 渠道免打扰时段 {quiet.start}–{quiet.end}",
            f"quiet hours for {channel}: {quiet.start}–{quiet.end}",
        )
    return None
