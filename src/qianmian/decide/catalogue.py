"""The offer catalogue as policy as code: offers, campaigns, channels and the contact policy.

Marketing operations write the catalogue in YAML (see the starter in ``qianmian/decide/starter/``
and :mod:`qianmian.decide.catalogue_schema` for every key); the decision engine reads it as a
:class:`Catalogue`. A catalogue is one file, or a folder whose ``*.yaml`` files are merged in
name order — each file may hold any sections (``offers``, ``campaigns``, ``channels``,
``contact_policy``) and exactly one sets ``version``. Everything is checked at load, and an
error names the file, the line and the field::

    offers.yaml, line 42, offers[3].risk_level: 'R6' is not one of R1, R2, R3, R4, R5

Rules (eligibility, applicability, suitability, audiences) are compiled once at load over
:func:`~qianmian.decide.rule_fields.decision_fields`.

>>> catalogue = starter_catalogue()
>>> catalogue.offer("OF-DINING-COUPON").name_zh
'餐饮满100减30'
>>> [c.id for c in catalogue.campaigns_of("OF-INST-12")]
['CP-INST-BIG', 'CP-D11-INST']
>>> parse_catalogue(catalogue.to_yaml()) == catalogue
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from qianmian.data.yaml_lines import KeyPath, compose_with_lines, error_text, loc_text, nearest_path
from qianmian.decide import catalogue_schema as schema
from qianmian.decide.catalogue_checks import Problem, catalogue_problems
from qianmian.decide.catalogue_schema import (
    CampaignSpec,
    CatalogueSpec,
    ChannelSpec,
    ContactPolicySpec,
    OfferSpec,
)
from qianmian.decide.rule_fields import decision_fields
from qianmian.decide.state.base import SuppressionRules
from qianmian.errors import ConfigError, NotFoundError
from qianmian.features.rules import Rule, parse_rule

if TYPE_CHECKING:
    from qianmian.features.tags import TagLibrary

__all__ = ["SECTIONS", "Catalogue", "load_catalogue", "parse_catalogue", "starter_catalogue"]

SECTIONS = ("version", "offers", "campaigns", "channels", "contact_policy")
_MAX_REPORTED = 5  # errors listed in one message; more only bury the first
_KNOWN_KEYS = sorted(
    {name for model in schema.SPEC_MODELS for name in model.model_fields}
)  # for "did you mean" on a misspelt key


@dataclass(frozen=True, eq=False)
class Catalogue:
    """A validated offer catalogue, as the decision engine reads it.

    Build it with :func:`parse_catalogue`, :func:`load_catalogue`, :func:`starter_catalogue` or
    :meth:`from_spec`. Two catalogues are equal when their content is (``sha256``).

    Attributes
    ----------
    version : str
        The label the catalogue gives itself.
    sha256 : str
        Hex digest of the canonical content (what :meth:`to_yaml` writes, comments aside).
    offers, campaigns : dict
        By id, in file order.
    channels : dict
        Every contact channel's :class:`~qianmian.decide.catalogue_schema.ChannelSpec`.
    contact_policy : ContactPolicySpec
        Caps, suppression after outcomes and the reservation time-out.
    """

    version: str
    sha256: str
    offers: dict[str, OfferSpec]
    campaigns: dict[str, CampaignSpec]
    channels: dict[str, ChannelSpec]
    contact_policy: ContactPolicySpec
    _fields: dict[str, str] = field(repr=False)
    _rules: dict[str, Rule] = field(repr=False)
    _by_offer: dict[str, tuple[CampaignSpec, ...]] = field(repr=False)

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def from_spec(
        cls,
        spec: CatalogueSpec,
        *,
        tags: TagLibrary | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> Catalogue:
        """Check ``spec`` across offers and campaigns and compile its rules.

        ``fields`` (default :func:`decision_fields` of ``tags``) are the names rules may use.
        Raises :class:`~qianmian.errors.ConfigError` naming the field of each problem.
        """
        names = dict(decision_fields(tags) if fields is None else fields)
        return _build(spec, names, _Locator({}))

    @property
    def spec(self) -> CatalogueSpec:
        """The catalogue as its pydantic model."""
        return CatalogueSpec(
            version=self.version,
            offers=list(self.offers.values()),
            campaigns=list(self.campaigns.values()),
            channels=self.channels,
            contact_policy=self.contact_policy,
        )

    def with_offer(self, offer: OfferSpec, *, version: str | None = None) -> Catalogue:
        """A new catalogue with ``offer`` added, or replacing the offer of its id in place."""
        offers = dict(self.offers)
        offers[offer.id] = offer
        return self._changed(version, offers=list(offers.values()))

    def with_campaign(self, campaign: CampaignSpec, *, version: str | None = None) -> Catalogue:
        """A new catalogue with ``campaign`` added, or replacing the campaign of its id."""
        campaigns = dict(self.campaigns)
        campaigns[campaign.id] = campaign
        return self._changed(version, campaigns=list(campaigns.values()))

    def without_offer(self, offer_id: str, *, version: str | None = None) -> Catalogue:
        """A new catalogue without offer ``offer_id`` (which no campaign may still list)."""
        self.offer(offer_id)
        users = [c.id for c in self.campaigns_of(offer_id)]
        if users:
            raise ConfigError(
                f"The offer '{offer_id}' cannot be removed: campaign(s) {', '.join(users)} "
                "list it. Remove it from those campaigns first."
            )
        offers = [o for o in self.offers.values() if o.id != offer_id]
        return self._changed(version, offers=offers)

    def _changed(self, version: str | None, **parts: Any) -> Catalogue:
        try:
            spec = self.spec.model_copy(update={"version": version or self.version, **parts})
            spec = CatalogueSpec.model_validate(spec.model_dump())
        except PydanticValidationError as e:
            raise ConfigError(_pydantic_message(e, _Locator({}))) from e
        return _build(spec, self._fields, _Locator({}))

    # -- reading --------------------------------------------------------------------------------

    def offer(self, offer_id: str) -> OfferSpec:
        """The offer ``offer_id``; :class:`~qianmian.errors.NotFoundError` if there is none."""
        try:
            return self.offers[offer_id]
        except KeyError:
            raise NotFoundError(_unknown("offer", offer_id, self.offers)) from None

    def campaign(self, campaign_id: str) -> CampaignSpec:
        """The campaign ``campaign_id``; :class:`~qianmian.errors.NotFoundError` if none."""
        try:
            return self.campaigns[campaign_id]
        except KeyError:
            raise NotFoundError(_unknown("campaign", campaign_id, self.campaigns)) from None

    def campaigns_of(self, offer_id: str) -> list[CampaignSpec]:
        """The campaigns that carry ``offer_id``, in file order (empty for an always-on offer)."""
        return list(self._by_offer.get(offer_id, ()))

    def rule(self, text: str) -> Rule:
        """The compiled rule for ``text`` (compiled at load; other text is compiled and kept)."""
        rule = self._rules.get(text)
        if rule is None:
            rule = self._rules[text] = parse_rule(text, self._fields)
        return rule

    @property
    def fields_used(self) -> tuple[str, ...]:
        """Every field the catalogue's rules read, sorted (``tag_*`` fields included)."""
        return tuple(sorted({f for r in self._rules.values() for f in r.fields_used}))

    def suppression_rules(self) -> SuppressionRules:
        """The contact policy's suppression after ignored offers and complaints."""
        return SuppressionRules(**self.contact_policy.suppression.model_dump())

    def to_yaml(self) -> str:
        """The catalogue as one YAML document; ``parse_catalogue(c.to_yaml()) == c``."""
        head = f"# 千面 qianmian offer catalogue {self.version} (sha256 {self.sha256[:12]})\n"
        return head + yaml.safe_dump(
            _canonical(self.spec, "python"), allow_unicode=True, sort_keys=False, width=100
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Catalogue) and other.sha256 == self.sha256

    def __hash__(self) -> int:
        return hash(self.sha256)


# -- reading files ------------------------------------------------------------------------------


def parse_catalogue(
    text: str, name: str = "<catalogue>", *, tags: TagLibrary | None = None
) -> Catalogue:
    """Parse and check one catalogue document; errors name ``name``, the line and the field.

    Examples
    --------
    >>> parse_catalogue("version: v1\\noffers: []\\n").version
    'v1'
    >>> parse_catalogue("version: v1\\nofers: []\\n")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    qianmian.errors.ConfigError: <catalogue>, line 2: 'ofers' is not a section ... Did you mean offers?
    """
    return _from_documents([(name, text)], tags)


def load_catalogue(path: str | Path, *, tags: TagLibrary | None = None) -> Catalogue:
    """Read a catalogue file, or a folder whose ``*.yaml`` files are merged in name order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise ConfigError(
                f"The catalogue folder {path} holds no .yaml files; put offers.yaml, "
                "campaigns.yaml and policy.yaml there (see qianmian/decide/starter/)."
            )
        return _from_documents([(p.name, _read(p)) for p in files], tags)
    return _from_documents([(str(path), _read(path))], tags)


@lru_cache(maxsize=1)
def starter_catalogue() -> Catalogue:
    """The catalogue shipped with qianmian for the simulated bank (read once)."""
    folder = resources.files("qianmian.decide") / "starter"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)
    return _from_documents([(p.name, p.read_text(encoding="utf-8")) for p in files], None)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"The catalogue file {path} does not exist; check the path.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"The catalogue file {path} cannot be read ({e}); save it as UTF-8 text."
        ) from e


# Where a merged key came from: the file, its line, and its path within that file.
_Origin = tuple[str, int, KeyPath]


class _Locator:
    """Turns a path in the merged catalogue into 'file, line N, local.path' for messages."""

    def __init__(self, origins: Mapping[KeyPath, _Origin]) -> None:
        self.origins = origins

    def __call__(self, loc: Iterable[Any]) -> str:
        loc = tuple(loc)
        local = loc
        if len(loc) > 1 and (loc[0], loc[1]) in self.origins:  # list positions per file
            local = (*self.origins[(loc[0], loc[1])][2], *loc[2:])
        found = nearest_path(loc, self.origins)
        if not found:
            return loc_text(local)
        name, line, _ = self.origins[found]
        return f"{name}, line {line}, {loc_text(local)}"


def _from_documents(documents: list[tuple[str, str]], tags: TagLibrary | None) -> Catalogue:
    """Merge the documents' sections, validate, check and compile."""
    data: dict[str, Any] = {"offers": [], "campaigns": [], "channels": {}}
    origins: dict[KeyPath, _Origin] = {}
    for name, text in documents:
        content, lines = compose_with_lines(text, name, what="offer catalogue file")
        if content is None:
            continue  # an empty file adds nothing
        if not isinstance(content, dict):
            raise ConfigError(
                f"{name}: an offer catalogue file is a mapping of sections ({', '.join(SECTIONS)}); "
                f"this one holds a {type(content).__name__}."
            )
        _merge(name, content, lines, data, origins)
    if "version" not in data:
        names = ", ".join(n for n, _ in documents)
        raise ConfigError(
            f"{names}: no file sets the catalogue's 'version'; add a label such as "
            '`version: "2026.11"` to one of them.'
        )
    locate = _Locator(origins)
    try:
        spec = CatalogueSpec.model_validate(data)
    except PydanticValidationError as e:
        raise ConfigError(_pydantic_message(e, locate)) from e
    return _build(spec, decision_fields(tags), locate)


def _merge(
    name: str,
    content: dict[str, Any],
    lines: Mapping[KeyPath, int],
    data: dict[str, Any],
    origins: dict[KeyPath, _Origin],
) -> None:
    """Add one file's sections to ``data``; record where each merged key came from."""

    def at(path: KeyPath) -> str:
        origin = origins.get(path)
        return f"{origin[0]}, line {origin[1]}" if origin else "another file"

    base = {"offers": len(data["offers"]), "campaigns": len(data["campaigns"])}
    for key, value in content.items():
        line = lines.get((key,), 1)
        if key not in SECTIONS:
            near = get_close_matches(str(key), SECTIONS, n=1)
            hint = f" Did you mean {near[0]}?" if near else ""
            raise ConfigError(
                f"{name}, line {line}: '{key}' is not a section of an offer catalogue; the "
                f"sections are {', '.join(SECTIONS)}.{hint}"
            )
        if key in ("version", "contact_policy") and key in data:
            raise ConfigError(
                f"{name}, line {line}: '{key}' is already set at {at((key,))}; set it once."
            )
        if key in ("offers", "campaigns", "channels"):
            kind = dict if key == "channels" else list
            value = kind() if value is None else value
            if not isinstance(value, kind):
                raise ConfigError(
                    f"{name}, line {line}: '{key}' must be a "
                    f"{'mapping of channels' if kind is dict else f'list of {key}'}; "
                    f"got {type(value).__name__}."
                )
            if key == "channels":
                for channel in value:
                    if channel in data["channels"]:
                        raise ConfigError(
                            f"{name}, line {lines.get((key, channel), line)}: channel "
                            f"'{channel}' is already configured at {at((key, channel))}."
                        )
                data["channels"].update(value)
            else:
                data[key].extend(value)
        else:
            data[key] = value
    for path, line in lines.items():
        if path[0] in base and len(path) > 1 and isinstance(path[1], int):
            merged: KeyPath = (path[0], base[str(path[0])] + path[1], *path[2:])
        else:
            merged = path
        origins.setdefault(merged, (name, line, path))


def _build(spec: CatalogueSpec, fields: dict[str, str], locate: _Locator) -> Catalogue:
    """Check ``spec`` as a whole and make the :class:`Catalogue`."""
    problems, rules = catalogue_problems(spec, fields)
    if problems:
        raise ConfigError(_problems_message(problems, locate))
    by_offer: dict[str, list[CampaignSpec]] = {}
    for campaign in spec.campaigns:
        for offer_id in campaign.offers:
            by_offer.setdefault(offer_id, []).append(campaign)
    content = json.dumps(_canonical(spec, "json"), sort_keys=True, ensure_ascii=False)
    return Catalogue(
        version=spec.version,
        sha256=hashlib.sha256(content.encode("utf-8")).hexdigest(),
        offers={o.id: o for o in spec.offers},
        campaigns={c.id: c for c in spec.campaigns},
        channels=dict(spec.channels),
        contact_policy=spec.contact_policy,
        _fields=fields,
        _rules=rules,
        _by_offer={k: tuple(v) for k, v in by_offer.items()},
    )


def _canonical(spec: CatalogueSpec, mode: str) -> dict[str, Any]:
    """The content that defines a catalogue: defaults left out where re-reading restores them."""
    offers = []
    for offer in spec.offers:
        full = offer.model_dump(mode=mode)
        pruned = offer.model_dump(mode=mode, exclude_defaults=True)
        derived = {"service", "credit", "not_holding"}  # their defaults depend on other fields
        offers.append({k: pruned.get(k, v) for k, v in full.items() if k in pruned or k in derived})
    return {
        "version": spec.version,
        "offers": offers,
        "campaigns": [c.model_dump(mode=mode, exclude_defaults=True) for c in spec.campaigns],
        "channels": {k: v.model_dump(mode=mode) for k, v in spec.channels.items()},
        "contact_policy": spec.contact_policy.model_dump(mode=mode, exclude_none=True),
    }


def _pydantic_message(error: PydanticValidationError, locate: _Locator) -> str:
    parts = []
    for err in error.errors():
        text = error_text(err)
        if err["type"] == "extra_forbidden":
            near = get_close_matches(str(err["loc"][-1]), _KNOWN_KEYS, n=1)
            text += f" (did you mean {near[0]}?)" if near else ""
        elif err["type"] not in ("value_error", "missing") and _scalar(err.get("input")):
            text += f" (got {err['input']!r})"  # value errors already name the value
        parts.append(f"{locate(err['loc'])}: {text}")
    return _sentences(parts)


def _problems_message(problems: list[Problem], locate: _Locator) -> str:
    parts = []
    for p in problems:
        also = f" (at {locate(p.other)})" if p.other is not None else ""
        parts.append(f"{locate(p.path)}: {p.message.rstrip('.')}{also}")
    return _sentences(parts)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(repr(value)) <= 80


def _sentences(parts: list[str]) -> str:
    """The first problems joined into one message (more only bury the first)."""
    text = "; ".join(parts[:_MAX_REPORTED])
    if len(parts) > _MAX_REPORTED:
        text += f"; and {len(parts) - _MAX_REPORTED} more problem(s)"
    return text if text.endswith((".", "?", "!")) else text + "."


def _unknown(kind: str, name: str, known: Mapping[str, Any]) -> str:
    near = get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    return f"There is no {kind} '{name}' in the catalogue.{hint}"
