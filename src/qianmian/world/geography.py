"""Cities of the simulated bank, with 城市等级 (tier), a population weight and a region code.

Tiers follow the common 2023 一线/新一线/二线/三线/四线及以下 classification. The weight is the
city's share of card holders within its tier; tier shares are 20/28/27/14/11 %. Region codes are
real six-digit administrative codes of a district of the city (used for national ID numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CITIES", "TIER_SHARE", "City", "city_weights"]


@dataclass(frozen=True, slots=True)
class City:
    name: str
    tier: str
    weight: float
    region_code: str
    code: str  # short branch prefix


_RAW: tuple[tuple[str, str, float, str, str], ...] = (
    ("北京", "一线", 1.0, "110105", "BJ"),
    ("上海", "一线", 1.05, "310115", "SH"),
    ("广州", "一线", 0.85, "440106", "GZ"),
    ("深圳", "一线", 0.85, "440305", "SZ"),
    ("成都", "新一线", 1.2, "510107", "CD"),
    ("重庆", "新一线", 1.1, "500103", "CQ"),
    ("杭州", "新一线", 1.0, "330106", "HZ"),
    ("武汉", "新一线", 0.95, "420106", "WH"),
    ("苏州", "新一线", 0.9, "320505", "SU"),
    ("西安", "新一线", 0.9, "610113", "XA"),
    ("南京", "新一线", 0.85, "320106", "NJ"),
    ("长沙", "新一线", 0.8, "430104", "CS"),
    ("天津", "新一线", 0.85, "120101", "TJ"),
    ("郑州", "新一线", 0.8, "410105", "ZZ"),
    ("东莞", "新一线", 0.7, "441900", "DG"),
    ("无锡", "新一线", 0.6, "320214", "WX"),
    ("宁波", "新一线", 0.65, "330203", "NB"),
    ("青岛", "新一线", 0.7, "370202", "QD"),
    ("合肥", "新一线", 0.7, "340104", "HF"),
    ("佛山", "二线", 0.8, "440604", "FS"),
    ("沈阳", "二线", 0.8, "210102", "SY"),
    ("昆明", "二线", 0.75, "530102", "KM"),
    ("济南", "二线", 0.75, "370102", "JN"),
    ("厦门", "二线", 0.6, "350203", "XM"),
    ("福州", "二线", 0.7, "350102", "FZ"),
    ("温州", "二线", 0.6, "330302", "WZ"),
    ("哈尔滨", "二线", 0.7, "230102", "HB"),
    ("石家庄", "二线", 0.7, "130102", "SJ"),
    ("大连", "二线", 0.65, "210202", "DL"),
    ("南宁", "二线", 0.6, "450103", "NN"),
    ("泉州", "二线", 0.55, "350502", "QZ"),
    ("贵阳", "二线", 0.55, "520102", "GY"),
    ("长春", "二线", 0.6, "220102", "CC"),
    ("南昌", "二线", 0.55, "360102", "NC"),
    ("太原", "二线", 0.55, "140105", "TY"),
    ("常州", "二线", 0.5, "320402", "CZ"),
    ("珠海", "二线", 0.4, "440402", "ZH"),
    ("兰州", "三线", 0.7, "620102", "LZ"),
    ("扬州", "三线", 0.5, "321002", "YZ"),
    ("洛阳", "三线", 0.6, "410302", "LY"),
    ("汕头", "三线", 0.55, "440507", "ST"),
    ("芜湖", "三线", 0.45, "340202", "WU"),
    ("襄阳", "三线", 0.5, "420602", "XY"),
    ("赣州", "三线", 0.55, "360702", "GA"),
    ("桂林", "三线", 0.45, "450302", "GL"),
    ("宜昌", "三线", 0.45, "420502", "YC"),
    ("遵义", "三线", 0.5, "520302", "ZY"),
    ("曲靖", "四线及以下", 0.5, "530302", "QJ"),
    ("商丘", "四线及以下", 0.55, "411402", "SQ"),
    ("周口", "四线及以下", 0.6, "411602", "ZK"),
    ("信阳", "四线及以下", 0.5, "411502", "XN"),
    ("南阳", "四线及以下", 0.6, "411302", "NY"),
    ("邵阳", "四线及以下", 0.5, "430502", "SA"),
    ("黄冈", "四线及以下", 0.5, "421102", "HG"),
    ("六安", "四线及以下", 0.45, "341502", "LA"),
    ("宿迁", "四线及以下", 0.45, "321302", "SQN"),
    ("荆州", "四线及以下", 0.45, "421002", "JZ"),
    ("天水", "四线及以下", 0.35, "620502", "TS"),
    ("丽水", "四线及以下", 0.3, "331102", "LS"),
)

CITIES: tuple[City, ...] = tuple(City(*row) for row in _RAW)
TIER_SHARE: dict[str, float] = {
    "一线": 0.20,
    "新一线": 0.28,
    "二线": 0.27,
    "三线": 0.14,
    "四线及以下": 0.11,
}


def city_weights() -> np.ndarray:
    """Probability of each city in :data:`CITIES` being a customer's home."""
    w = np.array([c.weight for c in CITIES])
    tiers = np.array([c.tier for c in CITIES])
    out = np.empty(len(CITIES))
    for tier, share in TIER_SHARE.items():
        mask = tiers == tier
        out[mask] = share * w[mask] / w[mask].sum()
    return out / out.sum()
