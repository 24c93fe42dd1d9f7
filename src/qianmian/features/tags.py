"""The declarative tag library: named customer tags ("偏好稳健理财", "月消费超1万元") as rules.

Tags are declared in YAML (the packaged ``tags.yaml``, or a bank's own file), one mapping per
tag::

    tags:
      - id: monthly_spend_over_10k          # snake_case, unique
        name_zh: 月消费超1万元
        name_en: Spends over ¥10k a month
        category: 消费                      # 消费 理财 信贷 生命周期 渠道 人群
        description_zh: 近90天月均消费超过1万元。
        description_en: Average monthly card spend over the last 90 days above ¥10,000.
        when: spend_90d / 3 > 10000         # a rule (qianmian.features.rules)

The file is validated with pydantic and every rule against the feature catalogue; an error
names the file, the line, the tag and the field. :class:`TagLibrary` evaluates all tags over a
feature table at once (vectorised) or for one customer (real time).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from qianmian.errors import ConfigError, NotFoundError, QianmianError, SchemaError
from qianmian.features.rules import Rule, parse_rule

__all__ = ["CATEGORIES", "Tag", "TagLibrary"]

logger = logging.getLogger(__name__)

# Categories in display order, with their English names.
CATEGORIES: dict[str, str] = {
    "消费": "spending",
    "理财": "wealth",
    "信贷": "credit",
    "生命周期": "lifecycle",
    "渠道": "channel",
    "人群": "demographics",
}
Category = Literal["消费", "理财", "信贷", "生命周期", "渠道", "人群"]


class TagSpec(BaseModel):
    """One tag as written in the YAML file (the file boundary: strict, no extra keys)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$", max_length=48)
    name_zh: str = Field(min_length=1, max_length=20)
    name_en: str = Field(min_length=1, max_length=60)
    category: Category
    description_zh: str = Field(min_length=1)
    description_en: str = Field(min_length=1)
    when: str = Field(min_length=1)


@dataclass(frozen=True)
class Tag:
    """A named customer tag: its names, category, description and rule.

    ``line`` is where the tag starts in its YAML file (None when built in code).
    """

    id: str
    name_zh: str
    name_en: str
    category: str
    description_zh: str
    description_en: str
    rule: Rule
    line: int | None = None

    @property
    def when(self) -> str:
        """The rule's text."""
        return self.rule.text

    def name(self, lang: str = "zh") -> str:
        return self.name_en if lang == "en" else self.name_zh

    def description(self, lang: str = "zh") -> str:
        return self.description_en if lang == "en" else self.description_zh


class TagLibrary:
    """An ordered set of tags with unique ids.

    Parameters
    ----------
    tags : iterable of Tag

    Examples
    --------
    >>> library = TagLibrary.load()
    >>> [t.id for t in library.tags_of({**dict.fromkeys(library.fields_used), "age": 65})]
    ['silver_age']
    """

    def __init__(self, tags: Iterable[Tag]) -> None:
        self._tags: dict[str, Tag] = {}
        for tag in tags:
            if tag.id in self._tags:
                raise ConfigError(f"The tag id '{tag.id}' is used twice; tag ids must be unique.")
            self._tags[tag.id] = tag

    # ---- building ---------------------------------------------------------------------------
    @classmethod
    def load(
        cls, path: str | Path | None = None, *, fields: Mapping[str, Any] | None = None
    ) -> TagLibrary:
        """Read a tag library from YAML (default: the one shipped with qianmian).

        ``fields`` maps the names rules may use to their types (default: the catalogue).
        """
        if path is None:
            text = resources.files("qianmian.features").joinpath("tags.yaml").read_text("utf-8")
            return cls.from_yaml(text, source="tags.yaml", fields=fields)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"The tag library file '{path}' does not exist.") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"The tag library file '{path}' is not UTF-8 text: {e}.") from e
        return cls.from_yaml(text, source=str(path), fields=fields)

    @classmethod
    def from_yaml(
        cls, text: str, *, source: str = "<yaml>", fields: Mapping[str, Any] | None = None
    ) -> TagLibrary:
        """Build a library from YAML text; errors name ``source``, the line and the tag."""
        items = _tag_nodes(text, source)
        tags: list[Tag] = []
        first_line: dict[str, int] = {}
        for data, lines in items:
            where = f"{source}, line {lines['']}"
            label = f"tag '{data['id']}'" if isinstance(data.get("id"), str) else "a tag"
            try:
                spec = TagSpec.model_validate(data)
            except PydanticError as e:
                err = e.errors()[0]
                key = str(err["loc"][0]) if err["loc"] else ""
                got = f" (got {err['input']!r})" if key in data else ""
                raise ConfigError(
                    f"{source}, line {lines.get(key, lines[''])}: {label} is invalid: '{key}': "
                    f"{err['msg']}{got}. Keys: {', '.join(TagSpec.model_fields)}."
                ) from None
            if spec.id in first_line:
                raise ConfigError(
                    f"{where}: the tag id '{spec.id}' is already used at line "
                    f"{first_line[spec.id]}; tag ids must be unique."
                )
            first_line[spec.id] = lines[""]
            try:
                rule = parse_rule(spec.when, fields)
            except SchemaError as e:  # RuleError included
                at = f"{source}, line {lines.get('when', lines[''])}"
                raise type(e)(f"{at}: tag '{spec.id}' ({spec.name_zh}): {e}") from e
            tags.append(
                Tag(
                    spec.id, spec.name_zh, spec.name_en, spec.category, spec.description_zh,
                    spec.description_en, rule, lines[""],
                )
            )  # fmt: skip
        return cls(tags)

    # ---- looking up -------------------------------------------------------------------------
    @property
    def tags(self) -> tuple[Tag, ...]:
        return tuple(self._tags.values())

    @property
    def fields_used(self) -> tuple[str, ...]:
        """Every feature some tag reads, sorted."""
        return tuple(sorted({f for t in self._tags.values() for f in t.rule.fields_used}))

    def __len__(self) -> int:
        return len(self._tags)

    def __iter__(self) -> Iterator[Tag]:
        return iter(self._tags.values())

    def __contains__(self, tag_id: object) -> bool:
        return tag_id in self._tags

    def __getitem__(self, tag_id: str) -> Tag:
        try:
            return self._tags[tag_id]
        except KeyError:
            from difflib import get_close_matches

            near = get_close_matches(tag_id, self._tags, n=3)
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise NotFoundError(f"There is no tag '{tag_id}'.{hint}") from None

    # ---- evaluating -------------------------------------------------------------------------
    def evaluate(self, features: pa.Table | pd.DataFrame) -> pd.DataFrame:
        """Every tag for every customer, vectorised.

        Parameters
        ----------
        features : pyarrow.Table or pandas.DataFrame
            One row per customer: ``customer_id`` and at least :attr:`fields_used` (as built
            by :class:`~qianmian.features.engine.StoreFeatureEngine`).

        Returns
        -------
        pandas.DataFrame
            ``customer_id`` then one bool column per tag (in library order); shape
            ``(n_customers, 1 + len(self))``.
        """
        columns = _columns(features, ("customer_id", *self.fields_used), self)
        out: dict[str, Any] = {"customer_id": columns["customer_id"]}
        for tag in self._tags.values():
            try:
                out[tag.id] = tag.rule.evaluate_many(columns)
            except QianmianError as e:
                raise type(e)(f"Tag '{tag.id}' ({tag.name_zh}): {e}") from e
        return pd.DataFrame(out)

    def tags_of(self, row: Mapping[str, Any]) -> list[Tag]:
        """The tags one customer has; ``row`` maps feature names to values (a dict, a Series)."""
        found = []
        for tag in self._tags.values():
            try:
                if tag.rule.evaluate_one(row):
                    found.append(tag)
            except QianmianError as e:
                raise type(e)(f"Tag '{tag.id}' ({tag.name_zh}): {e}") from e
        return found

    def coverage(self, features: pa.Table | pd.DataFrame) -> pd.DataFrame:
        """How many customers carry each tag.

        Returns
        -------
        pandas.DataFrame
            One row per tag: ``tag``, ``name_zh``, ``name_en``, ``category``, ``customers``
            (count) and ``share`` (of all customers, 0-1).
        """
        flags = self.evaluate(features)
        n = len(flags)
        counts = [int(np.count_nonzero(flags[t.id].to_numpy())) for t in self._tags.values()]
        return pd.DataFrame(
            {
                "tag": [t.id for t in self._tags.values()],
                "name_zh": [t.name_zh for t in self._tags.values()],
                "name_en": [t.name_en for t in self._tags.values()],
                "category": [t.category for t in self._tags.values()],
                "customers": counts,
                "share": [c / n if n else 0.0 for c in counts],
            }
        )


def _columns(
    features: pa.Table | pd.DataFrame, names: Iterable[str], library: TagLibrary
) -> dict[str, np.ndarray]:
    """The named columns of a feature table as numpy arrays (missing ones are an error)."""
    if isinstance(features, pa.Table):
        have = set(features.column_names)
        get = lambda n: features.column(n).to_numpy()  # noqa: E731
    elif isinstance(features, pd.DataFrame):
        have = set(features.columns)
        get = lambda n: features[n].to_numpy()  # noqa: E731
    else:
        raise SchemaError(
            "Tags are evaluated over a pyarrow Table or a pandas DataFrame of features; got "
            f"{type(features).__name__}."
        )
    missing = [n for n in names if n not in have]
    if missing:
        needed = {n: [t.id for t in library if n in t.rule.fields_used] for n in missing}
        detail = "; ".join(
            f"'{n}' (needed by {', '.join(ids)})" if ids else f"'{n}'" for n, ids in needed.items()
        )
        raise SchemaError(f"The feature table has no column {detail}.")
    return {n: get(n) for n in names}


def _tag_nodes(text: str, source: str) -> list[tuple[dict[str, Any], dict[str, int]]]:
    """Each tag's mapping with the line of the tag ('') and of each of its keys (1-based)."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f"line {mark.line + 1}" if mark else "an unknown line"
        raise ConfigError(f"{source}, {line}: the YAML does not parse: {e.problem}.") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict) or not isinstance(data.get("tags"), list):
        raise ConfigError(
            f"{source}: a tag library is a mapping with a 'tags:' list of tags; see the "
            "packaged tags.yaml for the format."
        )
    extra = set(data) - {"version", "tags"}
    if extra or data.get("version", 1) != 1:
        raise ConfigError(
            f"{source}: only the keys 'version' (1) and 'tags' are allowed at the top; got "
            f"{', '.join(sorted(map(str, data)))} with version {data.get('version', 1)!r}."
        )
    assert isinstance(root, yaml.MappingNode)  # data is a dict
    seq = next(v for k, v in root.value if k.value == "tags")
    out = []
    for item_node, item in zip(seq.value, data["tags"], strict=True):
        line = item_node.start_mark.line + 1
        if not isinstance(item, dict):
            raise ConfigError(
                f"{source}, line {line}: a tag must be a mapping of keys (id, "
                f"name_zh, ... when); got {item!r}."
            )
        lines = {"": line}
        for key, value in item_node.value:
            if key.value in lines:
                raise ConfigError(
                    f"{source}, line {key.start_mark.line + 1}: the tag at line {line} sets "
                    f"'{key.value}' twice."
                )
            lines[key.value] = value.start_mark.line + 1
        out.append((item, lines))
    return out
