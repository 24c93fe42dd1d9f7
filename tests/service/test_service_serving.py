"""Serving: several processes only over shared backends; the engine closed at shutdown."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qianmian.config import Settings
from qianmian.errors import ConfigError
from qianmian.service.serving import check_shared_backends, server_app

SHARED = {
    "state": {"type": "redis"},
    "online": {"type": "redis"},
    "store": {"type": "postgres"},
}


@pytest.mark.parametrize(
    ("workers", "backends", "missing"),
    [
        (1, {}, None),  # one process: the embedded default is fine
        (2, SHARED, None),
        (2, {}, "state.type must be 'redis'"),
        (2, {**SHARED, "online": {"type": "memory"}}, "online.type must be 'redis'"),
        (4, {**SHARED, "store": {"type": "duckdb"}}, "DuckDB allows one writer process"),
    ],
)
def test_several_processes_need_shared_backends(
    tmp_path: Path, workers: int, backends: dict, missing: str | None
) -> None:
    settings = Settings(workspace=tmp_path, **backends)
    if missing is None:
        check_shared_backends(settings, workers)
    else:
        with pytest.raises(ConfigError, match=missing):
            check_shared_backends(settings, workers)


def test_the_server_closes_the_engine_at_shutdown_and_freezes_startup_objects(
    tmp_path: Path, engine, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    closed: list[str] = []
    for name in ("log", "state"):
        part = getattr(engine, name)
        original = part.close

        def close(name: str = name, original=original) -> None:  # type: ignore[no-untyped-def]
            closed.append(name)
            original()

        monkeypatch.setattr(part, "close", close)
    engine.features = _NoFeatures()
    app = server_app(Settings(workspace=tmp_path), engine)
    assert gc.get_freeze_count() > 0  # long-lived objects are out of the collector's sight
    with TestClient(app) as client:
        assert client.get("/v1/health/live").status_code == 200
        assert closed == []
    assert closed == ["log", "state"] and engine.features.closed
    gc.unfreeze()


class _NoFeatures:
    """The in-memory test engine has no feature store; the server closes one if present."""

    closed = False

    def close(self) -> None:
        self.closed = True
