"""The feature catalogue: every customer feature qianmian computes, declared once.

Families: RFM, rolling windows (7/30/90/180 days), spend and share by category, trends
(30 days against the 90 days before), payment channel preference, time-of-day habits, app
activity (logins, page views by page, searches, failed transfers), product holdings, credit
utilisation (from issued statements only), consumer-loan history, lifecycle stage, tenure and
the customer's profile. ``qianmian features list`` prints it.
"""

from __future__ import annotations

from qianmian.features.definition import FeatureDef

__all__ = [
    "CATEGORY_SLUGS",
    "FEATURES",
    "PAGE_FEATURES",
    "SEARCH_INTENTS",
    "catalogue_markdown",
    "feature",
    "features_in",
]

# Spending categories (Chinese values in the data) → column-name slugs.
CATEGORY_SLUGS: dict[str, str] = {
    "餐饮": "dining",
    "超市": "supermarket",
    "电商": "ecommerce",
    "出行": "transport",
    "加油": "fuel",
    "旅游": "travel",
    "酒店": "hotel",
    "航空": "airline",
    "家装": "home",
    "家电数码": "electronics",
    "服饰": "apparel",
    "母婴": "baby",
    "教育": "education",
    "医疗": "health",
    "娱乐": "entertainment",
    "珠宝": "jewellery",
    "汽车": "auto",
}
# App pages whose 30-day views are features (page → (zh, en)).
PAGE_FEATURES: dict[str, tuple[str, str]] = {
    "card_travel": ("旅行信用卡页", "travel-card page"),
    "travel_deals": ("旅游优惠页", "travel-deals page"),
    "card_platinum": ("白金卡权益页", "platinum-card page"),
    "card_cobrand": ("联名卡页", "co-branded card page"),
    "card_youth": ("青年卡页", "youth-card page"),
    "instalment": ("分期页", "instalment page"),
    "limit": ("额度页", "credit-limit page"),
    "loan": ("消费贷页", "consumer-loan page"),
    "car_loan": ("车贷页", "car-loan page"),
    "wealth_list": ("理财列表页", "wealth-products page"),
    "wealth_fund": ("基金详情页", "fund-detail page"),
    "insurance": ("保险页", "insurance page"),
    "home_deals": ("家装分期页", "home-improvement page"),
    "baby_deals": ("母婴专区页", "mother-and-baby page"),
    "dining_deals": ("餐饮优惠页", "dining-deals page"),
    "points_mall": ("积分商城页", "points-mall page"),
}

_F: list[FeatureDef] = []


def _add(*defs: FeatureDef) -> None:
    _F.extend(defs)


def _tx(
    name: str,
    zh: str,
    en: str,
    type_: str,
    group: str,
    agg: str,
    value: str,
    *,
    where: str | None = None,
    window: int | None = None,
    default: str | None = "0",
) -> None:
    _add(FeatureDef(name, zh, en, type_, group, "transactions", value, agg, where, window, default))  # type: ignore[arg-type]


# ---- RFM ------------------------------------------------------------------------------------
_add(
    FeatureDef(
        "recency_days",
        "距最近一笔消费天数",
        "days since the last transaction (366 if none in a year)",
        "int",
        "rfm",
        "transactions",
        "ts",
        "days_since_last",
        window_days=365,
        default="366",
    )
)
for w in (90, 365):
    _tx(
        f"frequency_{w}d",
        f"近{w}天消费笔数",
        f"transactions in the last {w} days",
        "int",
        "rfm",
        "count",
        "1",
        window=w,
    )
    _tx(
        f"monetary_{w}d",
        f"近{w}天消费金额",
        f"spend in the last {w} days (CNY)",
        "float",
        "rfm",
        "sum",
        "amount",
        window=w,
    )

# ---- rolling windows --------------------------------------------------------------------------
for w in (7, 30, 90, 180):
    _tx(
        f"spend_{w}d",
        f"近{w}天消费额",
        f"spend in the last {w} days (CNY)",
        "float",
        "rolling",
        "sum",
        "amount",
        window=w,
    )
    _tx(
        f"txn_count_{w}d",
        f"近{w}天交易笔数",
        f"transactions in the last {w} days",
        "int",
        "rolling",
        "count",
        "1",
        window=w,
    )
_tx(
    "avg_ticket_90d",
    "近90天笔均消费",
    "average ticket, last 90 days (CNY)",
    "float",
    "rolling",
    "avg",
    "amount",
    window=90,
    default=None,
)
_tx(
    "max_ticket_90d",
    "近90天最大单笔",
    "largest ticket, last 90 days (CNY)",
    "float",
    "rolling",
    "max",
    "amount",
    window=90,
    default=None,
)
_tx(
    "active_days_30d",
    "近30天消费天数",
    "days with a transaction, last 30 days",
    "int",
    "rolling",
    "count_distinct",
    "CAST(ts AS DATE)",
    window=30,
)

# ---- category spend and share -------------------------------------------------------------
for cat, slug in CATEGORY_SLUGS.items():
    _tx(
        f"spend_{slug}_90d",
        f"近90天{cat}消费额",
        f"{slug} spend, last 90 days (CNY)",
        "float",
        "category",
        "sum",
        "amount",
        where=f"category = '{cat}'",
        window=90,
    )
for cat, slug in CATEGORY_SLUGS.items():
    _add(
        FeatureDef(
            f"share_{slug}_90d",
            f"近90天{cat}消费占比",
            f"share of spend on {slug}, last 90 days",
            "float",
            "category",
            "derived",
            f"spend_{slug}_90d / NULLIF(spend_90d, 0)",
        )
    )
for cat, slug in (
    ("旅游", "travel"),
    ("航空", "airline"),
    ("酒店", "hotel"),
    ("家装", "home"),
    ("母婴", "baby"),
    ("汽车", "auto"),
    ("家电数码", "electronics"),
    ("电商", "ecommerce"),
    ("餐饮", "dining"),
):
    _tx(
        f"spend_{slug}_30d",
        f"近30天{cat}消费额",
        f"{slug} spend, last 30 days (CNY)",
        "float",
        "category",
        "sum",
        "amount",
        where=f"category = '{cat}'",
        window=30,
    )

# ---- trends -----------------------------------------------------------------------------------
_tx(
    "spend_prior_90d",
    "前90天消费额(30天前起)",
    "spend in the 90 days before the last 30",
    "float",
    "trend",
    "sum",
    "amount",
    where="ts < {as_of_ts} - INTERVAL 30 DAY",
    window=120,
)
_add(
    FeatureDef(
        "spend_trend_30_90",
        "消费趋势(近30天/前90天月均)",
        "spend of the last 30 days over the monthly average of the 90 days before",
        "float",
        "trend",
        "derived",
        "spend_30d / NULLIF(spend_prior_90d / 3.0, 0)",
    )
)

_add(
    FeatureDef(
        "spend_trend_90_180",
        "消费趋势(近90天/前90天)",
        "spend of the last 90 days over the 90 days before",
        "float",
        "trend",
        "derived",
        "spend_90d / NULLIF(spend_180d - spend_90d, 0)",
    )
)

# ---- payment channel and time-of-day habits -------------------------------------------------
for ch, zh in (("online", "线上"), ("QR", "扫码"), ("POS", "POS刷卡")):
    _tx(
        f"share_{ch.lower()}_90d",
        f"近90天{zh}支付占比",
        f"share of {ch} payments, last 90 days",
        "float",
        "channel",
        "avg",
        f"CASE WHEN channel = '{ch}' THEN 1.0 ELSE 0.0 END",
        window=90,
        default=None,
    )
_tx(
    "share_night_90d",
    "近90天夜间(22-6点)消费占比",
    "share of transactions 22:00-06:00, last 90 days",
    "float",
    "time",
    "avg",
    "CASE WHEN hour(ts) >= 22 OR hour(ts) < 6 THEN 1.0 ELSE 0.0 END",
    window=90,
    default=None,
)
_tx(
    "share_weekend_90d",
    "近90天周末消费占比",
    "share of weekend transactions, last 90 days",
    "float",
    "time",
    "avg",
    "CASE WHEN isodow(ts) >= 6 THEN 1.0 ELSE 0.0 END",
    window=90,
    default=None,
)
_tx(
    "share_lunch_90d",
    "近90天午餐时段消费占比",
    "share of transactions 11:00-14:00, last 90 days",
    "float",
    "time",
    "avg",
    "CASE WHEN hour(ts) >= 11 AND hour(ts) < 14 THEN 1.0 ELSE 0.0 END",
    window=90,
    default=None,
)


# ---- app activity -----------------------------------------------------------------------------
def _app(
    name: str,
    zh: str,
    en: str,
    agg: str,
    value: str,
    where: str | None,
    window: int,
    default: str | None = "0",
    type_: str = "int",
) -> None:
    _add(FeatureDef(name, zh, en, type_, "app", "app_events", value, agg, where, window, default))  # type: ignore[arg-type]


for w in (7, 30, 90):
    _app(
        f"logins_{w}d",
        f"近{w}天登录次数",
        f"app logins, last {w} days",
        "count",
        "1",
        "event_type = 'login'",
        w,
    )
_app(
    "days_since_login",
    "距最近登录天数",
    "days since the last app login (366 if none in a year)",
    "days_since_last",
    "ts",
    "event_type = 'login'",
    365,
    "366",
)
_app(
    "page_views_30d",
    "近30天页面浏览数",
    "app page views, last 30 days",
    "count",
    "1",
    "event_type = 'page_view'",
    30,
)
_app(
    "searches_30d",
    "近30天搜索次数",
    "app searches, last 30 days",
    "count",
    "1",
    "event_type = 'search'",
    30,
)
_app(
    "transfer_failures_30d",
    "近30天转账失败次数",
    "failed transfers, last 30 days",
    "count",
    "1",
    "event_type = 'transfer_failure'",
    30,
)
for page, (zh, en) in PAGE_FEATURES.items():
    _app(
        f"views_{page}_30d",
        f"近30天浏览{zh}次数",
        f"views of the {en}, last 30 days",
        "count",
        "1",
        f"page = '{page}'",
        30,
    )
# Search intent: what a customer is planning shows in their searches weeks before the spending.
SEARCH_INTENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "travel": ("出行", "travel", ("机票", "酒店", "旅游", "签证", "旅行险", "蜜月旅行")),
    "home": ("装修", "home improvement", ("装修", "装修贷", "家装分期", "家具", "家电")),
    "baby": ("母婴", "baby", ("奶粉", "少儿保险", "母婴", "育儿", "纸尿裤")),
    "car": ("购车", "car", ("车贷", "汽车分期", "车险", "4S店")),
    "wedding": ("婚庆", "wedding", ("婚庆", "钻戒", "婚纱照")),
}
for slug, (zh, en, words) in SEARCH_INTENTS.items():
    quoted = ", ".join(f"'{w}'" for w in words)
    _app(
        f"search_{slug}_30d",
        f"近30天{zh}相关搜索次数",
        f"searches about {en} ({'/'.join(words)}), last 30 days",
        "count",
        "1",
        f"search_query IN ({quoted})",
        30,
    )
_app(
    "views_travel_7d",
    "近7天浏览旅游相关页次数",
    "views of travel pages, last 7 days",
    "count",
    "1",
    "page IN ('card_travel', 'travel_deals')",
    7,
)

# ---- holdings (open at as_of) -----------------------------------------------------------------


def _hold(
    name: str,
    zh: str,
    en: str,
    type_: str,
    agg: str,
    value: str,
    where: str | None = None,
    default: str | None = "0",
) -> None:
    _add(FeatureDef(name, zh, en, type_, "holdings", "holdings", value, agg, where, None, default))  # type: ignore[arg-type]


_hold("n_cards", "持卡数", "credit cards held", "int", "count", "1", "product_id LIKE 'CC-%'")
for pid, slug, zh in (
    ("CC-PLAT", "platinum", "白金卡"),
    ("CC-GOLD", "gold", "金卡"),
    ("CC-YOUTH", "youth", "青年卡"),
):
    _hold(
        f"holds_{slug}",
        f"持有{zh}",
        f"holds the {slug} card",
        "bool",
        "max",
        f"product_id = '{pid}'",
        default="FALSE",
    )
_hold(
    "holds_cobrand",
    "持有联名卡",
    "holds a co-branded card",
    "bool",
    "max",
    "product_id LIKE 'CC-COBRAND%'",
    default="FALSE",
)
_hold(
    "holds_wealth",
    "持有理财",
    "holds a wealth product",
    "bool",
    "max",
    "product_id LIKE 'WM-%'",
    default="FALSE",
)
_hold(
    "holds_insurance",
    "持有保险",
    "holds insurance",
    "bool",
    "max",
    "product_id LIKE 'INS-%'",
    default="FALSE",
)
_hold(
    "wealth_balance",
    "理财持仓金额",
    "amount held in wealth products (CNY)",
    "float",
    "sum",
    "balance",
    "product_id LIKE 'WM-%'",
)
_hold(
    "max_wealth_risk",
    "持仓最高风险等级",
    "highest risk level held (1-5, 0 if none)",
    "int",
    "max",
    "CAST(substr(product_id, 5, 1) AS INTEGER)",
    "product_id LIKE 'WM-R%'",
)
_hold(
    "total_credit_limit",
    "总信用额度",
    "total credit limit of cards held (CNY)",
    "float",
    "sum",
    "credit_limit",
    "product_id LIKE 'CC-%'",
)


# ---- credit utilisation (issued statements only) ------------------------------------------
def _stmt(
    name: str, zh: str, en: str, type_: str, agg: str, value: str, window: int, default: str | None
) -> None:
    _add(FeatureDef(name, zh, en, type_, "credit", "statements", value, agg, None, window, default))  # type: ignore[arg-type]


_stmt(
    "utilisation_last",
    "最近账单额度使用率",
    "statement balance over limit, last issued statement",
    "float",
    "last",
    "statement_balance / NULLIF(credit_limit, 0)",
    62,
    None,
)
_stmt(
    "utilisation_avg_3m",
    "近3期平均额度使用率",
    "average utilisation, last 3 statements",
    "float",
    "avg",
    "statement_balance / NULLIF(credit_limit, 0)",
    124,
    None,
)
_stmt(
    "revolving_balance_last",
    "最近循环余额",
    "revolving balance on the last statement (CNY)",
    "float",
    "last",
    "revolving_balance",
    62,
    "0",
)
_stmt(
    "revolving_months_6m",
    "近6期循环期数",
    "statements with a revolving balance, last 6",
    "int",
    "count",
    "CASE WHEN revolving_balance > 0 THEN 1 END",
    215,
    "0",
)
_stmt(
    "missed_payments_6m",
    "近6期未还最低还款次数",
    "minimum payments missed, last 6 statements",
    "int",
    "count",
    "CASE WHEN min_payment_missed THEN 1 END",
    215,
    "0",
)


# ---- consumer-loan history ------------------------------------------------------------------
def _loan(
    name: str,
    zh: str,
    en: str,
    type_: str,
    agg: str,
    value: str,
    where: str,
    window: int | None,
    default: str | None = "0",
) -> None:
    _add(FeatureDef(name, zh, en, type_, "loans", "loans", value, agg, where, window, default))  # type: ignore[arg-type]


_loan(
    "loans_180d",
    "近6个月消费贷笔数",
    "consumer loans taken in the last 180 days",
    "int",
    "count",
    "1",
    "product_id LIKE 'LN-%'",
    180,
)
_loan(
    "loans_total",
    "历史消费贷笔数",
    "consumer loans ever taken",
    "int",
    "count",
    "1",
    "product_id LIKE 'LN-%'",
    None,
)
_loan(
    "loan_principal_180d",
    "近6个月贷款本金",
    "principal borrowed in the last 180 days (CNY)",
    "float",
    "sum",
    "principal",
    "product_id LIKE 'LN-%'",
    180,
)
_loan(
    "instalments_180d",
    "近6个月分期笔数",
    "instalment plans in the last 180 days",
    "int",
    "count",
    "1",
    "product_id LIKE 'INST-%'",
    180,
)
_loan(
    "has_car_loan",
    "有车贷",
    "has ever had a car loan",
    "bool",
    "max",
    "product_id = 'LN-CAR'",
    "product_id LIKE 'LN-%'",
    None,
    "FALSE",
)


# ---- marketing history (contacts sent, responses received) ---------------------------------------
for w in (30, 90):
    _add(
        FeatureDef(
            f"contacts_{w}d",
            f"近{w}天营销触达次数",
            f"marketing contacts sent, last {w} days",
            "int",
            "marketing",
            "contacts",
            "1",
            "count",
            "NOT is_holdout",
            w,
            "0",
        )
    )
for kind, zh, en in (
    ("delivered", "送达", "delivered"),
    ("opened", "打开", "opened"),
    ("clicked", "点击", "clicked"),
    ("approved", "转化", "converted (approved)"),
    ("complained", "投诉", "complaints about"),
):
    _add(
        FeatureDef(
            f"{kind}_365d",
            f"近365天营销{zh}次数",
            f"marketing messages {en}, last 365 days",
            "int",
            "marketing",
            "responses",
            "1",
            "count",
            f"response_type = '{kind}'",
            365,
            "0",
        )
    )
_add(
    FeatureDef(
        "open_rate_365d",
        "近365天营销打开率",
        "share of delivered marketing opened, last 365 days (smoothed: (opened+1)/(delivered+2))",
        "float",
        "marketing",
        "derived",
        "(opened_365d + 1.0) / (delivered_365d + 2.0)",
    )
)


# ---- profile ------------------------------------------------------------------------------------
def _profile(name: str, zh: str, en: str, type_: str, value: str) -> None:
    _add(FeatureDef(name, zh, en, type_, "profile", "customers", value))  # type: ignore[arg-type]


_profile(
    "age",
    "年龄",
    "age in whole years",
    "int",
    "CAST(floor(date_diff('day', birth_date, {as_of_date}) / 365.25) AS BIGINT)",
)
_profile(
    "tenure_days",
    "开户天数",
    "days since the relationship began",
    "int",
    "date_diff('day', signup_date, {as_of_date})",
)
_profile("gender", "性别", "gender", "string", "gender")
_profile("city_tier", "城市等级", "city tier", "string", "city_tier")
_profile("occupation", "职业", "occupation", "string", "occupation")
_profile("monthly_income", "月收入", "monthly income (CNY)", "float", "monthly_income")
_profile("credit_score", "信用评分", "credit score", "int", "credit_score")
_profile(
    "risk_level",
    "风险承受等级",
    "risk tolerance (1 = C1 … 5 = C5)",
    "int",
    "CAST(substr(risk_tolerance, 2, 1) AS INTEGER)",
)
_profile("children", "子女数", "number of children", "int", "children")
_profile("is_married", "已婚", "married", "bool", "marital_status = '已婚'")
_profile(
    "registration_channel", "获客渠道", "acquisition channel", "string", "registration_channel"
)

# ---- lifecycle ----------------------------------------------------------------------------------
_add(
    FeatureDef(
        "lifecycle_stage",
        "生命周期阶段",
        "lifecycle stage: new, growing, mature, declining, dormant",
        "string",
        "lifecycle",
        "derived",
        "CASE WHEN tenure_days < 90 THEN 'new' "
        "WHEN recency_days > 90 THEN 'dormant' "
        "WHEN spend_trend_90_180 < 0.6 THEN 'declining' "
        "WHEN spend_trend_90_180 > 1.5 OR tenure_days < 365 THEN 'growing' "
        "ELSE 'mature' END",
    )
)

FEATURES: dict[str, FeatureDef] = {f.name: f for f in _F}
if len(FEATURES) != len(_F):  # pragma: no cover - a declaration error caught at import
    raise RuntimeError("A feature name is declared twice in the catalogue.")


def feature(name: str) -> FeatureDef:
    """The definition of feature ``name``; unknown names are a clear error."""
    from difflib import get_close_matches

    from qianmian.errors import SchemaError

    try:
        return FEATURES[name]
    except KeyError:
        near = get_close_matches(name, FEATURES, n=3)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise SchemaError(f"There is no feature '{name}'.{hint}") from None


def features_in(group: str) -> list[str]:
    return [f.name for f in _F if f.group == group]


def catalogue_markdown() -> str:
    """The catalogue as Markdown; ``docs/features.md`` is generated from this."""
    lines = [
        "# Feature catalogue / 特征目录",
        "",
        "Generated by `qianmian features list --markdown` from "
        "`src/qianmian/features/catalogue.py`; do not edit by hand.",
        "Every feature is computed as of a point in time from data strictly before it; "
        "statements count only once issued (after their month ends).",
        "",
    ]
    for group in dict.fromkeys(f.group for f in _F):
        lines += [
            f"## {group}",
            "",
            "| feature | type | window | 说明 | description | source |",
            "|---|---|---|---|---|---|",
        ]
        for f in _F:
            if f.group != group:
                continue
            window = f"{f.window_days} d" if f.window_days else ""
            lines.append(f"| `{f.name}` | {f.type} | {window} | {f.zh} | {f.en} | {f.source} |")
        lines.append("")
    return "\n".join(lines)
