"""Charts of the customer base seen through features: segments, their profiles, RFM, tags.

Inputs are the outputs of the customer-360 parts (a feature table, a segmentation run and tag
coverage); outputs are Plotly figures for the HTML summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = ["PROFILE_MEASURES", "CustomerSummary", "customer_figures", "segment_profile_index"]

# (label, how to compute from the feature table) — indexed against the whole population.
PROFILE_MEASURES: dict[str, tuple[str, ...]] = {
    "月均消费 monthly spend": ("spend_90d",),
    "年龄 age": ("age",),
    "月收入 income": ("monthly_income",),
    "旅行占比 travel share": ("share_travel_90d", "share_hotel_90d", "share_airline_90d"),
    "网购占比 e-commerce share": ("share_ecommerce_90d",),
    "餐饮占比 dining share": ("share_dining_90d",),
    "家庭占比 family share": ("share_baby_90d", "share_education_90d"),
    "理财持有率 holds wealth": ("holds_wealth",),
    "App登录 logins": ("logins_30d",),
    "距上次消费 recency": ("recency_days",),
}


@dataclass
class CustomerSummary:
    segments: pd.DataFrame  # name_zh, name_en, size, share, description_zh
    rfm: pd.DataFrame  # rfm_segment, rfm_segment_en, size, share
    profile_index: pd.DataFrame  # segments × measures, 100 = population average
    tag_coverage: pd.DataFrame  # name_zh, category, customers, share


def segment_profile_index(
    features: pd.DataFrame, assignments: pd.DataFrame, names: dict[int, str]
) -> pd.DataFrame:
    """Mean of each measure per segment, as an index where 100 is the population average."""
    df = features.merge(assignments[["customer_id", "cluster"]], on="customer_id")
    cols = {}
    for label, parts in PROFILE_MEASURES.items():
        cols[label] = df[list(parts)].astype(float).fillna(0.0).sum(axis=1)
    measures = pd.DataFrame(cols)
    overall = measures.mean().replace(0, np.nan)
    per = measures.groupby(df["cluster"]).mean()
    index = (per / overall * 100).round(0)
    index.index = [names.get(int(c), str(c)) for c in index.index]
    return index


def customer_figures(s: CustomerSummary) -> list[go.Figure]:
    seg = s.segments.sort_values("size")
    fig1 = go.Figure(
        go.Bar(
            x=seg["size"],
            y=seg["name_zh"] + " " + seg["name_en"],
            orientation="h",
            text=[f"{v:.1%}" for v in seg["share"]],
            textposition="outside",
            hovertext=seg.get("description_zh"),
            marker_color="#4C78A8",
        )
    )
    fig1.update_layout(
        title="客户分群规模 / Segment sizes (KMeans, named from profiles)",
        xaxis_title="客户数 customers",
        margin={"l": 220},
    )
    idx = s.profile_index
    # colour on log2(index / 100): 200 and 50 are equally far from average; text shows the index
    shade = np.log2(idx.clip(lower=5).to_numpy(dtype=float) / 100)
    fig2 = go.Figure(
        go.Heatmap(
            z=shade,
            x=list(idx.columns),
            y=list(idx.index),
            colorscale="RdBu_r",
            zmid=0,
            zmin=-3,
            zmax=3,
            text=idx.fillna(0).to_numpy().astype(int),
            texttemplate="%{text}",
            colorbar={
                "title": "指数 index",
                "tickvals": [-3, -1, 0, 1, 3],
                "ticktext": ["12", "50", "100", "200", "800"],
            },
        )
    )
    fig2.update_layout(
        title="分群画像（100 = 全体平均）/ Segment profiles (100 = average)", margin={"l": 140}
    )
    rfm = s.rfm
    fig3 = go.Figure(
        go.Bar(
            x=rfm["rfm_segment"],
            y=rfm["size"],
            text=[f"{v:.1%}" for v in rfm["share"]],
            textposition="outside",
            marker_color="#F58518",
        )
    )
    fig3.update_layout(
        title="RFM 八类客户 / RFM segments (Chinese 8-class model)", yaxis_title="客户数 customers"
    )
    tags = s.tag_coverage.sort_values("share", ascending=True).tail(25)
    fig4 = go.Figure(
        go.Bar(
            x=tags["share"] * 100,
            y=tags["name_zh"],
            orientation="h",
            text=[f"{v:.0%}" for v in tags["share"]],
            textposition="outside",
            marker_color="#54A24B",
            hovertext=tags["category"],
        )
    )
    fig4.update_layout(
        title="标签覆盖率（前25）/ Tag coverage (top 25)",
        xaxis_title="覆盖率 coverage (%)",
        height=700,
        margin={"l": 160},
    )
    return [fig1, fig2, fig3, fig4]
