"""Fixtures for the service tests: a test engine over a real catalogue and SQLite log, keys."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_engine import InMemoryEngine, make_catalogue

from qianmian.config import Settings
from qianmian.decide.catalogue import Catalogue
from qianmian.decide.log.sqlite import SQLiteDecisionLog
from qianmian.service.app import create_app
from qianmian.service.keys import ROLES, ApiKeyStore

LIMITED_RATE = "3/minute"


@dataclass(frozen=True)
class KeyFile:
    """A key file made once per session: one key per role, and one with its own low limit."""

    path: Path
    by_role: dict[str, str]
    limited: str


@pytest.fixture(scope="session")
def service_catalogue() -> Catalogue:
    return make_catalogue()


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> KeyFile:
    path = tmp_path_factory.mktemp("service-keys") / "api_keys.json"
    store = ApiKeyStore(path)
    by_role = {role: store.create(f"{role}-key", role) for role in ROLES}
    limited = store.create("limited-key", "engineer", rate_limit=LIMITED_RATE)
    return KeyFile(path, by_role, limited)


@pytest.fixture()
def keys(key_file: KeyFile, tmp_path: Path) -> ApiKeyStore:
    """This test's own copy of the session's key file (changes stay in the test)."""
    path = tmp_path / "api_keys.json"
    shutil.copy(key_file.path, path)
    return ApiKeyStore(path)


@pytest.fixture()
def auth(key_file: KeyFile) -> dict[str, dict[str, str]]:
    """Headers per role: ``auth["admin"]`` → ``{"X-API-Key": ...}``."""
    return {role: {"X-API-Key": key} for role, key in key_file.by_role.items()}


@pytest.fixture()
def decision_log(tmp_path: Path) -> Iterator[SQLiteDecisionLog]:
    with SQLiteDecisionLog(tmp_path / "decisions.db") as log:
        yield log


@pytest.fixture()
def engine(service_catalogue: Catalogue, decision_log: SQLiteDecisionLog) -> InMemoryEngine:
    return InMemoryEngine(service_catalogue, decision_log)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(workspace=tmp_path)


@pytest.fixture()
def client(settings: Settings, engine: InMemoryEngine, keys: ApiKeyStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine, keys=keys)) as test_client:
        yield test_client
