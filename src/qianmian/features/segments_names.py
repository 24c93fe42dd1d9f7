"""Human names for customer clusters, read from each cluster's profile against the whole population.

A cluster's profile (:func:`segment_profiles`) is a handful of figures of its members — average
monthly spend, shares of travel, online shopping and family spend, wealth engagement, age mix,
spend trend. The rules below are tried in order; each rule names at most one cluster, the one it
fits best (largest *strength*; the lower cluster number on a tie), so names stay unique. A cluster
that no free rule fits takes its first fitting rule's name with a suffix (``差旅达人·2``), or
``大众客户`` (mainstream) if none fits. "pop" is the same figure over every customer. The one-line
description gives the average monthly spend, the key figures of the name's rule and of the next
rule that also holds, and the mean age.

==  ===================  =======================  ============================================
#   name                 en                       holds when (strength)
==  ===================  =======================  ============================================
1   沉睡客户             Dormant                  ≥ 50% without spend in 90 days (that share)
2   高价值客户           High-value               monthly spend ≥ 1.5 × pop (spend / pop)
3   理财偏好客户         Wealth-minded            wealth-page views ≥ 2 × pop, or holders of
                                                  wealth products ≥ 1.5 × pop and ≥ 50% (ratio)
4   差旅达人             Frequent travellers      travel+hotel+airline share ≥ 1.5 × pop and
                                                  ≥ 20% (share / pop)
5   网购达人             Online shoppers          e-commerce share ≥ 1.8 × pop and ≥ 20%
6   家庭消费型           Family spenders          baby+education+supermarket share ≥ 1.8 × pop
                                                  and children ≥ 1.2 × pop
7   美食达人             Foodies                  dining share ≥ 1.8 × pop and ≥ 20%
8   居家生活型           Everyday essentials      supermarket share ≥ 1.8 × pop and ≥ 20%
9   退休人群             Retirees                 ≥ 50% aged 58+ or retired (that share)
10  年轻白领             Young professionals      mean age < 35 and office workers
                                                  ≥ 1.2 × pop (office share)
11  潜力客户             Rising potential         median spend trend ≥ 1.25 × pop, or ≥ 30%
                                                  joined within a year (trend / pop)
12  长尾客户             Long tail                monthly spend ≤ 0.35 × pop and purchases
                                                  ≤ 0.6 × pop (pop / spend)
==  ===================  =======================  ============================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "NAME_RULES",
    "PROFILE_COLUMNS",
    "SegmentName",
    "name_segments",
    "profile_stats",
    "segment_profiles",
]

# The feature columns profiles read (a profile figure is NaN when its columns are missing).
PROFILE_COLUMNS = (
    "monetary_90d",
    "frequency_90d",
    "recency_days",
    "share_travel_90d",
    "share_hotel_90d",
    "share_airline_90d",
    "share_ecommerce_90d",
    "share_dining_90d",
    "share_supermarket_90d",
    "share_baby_90d",
    "share_education_90d",
    "children",
    "holds_wealth",
    "wealth_balance",
    "views_wealth_list_30d",
    "views_wealth_fund_30d",
    "age",
    "occupation",
    "spend_trend_90_180",
    "tenure_days",
    "monthly_income",
)

Stats = pd.Series  # one profile: figure name → value (NaN when the data lacks the columns)


@dataclass(frozen=True)
class SegmentName:
    """The name of one cluster, in Chinese and English, with a one-line profile."""

    zh: str
    en: str
    description_zh: str
    description_en: str
    rule: str


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce").astype(float)
    return pd.Series(np.nan, index=frame.index)


def _sum(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.Series:
    present = [c for c in names if c in frame.columns]
    if not present:
        return pd.Series(np.nan, index=frame.index)
    return frame[present].apply(pd.to_numeric, errors="coerce").sum(axis=1, min_count=1)


def profile_stats(frame: pd.DataFrame) -> Stats:
    """The profile figures of a group of customers (one row each, catalogue feature columns)."""
    age = _col(frame, "age")
    occupation = (
        frame["occupation"].astype(object)
        if "occupation" in frame.columns
        else pd.Series(None, index=frame.index, dtype=object)
    )
    has_occupation = "occupation" in frame.columns
    spend = _col(frame, "monetary_90d") if "monetary_90d" in frame else _col(frame, "spend_90d")
    recency = _col(frame, "recency_days")
    senior = (age >= 58) | (occupation == "退休")
    return pd.Series(
        {
            "size": float(len(frame)),
            "monthly_spend": spend.mean() / 3,
            "frequency_90d": _col(frame, "frequency_90d").mean(),
            "recency_median": recency.median(),
            "dormant_share": (recency > 90).mean() if recency.notna().any() else np.nan,
            "trip_share": _sum(
                frame, ("share_travel_90d", "share_hotel_90d", "share_airline_90d")
            ).mean(),
            "ecommerce_share": _col(frame, "share_ecommerce_90d").mean(),
            "dining_share": _col(frame, "share_dining_90d").mean(),
            "supermarket_share": _col(frame, "share_supermarket_90d").mean(),
            "family_share": _sum(
                frame, ("share_baby_90d", "share_education_90d", "share_supermarket_90d")
            ).mean(),
            "children": _col(frame, "children").mean(),
            "wealth_holders": _col(frame, "holds_wealth").mean(),
            "wealth_balance": _col(frame, "wealth_balance").mean(),
            "wealth_views": _sum(frame, ("views_wealth_list_30d", "views_wealth_fund_30d")).mean(),
            "age": age.mean(),
            "young_share": (age < 35).mean() if age.notna().any() else np.nan,
            "senior_share": senior.mean() if age.notna().any() or has_occupation else np.nan,
            "office_share": (occupation == "企业白领").mean() if has_occupation else np.nan,
            "trend_median": _col(frame, "spend_trend_90_180").median(),
            "new_share": (_col(frame, "tenure_days") < 365).mean()
            if "tenure_days" in frame
            else np.nan,
            "income": _col(frame, "monthly_income").mean(),
        }
    )


def segment_profiles(frame: pd.DataFrame, labels: np.ndarray | pd.Series) -> pd.DataFrame:
    """One profile row per cluster label (sorted), plus ``share`` of all customers.

    >>> frame = pd.DataFrame({"monetary_90d": [300.0, 600.0, 9000.0], "age": [30, 40, 50]})
    >>> segment_profiles(frame, [0, 0, 1])[["size", "share", "monthly_spend", "age"]]
       size     share  monthly_spend   age
    0   2.0  0.666667          150.0  35.0
    1   1.0  0.333333         3000.0  50.0
    """
    labels = np.asarray(labels)
    rows = {
        int(c): profile_stats(frame.iloc[np.flatnonzero(labels == c)]) for c in np.unique(labels)
    }
    out = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    out.insert(1, "share", out["size"] / max(len(frame), 1))
    return out


@dataclass(frozen=True)
class _Rule:
    key: str
    zh: str
    en: str
    holds: Callable[[Stats, Stats], bool]
    strength: Callable[[Stats, Stats], float]
    figure: Callable[[Stats, Stats], tuple[str, str]]  # the rule's key figure, zh and en


def _ratio(c: Stats, p: Stats, name: str) -> float:
    return float(c[name] / p[name]) if p[name] and p[name] > 0 else float("nan")


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _share_rule(
    key: str, zh: str, en: str, share: str, times: float, label_zh: str, label_en: str
) -> _Rule:
    """A segment dominated by one kind of spending: its share is ``times`` the population's
    and at least 20% of its spend."""
    return _Rule(
        key,
        zh,
        en,
        lambda c, p: _ratio(c, p, share) >= times and c[share] >= 0.2,
        lambda c, p: _ratio(c, p, share),
        lambda c, p: (f"{label_zh}占比 {_pct(c[share])}", f"{_pct(c[share])} of spend {label_en}"),
    )


NAME_RULES: tuple[_Rule, ...] = (
    _Rule(
        "dormant", "沉睡客户", "Dormant",
        lambda c, p: c["dormant_share"] >= 0.5,
        lambda c, p: c["dormant_share"],
        lambda c, p: (f"近90天无消费 {_pct(c['dormant_share'])}",
                      f"{_pct(c['dormant_share'])} without spend in 90 days"),
    ),
    _Rule(
        "high_value", "高价值客户", "High-value",
        lambda c, p: _ratio(c, p, "monthly_spend") >= 1.5,
        lambda c, p: _ratio(c, p, "monthly_spend"),
        lambda c, p: (f"消费为全体均值的 {_ratio(c, p, 'monthly_spend'):.1f} 倍",
                      f"{_ratio(c, p, 'monthly_spend'):.1f}× the average spend"),
    ),
    _Rule(
        "wealth", "理财偏好客户", "Wealth-minded",
        lambda c, p: _ratio(c, p, "wealth_views") >= 2.0
        or (_ratio(c, p, "wealth_holders") >= 1.5 and c["wealth_holders"] >= 0.5),
        lambda c, p: np.nanmax([_ratio(c, p, "wealth_views"), _ratio(c, p, "wealth_holders")]),
        lambda c, p: (f"持有理财 {_pct(c['wealth_holders'])}，人均理财 ¥{c['wealth_balance']:,.0f}，"
                      f"理财页浏览 {c['wealth_views']:.1f} 次/月",
                      f"{_pct(c['wealth_holders'])} hold wealth products, "
                      f"¥{c['wealth_balance']:,.0f} per customer, "
                      f"{c['wealth_views']:.1f} wealth-page views a month"),
    ),
    _share_rule("travel", "差旅达人", "Frequent travellers", "trip_share", 1.5, "旅游出行",
                "on travel"),
    _share_rule("ecommerce", "网购达人", "Online shoppers", "ecommerce_share", 1.8, "电商",
                "on e-commerce"),
    _Rule(
        "family", "家庭消费型", "Family spenders",
        lambda c, p: _ratio(c, p, "family_share") >= 1.8 and _ratio(c, p, "children") >= 1.2,
        lambda c, p: _ratio(c, p, "family_share"),
        lambda c, p: (f"母婴/教育/超市占比 {_pct(c['family_share'])}，平均子女 {c['children']:.1f} 个",
                      f"{_pct(c['family_share'])} on baby, education and supermarkets, "
                      f"{c['children']:.1f} children"),
    ),
    _share_rule("dining", "美食达人", "Foodies", "dining_share", 1.8, "餐饮", "on dining"),
    _share_rule("everyday", "居家生活型", "Everyday essentials", "supermarket_share", 1.8,
                "超市", "in supermarkets"),
    _Rule(
        "senior", "退休人群", "Retirees",
        lambda c, p: c["senior_share"] >= 0.5,
        lambda c, p: c["senior_share"],
        lambda c, p: (f"58岁以上或退休 {_pct(c['senior_share'])}",
                      f"{_pct(c['senior_share'])} aged 58+ or retired"),
    ),
    _Rule(
        "young_professional", "年轻白领", "Young professionals",
        lambda c, p: c["age"] < 35 and _ratio(c, p, "office_share") >= 1.2,
        lambda c, p: c["office_share"],
        lambda c, p: (f"35岁以下 {_pct(c['young_share'])}，白领 {_pct(c['office_share'])}",
                      f"{_pct(c['young_share'])} under 35, "
                      f"{_pct(c['office_share'])} office workers"),
    ),
    _Rule(
        "potential", "潜力客户", "Rising potential",
        lambda c, p: _ratio(c, p, "trend_median") >= 1.25 or c["new_share"] >= 0.3,
        lambda c, p: _ratio(c, p, "trend_median"),
        lambda c, p: (f"消费增长 ×{c['trend_median']:.1f}，一年内新客 {_pct(c['new_share'])}",
                      f"spend trend ×{c['trend_median']:.1f}, "
                      f"{_pct(c['new_share'])} joined within a year"),
    ),
    _Rule(
        "long_tail", "长尾客户", "Long tail",
        lambda c, p: _ratio(c, p, "monthly_spend") <= 0.35
        and _ratio(c, p, "frequency_90d") <= 0.6,
        lambda c, p: 1 / max(_ratio(c, p, "monthly_spend"), 1e-9),
        lambda c, p: (f"近90天消费 {c['frequency_90d']:.1f} 笔",
                      f"{c['frequency_90d']:.1f} purchases in 90 days"),
    ),
)  # fmt: skip
_MAINSTREAM = _Rule(
    "mainstream", "大众客户", "Mainstream",
    lambda c, p: True,
    lambda c, p: 0.0,
    lambda c, p: (f"近90天消费 {c['frequency_90d']:.1f} 笔",
                  f"{c['frequency_90d']:.1f} purchases in 90 days"),
)  # fmt: skip


def _holds(rule: _Rule, c: Stats, p: Stats) -> bool:
    with np.errstate(all="ignore"):
        try:
            return bool(rule.holds(c, p))
        except (TypeError, ValueError, ZeroDivisionError):
            return False


def _describe(rule: _Rule, c: Stats, p: Stats) -> tuple[str, str]:
    zh, en = [], []
    if pd.notna(c["monthly_spend"]):
        zh.append(f"平均月消费 ¥{c['monthly_spend']:,.0f}")
        en.append(f"avg monthly spend ¥{c['monthly_spend']:,.0f}")
    other = next((r for r in NAME_RULES if r is not rule and _holds(r, c, p)), None)
    for r in (rule, other):
        if r is None or (r.key in ("mainstream", "long_tail") and r is other):
            continue
        key_zh, key_en = r.figure(c, p)
        if "nan" not in key_zh:
            zh.append(key_zh)
            en.append(key_en)
    if pd.notna(c["age"]):
        zh.append(f"平均年龄 {c['age']:.0f} 岁")
        en.append(f"mean age {c['age']:.0f}")
    return "，".join(zh), ", ".join(en)


def name_segments(profiles: pd.DataFrame, population: Stats) -> dict[int, SegmentName]:
    """Unique names for the clusters of ``profiles`` (from :func:`segment_profiles`).

    Parameters
    ----------
    profiles : DataFrame
        One row per cluster label.
    population : Series
        :func:`profile_stats` of every customer.

    Returns
    -------
    dict
        Cluster label → :class:`SegmentName`.
    """
    rows = {int(label): profiles.iloc[i] for i, label in enumerate(profiles.index.to_numpy())}
    won: dict[int, _Rule] = {}
    for rule in NAME_RULES:
        claimants = [
            (float(rule.strength(c, population)), -label)
            for label, c in rows.items()
            if label not in won and _holds(rule, c, population)
        ]
        if claimants:
            best = max(claimants, key=lambda t: (np.nan_to_num(t[0], nan=-np.inf), t[1]))
            won[-best[1]] = rule
    seen = {rule.key: 1 for rule in won.values()}
    names: dict[int, SegmentName] = {}
    for label, c in rows.items():
        suffix = ""
        if label in won:
            rule = won[label]
        else:  # no free rule fits: first fitting rule's name, numbered
            rule = next((r for r in NAME_RULES if _holds(r, c, population)), _MAINSTREAM)
            seen[rule.key] = seen.get(rule.key, 0) + 1
            suffix = f"·{seen[rule.key]}" if seen[rule.key] > 1 else ""
        zh, en = _describe(rule, c, population)
        names[label] = SegmentName(rule.zh + suffix, rule.en + suffix, zh, en, rule.key)
    return names
