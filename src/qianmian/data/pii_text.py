"""Detection of personal information in free text: service notes, complaints, chat logs.

:func:`find_pii` finds ID numbers (18-digit ones validated by district, date and MOD 11-2
check character; 15-digit legacy ones only after 身份证), mobiles (``+86``/``86`` prefix and
``-``/space separators allowed, never inside a longer run of digits), card numbers (16-19
digits with a UnionPay/Visa/Mastercard/JCB prefix passing the Luhn check), emails and Chinese
names after cues (客户, 姓名, 持卡人, 联系人, 户名, 我是, 本人 ...), before 先生/女士/小姐, or
before the verbs of service notes (来电, 反映, 表示, 投诉, 申请, 于 ...), unless the characters
are a known word (余额, 张家界), a place (``...人``) or an organisation (``...公司``).
Where spans overlap, email wins over national ID, then card number, mobile and name.
Masking what it finds is :func:`qianmian.data.masking.mask_text`.

>>> [(s.kind, s.value) for s in find_pii("客户张伟来电,手机 138-1234-5678。")]
[('name', '张伟'), ('mobile', '138-1234-5678')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qianmian.data.pii_rules import PROVINCE_CODES, SURNAMES, is_luhn_valid, is_valid_national_id

__all__ = ["NAME_STOP_CHARS", "PiiSpan", "find_pii", "half_width"]


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """A piece of personal information found in a text: ``text[start:end] == value``."""

    kind: str
    start: int
    end: int
    value: str


#: Characters that end a given name in free text: function words and verbs that follow a name
#: (来电, 反映, 表示, 的 ...). Given names are taken as 1-2 Han characters not in this set.
NAME_STOP_CHARS = frozenset(
    "来反表称投要咨申办于在已对因希认说本的今昨多同拒不致通使名持发收未没一再需想也都还又就将"
    "被把从向和与及了是您你我他她们等经先女电话号码卡银行款额元时年月日分支账户手机邮箱身份证信"
    "用度客服请可以能会到过后前给打至刷消购取存转激注登绑解挂补查更修变逾欠缴退换人"
)
# Words that start with a surname character but are not names (places, common words).
_NOT_NAMES = tuple(
    re.findall(
        r"\S+",
        "王府井 张家界 张家口 高兴 高端 高额 高铁 黄金 黄山 周末 周年 周一 周二 周三 周四 周五 周六 "
        "周日 周边 周口 马上 金额 金卡 金融 金华 白金 余额 付款 付费 方便 方式 方案 方面 万元 于是 "
        "曾经 程序 石油 江苏 任何 常用 常常 龙卡 龙岗 钱款 陆续 严重 武汉 何时 许多 许可 谢谢 "
        "沈阳 苏州 韩国 范围 段时间 严格 白天 钱包 孙子 万达",
    )
)
# Words that make the Han characters from a surname on an organisation, not a person.
_ORGANISATION = re.compile(
    "集团|公司|有限|证券|地产|银行|科技|软件|餐饮|商行|超市|酒店|医院|学校|"
    "中心|广场|商场|大厦|店|厂"
)
_HONORIFICS = "先生|女士|小姐|老师|经理|总|师傅|阿姨|大爷|大妈|同学|主任|行长|医生|律师|家"
_HAN = "[\u4e00-\u9fff]"
_HAN_RUN = re.compile(f"{_HAN}+")
_GIVEN = f"(?:(?![{''.join(sorted(NAME_STOP_CHARS))}]){_HAN})"
_SURNAME = "(?:" + "|".join(sorted(SURNAMES, key=len, reverse=True)) + ")"
_NAME = f"{_SURNAME}(?!{_HONORIFICS}){_GIVEN}{{1,2}}"
_CUES = "客户(?:姓名)?|姓名|持卡人(?:姓名)?|联系人|户名|我是|本人|我叫|申请人|投诉人|收件人"
_B, _E = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])"
_DATE = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "email",
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+"
            r"(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
        ),
    ),
    (
        "national_id",
        re.compile(
            _B + rf"[1-9][0-9]{{5}}(?:18|19|20)[0-9]{{2}}{_DATE}[0-9]{{3}}"
            r"[0-9Xx]" + _E
        ),
    ),
    ("national_id15", re.compile(_B + rf"[1-9][0-9]{{7}}{_DATE}[0-9]{{3}}" + _E)),
    (
        "card_number",
        re.compile(
            _B + r"(?:[0-9]{16,19}|[0-9]{4}(?:[ -][0-9]{4}){3}"
            r"(?:[ -][0-9]{3})?)" + _E
        ),
    ),
    (
        "mobile",
        re.compile(
            r"(?<![0-9A-Za-z+])(?:(?:\+|00)?86[ -]?)?1[3-9][0-9][ -]?[0-9]{4}"
            r"[ -]?[0-9]{4}" + _E
        ),
    ),
    ("name_cue", re.compile(f"(?:{_CUES})(?:为|是|叫)?[:：]?[ ]?({_NAME})")),
    ("name_title", re.compile(f"({_NAME})(?=先生|女士|小姐)")),
    (
        "name_verb",
        re.compile(
            f"({_NAME})(?=来电|致电|反映|表示|投诉|申请|要求|称|于"
            "|[（(](?:身份证|证件|手机|电话|卡号))"
        ),
    ),
)
_PRIORITY = {"email": 0, "national_id": 1, "card_number": 2, "mobile": 3, "name": 4}
_CARD_PREFIX = re.compile(r"62|4|5[1-5]|35")
_FULL_WIDTH = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "}
)


def half_width(text: str) -> str:
    """``text`` with full-width digits, letters and punctuation (and the ideographic space) as
    their ASCII forms; every character keeps its position."""
    return text.translate(_FULL_WIDTH)


def _looks_like_id(digits: str) -> bool:
    """An 18-digit number shaped like an ID (province and date) is a mistyped ID, not a card."""
    return (
        len(digits) == 18
        and digits[:2] in PROVINCE_CODES
        and bool(re.fullmatch(r"(?:18|19|20)[0-9]{2}" + _DATE, digits[6:14]))
    )


def _real_date(yyyymmdd: str) -> bool:
    try:
        np.datetime64(f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:8]}", "D")
    except ValueError:
        return False
    return True


def _not_a_name(text: str, start: int, end: int) -> bool:
    """Whether the Han characters at ``start`` read as a word, a place or an organisation."""
    run = _HAN_RUN.match(text, start, start + 10)
    return (
        any(text.startswith(word, start) for word in _NOT_NAMES)  # 客户余额, 我是张家界
        or text[end : end + 1] == "人"  # 我是江西人
        or (run is not None and _ORGANISATION.search(run[0]) is not None)  # 户名：万达集团
    )


def _accept(rule: str, match: re.Match[str], text: str) -> PiiSpan | None:
    """The span of a regex match if it passes the rule's checks, else None."""
    group = 1 if rule.startswith("name") else 0
    start, end, value = match.start(group), match.end(group), match[group]
    if rule == "national_id" and not is_valid_national_id(value):
        return None
    if rule == "national_id15" and (
        value[:2] not in PROVINCE_CODES
        or "身份证" not in text[max(0, start - 12) : start]
        or not _real_date("19" + value[6:12])
    ):
        return None
    if rule == "card_number":
        digits = value.replace(" ", "").replace("-", "")
        if len(digits) == 19 and not is_luhn_valid(digits) and not value.isdigit():
            digits, end = digits[:16], start + 19  # 4-4-4-4 followed by 3 other digits
            value = text[start:end]
        if not _CARD_PREFIX.match(digits) or _looks_like_id(digits) or not is_luhn_valid(digits):
            return None
    if rule in ("name_cue", "name_verb") and _not_a_name(text, start, end):
        return None  # (a name right before 先生/女士 is taken as it is)
    if rule.startswith("name") and text[start] in "向于" and re.match(_SURNAME, text[start + 1 :]):
        start, value = start + 1, value[1:]  # 向王芳女士: 向 is a preposition here
    kind = "name" if rule.startswith("name") else rule.removesuffix("15")
    return PiiSpan(kind, start, end, value)


def _candidates(text: str) -> list[PiiSpan]:
    spans = (_accept(rule, m, text) for rule, pattern in _PATTERNS for m in pattern.finditer(text))
    return [span for span in spans if span is not None]


def find_pii(text: str) -> list[PiiSpan]:
    """Find personal information in free text (service notes, complaints), ordered by position.

    Full-width digits and letters are read as their ASCII forms; ``value`` is the text as written.

    Examples
    --------
    >>> [(s.kind, s.value) for s in find_pii("持卡人:李娜,卡号6225881234567898,电话13912345678")]
    [('name', '李娜'), ('card_number', '6225881234567898'), ('mobile', '13912345678')]
    """
    if not isinstance(text, str) or not text:
        return []
    candidates = _candidates(half_width(text))
    candidates.sort(key=lambda s: (_PRIORITY[s.kind], s.start, -s.end))
    taken: list[PiiSpan] = []
    for span in candidates:
        if all(span.end <= t.start or span.start >= t.end for t in taken):
            taken.append(span)
    return sorted(
        (PiiSpan(s.kind, s.start, s.end, text[s.start : s.end]) for s in taken),
        key=lambda s: s.start,
    )
