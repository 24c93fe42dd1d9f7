"""Controlled vocabularies of the data dictionary: every enumerated value with its zh/en label.

Business-facing values (categories, card tiers, cities, occupations) are the Chinese words a
bank's analysts use; system codes (channels, event types, response types) are short English codes.
The labels give the other language, so every value can be shown in Simplified Chinese or English.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "APP_EVENT_TYPES",
    "APP_PAGES",
    "CARD_TIERS",
    "CATEGORIES",
    "CITY_TIERS",
    "CONTACT_CHANNELS",
    "EDUCATION_LEVELS",
    "GENDERS",
    "HOLDING_STATUSES",
    "IDENTIFIER_TYPES",
    "LOAN_STATUSES",
    "MARITAL_STATUSES",
    "OCCUPATIONS",
    "OFFER_TYPES",
    "PRODUCT_TYPES",
    "REGISTRATION_CHANNELS",
    "RESPONSE_TYPES",
    "RISK_LEVELS",
    "RISK_TOLERANCES",
    "TXN_CHANNELS",
    "Term",
    "Vocabulary",
]


@dataclass(frozen=True, slots=True)
class Term:
    """One allowed value with its Chinese and English labels."""

    value: str
    zh: str
    en: str


class Vocabulary(tuple[Term, ...]):
    """An ordered set of :class:`Term` with lookups by value."""

    def __new__(cls, *terms: tuple[str, str, str]) -> Vocabulary:
        return super().__new__(cls, (Term(*t) for t in terms))

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(t.value for t in self)

    def label(self, value: str, lang: str = "zh") -> str:
        for t in self:
            if t.value == value:
                return t.zh if lang == "zh" else t.en
        raise KeyError(value)


GENDERS = Vocabulary(("M", "男", "male"), ("F", "女", "female"))

CITY_TIERS = Vocabulary(
    ("一线", "一线城市", "tier 1"),
    ("新一线", "新一线城市", "new tier 1"),
    ("二线", "二线城市", "tier 2"),
    ("三线", "三线城市", "tier 3"),
    ("四线及以下", "四线及以下城市", "tier 4 and below"),
)

OCCUPATIONS = Vocabulary(
    ("企业白领", "企业白领", "office worker"),
    ("公务员", "公务员/事业单位", "civil servant"),
    ("专业人士", "专业人士(医生/律师/工程师)", "professional"),
    ("教师", "教师", "teacher"),
    ("企业主", "企业主", "business owner"),
    ("个体工商户", "个体工商户", "self-employed"),
    ("服务业", "服务业从业者", "service worker"),
    ("工人", "工人", "manual worker"),
    ("自由职业", "自由职业", "freelancer"),
    ("学生", "学生", "student"),
    ("退休", "退休人员", "retired"),
    ("无业", "无业", "unemployed"),
)

EDUCATION_LEVELS = Vocabulary(
    ("高中及以下", "高中及以下", "high school or below"),
    ("大专", "大专", "associate degree"),
    ("本科", "本科", "bachelor"),
    ("硕士及以上", "硕士及以上", "master or above"),
)

MARITAL_STATUSES = Vocabulary(
    ("未婚", "未婚", "single"),
    ("已婚", "已婚", "married"),
    ("离异", "离异", "divorced"),
    ("丧偶", "丧偶", "widowed"),
)

# Customer risk assessment (风险承受能力) C1-C5 and product risk level R1-R5: a product may be
# offered only when its R number is not above the customer's C number (suitability, 适当性).
RISK_TOLERANCES = Vocabulary(
    ("C1", "保守型", "conservative"),
    ("C2", "稳健型", "moderately conservative"),
    ("C3", "平衡型", "balanced"),
    ("C4", "成长型", "growth"),
    ("C5", "进取型", "aggressive"),
)
RISK_LEVELS = Vocabulary(
    ("R1", "谨慎型(低风险)", "low risk"),
    ("R2", "稳健型(中低风险)", "medium-low risk"),
    ("R3", "平衡型(中风险)", "medium risk"),
    ("R4", "进取型(中高风险)", "medium-high risk"),
    ("R5", "激进型(高风险)", "high risk"),
)

REGISTRATION_CHANNELS = Vocabulary(
    ("branch", "网点", "branch"),
    ("app", "手机银行", "mobile app"),
    ("online", "网上申请", "online"),
    ("partner", "合作方渠道", "partner"),
    ("direct_sales", "直销团队", "direct sales"),
)

CARD_TIERS = Vocabulary(
    ("标准卡", "标准卡", "classic card"),
    ("金卡", "金卡", "gold card"),
    ("白金卡", "白金卡", "platinum card"),
    ("联名卡", "联名卡", "co-branded card"),
    ("青年卡", "青年卡", "youth card"),
)

PRODUCT_TYPES = Vocabulary(
    ("credit_card", "信用卡", "credit card"),
    ("wealth", "理财产品", "wealth product"),
    ("consumer_loan", "消费贷款", "consumer loan"),
    ("instalment", "分期", "instalment plan"),
    ("insurance", "保险", "insurance"),
)

HOLDING_STATUSES = Vocabulary(
    ("active", "正常", "active"),
    ("dormant", "睡眠", "dormant"),
    ("closed", "已销户", "closed"),
)

LOAN_STATUSES = Vocabulary(
    ("active", "还款中", "repaying"),
    ("repaid", "已结清", "repaid"),
    ("overdue", "逾期", "overdue"),
)

# Consumption categories (MCC-style). Each category lists its typical MCC codes; the first is
# the default for a merchant of that category.
CATEGORIES = Vocabulary(
    ("餐饮", "餐饮", "dining"),
    ("超市", "超市", "supermarket"),
    ("电商", "电商", "e-commerce"),
    ("出行", "出行", "transport"),
    ("加油", "加油", "fuel"),
    ("旅游", "旅游", "travel"),
    ("酒店", "酒店", "hotel"),
    ("航空", "航空", "airline"),
    ("家装", "家装", "home improvement"),
    ("家电数码", "家电数码", "electronics"),
    ("服饰", "服饰", "apparel"),
    ("母婴", "母婴", "mother and baby"),
    ("教育", "教育", "education"),
    ("医疗", "医疗", "healthcare"),
    ("娱乐", "娱乐", "entertainment"),
    ("珠宝", "珠宝", "jewellery"),
    ("汽车", "汽车", "automotive"),
)

CATEGORY_MCC: dict[str, tuple[str, ...]] = {
    "餐饮": ("5812", "5814", "5813"),
    "超市": ("5411", "5499", "5331"),
    "电商": ("5399", "5964", "5311"),
    "出行": ("4121", "4111", "4131"),
    "加油": ("5541", "5542"),
    "旅游": ("4722", "7991"),
    "酒店": ("7011",),
    "航空": ("4511", "3000"),
    "家装": ("5712", "5200", "5211"),
    "家电数码": ("5732", "5722", "5045"),
    "服饰": ("5651", "5621", "5611"),
    "母婴": ("5641", "5945"),
    "教育": ("8299", "8220", "8211"),
    "医疗": ("8062", "5912", "8011"),
    "娱乐": ("7832", "7996", "7997"),
    "珠宝": ("5944",),
    "汽车": ("5511", "7538"),
}

TXN_CHANNELS = Vocabulary(
    ("POS", "POS刷卡", "card present (POS)"),
    ("online", "线上支付", "online"),
    ("QR", "扫码支付", "QR code"),
)

CONTACT_CHANNELS = Vocabulary(
    ("app_push", "App推送", "app push"),
    ("in_app", "App内横幅", "in-app banner"),
    ("sms", "短信", "SMS"),
    ("email", "电子邮件", "email"),
    ("call_center", "电话外呼", "call centre"),
    ("wechat", "微信服务号", "WeChat service account"),
)

APP_EVENT_TYPES = Vocabulary(
    ("login", "登录", "login"),
    ("page_view", "浏览页面", "page view"),
    ("search", "搜索", "search"),
    ("transfer", "转账", "transfer"),
    ("transfer_failure", "转账失败", "transfer failure"),
    ("bill_view", "查看账单", "bill view"),
    ("logout", "退出", "logout"),
)

APP_PAGES = Vocabulary(
    ("home", "首页", "home"),
    ("bill", "账单", "bill"),
    ("card_travel", "旅行信用卡", "travel card"),
    ("card_platinum", "白金卡权益", "platinum card benefits"),
    ("card_cobrand", "联名卡", "co-branded card"),
    ("card_youth", "青年卡", "youth card"),
    ("instalment", "账单分期", "instalment"),
    ("limit", "额度管理", "credit limit"),
    ("loan", "消费贷款", "consumer loan"),
    ("car_loan", "车贷", "car loan"),
    ("wealth_list", "理财产品列表", "wealth products"),
    ("wealth_fund", "基金详情", "fund detail"),
    ("insurance", "保险", "insurance"),
    ("travel_deals", "旅游优惠", "travel deals"),
    ("home_deals", "家装分期", "home improvement deals"),
    ("baby_deals", "母婴专区", "mother and baby"),
    ("dining_deals", "餐饮优惠", "dining deals"),
    ("points_mall", "积分商城", "points mall"),
    ("transfer", "转账", "transfer"),
)

IDENTIFIER_TYPES = Vocabulary(
    ("mobile", "手机号", "mobile number"),
    ("email", "电子邮箱", "email"),
    ("device_id", "设备号", "device id"),
    ("app_user_id", "App用户号", "app user id"),
    ("card_number", "卡号", "card number"),
    ("national_id", "身份证号", "national ID number"),
)

OFFER_TYPES = Vocabulary(
    ("card_acquisition", "办卡", "card acquisition"),
    ("instalment_coupon", "分期免息券", "interest-free instalment coupon"),
    ("limit_increase", "提额", "credit-limit increase"),
    ("loan_discount", "消费贷利率优惠", "consumer-loan rate discount"),
    ("wealth", "理财产品推荐", "wealth product"),
    ("insurance", "保险推荐", "insurance"),
    ("travel_cashback", "旅游返现", "travel cashback"),
    ("merchant_coupon", "商户优惠券", "merchant coupon"),
    ("service", "服务通知", "service message (not marketing)"),
)

RESPONSE_TYPES = Vocabulary(
    ("delivered", "已送达", "delivered"),
    ("opened", "已打开", "opened"),
    ("clicked", "已点击", "clicked"),
    ("applied", "已申请", "applied"),
    ("approved", "已核准", "approved"),
    ("first_use", "首次使用", "first use"),
    ("unsubscribed", "退订", "unsubscribed"),
    ("complained", "投诉", "complained"),
)
