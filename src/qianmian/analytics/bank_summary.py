"""The bank summary page: who the customers are and how they spend, as charts in one HTML file.

Figures are computed by SQL in the store (so they work the same on DuckDB and PostgreSQL) and
drawn with Plotly, whose JavaScript is embedded in the page: the file opens offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from qianmian.analytics.html_report import write_html_report
from qianmian.data.schema.vocab import CITY_TIERS
from qianmian.store.base import Store

__all__ = ["BankSummary", "summarise_bank", "write_summary_html"]

_AGE_BANDS = (
    "CASE WHEN age < 25 THEN '18-24' WHEN age < 35 THEN '25-34' WHEN age < 45 "
    "THEN '35-44' WHEN age < 55 THEN '45-54' WHEN age < 65 THEN '55-64' ELSE '65+' END"
)


@dataclass
class BankSummary:
    key_figures: dict[str, str]
    by_tier_age: pd.DataFrame
    monthly_by_category: pd.DataFrame
    daily_ecommerce: pd.DataFrame


def summarise_bank(store: Store) -> BankSummary:
    """Compute the summary's figures from the store's tables."""
    q = lambda sql: store.query(sql).to_pandas()  # noqa: E731
    ref = q("SELECT max(ts) AS t FROM transactions")["t"].iloc[0]
    ref_date = pd.Timestamp(ref).date().isoformat()
    by_tier_age = q(f"""
        WITH c AS (SELECT city_tier,
                          CAST(date_part('year', age(DATE '{ref_date}', birth_date)) AS INTEGER)
                          AS age FROM customers)
        SELECT city_tier, {_AGE_BANDS} AS age_band, count(*) AS customers
        FROM c GROUP BY 1, 2 ORDER BY 1, 2""")
    monthly = q("""
        SELECT CAST(date_trunc('month', ts) AS DATE) AS month, category,
               sum(amount) AS spend FROM transactions GROUP BY 1, 2 ORDER BY 1, 2""")
    daily = q("""
        SELECT CAST(ts AS DATE) AS day, sum(amount) AS spend, count(*) AS transactions
        FROM transactions WHERE category = '电商' GROUP BY 1 ORDER BY 1""")
    kf = q("""
        SELECT (SELECT count(*) FROM customers) AS customers,
               (SELECT count(*) FROM transactions) AS transactions,
               (SELECT sum(amount) FROM transactions) AS spend,
               (SELECT count(*) FROM app_events) AS app_events,
               (SELECT count(*) FROM holdings) AS holdings,
               (SELECT min(ts) FROM transactions) AS first_ts,
               (SELECT max(ts) FROM transactions) AS last_ts""").iloc[0]
    key_figures = {
        "客户数 customers": f"{int(kf.customers):,}",
        "交易笔数 transactions": f"{int(kf.transactions):,}",
        "消费总额 total spend": f"¥{float(kf.spend) / 1e8:,.2f} 亿",
        "App行为 app events": f"{int(kf.app_events):,}",
        "持有产品 holdings": f"{int(kf.holdings):,}",
        "时间窗 window": f"{pd.Timestamp(kf.first_ts).date()} → {pd.Timestamp(kf.last_ts).date()}",
    }
    return BankSummary(key_figures, by_tier_age, monthly, daily)


def _figures(s: BankSummary) -> list[go.Figure]:
    tiers = [t for t in CITY_TIERS.values if t in set(s.by_tier_age["city_tier"])]
    fig1 = go.Figure()
    for band in sorted(s.by_tier_age["age_band"].unique()):
        sub = s.by_tier_age[s.by_tier_age["age_band"] == band].set_index("city_tier")
        fig1.add_bar(name=band, x=tiers, y=[int(sub["customers"].get(t, 0)) for t in tiers])
    fig1.update_layout(
        barmode="stack",
        title="客户分布：城市等级 × 年龄段 / Customers by city tier and age band",
        xaxis_title="城市等级 city tier",
        yaxis_title="客户数 customers",
        legend_title="年龄段 age",
    )
    m = s.monthly_by_category.copy()
    m["month"] = pd.to_datetime(m["month"])
    fig2 = go.Figure()
    totals = m.groupby("category")["spend"].sum().sort_values(ascending=False)
    order = ["电商", *[c for c in totals.index if c != "电商"]]  # e-commerce at the base
    for cat in order:
        sub = m[m["category"] == cat]
        fig2.add_bar(name=cat, x=sub["month"], y=sub["spend"] / 1e4)
    fig2.update_layout(
        barmode="stack",
        title="月度消费（按类别）/ Monthly spend by category",
        yaxis_title="消费额 spend (万元 10k CNY)",
        xaxis_title="月份 month",
    )
    d = s.daily_ecommerce.copy()
    d["day"] = pd.to_datetime(d["day"])
    fig3 = go.Figure(go.Scatter(x=d["day"], y=d["spend"] / 1e4, mode="lines", name="电商"))
    for label, month, day in (("双11", 11, 11), ("618", 6, 18)):
        hits = d[(d["day"].dt.month == month) & (d["day"].dt.day == day)]
        for _, row in hits.iterrows():
            fig3.add_annotation(x=row["day"], y=row["spend"] / 1e4, text=label, showarrow=True)
    fig3.update_layout(
        title="每日电商消费：双11与618 / Daily e-commerce spend: Double 11 and 618",
        yaxis_title="消费额 spend (万元)",
        xaxis_title="日期 day",
    )
    return [fig1, fig2, fig3]


def write_summary_html(
    summary: BankSummary,
    path: Path,
    title: str = "千面银行 · 客户概览",
    extra_figures: list[go.Figure] | None = None,
) -> Path:
    """Write the summary as one self-contained HTML file (Plotly's JS embedded once).

    ``extra_figures`` (e.g. segments and tags) are appended after the bank's own charts.
    """
    return write_html_report(
        path,
        title,
        _figures(summary) + list(extra_figures or []),
        key_figures=summary.key_figures,
        note="模拟银行数据（qianmian world），所有客户与交易均为合成数据。"
        "Simulated bank data: every customer and transaction is synthetic.",
    )
