"""Fixtures for local services: PostgreSQL (started if it is down, never skipped) and workspaces.

Integration tests need a real PostgreSQL at 127.0.0.1:5432 with trust authentication. If none
answers, the session tries to start the local cluster with ``pg_ctlcluster``; if it still cannot
connect, every test that needs it fails with the reason, so a missing database never passes as a
skipped test. Set ``QIANMIAN_TEST_POSTGRES_DSN`` to use another server.
"""

from __future__ import annotations

import os

# LightGBM's and torch's OpenMP threads spin while waiting by default; on a shared 2-core machine
# two spinning pools starve each other (a 1-second fit takes 10). Set before they are imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_DSNS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
POSTGRES_START_WAIT_SECONDS = 20


def _connect_error(dsn: str) -> str | None:
    """None if ``dsn`` accepts a connection, else why not."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        return f"{dsn}: {str(e).strip()}"
    return None


def _first_working(dsns: list[str]) -> tuple[str | None, list[str]]:
    errors = []
    for dsn in dsns:
        error = _connect_error(dsn)
        if error is None:
            return dsn, errors
        errors.append(error)
    return None, errors


def _start_local_postgres() -> str:
    """Try to start the local cluster; return what happened, for the failure message."""
    try:
        versions = sorted(os.listdir("/etc/postgresql"))
    except OSError as e:
        return f"no local cluster to start ({e})"
    if not versions:
        return "no local cluster to start (/etc/postgresql is empty)"
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`{' '.join(command)}` failed: {e}"
    output = (done.stderr or done.stdout).strip().rstrip(".")
    return f"`{' '.join(command)}` exited {done.returncode}: {output}"


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """A DSN of a running PostgreSQL; starts the local cluster if needed, fails if impossible."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("PostgreSQL tests need psycopg 3: pip install -e '.[postgres,dev]'.")
    override = os.environ.get("QIANMIAN_TEST_POSTGRES_DSN")
    dsns = [override] if override else list(POSTGRES_DSNS)
    dsn, errors = _first_working(dsns)
    if dsn is not None:
        return dsn
    started = _start_local_postgres()
    deadline = time.monotonic() + POSTGRES_START_WAIT_SECONDS
    while time.monotonic() < deadline:
        dsn, errors = _first_working(dsns)
        if dsn is not None:
            return dsn
        time.sleep(0.5)
    pytest.fail(
        "PostgreSQL is needed for this test and could not be reached.\n"
        + "\n".join(errors)
        + f"\nTried to start it: {started}.\nStart PostgreSQL on 127.0.0.1:5432 (trust auth, "
        "database 'test') or set QIANMIAN_TEST_POSTGRES_DSN.",
        pytrace=False,
    )


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema name for one test, dropped with everything in it afterwards."""
    import psycopg

    name = f"qm_test_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def tmp_workspace(tmp_path: Path) -> Path:
    """An empty workspace folder for one test."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    return workspace


# -- Redis -------------------------------------------------------------------------------------

REDIS_URL = os.environ.get("QIANMIAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def _redis_error(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A URL of a running Redis; starts the local server if needed, fails if impossible."""
    error = _redis_error(REDIS_URL)
    if error is None:
        return REDIS_URL
    started = "not tried (QIANMIAN_TEST_REDIS_URL is set)"
    if "QIANMIAN_TEST_REDIS_URL" not in os.environ:
        try:
            done = subprocess.run(REDIS_START, capture_output=True, text=True, timeout=30)
            started = f"exited {done.returncode}: {(done.stderr or done.stdout).strip()}"
        except (OSError, subprocess.TimeoutExpired) as e:
            started = f"failed: {e}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if (error := _redis_error(REDIS_URL)) is None:
                return REDIS_URL
            time.sleep(0.2)
    pytest.fail(
        f"Redis is needed for this test and could not be reached at {REDIS_URL}: {error}.\n"
        f"Tried to start it with `{' '.join(REDIS_START)}`: {started}.\n"
        "Start Redis on 127.0.0.1:6379 or set QIANMIAN_TEST_REDIS_URL.",
        pytrace=False,
    )


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix for one test; every key under it is deleted afterwards."""
    import redis

    prefix = f"qm_test:{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=10_000))
    if keys:
        client.unlink(*keys)
    client.close()
