"""PII masking of values, columns and tables, and detection of PII in service notes."""

from __future__ import annotations

import string
import time
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qianmian.data.masking import (
    NAME_STOP_CHARS,
    PiiSpan,
    find_pii,
    mask_column,
    mask_frame,
    mask_text,
    mask_value,
)
from qianmian.errors import SchemaError, ValidationError
from qianmian.world import pii

# ---- single values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("110105194912310021", "national_id", "110***********0021"),
        ("11010519491231002X", "national_id", "110***********002X"),
        ("110105491231002", "national_id", "110********1002"),
        ("13812345678", "mobile", "138****5678"),
        ("138-1234-5678", "mobile", "138-****-5678"),
        ("+86 138 1234 5678", "mobile", "+86 138 **** 5678"),
        ("8613812345678", "mobile", "86138****5678"),
        ("6225881234567898", "card_number", "622588******7898"),
        ("6225 8812 3456 7898", "card_number", "6225 88** **** 7898"),
        ("6225881234567898123", "card_number", "622588*********8123"),
        ("张三", "name", "张*"),
        ("张三丰", "name", "张**"),
        ("欧阳娜娜", "name", "欧阳**"),
        ("欧阳", "name", "欧*"),
        ("王", "name", "*"),
        ("zhang.wei88@qq.com", "email", "z***@qq.com"),
        ("U1234567890", "identifier", "U1*******90"),
        ("45f7a4d2-2dd3-4b26-a0cf-d2140b6addab", "identifier", "45" + "*" * 32 + "ab"),
        # junk is masked conservatively: all but the last two characters
        ("not a phone", "mobile", "*********ne"),
        ("1234", "mobile", "****"),
        ("138****5678", "mobile", "*********78"),
        ("no-at-sign", "email", "********gn"),
        ("abc", "identifier", "***"),
        ("", "name", ""),
        (None, "mobile", None),
        (float("nan"), "email", None),
        (13812345678, "mobile", "138****5678"),
    ],
)
def test_mask_value(value, kind: str, expected: str | None) -> None:
    assert mask_value(value, kind) == expected


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValidationError, match="masking kind"):
        mask_value("x", "phone")


MASK_KINDS = ["name", "national_id", "mobile", "card_number", "email", "identifier"]
REVEALED_DIGITS = {
    "national_id": 7,
    "mobile": 9,
    "card_number": 10,
    "identifier": 4,
    "email": 1,
    "name": 2,
}


@given(st.text(), st.sampled_from(MASK_KINDS))
def test_masking_any_text_never_raises_and_reveals_little(text: str, kind: str) -> None:
    masked = mask_value(text, kind)
    assert isinstance(masked, str)
    if kind != "email":
        assert len(masked) == len(text)
    kept_digits = sum(ch.isdigit() for ch in masked if ch != "*")
    assert kept_digits <= max(REVEALED_DIGITS[kind], 2)
    assert isinstance(mask_value(masked, kind), str)  # masking a masked value is safe


@given(st.from_regex(r"[1-6][0-9]{16}[0-9X]", fullmatch=True))
def test_national_id_masks_the_middle_eleven(value: str) -> None:
    masked = mask_value(value, "national_id")
    assert masked == value[:3] + "*" * 11 + value[-4:]


@given(
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.sampled_from(["", "-", " "]),
    st.sampled_from(["", "+86 ", "86", "0086-"]),
)
def test_mobile_masks_digits_four_to_seven(number: str, sep: str, prefix: str) -> None:
    text = prefix + number[:3] + sep + number[3:7] + sep + number[7:]
    masked = mask_value(text, "mobile")
    assert len(masked) == len(text)
    assert masked == prefix + number[:3] + sep + "****" + sep + number[7:]


@given(st.from_regex(r"[3-6][0-9]{12,18}", fullmatch=True))
def test_card_keeps_bin_and_last_four(value: str) -> None:
    masked = mask_value(value, "card_number")
    assert masked == value[:6] + "*" * (len(value) - 10) + value[-4:]


# ---- columns and tables ------------------------------------------------------------------------

PII_TEXT = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"[0-9]{13,19}", fullmatch=True),
    st.from_regex(r"[0-9]{17}[0-9Xx]", fullmatch=True),
    st.from_regex(r"[a-z0-9._]{1,12}@[a-z0-9]{1,8}\.(com|cn)", fullmatch=True),
    st.sampled_from(
        [
            "欧阳娜娜",
            "张三",
            "+86 138-1234-5678",
            "6225 8812 3456 7898",
            "",
            "王",
            "司马光",
            "a@b",
            " 13812345678 ",
        ]
    ),
)


@given(st.lists(PII_TEXT, max_size=20), st.sampled_from(MASK_KINDS))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_column_masking_equals_value_masking(values: list[str | None], kind: str) -> None:
    masked = mask_column(pa.array(values, type=pa.string()), kind).to_pylist()
    assert masked == [mask_value(v, kind) for v in values]


@pytest.mark.parametrize(
    "container",
    [
        lambda v: pd.Series(v, index=[5, 6, 7], name="phone"),
        pa.array,
        lambda v: pa.chunked_array([pa.array(v[:1]), pa.array(v[1:])]),
    ],
    ids=["series", "array", "chunked"],
)
def test_mask_column_keeps_the_container(container) -> None:
    values = container(["13812345678", None, "13987654321"])
    out = mask_column(values, "mobile")
    assert type(out) is type(values)
    if isinstance(out, pd.Series):
        assert out.index.tolist() == [5, 6, 7] and out.name == "phone"
        assert out.iloc[0] == "138****5678" and pd.isna(out.iloc[1])
    else:
        assert out.to_pylist() == ["138****5678", None, "139****4321"]


def test_mask_column_of_numbers() -> None:
    out = mask_column(pd.Series([13812345678, 13987654321]), "mobile")
    assert out.tolist() == ["138****5678", "139****4321"]


IDENTIFIERS = pd.DataFrame(
    {
        "customer_id": [1, 1, 1, 1, 2, 2],
        "id_type": ["mobile", "email", "national_id", "card_number", "device_id", "app_user_id"],
        "id_value": [
            "13812345678",
            "li.na@163.com",
            "11010519491231002X",
            "6225881234567898",
            "45f7a4d2-2dd3-4b26-a0cf-d2140b6addab",
            "U1234567890",
        ],
        "source": ["core_banking", "crm", "core_banking", "card_system", "app", "app"],
    }
)
MASKED_IDS = [
    "138****5678",
    "l***@163.com",
    "110***********002X",
    "622588******7898",
    "45" + "*" * 32 + "ab",
    "U1*******90",
]


@pytest.mark.parametrize("as_arrow", [False, True])
def test_mask_frame_masks_identifiers_by_type(as_arrow: bool) -> None:
    data = pa.Table.from_pandas(IDENTIFIERS) if as_arrow else IDENTIFIERS
    out = mask_frame(data, "identifiers")
    values = out.column("id_value").to_pylist() if as_arrow else out["id_value"].tolist()
    assert values == MASKED_IDS
    assert IDENTIFIERS["id_value"].iloc[0] == "13812345678"  # the input is left alone


def test_mask_frame_masks_names_and_skips_absent_columns() -> None:
    customers = pd.DataFrame(
        {"customer_id": [1, 2], "name": ["欧阳娜娜", None], "city": ["北京"] * 2}
    )
    out = mask_frame(customers, "customers")
    assert out["name"].iloc[0] == "欧阳**" and pd.isna(out["name"].iloc[1])
    assert out["city"].tolist() == ["北京", "北京"]
    assert mask_frame(pd.DataFrame({"customer_id": [1]}), "customers").shape == (1, 1)
    with pytest.raises(SchemaError):
        mask_frame(customers, "no_such_table")


@pytest.mark.slow
def test_a_million_values_in_about_a_second() -> None:
    rng = np.random.default_rng(0)
    columns = {
        "mobile": pa.array(pii.mobiles(rng, 1_000_000)),
        "national_id": pa.array(
            pii.national_ids(
                rng,
                np.full(1_000_000, "1990-01-01", "datetime64[D]")
                + rng.integers(0, 9000, 1_000_000).astype("timedelta64[D]"),
                np.full(1_000_000, "M"),
            )
        ),
        "name": pa.array(pii.names(rng, np.full(1_000_000, "F"))),
    }
    timings = {}
    for kind, values in columns.items():
        start = time.perf_counter()
        out = mask_column(values, kind)
        timings[kind] = time.perf_counter() - start
        assert out[0].as_py() == mask_value(values[0].as_py(), kind)
    print("\n" + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    assert max(timings.values()) < 5.0


# ---- free text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("客户王伟来电反映账单有误", [("name", "王伟")]),
        ("持卡人：欧阳娜娜，", [("name", "欧阳娜娜")]),
        ("向王芳女士致歉", [("name", "王芳")]),
        ("电话+86 138-1234-5678,", [("mobile", "+86 138-1234-5678")]),
        ("手机１３８１２３４５６７８", [("mobile", "１３８１２３４５６７８")]),
        ("身份证号11010519491231002X。", [("national_id", "11010519491231002X")]),
        ("老身份证号110105491231002", [("national_id", "110105491231002")]),
        ("卡号6225 8812 3456 7898 ", [("card_number", "6225 8812 3456 7898")]),
        ("邮件li.na@163.com。", [("email", "li.na@163.com")]),
        ("邮箱13812345678@qq.com", [("email", "13812345678@qq.com")]),
        # decoys
        ("我是张家界人", []),
        ("客户余额不足", []),
        ("客户经理王先生", []),
        ("周末在王府井消费", []),
        ("客户金卡升级为白金卡", []),
        ("客户很高兴", []),
        ("黄金积存", []),
        ("证件号110105194912310021", []),  # bad check character
        ("工单号12345678901", []),
        ("订单号DD13812345678", []),
        ("流水号813812345678", []),
        ("编号6225881234567899", []),  # fails Luhn
        ("订单号2024031512345674", []),  # passes Luhn, but no card network starts with 2
        ("编号110105491231002", []),  # a 15-digit number without 身份证 nearby
    ],
)
def test_find_pii(text: str, expected: list[tuple[str, str]]) -> None:
    spans = find_pii(text)
    assert [(s.kind, s.value) for s in spans] == expected
    assert all(text[s.start : s.end] == s.value for s in spans)


def test_overlapping_spans_prefer_id_over_card_over_mobile() -> None:
    nid = "440305199001011234"
    nid = nid[:17] + pii.national_id_check_char(nid[:17])
    assert [s.kind for s in find_pii(f"号码{nid}")] == ["national_id"]
    assert find_pii(None) == [] and find_pii("") == []  # type: ignore[arg-type]


def _sample(draw: np.random.Generator) -> dict[str, str]:
    return {
        "name": pii.names(draw, np.array(["F"]))[0],
        "mobile": pii.mobiles(draw, 1)[0],
        "card": pii.card_numbers(draw, 1)[0],
        "email": pii.emails(draw, 1)[0],
        "nid": pii.national_ids(draw, np.array(["1988-08-08"], "datetime64[D]"), np.array(["M"]))[
            0
        ],
    }


_RNG = np.random.default_rng(99)
FRAGMENTS = [v for _ in range(5) for v in _sample(_RNG).values()] + [
    "客户",
    "姓名:",
    "持卡人",
    "我是",
    "本人",
    "先生",
    "女士",
    "小姐",
    "+86 ",
    "86",
    "身份证",
    "-",
    " ",
    "王府井",
    "张家界",
    "高兴",
    "黄金",
    "周末",
    "李子",
    "余额",
    "@qq.com",
    "X",
    "。",
    "，",
    "0",
    "1",
]


@given(
    st.lists(
        st.one_of(
            st.sampled_from(FRAGMENTS), st.text(string.digits + "王李张伟娜 -@.a", max_size=6)
        ),
        max_size=12,
    )
)
@settings(max_examples=300)
def test_masked_text_holds_no_pii(parts: list[str]) -> None:
    text = "".join(parts)
    assert find_pii(mask_text(text)) == []


# ---- measured on synthetic service notes -------------------------------------------------------

PII_SENTENCES = [
    "客户{name}来电反映信用卡账单有误。",
    "持卡人：{name}，",
    "持卡人姓名：{name}；",
    "联系人{name}，联系电话{mobile}。",
    "户名：{name} ",
    "我是{name}，想咨询分期手续费。",
    "本人{name}的信用卡被盗刷了。",
    "{name}先生来电要求减免年费。",
    "{name}女士表示不认可该笔交易。",
    "已致电{name}女士说明情况。",
    "向{name}先生致歉并登记。",
    "客户姓名：{name}，证件号码：{nid}。",
    "客户{name}多次投诉催收电话。",
    "手机号：{mobile}，",
    "请回电{mobile_dash}。",
    "预留手机 {mobile_space} 收不到验证码。",
    "来电显示{mobile_cc}。",
    "联系方式:{mobile_wide}。",
    "身份证号{nid}。",
    "证件号码：{nid}，",
    "客户提供的老身份证号{nid15}已过期。",
    "卡号{card}，",
    "信用卡 {card_space} 被冻结。",
    "扣款卡号：{card_dash}。",
    "借记卡{card19}还款失败。",
    "邮箱{email}，",
    "电子账单发送至{email}。",
    # harder: a name followed by an ordinary verb, or with no cue at all (expected misses)
    "客户{name}刷卡消费{amount}元。",
    "经核实{name}于{date}申请了分期。",
    "致电客户{name}未接通，留言至{mobile}。",
    "{name}（身份证{nid}）名下有两张卡。",
    "持卡人{name}称其卡片{card}遗失。",
    "收件人：{name}，电话：{mobile_dash}。",
    "客户表示其邮箱{email}被盗用。",
    "核身通过，证件号{nid}，预留手机{mobile}。",
    "客户来电称卡号 {card_space} 有一笔不明交易。",
    "{name}反映APP无法登录。",
    "投诉人{name}要求退还年费。",
    "请{name}女士补充材料。",
    "客户{name}咨询积分兑换。",
    "本人叫{name}，",
    "联系邮箱：{email}；联系电话：{mobile_cc}。",
    "卡号{card_dash}的持卡人为{name}。",
    "客户{name}在{date}办理了分期。",
]
DECOY_SENTENCES = [
    "订单号{order}。",
    "交易流水号{serial}。",
    "交易金额{amount}元。",
    "{date}在王府井百货消费。",
    "客户去张家界旅游时刷卡。",
    "客户很高兴地接受了方案。",
    "咨询黄金积存业务。",
    "周末无法办理。",
    "买了两斤李子。",
    "编号{fake_card}的工单已关闭。",
    "证件号{bad_id}校验失败。",
    "工单号{num12}。",
    "客户经理王先生已跟进。",
    "客户余额不足。",
    "客户金卡升级为白金卡。",
    "客服热线95555。",
    "固定电话010-{landline}。",
    "验证码{otp}。",
    "积分{points}分。",
    "我是张家界分行的客户。",
    "本人周末在外地。",
    "客户高兴地表示感谢。",
    "于{date}还款{amount}元。",
    # harder: companies and places after name cues
    "户名：{company}，",
    "我是{place}人，",
    "联系人王经理。",
    "客户方女士来电。",
    "客户于{date}还款{amount}元。",
    "客户杨先生已确认。",
    "户名：金华市某某商行。",
    "本人高铁出行较多。",
    "客户向银行申请调额。",
    "订单尾号{otp}。",
    "柜员号{serial}。",
    "客户称周末网点不开门。",
    "客户马上要出国。",
    "客户白天不方便接听。",
    "客户钱包被盗。",
    "客户程先生来电。",
    "我是万达广场的商户。",
    "本人孙子的卡被锁。",
    "户名与证件不符。",
    "联系电话0755-{landline}（座机）。",
]
# Held out: written after the detector was frozen and never used to tune it, so their scores
# estimate how it does on phrasing it has not seen. Names are the weak kind (no cue, no luck).
HELD_OUT_PII = [
    "客户{name}今日上午来电，",
    "经办人：{name}。",
    "{name}先生的手机{mobile}停机。",
    "已短信通知{mobile_space}。",
    "账户持有人{name}已确认。",
    "客户{name}的身份证号{nid}即将到期。",
    "{name}女士的邮箱为{email}。",
    "还款卡{card}扣款失败。",
    "客户致电{mobile_dash}咨询。",
    "申请人{name}，手机{mobile}。",
    "客户{name}表示未收到卡片。",
    "我叫{name}，卡号是{card_space}。",
    "回访对象：{name}。",
    "联系人：{name}（{mobile}）",
    "证件号码 {nid} 校验通过。",
]
HELD_OUT_DECOYS = [
    "客户要求周一回电。",
    "本人常去王府井。",
    "客户金女士来电。",
    "客户石先生。",
    "持卡人本人到网点办理。",
    "客户黄金会员权益咨询。",
    "工单编号{serial}。",
    "客户余女士。",
    "我是龙湖天街的店员。",
    "客户方提供了材料。",
    "本人江西南昌人。",
    "交易金额{amount}元，手续费{otp}元。",
    "客户反馈周末排队时间长。",
    "户名：{company}。",
]
SLOT_KINDS = {
    "name": "name",
    "nid": "national_id",
    "nid15": "national_id",
    "email": "email",
    **dict.fromkeys(
        ["mobile", "mobile_dash", "mobile_space", "mobile_cc", "mobile_wide"], "mobile"
    ),
    **dict.fromkeys(["card", "card_space", "card_dash", "card19"], "card_number"),
}


def _slot_values(rng: np.random.Generator) -> dict[str, str]:
    """One value for every slot of the note templates."""
    gender = rng.choice(["M", "F"])
    birth = np.datetime64("1950-01-01") + rng.integers(0, 20000)
    nid = pii.national_ids(rng, np.array([birth]), np.array([gender]))[0]
    mobile = pii.mobiles(rng, 1)[0]
    card = pii.card_numbers(rng, 1)[0]
    body19 = "621700" + "".join(map(str, rng.integers(0, 10, 12)))
    fake = card[:15] + str((int(card[15]) + 1 + rng.integers(0, 9)) % 10)
    bad_check = [c for c in "0123456789X" if c != nid[17]]
    digits = lambda k: "".join(map(str, rng.integers(0, 10, k)))  # noqa: E731
    return {
        "name": pii.names(rng, np.array([gender]))[0],
        "nid": nid,
        "nid15": nid[:6] + nid[8:14] + digits(3),
        "email": pii.emails(rng, 1)[0],
        "mobile": mobile,
        "mobile_dash": f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
        "mobile_space": f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}",
        "mobile_cc": "+86 " + mobile,
        "mobile_wide": mobile.translate({ord(d): chr(ord(d) + 0xFEE0) for d in "0123456789"}),
        "card": card,
        "card_space": " ".join(card[i : i + 4] for i in range(0, 16, 4)),
        "card_dash": "-".join(card[i : i + 4] for i in range(0, 16, 4)),
        "card19": body19 + pii.luhn_check_digit(body19),
        "order": "20240" + digits(11),
        "serial": "8" + digits(19),
        "amount": f"{rng.integers(1, 99999)}.00",
        "date": f"2024年{rng.integers(1, 13)}月{rng.integers(1, 29)}日",
        "fake_card": fake,
        "bad_id": nid[:17] + str(rng.choice(bad_check)),
        "num12": "12" + digits(9),
        "landline": digits(8),
        "otp": digits(6),
        "points": str(rng.integers(100, 99999)),
        "company": str(
            rng.choice(
                [
                    "万达集团",
                    "金山软件有限公司",
                    "方正证券",
                    "龙湖地产",
                    "华为技术有限公司",
                    "马记餐饮店",
                ]
            )
        ),
        "place": str(rng.choice(["江西", "黄冈", "武汉", "湖南", "沈阳", "苏州"])),
    }


def service_notes(
    rng: np.random.Generator, n: int, *, held_out: bool = False
) -> list[tuple[str, list[PiiSpan]]]:
    """``n`` synthetic service notes / complaints, each with the PII spans it really holds."""
    pii_pool, decoys = (
        (HELD_OUT_PII, HELD_OUT_DECOYS) if held_out else (PII_SENTENCES, DECOY_SENTENCES)
    )
    notes = []
    for _ in range(n):
        values = _slot_values(rng)
        pool = pii_pool if rng.random() < 0.7 else decoys
        sentences = [pool[i] for i in rng.integers(0, len(pool), rng.integers(1, 3))]
        sentences += [decoys[i] for i in rng.integers(0, len(decoys), rng.integers(0, 3))]
        text, spans = "", []
        for sentence in (sentences[i] for i in rng.permutation(len(sentences))):
            for literal, slot, _, _ in string.Formatter().parse(sentence):
                text += literal
                if slot is None:
                    continue
                if slot in SLOT_KINDS:
                    spans.append(
                        PiiSpan(
                            SLOT_KINDS[slot], len(text), len(text) + len(values[slot]), values[slot]
                        )
                    )
                text += values[slot]
        notes.append((text, spans))
    return notes


def _scores(notes: list[tuple[str, list[PiiSpan]]], title: str) -> dict[str, tuple[float, float]]:
    """Recall and precision of exact spans (kind, start, end) per kind and overall; printed."""
    truth, found, hits = Counter(), Counter(), Counter()
    for text, spans in notes:
        expected = {(s.kind, s.start, s.end) for s in spans}
        got = {(s.kind, s.start, s.end) for s in find_pii(text)}
        truth.update(k for k, _, _ in expected)
        found.update(k for k, _, _ in got)
        hits.update(k for k, _, _ in expected & got)
    truth["overall"], found["overall"], hits["overall"] = (
        truth.total(),
        found.total(),
        hits.total(),
    )
    scores = {k: (hits[k] / truth[k], hits[k] / max(found[k], 1)) for k in sorted(truth)}
    print(
        f"\n{title}: {len(notes)} notes\n"
        + "\n".join(
            f"  {k:12s} spans {truth[k]:6d}  recall {r:.4f}  precision {p:.4f}"
            for k, (r, p) in scores.items()
        )
    )
    return scores


def test_detection_on_service_notes_reaches_target_recall_and_precision() -> None:
    notes = service_notes(np.random.default_rng(2024), 6000)
    scores = _scores(notes, "service notes")
    assert set(scores) == {"name", "national_id", "mobile", "card_number", "email", "overall"}
    recall, precision = scores["overall"]
    assert recall >= 0.99 and precision >= 0.98
    for text, spans in notes[:2000]:
        masked = mask_text(text)
        assert find_pii(masked) == []
        assert not any(s.value in masked for s in spans if s.kind != "name")


def test_detection_on_held_out_phrasing() -> None:
    scores = _scores(
        service_notes(np.random.default_rng(7), 5000, held_out=True), "held-out phrasing"
    )
    for kind in ("national_id", "mobile", "card_number", "email"):
        assert min(scores[kind]) >= 0.99, kind
    # names in unseen phrasing: measured 0.74 recall / 0.65 precision when frozen (no cue
    # words such as 经办人 or 回访对象; ordinary words after weak cues such as 本人常去)
    assert scores["name"][0] >= 0.65 and scores["name"][1] >= 0.55


def test_service_notes_are_deterministic() -> None:
    assert service_notes(np.random.default_rng(5), 50) == service_notes(
        np.random.default_rng(5), 50
    )


def test_given_name_characters_never_end_a_name() -> None:
    assert not (set(pii._MALE + pii._FEMALE + pii._NEUTRAL) & NAME_STOP_CHARS)
