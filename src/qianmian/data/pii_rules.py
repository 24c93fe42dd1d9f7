"""Rules that Chinese personal identifiers follow in any data, real or simulated.

The common surnames (with pinyin and national share), the province codes that open a resident
ID number, the ID number's ISO 7064 MOD 11-2 check character and the Luhn check digit of card
numbers. Masking and free-text detection check values against them; the simulated bank draws
values that follow them.

>>> is_valid_national_id("11010519491231002X"), is_luhn_valid("6225881234567898")
(True, True)
>>> "欧阳" in COMPOUND_SURNAMES, luhn_check_digit("622588123456789")
(True, '8')
"""

from __future__ import annotations

import numpy as np

from qianmian.errors import ValidationError

__all__ = [
    "COMPOUND_SURNAMES",
    "PROVINCE_CODES",
    "SURNAMES",
    "SURNAME_PINYIN",
    "SURNAME_SHARES",
    "is_luhn_valid",
    "is_valid_national_id",
    "luhn_check_digit",
    "luhn_check_digits",
    "national_id_check_char",
    "national_id_check_codes",
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
_SURNAME_ROWS = np.array(_words(_SURNAME_TABLE)).reshape(-1, 3)
#: The ~100 most common surnames, then a few rare compound ones (欧阳, 司马 ...).
SURNAMES: tuple[str, ...] = tuple(_SURNAME_ROWS[:, 0])
COMPOUND_SURNAMES: tuple[str, ...] = tuple(s for s in SURNAMES if len(s) == 2)
#: Pinyin of each of :data:`SURNAMES`, in the same order.
SURNAME_PINYIN: np.ndarray = _SURNAME_ROWS[:, 1]
#: Share of the population bearing each of :data:`SURNAMES`, in % (approximate).
SURNAME_SHARES: np.ndarray = _SURNAME_ROWS[:, 2].astype(float)

#: First two digits of a resident ID: provinces, plus 71/81/82/83 (Taiwan, Hong Kong, Macau).
PROVINCE_CODES = frozenset(
    _words(
        "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
        "61 62 63 64 65 71 81 82 83"
    )
)
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)


def national_id_check_codes(first17: np.ndarray) -> np.ndarray:
    """ASCII codes of the MOD 11-2 check characters of an ``(n, 17)`` array of ID digits."""
    return _ID_CHECK[(first17 @ _ID_WEIGHTS) % 11]


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


def luhn_check_digits(body: np.ndarray) -> np.ndarray:
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
    return str(luhn_check_digits(np.array([[int(d) for d in prefix]]))[0])


def is_luhn_valid(s: str) -> bool:
    """Whether the digit string ``s`` ends with a correct Luhn check digit.

    >>> is_luhn_valid("79927398713"), is_luhn_valid("79927398710")
    (True, False)
    """
    if not isinstance(s, str) or len(s) < 2 or not s.isascii() or not s.isdigit():
        return False
    return luhn_check_digit(s[:-1]) == s[-1]
