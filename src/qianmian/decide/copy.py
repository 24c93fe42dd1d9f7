"""The words sent with an offer: a treatment's template rendered for one customer and channel.

Templates are Jinja2 text, rendered in a sandbox, with these variables: ``bank`` (the bank's
name), ``offer`` (the offer's name in the language), ``f`` (the customer's features — numbers
and codes, never personal data: the feature catalogue holds no names, numbers or addresses),
and ``event`` (the triggering event's fields). SMS follows Chinese practice: the bank's
signature 【bank】 first and the opt-out instruction 回T退订 last. Copy longer than the channel's
limit is cut with an ellipsis, the signature and opt-out kept.

>>> copy = CopyWriter(bank_name="千面银行", language="zh")
>>> copy.render("本周{{ offer }}，点击领取", offer_name="餐饮满100减30", channel="sms",
...             max_length=140, features={}, event=None)
'【千面银行】本周餐饮满100减30，点击领取 回T退订'
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["SMS_OPT_OUT", "CopyWriter"]

SMS_OPT_OUT = {"zh": " 回T退订", "en": " Reply T to opt out"}
_ENV = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=4096)
def _template(text: str) -> Any:
    return _ENV.from_string(text)


class CopyWriter:
    """Renders treatment templates in one language for one bank."""

    def __init__(self, *, bank_name: str, language: str = "zh") -> None:
        self.bank_name = bank_name
        self.language = language

    def render(
        self,
        template: str,
        *,
        offer_name: str,
        channel: str,
        max_length: int | None,
        features: Mapping[str, Any],
        event: Mapping[str, Any] | None,
    ) -> str:
        """The copy for one contact; a template that fails to render falls back to the name."""
        try:
            body = _template(template).render(
                bank=self.bank_name, offer=offer_name, f=features, event=event or {}
            )
        except (TemplateError, TypeError, ValueError, ArithmeticError):
            body = offer_name  # a broken template must not stop the decision; the name is safe
        body = " ".join(body.split())
        head, tail = "", ""
        if channel == "sms":
            head, tail = f"【{self.bank_name}】", SMS_OPT_OUT.get(self.language, SMS_OPT_OUT["en"])
        if max_length is not None and len(head) + len(body) + len(tail) > max_length:
            room = max(max_length - len(head) - len(tail) - 1, 0)
            body = body[:room] + "…"
        return f"{head}{body}{tail}"
