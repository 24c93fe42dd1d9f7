"""Merchants: local shops per city and category, and national online platforms.

Local merchants per (city, category) scale with the city's weight; online spending goes to a
short list of national platforms per category. Customers are loyal: a share of their spending in
a category goes to one favourite merchant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from qianmian.data.schema import table
from qianmian.data.schema.vocab import CATEGORY_MCC
from qianmian.world.calendar import CATEGORY_NAMES
from qianmian.world.geography import CITIES

__all__ = ["Merchants", "build_merchants"]

_NATIONAL: dict[str, tuple[str, ...]] = {
    "电商": ("天猫", "京东商城", "拼多多", "抖音商城", "唯品会", "苏宁易购"),
    "餐饮": ("美团外卖", "饿了么"),
    "出行": ("滴滴出行", "铁路12306", "高德打车"),
    "航空": ("东方航空", "南方航空", "中国国航", "携程机票"),
    "酒店": ("携程酒店", "美团酒店", "飞猪酒店"),
    "旅游": ("携程旅行", "飞猪旅行", "同程旅行"),
    "娱乐": ("猫眼电影", "爱奇艺会员", "腾讯视频会员"),
    "家电数码": ("京东电器", "苏宁电器", "小米商城"),
    "服饰": ("唯品会服饰", "优衣库官网"),
    "母婴": ("孩子王", "天猫母婴"),
    "教育": ("新东方在线", "好未来学而思"),
    "医疗": ("京东健康", "阿里健康大药房"),
    "超市": ("盒马鲜生", "叮咚买菜"),
}
_LOCAL: dict[str, tuple[str, ...]] = {
    "餐饮": ("川味小馆", "老字号面馆", "海鲜酒楼", "火锅城", "茶餐厅", "烧烤坊", "饺子馆"),
    "超市": ("华联超市", "永辉超市", "便利蜂", "大润发", "社区生鲜"),
    "电商": ("网购体验店",),
    "出行": ("出租车公司", "城市地铁"),
    "加油": ("中国石化加油站", "中国石油加油站"),
    "旅游": ("国际旅行社", "景区票务中心"),
    "酒店": ("商务酒店", "快捷酒店", "国际大酒店"),
    "航空": ("机场售票处",),
    "家装": ("红星美凯龙", "居然之家", "建材城", "装饰工程公司"),
    "家电数码": ("国美电器", "数码广场", "华为授权店"),
    "服饰": ("万达广场服饰", "男装专卖", "女装精品店"),
    "母婴": ("母婴生活馆", "婴童用品店"),
    "教育": ("培训学校", "少儿英语", "驾校"),
    "医疗": ("人民医院", "大药房", "口腔诊所"),
    "娱乐": ("万达影城", "KTV", "健身中心", "剧本杀馆"),
    "珠宝": ("周大福", "老凤祥", "珠宝城"),
    "汽车": ("汽车4S店", "汽车美容", "二手车市场"),
}


@dataclass
class Merchants:
    """The merchant list plus lookup tables used to draw merchants for transactions."""

    table: pa.Table
    local_offset: np.ndarray  # (n_cities, n_categories) first merchant index
    local_count: np.ndarray  # (n_cities, n_categories)
    national_offset: np.ndarray  # (n_categories,)  -1 if none
    national_count: np.ndarray  # (n_categories,)
    mcc_index: np.ndarray  # (n_merchants,) index into mcc_values
    mcc_values: np.ndarray


def build_merchants(rng: np.random.Generator) -> Merchants:
    names: list[str] = []
    cats: list[str] = []
    cities: list[str | None] = []
    ncat = len(CATEGORY_NAMES)
    local_offset = np.zeros((len(CITIES), ncat), np.int64)
    local_count = np.zeros((len(CITIES), ncat), np.int64)
    for ci, city in enumerate(CITIES):
        for k, cat in enumerate(CATEGORY_NAMES):
            n = max(2, round(city.weight * 40 * (3 if cat in ("餐饮", "超市") else 1)))
            local_offset[ci, k] = len(names)
            local_count[ci, k] = n
            stems = _LOCAL[cat]
            for j in range(n):
                names.append(f"{stems[j % len(stems)]}({city.name}{j // len(stems) + 1}号店)")
                cats.append(cat)
                cities.append(city.name)
    national_offset = np.full(ncat, -1, np.int64)
    national_count = np.zeros(ncat, np.int64)
    for k, cat in enumerate(CATEGORY_NAMES):
        if cat in _NATIONAL:
            national_offset[k] = len(names)
            national_count[k] = len(_NATIONAL[cat])
            for name in _NATIONAL[cat]:
                names.append(name)
                cats.append(cat)
                cities.append(None)
    mcc_values = np.array(sorted({m for v in CATEGORY_MCC.values() for m in v}))
    mcc_pos = {m: i for i, m in enumerate(mcc_values)}
    mcc_index = np.array(
        [mcc_pos[CATEGORY_MCC[c][rng.integers(0, len(CATEGORY_MCC[c]))]] for c in cats]
    )
    tbl = table("merchants").conform(
        pa.table(
            {
                "merchant_id": np.arange(1, len(names) + 1, dtype=np.int64),
                "merchant_name": names,
                "category": cats,
                "mcc": mcc_values[mcc_index],
                "city": pa.array(cities, pa.string()),
            }
        )
    )
    return Merchants(
        tbl, local_offset, local_count, national_offset, national_count, mcc_index, mcc_values
    )
