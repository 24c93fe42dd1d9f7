"""API keys: hashed at rest, shown once, verified, disabled, reloaded when the file changes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import time
from datetime import datetime
from pathlib import Path

import pytest

from qianmian.errors import ConfigError, NotFoundError, ValidationError
from qianmian.service.errors import TooManyRequests
from qianmian.service.keys import ROLES, ApiKey, ApiKeyStore
from qianmian.service.limits import RequestLimiter


@pytest.fixture()
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "api_keys.json"


def test_the_file_holds_hashes_never_keys(path: Path) -> None:
    store = ApiKeyStore(path)
    key = store.create("mobile-app", "engineer", rate_limit="100/second")
    text = path.read_text(encoding="utf-8")
    secret = key.split("_", 2)[2]
    assert key not in text and secret not in text
    (record,) = json.loads(text)["keys"]
    assert record["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert (record["name"], record["role"], record["rate_limit"]) == (
        "mobile-app",
        "engineer",
        "100/second",
    )
    assert record["disabled"] is False and datetime.fromisoformat(record["created_at"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("role", ROLES)
def test_a_key_verifies_as_its_role(role: str, path: Path) -> None:
    store = ApiKeyStore(path)
    key = store.create(f"{role}-1", role)
    found = store.verify(key)
    assert found is not None and (found.name, found.role) == (f"{role}-1", role)


def test_keys_are_unique_and_unguessable(path: Path) -> None:
    store = ApiKeyStore(path)
    keys = {store.create(f"k{i}", "analyst") for i in range(20)}
    assert len(keys) == 20 and all(len(k) >= 50 and k.startswith("qm_") for k in keys)


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "qm_",
        "qm_0123456789ab",
        "not a key at all",
        "qm_0123456789ab_" + "x" * 43,  # well-formed, never issued
    ],
)
def test_wrong_keys_do_not_verify(presented: str, path: Path) -> None:
    store = ApiKeyStore(path)
    store.create("app", "engineer")
    assert store.verify(presented) is None


def test_a_key_with_a_changed_secret_does_not_verify(path: Path) -> None:
    store = ApiKeyStore(path)
    key = store.create("app", "engineer")
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert store.verify(tampered) is None and store.verify(key + "x") is None


def test_a_disabled_key_stays_listed_but_does_not_verify(path: Path) -> None:
    store = ApiKeyStore(path)
    key = store.create("app", "engineer")
    disabled = store.disable("app")
    assert disabled.disabled and store.verify(key) is None
    assert [(k.name, k.disabled) for k in store.records()] == [("app", True)]
    assert ApiKeyStore(path).verify(key) is None  # and so on disk


@pytest.mark.parametrize(
    ("name", "role", "rate_limit", "message"),
    [
        ("app", "engineer", None, "already exists"),
        ("bad name", "engineer", None, "'name'"),
        ("ok", "superuser", None, "roles are marketer, analyst, engineer, admin, compliance"),
        ("ok", "engineer", "fast", "'fast' is not a request limit"),
    ],
)
def test_bad_keys_are_refused(
    name: str, role: str, rate_limit: str | None, message: str, path: Path
) -> None:
    store = ApiKeyStore(path)
    store.create("app", "engineer")
    with pytest.raises(ValidationError, match=message):
        store.create(name, role, rate_limit=rate_limit)
    assert [k.name for k in store.records()] == ["app"]


def test_unknown_names_are_not_found(path: Path) -> None:
    store = ApiKeyStore(path)
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.disable("ghost")
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.get("ghost")


def test_a_missing_file_means_no_keys_until_one_is_created(path: Path) -> None:
    store = ApiKeyStore(path)
    assert store.records() == [] and not path.exists()
    store.create("first", "admin")
    assert path.exists()


def test_changes_by_another_process_are_seen_after_the_reload_interval(path: Path) -> None:
    server = ApiKeyStore(path, reload_seconds=0.05)
    cli = ApiKeyStore(path)
    key = cli.create("batch-job", "engineer")
    time.sleep(0.06)
    assert server.verify(key) is not None
    cli.disable("batch-job")
    time.sleep(0.06)
    assert server.verify(key) is None


def test_the_file_is_not_read_per_request(path: Path) -> None:
    server = ApiKeyStore(path, reload_seconds=3600)
    key = ApiKeyStore(path).create("late", "engineer")
    assert server.verify(key) is None  # not re-read within the interval


def test_creating_keeps_keys_other_processes_added(path: Path) -> None:
    one, two = ApiKeyStore(path, reload_seconds=3600), ApiKeyStore(path, reload_seconds=3600)
    k1 = one.create("one", "analyst")
    k2 = two.create("two", "analyst")  # two had not seen "one": it must not drop it
    reread = ApiKeyStore(path)
    assert reread.verify(k1) is not None and reread.verify(k2) is not None


def test_an_invalid_file_is_a_config_error_at_open(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 1, "keys": [{"name": "x"}]}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"api_keys\.json is invalid at 'keys\.0"):
        ApiKeyStore(path)


def test_a_file_broken_while_serving_keeps_the_loaded_keys(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ApiKeyStore(path, reload_seconds=0)
    key = server.create("app", "engineer")
    path.write_text("{ half written", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="qianmian.service.keys"):
        assert server.verify(key) is not None
    assert "not reloaded" in caplog.text


def _key(rate_limit: str | None) -> ApiKey:
    return ApiKey(
        key_id="0123456789ab",
        name="app",
        role="engineer",
        key_hash="0" * 64,
        rate_limit=rate_limit,
        created_at=datetime(2026, 1, 1),
    )


@pytest.mark.parametrize(
    ("own", "default", "allowed"), [("2/minute", "100/minute", 2), (None, "4/minute", 4)]
)
def test_the_limiter_uses_the_keys_own_limit_else_the_services(
    own: str | None, default: str, allowed: int
) -> None:
    limiter = RequestLimiter(default)
    key = _key(own)
    for _ in range(allowed):
        limiter.check(key)
    with pytest.raises(TooManyRequests) as refused:
        limiter.check(key)
    assert 1 <= refused.value.retry_after <= 60


def test_the_limit_is_a_moving_window() -> None:
    limiter = RequestLimiter("3 per 1 second")
    key = _key(None)
    for _ in range(3):
        limiter.check(key)
    with pytest.raises(TooManyRequests):
        limiter.check(key)
    time.sleep(1.05)
    limiter.check(key)  # the window moved on
