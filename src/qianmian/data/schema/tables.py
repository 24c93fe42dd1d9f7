"""The data dictionary: every table qianmian stores, field by field.

Tables of the bank (customers ... app_events) are what a bank imports or the simulated bank
generates; offers, contacts and responses are written by qianmian itself; quarantine and
import_log record imports. Timestamps are naive China Standard Time; money is CNY.
"""

from __future__ import annotations

from qianmian.data.schema.model import Field, Table
from qianmian.data.schema.vocab import (
    APP_EVENT_TYPES,
    APP_PAGES,
    CARD_TIERS,
    CATEGORIES,
    CATEGORY_MCC,
    CITY_TIERS,
    CONTACT_CHANNELS,
    EDUCATION_LEVELS,
    GENDERS,
    HOLDING_STATUSES,
    IDENTIFIER_TYPES,
    LOAN_STATUSES,
    MARITAL_STATUSES,
    OCCUPATIONS,
    OFFER_TYPES,
    PRODUCT_TYPES,
    REGISTRATION_CHANNELS,
    RESPONSE_TYPES,
    RISK_LEVELS,
    RISK_TOLERANCES,
    TXN_CHANNELS,
)

__all__ = ["TABLES"]

_ID = r"[A-Za-z0-9_.:\-]{1,64}"
_MCC = tuple(sorted({m for codes in CATEGORY_MCC.values() for m in codes}))


def _customer_id(required: bool = True) -> Field:
    return Field(
        "customer_id",
        "int",
        "客户号(统一客户ID)",
        "unified customer id",
        required=required,
        min=1,
        references="customers.customer_id",
    )


CUSTOMERS = Table(
    "customers",
    "客户",
    "customers",
    primary_key=("customer_id",),
    grain_en="one row per customer (unified customer id)",
    fields=(
        Field(
            "customer_id", "int", "客户号(统一客户ID)", "unified customer id", required=True, min=1
        ),
        Field("name", "string", "姓名", "full name", pii="name"),
        Field("gender", "string", "性别", "gender", enum=GENDERS.values),
        Field("birth_date", "date", "出生日期", "date of birth"),
        Field("occupation", "string", "职业", "occupation", enum=OCCUPATIONS.values),
        Field("education", "string", "学历", "education", enum=EDUCATION_LEVELS.values),
        Field(
            "marital_status", "string", "婚姻状况", "marital status", enum=MARITAL_STATUSES.values
        ),
        Field("children", "int", "子女数", "number of children", min=0, max=10),
        Field("city", "string", "常住城市", "city of residence"),
        Field("city_tier", "string", "城市等级", "city tier", enum=CITY_TIERS.values),
        Field("monthly_income", "float", "月收入", "monthly income", min=0, max=1e7, unit="CNY"),
        Field("credit_score", "int", "信用评分", "internal credit score", min=300, max=850),
        Field(
            "risk_tolerance",
            "string",
            "风险承受能力评估",
            "risk tolerance assessment",
            enum=RISK_TOLERANCES.values,
        ),
        Field(
            "registration_channel",
            "string",
            "获客渠道",
            "acquisition channel",
            enum=REGISTRATION_CHANNELS.values,
        ),
        Field("branch_id", "string", "归属网点", "home branch", pattern=_ID),
        Field("signup_date", "date", "开户日期", "date the customer relationship began"),
        Field("consent_sms", "bool", "同意短信营销", "consents to marketing by SMS"),
        Field("consent_app_push", "bool", "同意App推送营销", "consents to marketing by app push"),
        Field("consent_email", "bool", "同意邮件营销", "consents to marketing by email"),
        Field("consent_call_center", "bool", "同意电话营销", "consents to marketing calls"),
        Field("consent_wechat", "bool", "同意微信营销", "consents to marketing on WeChat"),
        Field("marketing_opt_out", "bool", "已退订全部营销", "opted out of all marketing"),
        Field(
            "personalisation_opt_out",
            "bool",
            "拒绝个性化推荐(个保法第24条)",
            "refuses personalised marketing (PIPL Art. 24)",
        ),
    ),
)

IDENTIFIERS = Table(
    "identifiers",
    "客户标识",
    "identifiers",
    primary_key=("id_type", "id_value"),
    grain_en="one row per identifier value seen for a customer",
    fields=(
        _customer_id(),
        Field(
            "id_type",
            "string",
            "标识类型",
            "identifier type",
            required=True,
            enum=IDENTIFIER_TYPES.values,
        ),
        Field("id_value", "string", "标识值", "identifier value", required=True, pii="identifier"),
        Field("source", "string", "来源系统", "system the identifier was seen in", pattern=_ID),
        Field("first_seen", "date", "首次出现日期", "date first seen"),
    ),
)

PRODUCTS = Table(
    "products",
    "产品",
    "products",
    primary_key=("product_id",),
    grain_en="one row per product on the shelf",
    fields=(
        Field("product_id", "string", "产品代码", "product code", required=True, pattern=_ID),
        Field(
            "product_type",
            "string",
            "产品类型",
            "product type",
            required=True,
            enum=PRODUCT_TYPES.values,
        ),
        Field("name_zh", "string", "产品名称(中文)", "product name (Chinese)", required=True),
        Field("name_en", "string", "产品名称(英文)", "product name (English)"),
        Field("card_tier", "string", "卡种", "card tier (credit cards)", enum=CARD_TIERS.values),
        Field("annual_fee", "float", "年费", "annual fee (credit cards)", min=0, unit="CNY"),
        Field("benefits", "string", "权益", "benefits, comma separated"),
        Field(
            "risk_level",
            "string",
            "产品风险等级",
            "product risk level (wealth)",
            enum=RISK_LEVELS.values,
        ),
        Field(
            "expected_return",
            "float",
            "业绩比较基准(年化)",
            "benchmark annual return",
            min=-1,
            max=1,
        ),
        Field(
            "interest_rate",
            "float",
            "年化利率/费率",
            "annual rate (loans, instalments)",
            min=0,
            max=0.36,
        ),
        Field("term_months", "int", "期限(月)", "term in months", min=0, max=360),
        Field("min_amount", "float", "起购/起贷金额", "minimum amount", min=0, unit="CNY"),
        Field("max_amount", "float", "最高金额", "maximum amount", min=0, unit="CNY"),
        Field("launch_date", "date", "上架日期", "launch date"),
    ),
)

HOLDINGS = Table(
    "holdings",
    "持有产品",
    "holdings",
    primary_key=("holding_id",),
    grain_en="one row per product a customer holds or held",
    fields=(
        Field("holding_id", "int", "持仓编号", "holding id", required=True, min=1),
        _customer_id(),
        Field(
            "product_id",
            "string",
            "产品代码",
            "product code",
            required=True,
            references="products.product_id",
        ),
        Field("opened_date", "date", "开立日期", "date opened", required=True),
        Field("closed_date", "date", "关闭日期", "date closed"),
        Field("status", "string", "状态", "status", enum=HOLDING_STATUSES.values),
        Field("balance", "float", "余额/持仓金额", "balance or amount held", unit="CNY"),
        Field("credit_limit", "float", "信用额度", "credit limit (cards)", min=0, unit="CNY"),
    ),
)

LOANS = Table(
    "loans",
    "消费贷款",
    "consumer loans",
    primary_key=("loan_id",),
    grain_en="one row per consumer loan or instalment plan",
    fields=(
        Field("loan_id", "int", "借据号", "loan id", required=True, min=1),
        _customer_id(),
        Field(
            "product_id",
            "string",
            "产品代码",
            "product code",
            required=True,
            references="products.product_id",
        ),
        Field("principal", "float", "本金", "principal", required=True, min=0, unit="CNY"),
        Field("interest_rate", "float", "年化利率", "annual interest rate", min=0, max=0.36),
        Field("term_months", "int", "期数", "number of monthly instalments", min=1, max=360),
        Field("start_date", "date", "放款日期", "disbursement date", required=True),
        Field("status", "string", "状态", "status", enum=LOAN_STATUSES.values),
        Field("missed_payments", "int", "逾期期数", "instalments missed so far", min=0),
        Field("purpose", "string", "用途", "stated purpose"),
    ),
)

STATEMENTS = Table(
    "statements",
    "信用卡账单",
    "card statements",
    primary_key=("customer_id", "statement_month"),
    grain_en="one row per customer per monthly statement",
    fields=(
        _customer_id(),
        Field(
            "statement_month", "date", "账单月(月初)", "statement month (first day)", required=True
        ),
        Field("credit_limit", "float", "信用额度", "total credit limit", min=0, unit="CNY"),
        Field("statement_balance", "float", "账单金额", "statement balance", unit="CNY"),
        Field("paid_amount", "float", "还款金额", "amount repaid", min=0, unit="CNY"),
        Field("revolving_balance", "float", "循环余额", "balance carried over", min=0, unit="CNY"),
        Field("min_payment_missed", "bool", "未还最低还款", "minimum payment missed"),
    ),
)

MERCHANTS = Table(
    "merchants",
    "商户",
    "merchants",
    primary_key=("merchant_id",),
    grain_en="one row per merchant",
    fields=(
        Field("merchant_id", "int", "商户号", "merchant id", required=True, min=1),
        Field("merchant_name", "string", "商户名称", "merchant name", required=True),
        Field(
            "category",
            "string",
            "消费类别",
            "spending category",
            required=True,
            enum=CATEGORIES.values,
        ),
        Field("mcc", "string", "MCC码", "merchant category code", pattern=r"\d{4}"),
        Field("city", "string", "所在城市", "city"),
    ),
)

TRANSACTIONS = Table(
    "transactions",
    "交易流水",
    "card transactions",
    primary_key=("txn_id",),
    grain_en="one row per card transaction",
    fields=(
        Field("txn_id", "int", "交易流水号", "transaction id", required=True, min=1),
        _customer_id(),
        Field("ts", "timestamp", "交易时间", "transaction time", required=True),
        Field(
            "amount", "float", "交易金额", "amount", required=True, min=0.01, max=5e6, unit="CNY"
        ),
        Field(
            "category",
            "string",
            "消费类别",
            "spending category",
            required=True,
            enum=CATEGORIES.values,
        ),
        Field("mcc", "string", "MCC码", "merchant category code", enum=_MCC),
        Field("merchant_id", "int", "商户号", "merchant id", references="merchants.merchant_id"),
        Field("channel", "string", "支付渠道", "payment channel", enum=TXN_CHANNELS.values),
        Field("city", "string", "交易城市", "city of the transaction"),
    ),
)

APP_EVENTS = Table(
    "app_events",
    "App行为",
    "app events",
    primary_key=("event_id",),
    grain_en="one row per mobile-banking app event",
    fields=(
        Field("event_id", "int", "事件号", "event id", required=True, min=1),
        _customer_id(),
        Field("ts", "timestamp", "事件时间", "event time", required=True),
        Field(
            "event_type",
            "string",
            "事件类型",
            "event type",
            required=True,
            enum=APP_EVENT_TYPES.values,
        ),
        Field("page", "string", "页面", "page (page_view)", enum=APP_PAGES.values),
        Field("search_query", "string", "搜索词", "search query (search)"),
        Field("session_id", "int", "会话号", "app session id", min=1),
    ),
)

OFFERS = Table(
    "offers",
    "营销权益",
    "offers",
    primary_key=("offer_id",),
    grain_en="one row per offer in the catalogue",
    fields=(
        Field("offer_id", "string", "权益代码", "offer code", required=True, pattern=_ID),
        Field(
            "offer_type", "string", "权益类型", "offer type", required=True, enum=OFFER_TYPES.values
        ),
        Field("name_zh", "string", "权益名称(中文)", "offer name (Chinese)", required=True),
        Field("name_en", "string", "权益名称(英文)", "offer name (English)"),
        Field(
            "product_id", "string", "关联产品", "product offered", references="products.product_id"
        ),
        Field("personalised", "bool", "是否个性化", "relies on personal data for targeting"),
        Field(
            "incentive_cost",
            "float",
            "单次转化权益成本",
            "incentive cost per conversion",
            min=0,
            unit="CNY",
        ),
        Field("start_date", "date", "开始日期", "first day the offer may be made"),
        Field("end_date", "date", "结束日期", "last day the offer may be made"),
    ),
)

CONTACTS = Table(
    "contacts",
    "触达记录",
    "contacts",
    primary_key=("contact_id",),
    grain_en="one row per decision to contact (or hold out) a customer with an offer",
    fields=(
        Field("contact_id", "int", "触达编号", "contact id", required=True, min=1),
        _customer_id(),
        Field(
            "offer_id",
            "string",
            "权益代码",
            "offer code",
            required=True,
            references="offers.offer_id",
        ),
        Field(
            "channel",
            "string",
            "触达渠道",
            "contact channel",
            required=True,
            enum=CONTACT_CHANNELS.values,
        ),
        Field("ts", "timestamp", "触达时间", "contact time", required=True),
        Field("campaign_id", "string", "活动代码", "campaign code", pattern=_ID),
        Field("arm", "string", "实验组", "experiment arm or 'holdout'"),
        Field("is_holdout", "bool", "是否对照组(未实际触达)", "held out: decided but not sent"),
        Field(
            "action_probability",
            "float",
            "选择概率",
            "probability the policy chose this",
            min=0,
            max=1,
        ),
        Field("cost", "float", "触达成本", "cost of the contact", min=0, unit="CNY"),
    ),
)

RESPONSES = Table(
    "responses",
    "响应记录",
    "responses",
    primary_key=("response_id",),
    grain_en="one row per observed outcome of a contact",
    fields=(
        Field("response_id", "int", "响应编号", "response id", required=True, min=1),
        Field("contact_id", "int", "触达编号", "contact id", references="contacts.contact_id"),
        _customer_id(),
        Field("offer_id", "string", "权益代码", "offer code", references="offers.offer_id"),
        Field(
            "response_type",
            "string",
            "响应类型",
            "response type",
            required=True,
            enum=RESPONSE_TYPES.values,
        ),
        Field("ts", "timestamp", "响应时间", "response time", required=True),
        Field("value", "float", "转化价值", "value to the bank (conversions)", unit="CNY"),
    ),
)

QUARANTINE = Table(
    "quarantine",
    "隔离区",
    "quarantined import rows",
    grain_en="one row per problem found in an imported row",
    fields=(
        Field("import_id", "string", "导入批次", "import batch id", required=True),
        Field("table_name", "string", "目标表", "target table", required=True),
        Field("row_number", "int", "源文件行号", "line number in the source file", required=True),
        Field("field", "string", "字段", "field at fault"),
        Field("value", "string", "原值(已脱敏)", "offending value (masked)"),
        Field("reason", "string", "原因", "why the row was rejected", required=True),
        Field("raw", "string", "原始行(已脱敏)", "the whole source row as JSON (masked)"),
    ),
)

IMPORT_LOG = Table(
    "import_log",
    "导入日志",
    "import log",
    primary_key=("import_id",),
    grain_en="one row per import run",
    fields=(
        Field("import_id", "string", "导入批次", "import batch id", required=True),
        Field("table_name", "string", "目标表", "target table", required=True),
        Field("source", "string", "源文件", "source file", required=True),
        Field("rows_read", "int", "读取行数", "rows read", min=0),
        Field("rows_loaded", "int", "入库行数", "rows loaded", min=0),
        Field("rows_quarantined", "int", "隔离行数", "rows quarantined", min=0),
        Field("started_at", "timestamp", "开始时间", "start time"),
        Field("finished_at", "timestamp", "结束时间", "end time"),
    ),
)

IDENTIFIER_SIGHTINGS = Table(
    "identifier_sightings",
    "标识采集记录",
    "identifier sightings",
    primary_key=("source", "source_record_id", "id_type", "id_value"),
    grain_en="one row per identifier seen on a record of a source system, before resolution",
    fields=(
        Field("source", "string", "来源系统", "source system", required=True, pattern=_ID),
        Field(
            "source_record_id",
            "string",
            "源记录号",
            "record id in the source system",
            required=True,
        ),
        Field(
            "id_type",
            "string",
            "标识类型",
            "identifier type",
            required=True,
            enum=IDENTIFIER_TYPES.values,
        ),
        Field("id_value", "string", "标识值", "identifier value", required=True, pii="identifier"),
        Field("seen_at", "date", "采集日期", "date the identifier was seen"),
    ),
)

IDENTITY_MAP = Table(
    "identity_map",
    "统一客户号映射",
    "identity map",
    primary_key=("source", "source_record_id"),
    grain_en="one row per source record, with the unified customer id it resolved to",
    fields=(
        Field("source", "string", "来源系统", "source system", required=True),
        Field("source_record_id", "string", "源记录号", "record id in the source", required=True),
        Field("customer_id", "int", "统一客户号", "unified customer id", required=True, min=1),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        CUSTOMERS,
        IDENTIFIERS,
        PRODUCTS,
        HOLDINGS,
        LOANS,
        STATEMENTS,
        MERCHANTS,
        TRANSACTIONS,
        APP_EVENTS,
        OFFERS,
        CONTACTS,
        RESPONSES,
        IDENTIFIER_SIGHTINGS,
        IDENTITY_MAP,
        QUARANTINE,
        IMPORT_LOG,
    )
}
