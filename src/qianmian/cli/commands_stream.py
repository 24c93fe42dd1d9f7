"""``qianmian stream run`` (the consumer), ``qianmian stream status`` and ``qianmian replay``."""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table

from qianmian.cli.context import console, err_console, friendly_errors, progress_bar, state

if TYPE_CHECKING:
    from qianmian.config import Settings
    from qianmian.decide.engine import DecisionEngine
    from qianmian.store.base import Store
    from qianmian.stream.bus.base import EventBus
    from qianmian.stream.processor import RunReport, StreamProcessor

__all__ = ["register", "stream_app"]

stream_app = typer.Typer(
    help="The event stream (实时事件流): consumer and status.", no_args_is_help=True
)

_DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
_IN_PROCESS_NOTE = (
    "[yellow]The event bus is in-process (stream.type = memory): it lives inside one process "
    "(`qianmian serve` consumes what POST /v1/events receives, `qianmian replay` what it "
    "replays). Set stream.type = redis for separate consumers.[/]"
)


# -- building -------------------------------------------------------------------------------------


def _engine_ready(settings: Settings, store: Store) -> DecisionEngine:
    """The engine as ``serve`` builds it, its backends loaded from the store if empty."""
    from qianmian.decide.engine_build import build_engine, load_serving_state, needs_loading

    engine = build_engine(settings, store=store)
    if needs_loading(engine.state, engine.features):
        with progress_bar() as bar:
            tasks: dict[str, TaskID] = {}

            def progress(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(f"loading {what}", total=total)
                bar.update(tasks[what], completed=done, total=total)

            load_serving_state(store, engine.state, engine.features, progress=progress)
    return engine


def _processor(
    bus: EventBus, engine: DecisionEngine, consumer: str, batch: int, event_time: bool
) -> StreamProcessor:
    from qianmian.stream.processor import EVENT_TIME, StreamProcessor
    from qianmian.stream.triggers import TriggerSet

    triggers = TriggerSet.load(catalogue=engine.catalogue)
    clock = EVENT_TIME if event_time else None
    return StreamProcessor(bus, engine, triggers, consumer=consumer, batch_size=batch, clock=clock)


def _close(engine: DecisionEngine) -> None:
    from qianmian.service.serving import close_engine

    close_engine(engine, engine.store)


def _summary(report: RunReport) -> str:
    p50, p99 = report.latency_ms(50), report.latency_ms(99)
    latency = f" · event→offer p50 {p50:,.0f} ms, p99 {p99:,.0f} ms" if p99 is not None else ""
    return (
        f"read {report.read:,} · processed {report.processed:,} · duplicates "
        f"{report.duplicates:,} · dead letters {report.dead:,} · responses {report.responses:,} "
        f"· trigger decisions {report.fired:,} · offers {report.offers:,} · "
        f"{report.events_per_second:,.0f} events/s{latency}"
    )


# -- stream run -----------------------------------------------------------------------------------


@stream_app.command("run")
@friendly_errors
def run_command(
    consumer: Annotated[
        str, typer.Option("--consumer", help="This consumer's name in the group (one per process).")
    ] = "consumer-1",
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=10_000, help="Most events per batch.")
    ] = 500,
    max_idle: Annotated[
        int | None,
        typer.Option(
            "--max-idle", min=1, help="Stop after this many empty reads in a row (default: never)."
        ),
    ] = None,
    event_time: Annotated[
        bool,
        typer.Option(
            "--event-time",
            help="Decide as of each event's own time (replays of past days) instead of now.",
        ),
    ] = False,
) -> None:
    """Consume the event stream: online features, responses, trigger offers (Ctrl-C stops)."""
    settings = state.settings
    if settings.stream.type == "memory":
        err_console.print(_IN_PROCESS_NOTE)
    engine = _engine_ready(settings, settings.build_store())
    bus = settings.build_event_bus()
    stop = threading.Event()

    def interrupted(signum: int, frame: Any) -> None:
        if stop.is_set():  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        stop.set()
        err_console.print("[yellow]Stopping after this batch (Ctrl-C again to quit now).[/]")

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        processor = _processor(bus, engine, consumer, batch, event_time)
        with console.status(f"千面 stream consumer {escape(consumer)}: waiting for events") as line:
            report = processor.run(
                stop=stop,
                max_idle_steps=max_idle,
                progress=lambda total: line.update(f"{escape(consumer)}: {_summary(total)}"),
            )
    finally:
        signal.signal(signal.SIGINT, previous)
        bus.close()
        _close(engine)
    verb = "Stopped" if stop.is_set() else "Done"
    console.print(f"{verb}. {_summary(report)}", highlight=False)


# -- stream status --------------------------------------------------------------------------------


@stream_app.command("status")
@friendly_errors
def status_command(
    dead: Annotated[
        int, typer.Option("--dead", min=0, max=1_000, help="Dead letters to list.")
    ] = 10,
) -> None:
    """Length, lag, pending and dead letters of the stream; the latest dead letters' reasons."""
    settings = state.settings
    if settings.stream.type == "memory":
        err_console.print(_IN_PROCESS_NOTE)
    with settings.build_event_bus() as bus:
        status = bus.status()
        letters = bus.dead_letters(dead) if dead else []
    table = Table(title="事件流 event stream")
    table.add_column("", style="bold")
    table.add_column("value", justify="right")
    table.add_row("length 消息数", f"{status.length:,}")
    table.add_row("lag 未投递", f"{status.lag:,}")
    table.add_row("pending 处理中", f"{status.pending:,}")
    table.add_row("dead letters 死信", f"{status.dead_letters:,}")
    table.add_row("processed 已处理", f"{status.processed:,}")
    for name, pending in status.consumers.items():
        table.add_row(f"consumer {escape(name)}", f"{pending:,} pending")
    if not status.consumers:
        table.add_row("consumers", "none yet")
    console.print(table)
    if not letters:
        return
    dead_table = Table(title=f"latest dead letters 最近死信 ({len(letters)})")
    for col in ("time", "message", "event", "type", "reason"):
        dead_table.add_column(col, overflow="fold")
    for letter in letters:
        dead_table.add_row(
            f"{letter.ts:%Y-%m-%d %H:%M:%S}",
            letter.message_id,
            escape(str(letter.event.get("event_id", "-"))),
            escape(str(letter.event.get("type", "-"))),
            escape(letter.reason),
        )
    console.print(dead_table)


# -- replay ---------------------------------------------------------------------------------------


@friendly_errors
def replay_command(
    start: Annotated[
        datetime,
        typer.Option("--from", formats=_DATE_FORMATS, help="Start of the window (China time)."),
    ],
    end: Annotated[
        datetime,
        typer.Option(
            "--to", formats=_DATE_FORMATS, help="End of the window, exclusive (a day: --to next)."
        ),
    ],
    speed: Annotated[
        float,
        typer.Option(
            min=0, help="0: as fast as possible; 60: a simulated minute per second; 1: real time."
        ),
    ] = 0.0,
) -> None:
    """Feed the stored bank's events of a window through the event stream.

    Transactions and app logins, page views, searches and failed transfers become stream
    events in time order. With the in-process bus this command also consumes them (deciding
    as of each event's time); with Redis Streams, `qianmian stream run` processes consume them.
    """
    from qianmian.stream.replay import count_simulated_events, replay, simulated_events

    settings = state.settings
    store = settings.build_store()
    embedded = settings.stream.type == "memory"
    engine = _engine_ready(settings, store) if embedded else None
    bus = settings.build_event_bus()
    stop, worker = threading.Event(), None
    totals: list[RunReport] = []
    failed: list[Exception] = []
    try:
        total = count_simulated_events(store, start, end)
        if engine is not None:
            processor = _processor(bus, engine, "replay", 500, event_time=True)

            def consume() -> None:
                try:
                    totals.append(processor.run(stop=stop, block_ms=50))
                except Exception as e:  # raised again in the command's thread
                    failed.append(e)

            worker = threading.Thread(target=consume, name="qianmian-replay-consumer")
            worker.start()
        with progress_bar() as bar:
            task = bar.add_task(f"replay ×{speed:g}" if speed else "replay", total=total)
            published = replay(
                bus,
                simulated_events(store, start, end),
                speed=speed,
                progress=lambda n: bar.update(task, completed=n),
            )
        while worker is not None and worker.is_alive():  # let the consumer drain the bus
            status = bus.status()
            if not (status.lag or status.pending):
                break
            stop.wait(0.05)
    finally:
        stop.set()
        if worker is not None:
            worker.join()
        bus.close()
        if engine is not None:
            _close(engine)
        else:
            store.close()
    if failed:
        raise failed[0]
    window = f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}"
    console.print(f"Published {published:,} events ({window}).")
    if totals:
        console.print(f"Consumed here: {_summary(totals[0])}", highlight=False)
    else:
        console.print("Consumers: `qianmian stream run` (Redis Streams).")


def register(app: typer.Typer) -> None:
    app.add_typer(stream_app, name="stream")
    app.command("replay")(replay_command)
