"""The trigger file, read and checked: each trigger's keys, its rule and its offers.

:func:`parse_triggers` turns the YAML text of a trigger file (see :mod:`qianmian.stream.triggers`
for the format) into :class:`Trigger` objects. Every key is validated with pydantic
(:class:`TriggerSpec`, no unknown keys), every rule is compiled over the decision fields, and,
given a catalogue, every offer is looked up in it; an error names the file, the line and the
trigger::

    triggers.yaml, line 27: trigger 'big_home_purchase_instalment' names the offer 'OF-INST-24',
    which is not in catalogue 2026.11-starter. Did you mean OF-INST-12?

>>> spec = TriggerSpec(id="t", name_zh="触发", name_en="T", description_zh="说明",
...                    description_en="About", on=["login"], when="TRUE", offers=["A", "B"])
>>> spec.at_once, spec.ttl_seconds, spec.cooldown_seconds
(2, 300, 86400)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic import ValidationError as PydanticError

from qianmian.data.schema.vocab import CONTACT_CHANNELS
from qianmian.data.yaml_lines import KeyPath, compose_with_lines, error_text, loc_text, nearest_path
from qianmian.errors import ConfigError, SchemaError
from qianmian.features.rules import Rule, parse_rule

if TYPE_CHECKING:
    from qianmian.decide.catalogue import Catalogue

__all__ = ["MAX_OFFERS", "TRIGGER_EVENTS", "Trigger", "TriggerSpec", "parse_triggers"]

EventType = Literal["transaction", "login", "page_view", "search", "transfer_failure", "response"]
TRIGGER_EVENTS: tuple[str, ...] = get_args(EventType)
_ID = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
MAX_OFFERS = 5  # the decision engine presents at most five offers at once
# Known only after the engine has chosen: a trigger reading them would never fire.
_UNREADABLE = {"channel": "channel", "placement": "placement"}


class TriggerSpec(BaseModel):
    """One trigger as written in the YAML file (the file boundary: strict, no extra keys)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=48)
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=100)
    description_zh: str = Field(min_length=1)
    description_en: str = Field(min_length=1)
    on: list[EventType] = Field(min_length=1)
    when: str = Field(min_length=1)
    offers: list[str] = Field(min_length=1, max_length=20)
    channel: str | None = None
    max_offers: int | None = Field(None, ge=1, le=MAX_OFFERS)  # None: all offers (≤ 5)
    # A moment, not a campaign; and an event must not outlive its idempotency key (7 days).
    ttl_seconds: int = Field(300, ge=1, le=86_400)
    cooldown_seconds: int = Field(86_400, ge=0)
    start_date: date | None = None
    end_date: date | None = None
    priority: int = Field(100, ge=0)

    @field_validator("id")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError(
                "a trigger id is snake_case: lower-case letters, digits and single underscores, "
                "starting with a letter (e.g. big_home_purchase_instalment)"
            )
        return value

    @field_validator("when", mode="before")
    @classmethod
    def _literal_rule(cls, value: Any) -> Any:
        # `when: TRUE` unquoted is a YAML boolean; it means the rule TRUE.
        return ("TRUE" if value else "FALSE") if isinstance(value, bool) else value

    @field_validator("on", "offers")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} is listed twice; list each once")
        return values

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str | None) -> str | None:
        if value is not None and value not in CONTACT_CHANNELS.values:
            raise ValueError(
                f"'{value}' is not a channel; use one of {', '.join(CONTACT_CHANNELS.values)}, "
                "or null to let the engine choose"
            )
        return value

    @property
    def at_once(self) -> int:
        """How many offers one firing may present: ``max_offers``, else all (at most 5)."""
        return self.max_offers if self.max_offers is not None else min(len(self.offers), MAX_OFFERS)

    @field_validator("max_offers")
    @classmethod
    def _not_more_than_listed(cls, value: int | None, info: ValidationInfo) -> int | None:
        offers = info.data.get("offers")  # absent when the offers themselves are invalid
        if value is not None and offers is not None and value > len(offers):
            raise ValueError(
                f"max_offers is {value} but the trigger lists {len(offers)} offer(s); it can "
                "present at most as many as it lists"
            )
        return value

    @field_validator("end_date")
    @classmethod
    def _after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if value is not None and start is not None and start > value:
            raise ValueError(f"end_date {value} is before start_date {start}; swap them")
        return value


@dataclass(frozen=True)
class Trigger:
    """A checked trigger: the events it listens to, its rule, its offers and its timing.

    ``line`` is where the trigger starts in its YAML file (None when built in code).
    """

    id: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    on: tuple[str, ...]
    rule: Rule
    offers: tuple[str, ...]
    channel: str | None
    max_offers: int
    ttl_seconds: int
    cooldown_seconds: int
    start_date: date | None = None
    end_date: date | None = None
    priority: int = 100
    line: int | None = None

    @property
    def when(self) -> str:
        """The rule's text."""
        return self.rule.text

    def name(self, lang: str = "zh") -> str:
        return self.name_en if lang == "en" else self.name_zh

    def description(self, lang: str = "zh") -> str:
        return self.description_en if lang == "en" else self.description_zh

    def live_on(self, day: date) -> bool:
        """True when ``day`` is inside the trigger's dates (both ends included)."""
        return (self.start_date is None or self.start_date <= day) and (
            self.end_date is None or day <= self.end_date
        )


def parse_triggers(
    text: str,
    name: str,
    *,
    fields: Mapping[str, str],
    catalogue: Catalogue | None = None,
) -> list[Trigger]:
    """Read and check a trigger file; errors name ``name``, the line and the trigger.

    Parameters
    ----------
    text : str
        The YAML document.
    name : str
        The file's name, for messages.
    fields : mapping of str to str
        The names a rule may read and their types
        (:func:`~qianmian.decide.rule_fields.decision_fields`).
    catalogue : Catalogue, optional
        When given, every offer must be in it, with a treatment on the trigger's channel.

    Raises
    ------
    ConfigError
        The YAML does not parse, a key is unknown or invalid, an id is used twice, a rule
        reads ``channel``/``placement``, or an offer is not in ``catalogue``.
    RuleError
        A rule does not parse or names an unknown field (the line of ``when`` is named).
    """
    data, lines = compose_with_lines(text, name, what="trigger file")
    if not isinstance(data, dict) or not isinstance(data.get("triggers"), list):
        raise ConfigError(
            f"{name}: a trigger file is a mapping with a 'triggers:' list of triggers; see the "
            "packaged qianmian/stream/triggers.yaml for the format."
        )
    extra = sorted(map(str, set(data) - {"version", "triggers"}))
    if extra or data.get("version", 1) != 1:
        at = f", line {lines[(extra[0],)]}" if extra else ""
        raise ConfigError(
            f"{name}{at}: only the keys 'version' (1) and 'triggers' are allowed at the top; "
            f"got {', '.join(sorted(map(str, data)))} with version {data.get('version', 1)!r}."
        )
    triggers: list[Trigger] = []
    first_line: dict[str, int] = {}
    for i, item in enumerate(data["triggers"]):
        where = ("triggers", i)
        spec = _spec(item, name, where, lines)
        line = lines[where]
        if spec.id in first_line:
            raise ConfigError(
                f"{name}, line {line}: the trigger id '{spec.id}' is already used at line "
                f"{first_line[spec.id]}; trigger ids must be unique."
            )
        first_line[spec.id] = line
        label = f"trigger '{spec.id}' ({spec.name_zh})"
        rule = _rule(spec, fields, f"{name}, line {lines[(*where, 'when')]}: {label}")
        if catalogue is not None:
            _check_offers(spec, catalogue, name, where, lines)
        triggers.append(
            Trigger(
                spec.id, spec.name_zh, spec.name_en, spec.description_zh, spec.description_en,
                tuple(spec.on), rule, tuple(spec.offers), spec.channel, spec.at_once,
                spec.ttl_seconds, spec.cooldown_seconds, spec.start_date, spec.end_date,
                spec.priority, line,
            )
        )  # fmt: skip
    return triggers


def _spec(item: Any, name: str, where: KeyPath, lines: Mapping[KeyPath, int]) -> TriggerSpec:
    """One trigger's keys validated; the first error names the line and the key."""
    if not isinstance(item, dict):
        raise ConfigError(
            f"{name}, line {lines[where]}: a trigger must be a mapping of keys (id, name_zh, "
            f"... on, when, offers); got {item!r}."
        )
    label = f"trigger '{item['id']}'" if isinstance(item.get("id"), str) else "a trigger"
    try:
        return TriggerSpec.model_validate(item)
    except PydanticError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        line = lines[nearest_path((*where, *loc), lines)]
        key = loc_text(loc) if loc else "the trigger"
        got = ""
        if loc and err["type"] != "extra_forbidden" and loc[0] in item:
            got = f" (got {err['input']!r})"
        hint = ""
        if err["type"] == "extra_forbidden":
            near = get_close_matches(str(loc[0]), TriggerSpec.model_fields, n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            hint += f" Keys: {', '.join(TriggerSpec.model_fields)}."
        raise ConfigError(
            f"{name}, line {line}: {label} is invalid: {key}: {error_text(err)}{got}.{hint}"
        ) from None


def _rule(spec: TriggerSpec, fields: Mapping[str, str], where: str) -> Rule:
    """The trigger's rule compiled over ``fields``; errors carry ``where``."""
    try:
        rule = parse_rule(spec.when, fields)
    except SchemaError as e:  # RuleError included: keep the type
        raise type(e)(f"{where}: {e}") from e
    unreadable = [f for f in rule.fields_used if f in _UNREADABLE]
    if unreadable:
        raise ConfigError(
            f"{where}: the rule '{spec.when}' reads {', '.join(unreadable)}, which the engine "
            "chooses only after the trigger has fired; set the trigger's 'channel:' instead."
        )
    return rule


def _check_offers(
    spec: TriggerSpec,
    catalogue: Catalogue,
    name: str,
    where: KeyPath,
    lines: Mapping[KeyPath, int],
) -> None:
    """Every offer is in ``catalogue`` and, for a fixed channel, has a treatment there."""
    label = f"trigger '{spec.id}' ({spec.name_zh})"
    for j, offer_id in enumerate(spec.offers):
        line = lines.get((*where, "offers", j), lines[where])
        offer = catalogue.offers.get(offer_id)
        if offer is None:
            near = get_close_matches(offer_id, catalogue.offers, n=3)
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(
                f"{name}, line {line}: {label} names the offer '{offer_id}', which is not in "
                f"catalogue {catalogue.version}.{hint}"
            )
        channels = [t.channel for t in offer.treatments]
        if spec.channel is not None and spec.channel not in channels:
            raise ConfigError(
                f"{name}, line {line}: {label} sends on {spec.channel}, but the offer "
                f"'{offer_id}' has no copy for that channel (it has {', '.join(channels)}); "
                "add a treatment to the offer or change the trigger's channel."
            )
