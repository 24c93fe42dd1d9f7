"""Checks across a whole offer catalogue: ids unique, rules parse, campaigns fit their offers.

A field's own checks run as the :mod:`~qianmian.decide.catalogue_schema` models validate;
:func:`catalogue_problems` then looks across offers and campaigns and reports each problem by
its path in the catalogue, which :mod:`qianmian.decide.catalogue` turns into file names and
lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from difflib import get_close_matches
from typing import NamedTuple

from qianmian.decide.catalogue_schema import CatalogueSpec
from qianmian.errors import SchemaError
from qianmian.features.rules import Rule, parse_rule

__all__ = ["Problem", "catalogue_problems"]


class Problem(NamedTuple):
    """What is wrong, where in the catalogue (a path such as ``("offers", 3, "risk_level")``),
    and another place it concerns (the first use of a duplicated id), if any."""

    path: tuple[str | int, ...]
    message: str
    other: tuple[str | int, ...] | None = None


_TEMPLATE_TAGS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


def catalogue_problems(
    spec: CatalogueSpec, fields: Mapping[str, str]
) -> tuple[list[Problem], dict[str, Rule]]:
    """Everything wrong across ``spec``'s offers and campaigns, and its rules compiled.

    Checks: offer, treatment and campaign ids unique; each offer's and campaign's own
    :meth:`~qianmian.decide.catalogue_schema.OfferSpec.problems`; every rule parses over
    ``fields``; campaign offers exist, are not service messages and have a treatment on one of
    the campaign's channels; the fixed text of Chinese copy fits its channel's ``max_length``.
    """
    problems: list[Problem] = []
    rules: dict[str, Rule] = {}

    def compile_rule(path: tuple[str | int, ...], text: str) -> None:
        if text in rules:
            return
        try:
            rules[text] = parse_rule(text, fields)
        except SchemaError as e:  # RuleError included: the rule's own sentence says why
            problems.append(Problem(path, str(e)))

    first: dict[tuple[str, str], tuple[str | int, ...]] = {}

    def unique(kind: str, value: str, path: tuple[str | int, ...]) -> None:
        if (kind, value) in first:
            hint = (
                "; give each treatment of an offer on one channel its own id"
                if kind == "treatment"
                else ""
            )
            message = f"the {kind} id {value!r} is already used{hint}"
            problems.append(Problem(path, message, first[kind, value]))
        else:
            first[kind, value] = path

    for i, offer in enumerate(spec.offers):
        unique("offer", offer.id, ("offers", i, "id"))
        problems.extend(Problem(("offers", i, *p), m) for p, m in offer.problems())
        for j, t in enumerate(offer.treatments):
            unique("treatment", str(t.id), ("offers", i, "treatments", j, "id"))
            limit = spec.channels[t.channel].max_length
            fixed = len(_TEMPLATE_TAGS.sub("", t.copy_zh))
            if limit is not None and fixed > limit:
                problems.append(
                    Problem(
                        ("offers", i, "treatments", j, "copy_zh"),
                        f"the copy has {fixed} characters besides its variables; {t.channel} "
                        f"shows at most {limit}",
                    )
                )
        for name in ("eligibility", "suitable_when"):
            for j, condition in enumerate(getattr(offer, name)):
                compile_rule(("offers", i, name, j, "when"), condition.when)
        if offer.applicable_when is not None:
            compile_rule(("offers", i, "applicable_when", "when"), offer.applicable_when.when)
    offers = {o.id: o for o in spec.offers}
    for i, campaign in enumerate(spec.campaigns):
        unique("campaign", campaign.id, ("campaigns", i, "id"))
        problems.extend(Problem(("campaigns", i, *p), m) for p, m in campaign.problems())
        if campaign.audience is not None:
            compile_rule(("campaigns", i, "audience"), campaign.audience)
        for j, offer_id in enumerate(campaign.offers):
            path = ("campaigns", i, "offers", j)
            listed = offers.get(offer_id)
            if listed is None:
                near = get_close_matches(offer_id, offers, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                problems.append(
                    Problem(path, f"there is no offer {offer_id!r} in the catalogue{hint}")
                )
            elif listed.service:
                problems.append(
                    Problem(path, f"{offer_id!r} is a service message, which no campaign may carry")
                )
            elif campaign.channels and not {t.channel for t in listed.treatments} & set(
                campaign.channels
            ):
                problems.append(
                    Problem(
                        path,
                        f"offer {offer_id!r} has no treatment on the campaign's channels "
                        f"({', '.join(campaign.channels)})",
                    )
                )
    return problems, rules
