"""Realistic, vectorised generators of Chinese personal identifiers for the simulated bank.

Names follow the frequency of the ~100 most common surnames (a few compound ones such as 欧阳
are rare) with gender-leaning given-name characters; 18-character resident ID numbers carry a
real district code, the birth date, a sequence whose last digit is odd for men and even for
women, and the ISO 7064 MOD 11-2 check character; mobiles use real operator prefixes; card
numbers are 16-digit UnionPay numbers with a Luhn check digit. Identifiers that must be unique
(IDs, mobiles, cards, emails, device and app ids) are drawn, checked for duplicates, and only the
duplicates are drawn again, so the result is unique and bit-for-bit reproducible for a seed.

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> ids = national_ids(rng, np.array(["1990-03-07"], dtype="datetime64[D]"), np.array(["F"]))
>>> is_valid_national_id(ids[0]), ids[0][6:14], int(ids[0][16]) % 2
(True, '19900307', 0)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qianmian.errors import NotFoundError, ValidationError

__all__ = [
    "COMPOUND_SURNAMES",
    "DEFAULT_CARD_BINS",
    "PROVINCE_CODES",
    "REGIONS",
    "SURNAMES",
    "Region",
    "app_user_ids",
    "card_numbers",
    "device_ids",
    "emails",
    "is_luhn_valid",
    "is_valid_national_id",
    "luhn_check_digit",
    "mobiles",
    "names",
    "national_id_check_char",
    "national_ids",
    "region_codes",
]


def _words(text: str) -> list[str]:
    """The whitespace-separated words of a compact data table."""
    return text.split()


# Surname, pinyin, share of the population in % (approximate national figures).
_SURNAME_TABLE = """
王 wang 7.12 李 li 7.09 张 zhang 6.66 刘 liu 5.31 陈 chen 4.46 杨 yang 3.09 黄 huang 2.23
赵 zhao 2.29 吴 wu 2.05 周 zhou 2.03 徐 xu 1.67 孙 sun 1.54 马 ma 1.44 朱 zhu 1.41 胡 hu 1.33
郭 guo 1.30 何 he 1.21 林 lin 1.14 高 gao 1.16 罗 luo 1.05 郑 zheng 0.98 梁 liang 0.97
谢 xie 0.84 宋 song 0.81 唐 tang 0.80 许 xu 0.76 韩 han 0.74 冯 feng 0.71 邓 deng 0.70
曹 cao 0.69 彭 peng 0.63 曾 zeng 0.62 肖 xiao 0.61 田 tian 0.60 董 dong 0.58 袁 yuan 0.55
潘 pan 0.55 于 yu 0.54 蒋 jiang 0.53 蔡 cai 0.52 余 yu 0.51 杜 du 0.50 叶 ye 0.49
程 cheng 0.48 苏 su 0.46 魏 wei 0.46 吕 lv 0.45 丁 ding 0.43 任 ren 0.42 沈 shen 0.41
姚 yao 0.40 卢 lu 0.39 姜 jiang 0.38 崔 cui 0.37 钟 zhong 0.36 谭 tan 0.35 陆 lu 0.34
汪 wang 0.33 范 fan 0.33 金 jin 0.32 石 shi 0.31 廖 liao 0.30 贾 jia 0.29 夏 xia 0.28
韦 wei 0.28 付 fu 0.27 方 fang 0.26 白 bai 0.26 邹 zou 0.26 孟 meng 0.25 熊 xiong 0.25
秦 qin 0.24 邱 qiu 0.24 江 jiang 0.23 尹 yin 0.23 薛 xue 0.22 闫 yan 0.22 段 duan 0.21
雷 lei 0.21 侯 hou 0.20 龙 long 0.20 史 shi 0.20 陶 tao 0.19 黎 li 0.19 贺 he 0.18 顾 gu 0.18
毛 mao 0.18 郝 hao 0.17 龚 gong 0.17 邵 shao 0.16 万 wan 0.16 钱 qian 0.16 严 yan 0.15
覃 qin 0.15 武 wu 0.15 戴 dai 0.14 莫 mo 0.14 孔 kong 0.14 向 xiang 0.13 汤 tang 0.13
常 chang 0.13 欧阳 ouyang 0.020 司马 sima 0.005 上官 shangguan 0.005 诸葛 zhuge 0.004
东方 dongfang 0.002 皇甫 huangfu 0.002 令狐 linghu 0.001 慕容 murong 0.001
"""
_ROWS = np.array(_words(_SURNAME_TABLE)).reshape(-1, 3)
SURNAMES: tuple[str, ...] = tuple(_ROWS[:, 0])
COMPOUND_SURNAMES: tuple[str, ...] = tuple(s for s in SURNAMES if len(s) == 2)
_SURNAME_PINYIN = _ROWS[:, 1]
_SURNAME_P = _ROWS[:, 2].astype(float) / _ROWS[:, 2].astype(float).sum()

# Given-name characters. None of them is a function word or verb that commonly follows a name
# in a sentence (来, 反, 的 ...), which keeps name detection in free text well defined.
_MALE = (
    "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林洋峰建国志东海亮永春光兵晨"
    "坤博哲睿轩泽昊然子航铭楷瑞翔彬锋毅胜力庆德松山仁义礼智忠孝安福贵荣祥财宏广振兴"
    "玉天嘉伦翰卓恒源锐琦彦晖骏驰鸿宸逸辰朗钧凡青阳舟远威武豪杭骁岩冬江栋梁桐柏树森"
    "炎焱鹤鹰虎彪川岳崇嵩昌晋宾柱根旺兆钢铁雄坚朋邦承乾培基奇勋韬诚谦裕瀚琛煜烨炜灿晟"
    "皓衡霖霆震庭廷楠桦耀斐"
)
_FEMALE = (
    "芳娜敏静丽艳娟霞秀玲桂英燕红萍雪琳晶婷慧颖倩洁琴兰梅莉欣怡悦佳雯蕾薇菲璐瑶琪萱涵梦"
    "诗雨晴露岚媛妍婉娇莹翠凤美丹蓉菊巧珍爱妮媚姗嫣娅婧婕妙妤姝姿婵嫦娴淑贞彩霏雅韵馨"
    "芸芷茜茹荷莎莲萌蕊薰蓓菁苗苹蔓蓝香瑾瑜璇琼瑛琬璟珊珠清澜湘沁滢漪凌冰霜影黛晓佩依"
    "伊娥宛宜容芬芝苒荔蕙蕴虹蝶珂琰瑗璧雁靖韶颜柔柳桃梓楚歆沐洛津涓淼溪潇灵玥珏玫秋筱"
    "紫絮羽翎舒艺芊芮茵莺菡"
)
_NEUTRAL = "文嘉子思安宁晨雨心欣乐天若泽锦语"


def _pool(chars: str) -> tuple[np.ndarray, np.ndarray]:
    unique = np.array(list(dict.fromkeys(chars)))
    weight = 1.0 / (np.arange(len(unique)) + 8.0)  # earlier characters are more common
    return unique, weight / weight.sum()


_POOLS = {"M": _pool(_MALE), "F": _pool(_FEMALE), "N": _pool(_NEUTRAL)}


@dataclass(frozen=True, slots=True)
class Region:
    """A six-digit administrative code (行政区划代码) of a district and its city."""

    code: str
    city: str
    district: str


_REGION_TABLE = """
北京 110101东城区 110102西城区 110105朝阳区 110106丰台区 110108海淀区 110114昌平区
上海 310101黄浦区 310104徐汇区 310105长宁区 310106静安区 310110杨浦区 310112闵行区 310115浦东新区
广州 440103荔湾区 440104越秀区 440105海珠区 440106天河区 440111白云区
深圳 440303罗湖区 440304福田区 440305南山区 440306宝安区 440307龙岗区
成都 510104锦江区 510105青羊区 510106金牛区 510107武侯区 510108成华区
重庆 500103渝中区 500105江北区 500112渝北区
杭州 330102上城区 330105拱墅区 330106西湖区 330108滨江区 330110余杭区
武汉 420102江岸区 420103江汉区 420106武昌区 420111洪山区
苏州 320505虎丘区 320506吴中区 320508姑苏区
西安 610102新城区 610103碑林区 610113雁塔区
南京 320102玄武区 320104秦淮区 320105建邺区 320106鼓楼区
长沙 430102芙蓉区 430104岳麓区 | 天津 120101和平区 120104南开区
郑州 410102中原区 410105金水区 | 东莞 441900东莞市
无锡 320213梁溪区 320214新吴区 | 宁波 330203海曙区 330212鄞州区
青岛 370202市南区 370203市北区 370212崂山区
合肥 340102瑶海区 340104蜀山区 | 佛山 440604禅城区 440606顺德区
沈阳 210102和平区 210103沈河区 | 昆明 530102五华区 530103盘龙区
济南 370102历下区 370103市中区 | 厦门 350203思明区 350206湖里区
福州 350102鼓楼区 350104仓山区 | 温州 330302鹿城区
哈尔滨 230102道里区 230103南岗区 | 石家庄 130102长安区 130104桥西区
大连 210202中山区 210204沙河口区 | 南宁 450102兴宁区 450103青秀区
泉州 350502鲤城区 | 贵阳 520102南明区 520103云岩区
长春 220102南关区 220104朝阳区 | 南昌 360102东湖区 360111青山湖区
太原 140105小店区 140106迎泽区 | 常州 320402天宁区 320411新北区
珠海 440402香洲区 | 兰州 620102城关区 | 扬州 321002广陵区
洛阳 410302老城区 | 汕头 440507龙湖区 | 芜湖 340202镜湖区
襄阳 420602襄城区 | 赣州 360702章贡区 | 桂林 450302秀峰区
宜昌 420502西陵区 | 遵义 520302红花岗区 | 曲靖 530302麒麟区
商丘 411402梁园区 | 周口 411602川汇区 | 信阳 411502浉河区
南阳 411302宛城区 | 邵阳 430502双清区 | 黄冈 421102黄州区
六安 341502金安区 | 宿迁 321302宿城区 | 荆州 421002沙市区
天水 620502秦州区 | 丽水 331102莲都区 | 海口 460106龙华区
乌鲁木齐 650102天山区 | 呼和浩特 150102新城区 | 银川 640104兴庆区
西宁 630102城东区 | 拉萨 540102城关区 | 徐州 320302鼓楼区
烟台 370602芝罘区 | 绍兴 330602越城区 | 嘉兴 330402南湖区
金华 330702婺城区 | 南通 320602崇川区 | 惠州 441302惠城区
中山 442000中山市 | 绵阳 510703涪城区 | 唐山 130202路南区
保定 130602竞秀区
"""
REGIONS: tuple[Region, ...] = tuple(
    Region(code, entry.split()[0], district)
    for entry in _REGION_TABLE.replace("\n", "|").split("|")
    if entry.strip()
    for code, district in re.findall(r"(\d{6})(\S+)", entry)
)
_REGION_INTS = np.array([int(r.code) for r in REGIONS], dtype=np.int64)
# First two digits of a resident ID: provinces, plus 71/81/82/83 (Taiwan, Hong Kong, Macau).
PROVINCE_CODES = frozenset(
    _words(
        "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
        "61 62 63 64 65 71 81 82 83"
    )
)
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)

# Operator prefixes (China Mobile, Unicom, Telecom, virtual operators) and relative weights:
# older number ranges hold more subscribers.
_MOBILE_PREFIXES = np.array(
    _words(
        "130 131 132 133 134 135 136 137 138 139 145 147 149 150 151 152 153 155 156 157 158 "
        "159 166 170 171 173 175 176 177 178 180 181 182 183 184 185 186 187 188 189 191 198 199"
    )
).astype(np.int64)
_MOBILE_P = np.array([3.0, 0.4, 2.0, 0.8, 2.5, 0.9])[
    np.digitize(_MOBILE_PREFIXES, [140, 150, 160, 180, 190])
]
_MOBILE_P = _MOBILE_P / _MOBILE_P.sum()

#: Real-looking UnionPay credit card BINs (issuer identification numbers).
DEFAULT_CARD_BINS: tuple[str, ...] = tuple(
    _words(
        "622588 622575 622576 622155 622836 622689 622690 622280 "
        "625802 625803 625965 625966 625906 628288 628258 625958"
    )
)

_SYLLABLES = np.array(
    _words(
        "wei jie ming hua jun yan li na fang min jing lei qiang yang tao bin chao hui xin yu hao "
        "kai jian ling ting ying xue qian jia yi han yue chen rui zhe xuan ze hong lin feng bo "
        "long yun qing mei lan xiao dong zi wen cheng zhi guo ning shan pei shu tian ran xi"
    )
)
_DOMAINS = np.array(
    _words(
        "163.com qq.com 126.com gmail.com foxmail.com sina.com outlook.com hotmail.com "
        "139.com sohu.com"
    )
)
_DOMAIN_P = np.array([0.26, 0.2, 0.12, 0.08, 0.08, 0.07, 0.08, 0.04, 0.04, 0.03])
# Zero-padded numbers by width: year strings up to 2100, then 2- and 3-digit strings.
_NUMBERS = (
    np.arange(2100).astype("U4"),
    np.char.zfill(np.arange(100).astype("U2"), 2),
    np.char.zfill(np.arange(1000).astype("U3"), 3),
)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_MAX_ROUNDS = 64
_HASH_MULTIPLIERS = np.random.default_rng(2026).integers(1, 2**63, 64, dtype=np.uint64) * 2 + 1


def _unique(
    n: int,
    draw: Callable[[np.ndarray], np.ndarray],
    key: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Draw values for rows ``0..n-1`` with ``draw(rows)``; redraw only the later duplicates.

    ``key`` maps values to integers that are equal whenever the values are (a hash is fine: a
    collision only costs a needless redraw).
    """
    key = key or (lambda v: v)
    values = draw(np.arange(n))
    keys = key(values)
    for _ in range(_MAX_ROUNDS):
        dup = pd.Series(keys).duplicated(keep="first").to_numpy()
        if not dup.any():
            return values
        rows = np.flatnonzero(dup)
        values[rows] = draw(rows)
        keys[rows] = key(values[rows])
    raise ValidationError(
        f"Could not draw {n} unique values in {_MAX_ROUNDS} rounds; the value space is too "
        "small for this many. Ask for fewer values or widen the space (more prefixes, BINs or "
        "region codes)."
    )


def _string_hash(values: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each string of a fixed-width unicode array (equal strings, equal hash)."""
    width = values.dtype.itemsize // 4
    codes = values.view(np.uint32).reshape(values.size, width).astype(np.uint64)
    return (codes * _HASH_MULTIPLIERS[:width]).sum(axis=1)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits of non-negative integers, an ``(n, width)`` array, most significant first."""
    text = (values + 10**width).astype(f"S{width + 1}")  # the leading 1 keeps leading zeros
    return text.view(np.uint8).reshape(values.size, width + 1)[:, 1:].astype(np.int64) - 48


def _ascii_rows(codes: np.ndarray) -> np.ndarray:
    """Turn an ``(n, width)`` array of ASCII codes into an array of ``n`` strings."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    return codes.view(f"S{codes.shape[1]}").ravel().astype(f"U{codes.shape[1]}")


def _is_male(genders: np.ndarray) -> np.ndarray:
    genders = np.asarray(genders).astype(str)
    male = np.isin(genders, ["M", "男"])
    bad = ~male & ~np.isin(genders, ["F", "女"])
    if bad.any():
        raise ValidationError(
            f"Gender must be 'M' or 'F' (or 男/女). Got {genders[bad][0]!r} instead."
        )
    return male


def names(rng: np.random.Generator, genders: np.ndarray) -> np.ndarray:
    """Draw full Chinese names: a surname by national frequency and a 1-2 character given name.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    genders : array of str, shape (n,)
        ``"M"`` or ``"F"`` (``"男"``/``"女"`` also accepted); given-name characters lean to the
        gender's pool, with a few gender-neutral ones.

    Returns
    -------
    numpy.ndarray of str, shape (n,)

    Examples
    --------
    >>> out = names(np.random.default_rng(1), np.array(["M", "F", "F"]))
    >>> out.shape, all(2 <= len(s) <= 4 for s in out)
    ((3,), True)
    """
    male = _is_male(genders)
    n = male.size
    surname = np.array(SURNAMES)[rng.choice(len(SURNAMES), size=n, p=_SURNAME_P)]
    chars = []
    for _ in range(2):
        neutral = rng.random(n) < 0.1
        out = np.empty(n, dtype="<U1")
        for key, sel in (("M", male & ~neutral), ("F", ~male & ~neutral), ("N", neutral)):
            pool, p = _POOLS[key]
            out[sel] = pool[rng.choice(len(pool), size=int(sel.sum()), p=p)]
        chars.append(out)
    two = rng.random(n) < 0.75
    return np.strings.add(np.strings.add(surname, chars[0]), np.where(two, chars[1], ""))


def region_codes(city: str | None = None) -> np.ndarray:
    """District codes of ``city`` (all shipped codes if ``None``), as six-character strings.

    >>> region_codes("深圳")[:3].tolist()
    ['440303', '440304', '440305']
    """
    codes = [r.code for r in REGIONS if city is None or r.city == city]
    if not codes:
        cities = list(dict.fromkeys(r.city for r in REGIONS))
        raise NotFoundError(f"No region codes are shipped for city '{city}'. Known: {cities}.")
    return np.array(codes)


def national_ids(
    rng: np.random.Generator,
    birth_dates: np.ndarray,
    genders: np.ndarray,
    region_codes: np.ndarray | None = None,
) -> np.ndarray:
    """Draw unique 18-character resident ID numbers (居民身份证号码).

    Parameters
    ----------
    rng : numpy.random.Generator
    birth_dates : array of datetime64[D], shape (n,)
    genders : array of str, shape (n,)
        ``"M"``/``"F"``: the last digit of the sequence is odd for men, even for women.
    region_codes : array of str or int, shape (n,), optional
        Six-digit district codes; drawn from :data:`REGIONS` when omitted.

    Returns
    -------
    numpy.ndarray of str, shape (n,)
        Region (6) + birth date YYYYMMDD (8) + sequence (3) + MOD 11-2 check character.

    Examples
    --------
    >>> ids = national_ids(np.random.default_rng(0), np.array(["1985-12-31"], "datetime64[D]"),
    ...                    np.array(["M"]), np.array(["440305"]))
    >>> ids[0][:14], int(ids[0][16]) % 2, is_valid_national_id(ids[0])
    ('44030519851231', 1, True)
    """
    dates = np.asarray(birth_dates).astype("datetime64[D]")
    male = _is_male(genders).astype(np.int64)
    if np.isnat(dates).any() or dates.shape != male.shape:
        raise ValidationError("Every person needs a birth date, one per gender value.")
    years = dates.astype("datetime64[Y]")
    ymd = (
        (years.astype(np.int64) + 1970) * 10_000
        + ((dates.astype("datetime64[M]") - years).astype(np.int64) + 1) * 100
        + (dates - dates.astype("datetime64[M]")).astype(np.int64)
        + 1
    )
    n = dates.size
    if region_codes is None:
        region = _REGION_INTS[rng.integers(0, len(_REGION_INTS), n)]
    else:
        text = np.asarray(region_codes).astype(str)
        if text.shape != dates.shape or not np.all(
            np.strings.isdigit(text) & (np.strings.str_len(text) == 6)
        ):
            raise ValidationError("Every region code must be six digits, one per person.")
        region = text.astype(np.int64)
    base = region * 100_000_000_000 + ymd * 1000  # the first 17 digits, sequence 000

    def draw(rows: np.ndarray) -> np.ndarray:  # a new sequence number, same person
        return (
            base[rows]
            + rng.integers(0, 100, rows.size) * 10
            + rng.integers(0, 5, rows.size) * 2
            + male[rows]
        )

    digits = _digits(_unique(n, draw), 17)
    check = _ID_CHECK[(digits @ _ID_WEIGHTS) % 11]
    return _ascii_rows(np.column_stack([digits + 48, check]))


def national_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits of an ID number.

    >>> national_id_check_char("11010519491231002")
    'X'
    """
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValidationError(f"An ID number body must be 17 digits. Got {first17!r} instead.")
    total = sum(int(d) * int(w) for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def is_valid_national_id(s: str) -> bool:
    """Whether ``s`` is a well-formed 18-character ID: province, real birth date, check character.

    >>> is_valid_national_id("11010519491231002X"), is_valid_national_id("110105194912310021")
    (True, False)
    """
    if not isinstance(s, str) or len(s) != 18 or not s[:17].isascii() or not s[:17].isdigit():
        return False
    if s[:2] not in PROVINCE_CODES or not 1900 <= int(s[6:10]) <= 2099:
        return False
    try:
        np.datetime64(f"{s[6:10]}-{s[10:12]}-{s[12:14]}", "D")
    except ValueError:
        return False
    return national_id_check_char(s[:17]) == s[17].upper()


def mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` unique 11-digit mainland mobile numbers with weighted operator prefixes.

    >>> m = mobiles(np.random.default_rng(3), 1000)
    >>> len(set(m)), all(len(x) == 11 and x[0] == "1" for x in m)
    (1000, True)
    """

    def draw(rows: np.ndarray) -> np.ndarray:
        prefix = _MOBILE_PREFIXES[rng.choice(len(_MOBILE_PREFIXES), size=rows.size, p=_MOBILE_P)]
        return prefix * 100_000_000 + rng.integers(0, 100_000_000, rows.size)

    return _unique(n, draw).astype("U11")


def _luhn_digits(body: np.ndarray) -> np.ndarray:
    """Luhn check digits for an ``(n, m)`` array of body digits."""
    doubled = body[:, ::-1].copy()
    doubled[:, ::2] *= 2
    doubled[doubled > 9] -= 9
    return (10 - doubled.sum(axis=1) % 10) % 10


def luhn_check_digit(prefix: str) -> str:
    """The Luhn check digit that completes ``prefix`` (digits only).

    >>> luhn_check_digit("7992739871")
    '3'
    """
    if not prefix or not prefix.isascii() or not prefix.isdigit():
        raise ValidationError(f"A Luhn prefix must be digits only. Got {prefix!r} instead.")
    return str(_luhn_digits(np.array([[int(d) for d in prefix]]))[0])


def is_luhn_valid(s: str) -> bool:
    """Whether the digit string ``s`` ends with a correct Luhn check digit.

    >>> is_luhn_valid("79927398713"), is_luhn_valid("79927398710")
    (True, False)
    """
    if not isinstance(s, str) or len(s) < 2 or not s.isascii() or not s.isdigit():
        return False
    return luhn_check_digit(s[:-1]) == s[-1]


def card_numbers(
    rng: np.random.Generator, n: int, bins: tuple[str, ...] = DEFAULT_CARD_BINS
) -> np.ndarray:
    """Draw ``n`` unique 16-digit UnionPay card numbers: BIN + 9 account digits + Luhn digit.

    >>> cards = card_numbers(np.random.default_rng(5), 3, bins=("622588",))
    >>> [c[:6] for c in cards], all(is_luhn_valid(c) for c in cards)
    (['622588', '622588', '622588'], True)
    """
    if not bins or not all(len(b) == 6 and b.isascii() and b.isdigit() for b in bins):
        raise ValidationError(f"Card BINs must be six-digit strings. Got {bins!r} instead.")
    bin_ints = np.array([int(b) for b in bins], dtype=np.int64)

    def draw(rows: np.ndarray) -> np.ndarray:
        k = rows.size
        return bin_ints[rng.integers(0, len(bin_ints), k)] * 10**9 + rng.integers(0, 10**9, k)

    body = _digits(_unique(n, draw), 15)
    return _ascii_rows(np.column_stack([body, _luhn_digits(body)]) + 48)


def emails(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` unique email addresses: QQ numbers at qq.com, or pinyin local parts.

    Pinyin local parts join a surname and one or two syllables, with an optional ``.``/``_``
    and digits (a birth year or a short number), at 163.com, 126.com, gmail.com, foxmail.com ...

    >>> out = emails(np.random.default_rng(2), 500)
    >>> len(set(out)), all("@" in e for e in out)
    (500, True)
    """

    def draw(rows: np.ndarray) -> np.ndarray:
        k = rows.size
        width = rng.choice(np.arange(5, 11), size=k, p=[0.05, 0.1, 0.15, 0.25, 0.3, 0.15])
        low = 10 ** (width - 1)
        numeric = np.strings.add(
            (low + (rng.random(k) * 9 * low).astype(np.int64)).astype(str), "@qq.com"
        )
        surname = _SURNAME_PINYIN[rng.choice(len(SURNAMES), size=k, p=_SURNAME_P)]
        sep = np.array(["", "", "", ".", "_"])[rng.integers(0, 5, k)]
        given = np.strings.add(
            _SYLLABLES[rng.integers(0, len(_SYLLABLES), k)],
            np.where(rng.random(k) < 0.5, _SYLLABLES[rng.integers(0, len(_SYLLABLES), k)], ""),
        )
        # none, 2-digit birth year, 4-digit birth year, 3 digits
        suffix = np.choose(
            rng.integers(0, 4, k),
            [
                np.full(k, ""),
                _NUMBERS[1][rng.integers(60, 106, k) % 100],
                _NUMBERS[0][rng.integers(1960, 2006, k)],
                _NUMBERS[2][rng.integers(0, 1000, k)],
            ],
        )
        domain = _DOMAINS[rng.choice(len(_DOMAINS), size=k, p=_DOMAIN_P)]
        pinyin = np.strings.add(np.strings.add(surname, sep), np.strings.add(given, suffix))
        pinyin = np.strings.add(np.strings.add(pinyin, "@"), domain)
        # one fixed width, so that a longer redraw is never cut short
        return np.where(rng.random(k) < 0.3, numeric, pinyin).astype("U40")

    out = _unique(n, draw, key=_string_hash)
    return out.astype(f"U{max(int(np.strings.str_len(out).max(initial=1)), 1)}")


def device_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` unique device ids shaped like lower-case UUID version 4 strings.

    >>> d = device_ids(np.random.default_rng(4), 2)
    >>> len(d[0]), d[0][14], d[0][8] + d[0][13] + d[0][18] + d[0][23]
    (36, '4', '----')
    """
    nibbles = np.empty((n, 32), dtype=np.int64)

    def draw(rows: np.ndarray) -> np.ndarray:  # fills the rows; their first 60 bits are the key
        nibbles[rows] = rng.integers(0, 16, (rows.size, 32))
        nibbles[rows, 12] = 4
        nibbles[rows, 16] = 8 + nibbles[rows, 16] % 4
        return (nibbles[rows, :15] << np.arange(56, -4, -4)).sum(axis=1)

    _unique(n, draw)
    chars = _HEX[nibbles]
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    return _ascii_rows(
        np.hstack(
            [
                chars[:, :8],
                dash,
                chars[:, 8:12],
                dash,
                chars[:, 12:16],
                dash,
                chars[:, 16:20],
                dash,
                chars[:, 20:],
            ]
        )
    )


def app_user_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` unique mobile-app user ids: ``"U"`` and ten digits.

    >>> app_user_ids(np.random.default_rng(6), 2)[0][:1]
    'U'
    """
    values = _unique(n, lambda rows: rng.integers(1_000_000_000, 10_000_000_000, rows.size))
    return np.strings.add("U", values.astype("U10"))
