"""Reason codes in plain Chinese and English: labels, formatted values and peer comparisons.

A reason reads ``近30天旅游消费额 ¥8,200，高于同群 90%`` or ``travel spend, last 30 days:
¥8,200, higher than 90% of peers``. The label is the feature's description in the catalogue
(:mod:`qianmian.features.catalogue`); a column the catalogue does not know (a bank's own model,
a public data set) is labelled by its name. How a value is written depends on its kind:

==========  ===============================================  ==================  =============
kind        which features                                   zh                  en
==========  ===============================================  ==================  =============
money       en description ends "(CNY)", or zh has 金额/消费额  ¥8,200              ¥8,200
count       other integers; the unit from the zh description  12笔, 3次, 2张       12, 3, 2
days        zh description ends 天数; 366 means none in a     12天, 近一年无       12 days,
            year for the ``days since`` features                                 none in a year
share       ``share_*``, ``utilisation_*``                    45%, 3.5%           45%, 3.5%
ratio       ``spend_trend_*``                                 1.8倍               1.8×
level       ``risk_level`` (C1-C5), ``max_wealth_risk``       C3, R4, 无          C3, R4, none
flag        booleans                                          是 / 否             yes / no
category    strings                                           the value           the value
number      anything else                                     1,234.5             1,234.5
==========  ===============================================  ==================  =============

The peer phrase compares the value with a reference population (the bank, or the customer's
segment): "高于同群 90%" when at least half of the peers have less, "低于同群 80%" when at least
half have more, else "与同群 60% 相同" (ties, such as no travel spend at all). The percentages
are rounded down, so the sentence stays true. Every text is passed through
:func:`qianmian.data.masking.mask_text`: a category value holding a phone or ID number is masked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from qianmian.data.masking import mask_text
from qianmian.errors import ConfigError
from qianmian.features.catalogue import FEATURES

__all__ = [
    "KINDS",
    "LANGS",
    "Lang",
    "PeerShare",
    "PeerTable",
    "ValueKind",
    "check_lang",
    "feature_label",
    "format_value",
    "peer_phrase",
    "reason_text",
    "value_kind",
]

Lang = Literal["zh", "en"]
LANGS: tuple[str, ...] = ("zh", "en")
ValueKind = Literal[
    "money", "count", "days", "share", "ratio", "level", "flag", "category", "number"
]
KINDS: tuple[str, ...] = (
    "money",
    "count",
    "days",
    "share",
    "ratio",
    "level",
    "flag",
    "category",
    "number",
)

# Catalogue features whose kind the descriptions alone do not give away.
_EXPLICIT_KINDS: dict[str, ValueKind] = {
    "spend_trend_30_90": "ratio",
    "spend_trend_90_180": "ratio",
    "utilisation_last": "share",
    "utilisation_avg_3m": "share",
    "risk_level": "level",
    "max_wealth_risk": "level",
    "age": "count",
    "credit_score": "number",
}
# zh description ending → unit of a count; explicit names first.
_COUNT_UNITS_BY_NAME: dict[str, tuple[str, str]] = {
    "age": ("岁", " years"),
    "children": ("个", ""),
    "n_cards": ("张", ""),
}
_COUNT_UNITS_BY_SUFFIX: tuple[tuple[str, str], ...] = (
    ("笔数", "笔"),
    ("次数", "次"),
    ("期数", "期"),
)
_LEVEL_PREFIX: dict[str, str] = {"risk_level": "C", "max_wealth_risk": "R"}
# "days since" features write 366 when nothing happened in the year before as_of
_DAYS_NONE = 366
_DAYS_SINCE = frozenset({"recency_days", "days_since_login"})
_TRAILING_NOTE = re.compile(r"\s*\([^()]*\)\s*$")


def check_lang(lang: object, owner: str) -> Lang:
    """``lang`` if it is ``"zh"`` or ``"en"``, else the standard bad-parameter error."""
    if lang not in LANGS:
        raise ConfigError(
            f'The \'lang\' parameter of {owner} must be "zh" or "en". Got {lang!r} instead.'
        )
    return lang  # type: ignore[return-value]


def value_kind(name: str, dtype: object = None) -> ValueKind:
    """How the value of feature ``name`` is written (see the module docstring for the rules).

    ``dtype`` decides for a column the catalogue does not know.

    >>> value_kind("spend_travel_30d"), value_kind("txn_count_30d"), value_kind("holds_wealth")
    ('money', 'count', 'flag')
    >>> value_kind("LIMIT_BAL", "float64"), value_kind("EDUCATION", "int64")
    ('number', 'count')
    """
    if name in _EXPLICIT_KINDS:
        return _EXPLICIT_KINDS[name]
    f = FEATURES.get(name)
    if f is None:
        if dtype is None:
            return "number"
        if pd.api.types.is_bool_dtype(dtype):  # type: ignore[arg-type]
            return "flag"
        if pd.api.types.is_integer_dtype(dtype):  # type: ignore[arg-type]
            return "count"
        if pd.api.types.is_numeric_dtype(dtype):  # type: ignore[arg-type]
            return "number"
        return "category"
    if f.type == "bool":
        return "flag"
    if f.type == "string":
        return "category"
    if f.en.endswith("(CNY)") or "金额" in f.zh or "消费额" in f.zh:
        return "money"
    if name.startswith("share_"):
        return "share"
    if f.zh.endswith("天数"):
        return "days"
    if f.type == "int":
        return "count"
    return "number"


def feature_label(name: str, lang: Lang) -> str:
    """The feature's description in ``lang``, without the unit note; else the column name.

    >>> feature_label("spend_travel_30d", "zh"), feature_label("spend_travel_30d", "en")
    ('近30天旅游消费额', 'travel spend, last 30 days')
    >>> feature_label("PAY_0", "zh")
    'PAY_0'
    """
    f = FEATURES.get(name)
    if f is None:
        return name
    return f.zh if lang == "zh" else _TRAILING_NOTE.sub("", f.en)


def _plain_number(v: float) -> str:
    if float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:,.2f}".rstrip("0").rstrip(".")


def _count_unit(name: str, lang: Lang) -> str:
    if name in _COUNT_UNITS_BY_NAME:
        zh, en = _COUNT_UNITS_BY_NAME[name]
        return zh if lang == "zh" else en
    f = FEATURES.get(name)
    if lang == "zh" and f is not None:
        for suffix, unit in _COUNT_UNITS_BY_SUFFIX:
            if f.zh.endswith(suffix):
                return unit
    return ""


def format_value(name: str, value: object, kind: ValueKind, lang: Lang) -> str:
    """``value`` of feature ``name`` written for a customer or an officer to read.

    >>> format_value("spend_travel_30d", 8200.4, "money", "zh")
    '¥8,200'
    >>> format_value("txn_count_30d", 12, "count", "zh"), format_value("share_qr_90d", 0.453, "share", "en")
    ('12笔', '45%')
    >>> format_value("recency_days", 366, "days", "zh"), format_value("holds_wealth", True, "flag", "en")
    ('近一年无', 'yes')
    """
    zh = lang == "zh"
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "无数据" if zh else "no data"
    if kind == "flag":
        yes = bool(value)
        return ("是" if yes else "否") if zh else ("yes" if yes else "no")
    if kind == "category":
        return str(value)
    v = float(value)  # type: ignore[arg-type]
    if kind == "money":
        return f"{'-' if v < 0 else ''}¥{abs(v):,.0f}"
    if kind == "share":
        pct = v * 100
        return f"{pct:.1f}%" if abs(pct) < 10 and not round(pct, 1).is_integer() else f"{pct:,.0f}%"
    # thousands separators everywhere: a long run of digits could read as a phone or card number
    if kind == "ratio":
        return f"{v:,.1f}倍" if zh else f"{v:,.1f}×"
    if kind == "days":
        if name in _DAYS_SINCE and v >= _DAYS_NONE:
            return "近一年无" if zh else "none in a year"
        n = round(v)
        return f"{n:,}天" if zh else f"{n:,} day{'' if n == 1 else 's'}"
    if kind == "level":
        if v <= 0:
            return "无" if zh else "none"
        return f"{_LEVEL_PREFIX.get(name, '')}{round(v):,}"
    if kind == "count":
        return f"{round(v):,}{_count_unit(name, lang)}"
    return _plain_number(v)


@dataclass(frozen=True)
class PeerShare:
    """Percent of peers with a smaller, an equal and a larger value (NaN without a value)."""

    below: float
    equal: float
    above: float


class PeerTable:
    """Where values fall in a reference population, feature by feature.

    Numbers are compared by order; flags and categories only by equality (``below`` and
    ``above`` are NaN). Missing reference values are left out of the population.

    >>> peers = PeerTable(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), {"x": "number"})
    >>> peers.shares("x", np.array([3.5]))[0]
    PeerShare(below=75.0, equal=0.0, above=25.0)
    """

    def __init__(self, reference: pd.DataFrame, kinds: Mapping[str, ValueKind]) -> None:
        self._sorted: dict[str, np.ndarray] = {}
        self._freq: dict[str, Mapping[object, float]] = {}
        for name, kind in kinds.items():
            col = reference[name]
            if kind in ("flag", "category"):
                freq = col.dropna().value_counts(normalize=True) * 100
                self._freq[name] = {k: float(v) for k, v in freq.items()}
            else:
                values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
                self._sorted[name] = np.sort(values[~np.isnan(values)])

    def shares(self, name: str, values: np.ndarray) -> list[PeerShare]:
        """The peer shares of each of ``values`` of feature ``name``."""
        nan = float("nan")
        if name in self._freq:
            freq = self._freq[name]
            return [
                PeerShare(nan, nan, nan) if pd.isna(v) else PeerShare(nan, freq.get(v, 0.0), nan)
                for v in values
            ]
        ref = self._sorted[name]
        x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
        if len(ref) == 0:
            return [PeerShare(nan, nan, nan) for _ in x]
        below = np.searchsorted(ref, x, side="left") / len(ref) * 100
        above = (len(ref) - np.searchsorted(ref, x, side="right")) / len(ref) * 100
        missing = np.isnan(x)
        return [
            PeerShare(nan, nan, nan) if m else PeerShare(float(b), float(100 - b - a), float(a))
            for b, a, m in zip(below, above, missing, strict=True)
        ]


def peer_phrase(share: PeerShare, lang: Lang) -> str:
    """The peer comparison: higher than, lower than or the same as most peers ("" if unknown).

    >>> peer_phrase(PeerShare(90.7, 0.3, 9.0), "zh"), peer_phrase(PeerShare(5.0, 15.0, 80.0), "en")
    ('高于同群 90%', 'lower than 80% of peers')
    >>> peer_phrase(PeerShare(0.0, 91.0, 9.0), "zh")
    '与同群 91% 相同'
    """
    zh = lang == "zh"
    if not math.isnan(share.below) and share.below >= 50:
        p = math.floor(share.below)
        return f"高于同群 {p}%" if zh else f"higher than {p}% of peers"
    if not math.isnan(share.above) and share.above >= 50:
        p = math.floor(share.above)
        return f"低于同群 {p}%" if zh else f"lower than {p}% of peers"
    if math.isnan(share.equal):
        return ""
    p = math.floor(share.equal)
    return f"与同群 {p}% 相同" if zh else f"the same as {p}% of peers"


def reason_text(name: str, value: object, kind: ValueKind, share: PeerShare, lang: Lang) -> str:
    """One reason in plain language, PII-masked.

    >>> reason_text("spend_travel_30d", 8200.0, "money", PeerShare(90.2, 0.0, 9.8), "zh")
    '近30天旅游消费额 ¥8,200，高于同群 90%'
    >>> reason_text("holds_platinum", True, "flag", PeerShare(math.nan, 12.0, math.nan), "en")
    'holds the platinum card: yes, the same as 12% of peers'
    """
    label = feature_label(name, lang)
    shown = format_value(name, value, kind, lang)
    phrase = peer_phrase(share, lang)
    if lang == "zh":
        sep = "：" if kind in ("flag", "category") else " "
        text = f"{label}{sep}{shown}" + (f"，{phrase}" if phrase else "")
    else:
        text = f"{label}: {shown}" + (f", {phrase}" if phrase else "")
    return mask_text(text)
