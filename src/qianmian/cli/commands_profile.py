"""``qianmian profile CUSTOMER_ID``: a readable customer card (客户画像), PII masked."""

from __future__ import annotations

from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.columns import Columns
from rich.panel import Panel
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, state
from qianmian.store.base import Store

__all__ = ["customer_profile", "register"]

_KEY_FIGURES = (
    ("spend_30d", "近30天消费", "¥{:,.0f}"),
    ("spend_90d", "近90天消费", "¥{:,.0f}"),
    ("monetary_365d", "近一年消费", "¥{:,.0f}"),
    ("recency_days", "距上次消费", "{} 天"),
    ("frequency_90d", "近90天笔数", "{}"),
    ("avg_ticket_90d", "笔均", "¥{:,.0f}"),
    ("share_online_90d", "线上支付占比", "{:.0%}"),
    ("logins_30d", "近30天登录", "{} 次"),
    ("n_cards", "持卡数", "{}"),
    ("total_credit_limit", "总额度", "¥{:,.0f}"),
    ("utilisation_last", "额度使用率", "{:.0%}"),
    ("wealth_balance", "理财持仓", "¥{:,.0f}"),
    ("loans_180d", "近6个月贷款", "{} 笔"),
    ("lifecycle_stage", "生命周期", "{}"),
)


def _fmt(fmt: str, value: Any) -> str:
    if value is None or value != value:  # None or NaN
        return "—"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _masked_rows(table: pa.Table, table_name: str) -> list[dict[str, Any]]:
    from qianmian.data.masking import mask_frame

    masked = mask_frame(table, table_name)
    assert isinstance(masked, pa.Table)  # Arrow in, Arrow out
    return masked.to_pylist()


def customer_profile(store: Store, customer_id: int, as_of: Any = None) -> dict[str, Any]:
    """Everything the card shows, as plain data (masked identity, features, tags, segment)."""
    from qianmian.errors import NotFoundError
    from qianmian.features.compile import AsOf
    from qianmian.features.engine import StoreFeatureEngine, latest_as_of
    from qianmian.features.segments import segment_history
    from qianmian.features.tags import TagLibrary

    found = store.query("SELECT * FROM customers WHERE customer_id = $c", {"c": customer_id})
    if found.num_rows == 0:
        raise NotFoundError(f"customer_id {customer_id} is not in the store.")
    person = _masked_rows(found, "customers")[0]
    ids = (
        store.query(
            "SELECT id_type, id_value FROM identifiers WHERE customer_id = $c ORDER BY id_type",
            {"c": customer_id},
        )
        if store.has_table("identifiers")
        else None
    )
    identifiers = _masked_rows(ids, "identifiers") if ids is not None else []
    at = AsOf.of(as_of).at if as_of else latest_as_of(store)
    feats = StoreFeatureEngine(store).build(at, customers=[customer_id]).to_pylist()
    if not feats:
        raise NotFoundError(f"customer_id {customer_id} had not signed up before {at:%Y-%m-%d}.")
    row = feats[0]
    tags = TagLibrary.load().tags_of(row)
    history = segment_history(store, customer_id) if store.has_table("customer_segments") else None
    return {
        "person": person,
        "identifiers": identifiers,
        "as_of": at,
        "features": row,
        "tags": tags,
        "segments": history,
    }


@friendly_errors
def profile_command(
    customer_id: Annotated[int, typer.Argument(help="Unified customer id.")],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Point in time (default: the day after the latest transaction)."
        ),
    ] = None,
) -> None:
    """Show one customer's card: identity (masked), segment, tags and key figures."""
    from qianmian.features.catalogue import CATEGORY_SLUGS

    with state.settings.build_store() as store:
        p = customer_profile(store, customer_id, as_of)
    person, f = p["person"], p["features"]
    who = Table.grid(padding=(0, 2))
    who.add_column(style="dim")
    who.add_column()
    for label, value in (
        ("姓名", person.get("name")),
        ("性别", person.get("gender")),
        ("年龄", f.get("age")),
        ("城市", f"{person.get('city')}（{person.get('city_tier')}）"),
        ("职业", person.get("occupation")),
        ("风险承受", person.get("risk_tolerance")),
        ("开户", f"{person.get('signup_date')}（{f.get('tenure_days')} 天）"),
    ):
        who.add_row(label, "—" if value is None else str(value))
    for ident in p["identifiers"]:
        who.add_row(ident["id_type"], ident["id_value"])
    seg = p["segments"]
    if seg is not None and len(seg):
        last = seg.iloc[-1]
        seg_text = (
            f"[bold]{last['segment_name']}[/]\nRFM: {last['rfm_segment']} "
            f"(R{last['rfm_r']} F{last['rfm_f']} M{last['rfm_m']})\n"
            f"[dim]{last['version']} · as of {last['as_of']:%Y-%m-%d}[/]"
        )
        if len(seg) > 1:
            path = " → ".join(str(s) for s in seg["segment_name"].tail(4))
            seg_text += f"\n[dim]history: {path}[/]"
    else:
        seg_text = "[dim]no segment yet — run `qianmian segment`[/]"
    figures = Table.grid(padding=(0, 2))
    figures.add_column(style="dim")
    figures.add_column(justify="right")
    for name, label, fmt in _KEY_FIGURES:
        figures.add_row(label, _fmt(fmt, f.get(name)))
    shares = sorted(
        ((f.get(f"share_{slug}_90d") or 0.0, cat) for cat, slug in CATEGORY_SLUGS.items()),
        reverse=True,
    )[:3]
    top = "、".join(f"{cat} {share:.0%}" for share, cat in shares if share > 0) or "—"
    figures.add_row("消费结构 top 3", top)
    tags = "  ".join(f"[reverse] {t.name_zh} [/]" for t in p["tags"]) or "[dim]—[/]"
    console.print(
        Panel(
            Columns(
                [
                    Panel(who, title="客户 customer", border_style="cyan"),
                    Panel(seg_text, title="分群 segment", border_style="magenta"),
                    Panel(
                        figures, title=f"关键指标 as of {p['as_of']:%Y-%m-%d}", border_style="green"
                    ),
                ]
            ),
            title=f"客户画像 customer {customer_id}",
            subtitle="PII masked",
        )
    )
    console.print(Panel(tags, title=f"标签 tags ({len(p['tags'])})", border_style="yellow"))


def register(app: typer.Typer) -> None:
    app.command("profile")(profile_command)
