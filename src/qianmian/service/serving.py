"""Running the decision API: one server process, or several sharing Redis and PostgreSQL.

:func:`server_app` builds what one server process serves: the engine from settings, the app
around it, and a shutdown that closes the engine's parts (which flushes the decision log). It
then moves every long-lived object out of the garbage collector's sight (``gc.freeze``): the
catalogue, the model and the rules live as long as the server, and walking them in a full
collection stalled every request in flight for ~100 ms at 500 requests/s.

Several processes (``qianmian serve --workers N``) each build their own engine; they share
caps, budgets and preferences only through the backends, so :func:`check_shared_backends`
refuses an in-process decision state or feature store, and a DuckDB store (one writer process
only), with the reason.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from qianmian.config import Settings, load_settings
from qianmian.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from qianmian.decide.engine import DecisionEngine
    from qianmian.store.base import Store

__all__ = ["app_from_environment", "check_shared_backends", "close_engine", "server_app"]


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


def server_app(
    settings: Settings, engine: DecisionEngine | None = None, store: Store | None = None
) -> FastAPI:
    """The app one server process serves; closes the engine (and store) when it shuts down."""
    from qianmian.decide.engine_build import build_engine
    from qianmian.service.app import create_app

    if engine is None:
        store = settings.build_store()
        engine = build_engine(settings, store=store)
    app = create_app(settings, engine)
    inner = app.router.lifespan_context
    built = engine

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        async with inner(app_):
            try:
                yield
            finally:
                close_engine(built, store)

    app.router.lifespan_context = lifespan
    gc.collect()
    gc.freeze()
    return app


def app_from_environment() -> FastAPI:
    """For uvicorn's worker processes: settings from the environment (``QIANMIAN_*``)."""
    return server_app(load_settings())
