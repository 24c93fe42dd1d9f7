"""``qianmian decide`` (one decision, printed as a card) and ``qianmian serve`` (the API)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel
from rich.progress import TaskID
from rich.table import Table

from qianmian.cli.context import console, friendly_errors, progress_bar, state

if TYPE_CHECKING:
    from qianmian.decide.decision import Decision
    from qianmian.decide.engine import DecisionEngine

__all__ = ["CHANNEL_ALIASES", "register"]

CHANNEL_ALIASES = {
    "app": "in_app",
    "push": "app_push",
    "call": "call_center",
    "phone": "call_center",
}
_STAGE_ZH = {
    "eligibility": "准入",
    "applicability": "适用",
    "suitability": "适当性",
    "contact_policy": "触达规则",
    "arbitration": "排序",
    "control": "对照组",
    "capacity": "额度/预算",
}


def _load_with_progress(engine: DecisionEngine, customer_id: int | None = None) -> None:
    """Fill in-process (or empty) backends from the store, showing progress."""
    from qianmian.decide.engine_build import load_serving_state, needs_loading

    if engine.store is None or not needs_loading(engine.state, engine.features):
        return
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(f"loading {what}", total=total)
            bar.update(tasks[what], completed=done, total=total)

        load_serving_state(
            engine.store, engine.state, engine.features, progress=progress, customer_id=customer_id
        )


def _print_decision(decision: Decision, lang: str) -> None:
    chosen = decision.chosen
    flags = []
    if decision.fallback:
        flags.append(f"[yellow]fallback: {decision.fallback_reason}[/]")
    if decision.arm == "control":
        flags.append("[cyan]随机对照组 control group: nothing is sent[/]")
    head = (
        f"客户 customer {decision.request.customer_id} · {decision.request.ts:%Y-%m-%d %H:%M} · "
        f"arm {decision.arm} · {decision.latency_ms:.1f} ms · catalogue {decision.catalogue_version}"
    )
    if chosen is None:
        body = "[bold]不发送 nothing to send[/]"
    else:
        lines = [
            f"[bold green]{chosen.name}[/]  ({chosen.offer_id} · {chosen.channel} · "
            f"campaign {chosen.campaign_id or '-'})",
            f"copy: {chosen.copy}",
            f"expected incremental value ¥{chosen.expected_value:,.2f} · "
            f"action probability {chosen.action_probability:.2f}",
            *(f"· {r}" for r in chosen.reasons),
        ]
        for extra in decision.offers[1:]:
            lines.append(f"#{extra.rank} {extra.name} ({extra.offer_id} · {extra.channel})")
        body = "\n".join(lines)
    console.print(Panel("\n".join([body, *flags]), title="千面 decision", subtitle=head))
    table = Table(title="candidates by stage 候选权益及剔除原因 (channels merged)")
    for col in ("stage", "offer", "channels", "campaign", "reason / EV"):
        table.add_column(col)
    rows: dict[tuple[str, str, str, str], list[str]] = {}
    for c in decision.candidates:
        fate: str = c.removed_by or "presented"
        note = c.reason or (f"EV ¥{c.expected_value:,.2f}" if c.expected_value is not None else "")
        rows.setdefault((fate, c.offer_id, c.campaign_id or "-", note), []).append(c.channel)
    order = {s: i for i, s in enumerate(("presented", *_STAGE_ZH))}
    for (fate, offer, campaign, note), channels in sorted(
        rows.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])
    ):
        label = f"{_STAGE_ZH.get(fate, '推荐')} {fate}" if lang == "zh" else fate
        table.add_row(label, offer, ", ".join(channels), campaign, note)
    console.print(table)


def decide_command(
    customer_id: Annotated[int, typer.Argument(help="Unified customer id.")],
    channel: Annotated[
        str | None,
        typer.Option(
            help="Channel: app (in-app banner), push, sms, email, call, wechat; "
            "default: the engine chooses."
        ),
    ] = None,
    placement: Annotated[
        str | None, typer.Option(help="In-app placement, e.g. home_banner.")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option(help="Triggering event: transaction, login, page_view ...")
    ] = None,
    amount: Annotated[float | None, typer.Option(help="The event's amount, CNY.")] = None,
    category: Annotated[str | None, typer.Option(help="The event's spending category.")] = None,
    at: Annotated[
        datetime | None,
        typer.Option(
            help="Decision time (China time); default: now.",
            formats=["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"],
        ),
    ] = None,
    max_offers: Annotated[int, typer.Option(min=1, max=5, help="Offers to return.")] = 1,
) -> None:
    """One decision for one customer, printed as a card with every candidate's fate."""
    from qianmian.decide.decision import DecisionRequest
    from qianmian.decide.engine_build import build_engine
    from qianmian.decide.feedback import now_china

    settings = state.settings
    store = settings.build_store()
    engine = build_engine(settings, store=store)
    try:
        _load_with_progress(engine, customer_id)
        event = None
        if event_type or amount is not None or category:
            event = {"type": event_type, "amount": amount, "category": category}
        request = DecisionRequest(
            customer_id=customer_id,
            ts=at or now_china(),
            channel=CHANNEL_ALIASES.get(channel, channel) if channel else None,
            placement=placement,
            event=event,
            max_offers=max_offers,
        )
        decision = engine.decide(request)
        _print_decision(decision, settings.language)
    finally:
        engine.log.close()
        engine.state.close()
        engine.features.close()
        store.close()


def serve_command(
    host: Annotated[
        str | None, typer.Option(help="Interface (default from settings: 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings: 8000).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes. More than one needs Redis for the state and features and "
            "PostgreSQL for the store, which they share.",
        ),
    ] = 1,
    load: Annotated[
        bool,
        typer.Option(
            "--load/--no-load",
            help="Load customers and features from the store into the state backends at start "
            "(skipped when a Redis backend already holds a snapshot).",
        ),
    ] = True,
) -> None:
    """Serve the decision API on localhost (FastAPI; OpenAPI docs at /docs)."""
    import os

    import uvicorn

    from qianmian.decide.engine_build import build_engine
    from qianmian.service.serving import check_shared_backends, close_engine, server_app

    settings = state.settings
    check_shared_backends(settings, workers)
    store = settings.build_store()
    engine = build_engine(settings, store=store)
    if load:
        _load_with_progress(engine)
    bind_host, bind_port = host or settings.service.host, port or settings.service.port
    console.print(
        f"千面 decision API on http://{bind_host}:{bind_port} with {workers} process(es) "
        "(docs: /docs)"
    )
    if workers == 1:
        uvicorn.run(
            server_app(settings, engine, store),
            host=bind_host,
            port=bind_port,
            log_level="warning",
            access_log=False,
        )
        return
    close_engine(engine, store)  # each worker process builds its own from the same settings
    os.environ["QIANMIAN_WORKSPACE"] = str(settings.workspace)  # what the workers read
    uvicorn.run(
        "qianmian.service.serving:app_from_environment",
        factory=True,
        workers=workers,
        host=bind_host,
        port=bind_port,
        log_level="warning",
        access_log=False,
    )


def register(app: typer.Typer) -> None:
    app.command("decide")(friendly_errors(decide_command))
    app.command("serve")(friendly_errors(serve_command))
