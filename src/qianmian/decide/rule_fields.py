"""The names a decision rule may use, and the row of values a decision evaluates rules on.

A catalogue rule (an offer's eligibility, a campaign's audience) is written in the rule
language of :mod:`qianmian.features.rules` over three kinds of name:

* every customer feature of the catalogue (:data:`qianmian.features.catalogue.FEATURES`),
  e.g. ``monthly_income >= 20000``;
* the request's context, :data:`CONTEXT_FIELDS`: ``channel``, ``placement``, the triggering
  event's ``event_type``, ``event_amount``, ``event_category``, ``event_page``, and the time
  of the request as ``hour``, ``weekday`` (1 = Monday … 7 = Sunday), ``day`` and ``month``;
* every tag of the tag library as a boolean ``tag_<id>``, e.g. ``tag_platinum_prospect``.

>>> fields = decision_fields()
>>> fields["weekday"], fields["monthly_income"], fields["tag_high_income"]
('int', 'float', 'bool')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from qianmian.errors import NotFoundError, SchemaError

if TYPE_CHECKING:
    from qianmian.decide.decision import DecisionRequest
    from qianmian.features.tags import TagLibrary

__all__ = ["CONTEXT_FIELDS", "TAG_PREFIX", "context_row", "decision_fields", "tag_row"]

CONTEXT_FIELDS: dict[str, str] = {
    "channel": "string",
    "placement": "string",
    "event_type": "string",
    "event_amount": "float",
    "event_category": "string",
    "event_page": "string",
    "hour": "int",
    "weekday": "int",  # ISO: 1 = Monday … 7 = Sunday
    "day": "int",
    "month": "int",
}
TAG_PREFIX = "tag_"
_EVENT_KEYS = {"type": "event_type", "category": "event_category", "page": "event_page"}


@lru_cache(maxsize=1)
def _packaged_tags() -> TagLibrary:
    """The tag library shipped with qianmian, read once."""
    from qianmian.features.tags import TagLibrary

    return TagLibrary.load()


def decision_fields(tags: TagLibrary | None = None) -> dict[str, str]:
    """Every name a decision rule may use, with its type (``float``, ``int``, ``bool``, ``string``).

    Parameters
    ----------
    tags : TagLibrary, optional
        The tags offered as ``tag_<id>`` fields; default: the packaged library.

    Returns
    -------
    dict of str to str
        The feature catalogue's fields, then :data:`CONTEXT_FIELDS`, then one ``bool`` field
        per tag.

    Examples
    --------
    >>> from qianmian.features.tags import TagLibrary
    >>> sorted(n for n in decision_fields(TagLibrary([])) if n.startswith("tag_"))
    []
    """
    from qianmian.features.catalogue import FEATURES

    library = _packaged_tags() if tags is None else tags
    fields = {name: str(feature.type) for name, feature in FEATURES.items()}
    clash = sorted(set(fields) & set(CONTEXT_FIELDS))
    if clash:  # a feature named like a context field would make rules ambiguous
        raise SchemaError(
            f"The feature catalogue and the decision context both define {', '.join(clash)}; "
            "rename the feature."
        )
    fields.update(CONTEXT_FIELDS)
    fields.update({f"{TAG_PREFIX}{tag.id}": "bool" for tag in library})
    return fields


def context_row(request: DecisionRequest) -> dict[str, Any]:
    """The context fields of one request (missing ones None).

    Examples
    --------
    >>> from datetime import datetime
    >>> from qianmian.decide.decision import DecisionRequest
    >>> request = DecisionRequest(7, datetime(2026, 11, 11, 20, 5), channel="in_app",
    ...                           event={"type": "transaction", "amount": 5000, "category": "家装"})
    >>> row = context_row(request)
    >>> row["event_amount"], row["weekday"], row["hour"], row["event_page"]
    (5000.0, 3, 20, None)
    """
    event = request.event or {}
    row: dict[str, Any] = {"channel": request.channel, "placement": request.placement}
    for key, name in _EVENT_KEYS.items():
        value = event.get(key)
        row[name] = None if value is None else str(value)
    amount = event.get("amount")
    try:
        row["event_amount"] = None if amount is None else float(amount)
    except (TypeError, ValueError):
        row["event_amount"] = None  # a malformed amount is unknown, which makes rules false
    ts = request.ts
    row.update(hour=ts.hour, weekday=ts.isoweekday(), day=ts.day, month=ts.month)
    return row


def tag_row(
    rules_tags: Iterable[str], features: Mapping[str, Any], library: TagLibrary | None = None
) -> dict[str, bool]:
    """Evaluate only the tags some rule reads, on one customer's features.

    Parameters
    ----------
    rules_tags : iterable of str
        Field names as rules use them; those starting with ``tag_`` are evaluated, others are
        ignored (so a rule's ``fields_used`` can be passed whole).
    features : mapping
        One customer's feature values (a missing feature counts as unknown).
    library : TagLibrary, optional
        Default: the packaged library.

    Returns
    -------
    dict of str to bool
        ``{"tag_<id>": has the tag}``.

    Raises
    ------
    NotFoundError
        A ``tag_`` name is not a tag of the library.

    Examples
    --------
    >>> tag_row(["tag_high_income", "age"], {"monthly_income": 25000.0})
    {'tag_high_income': True}
    """
    library = _packaged_tags() if library is None else library
    out: dict[str, bool] = {}
    for name in rules_tags:
        if not name.startswith(TAG_PREFIX) or name in out:
            continue
        tag_id = name.removeprefix(TAG_PREFIX)
        if tag_id not in library:
            raise NotFoundError(
                f"The rule field '{name}' names no tag of the library; tag fields are "
                f"'tag_' followed by a tag id (see `qianmian tags --list`)."
            )
        rule = library[tag_id].rule
        values = {f: features.get(f) for f in rule.fields_used}
        out[name] = bool(rule.evaluate_one(values))
    return out
