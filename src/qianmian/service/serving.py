"""Running the decision API: one server process, or several sharing Redis and PostgreSQL.

:func:`server_app` builds what one server process serves: the engine from settings, the app
around it, and a shutdown that closes the engine's parts (which flushes the decision log). It
then moves every long-lived object out of the garbage collector's sight (``gc.freeze``): the
catalogue, the model and the rules live as long as the server, and walking them in a full
collection stalled every request in flight for ~100 ms at 500 requests/s.

Events posted to ``POST /v1/events`` go to the configured event bus. With the in-process bus
(``stream.type = "memory"``, the embedded default) the server also consumes them: a
:class:`~qianmian.stream.processor.StreamProcessor` runs on a background thread from start-up
to shutdown (stopped after its current batch, then joined, before the engine is closed). With
Redis Streams the consumers are ``qianmian stream run`` processes.

Several processes (``qianmian serve --workers N``) each build their own engine; they share
caps, budgets and preferences only through the backends, so :func:`check_shared_backends`
refuses an in-process decision state or feature store, and a DuckDB store (one writer process
only), with the reason.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from qianmian.config import Settings, load_settings
from qianmian.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from qianmian.decide.engine import DecisionEngine
    from qianmian.store.base import Store
    from qianmian.stream.bus.base import EventBus

__all__ = [
    "EmbeddedConsumer",
    "app_from_environment",
    "check_shared_backends",
    "close_engine",
    "server_app",
]

logger = logging.getLogger(__name__)
CONSUMER_NAME = "serve"
CONSUMER_RETRY_SECONDS = 1.0
CONSUMER_JOIN_SECONDS = 30.0


def check_shared_backends(settings: Settings, workers: int) -> None:
    """Refuse several server processes over backends they cannot share."""
    if workers <= 1:
        return
    problems = []
    if settings.state.type != "redis":
        problems.append("state.type must be 'redis' (caps and budgets are shared there)")
    if settings.online.type != "redis":
        problems.append("online.type must be 'redis' (each process would hold its own features)")
    if settings.store.type != "postgres":
        problems.append("store.type must be 'postgres' (DuckDB allows one writer process)")
    if problems:
        raise ConfigError(
            f"{workers} server processes need backends they can share: {'; '.join(problems)}. "
            "Configure them in qianmian.toml or QIANMIAN_* variables, or serve with one worker."
        )


def close_engine(engine: DecisionEngine, store: Store | None) -> None:
    """Close the engine's parts (flushing the decision log) and the store."""
    engine.log.close()
    engine.state.close()
    engine.features.close()
    if store is not None:
        store.close()


class EmbeddedConsumer:
    """The stream processor of a server with an in-process bus, on a background thread.

    Triggers are the packaged ones, checked against the engine's catalogue; if that check
    fails the consumer still counts events into features and records responses, and the
    reason is logged (a service keeps serving decisions). A failed run — a backend down, a
    bug — is logged and restarted after a second; its batch stays pending and is redone.
    """

    def __init__(self, bus: EventBus, engine: DecisionEngine) -> None:
        from qianmian.stream.processor import StreamProcessor
        from qianmian.stream.triggers import TriggerSet

        try:
            triggers = TriggerSet.load(catalogue=engine.catalogue)
        except ConfigError as e:
            logger.error("Triggers are off in this server's stream consumer: %s", e)
            triggers = TriggerSet([])
        self.processor = StreamProcessor(bus, engine, triggers, consumer=CONSUMER_NAME)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._consume, name="qianmian-stream", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = CONSUMER_JOIN_SECONDS) -> None:
        """Stop after the batch in hand and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("The stream consumer did not stop within %.0f s.", timeout)

    def _consume(self) -> None:
        while not self._stop.is_set():
            try:
                self.processor.run(stop=self._stop)
            except Exception:  # a consumer thread must outlive one bad batch; it is redone
                logger.exception(
                    "The stream consumer failed; its batch stays pending. Restarting in %.0f s.",
                    CONSUMER_RETRY_SECONDS,
                )
                self._stop.wait(CONSUMER_RETRY_SECONDS)


def server_app(
    settings: Settings,
    engine: DecisionEngine | None = None,
    store: Store | None = None,
    *,
    bus: EventBus | None = None,
) -> FastAPI:
    """The app one server process serves; closes the engine (and store) when it shuts down.

    ``bus`` (default: the configured one) receives ``POST /v1/events``; an in-process bus is
    also consumed here (see the module docstring). The server closes the bus at shutdown.
    """
    from qianmian.decide.engine_build import build_engine
    from qianmian.service.app import create_app

    if engine is None:
        store = settings.build_store()
        engine = build_engine(settings, store=store)
    if bus is None:
        bus = settings.build_event_bus()
    app = create_app(settings, engine, bus=bus)
    inner = app.router.lifespan_context
    built, events = engine, bus
    embedded = settings.stream.type == "memory"

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        consumer = EmbeddedConsumer(events, built) if embedded else None
        app_.state.consumer = consumer
        async with inner(app_):
            if consumer is not None:
                consumer.start()
            try:
                yield
            finally:
                if consumer is not None:
                    consumer.stop()
                events.close()
                close_engine(built, store)

    app.router.lifespan_context = lifespan
    gc.collect()
    gc.freeze()
    return app


def app_from_environment() -> FastAPI:
    """For uvicorn's worker processes: settings from the environment (``QIANMIAN_*``)."""
    return server_app(load_settings())
