"""``qianmian stream run``, ``qianmian stream status`` and ``qianmian replay`` on a generated bank.

Every backend is the embedded one. The in-process bus lives in one process, so the tests that
need events already on it hand the commands a bus they filled (as `qianmian serve` would have).
"""

from __future__ import annotations

import os
import re
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qianmian.cli.app import app
from qianmian.config import Settings, load_settings
from qianmian.decide.log.sqlite import SQLiteDecisionLog
from qianmian.stream.bus.memory import MemoryEventBus
from qianmian.stream.replay import count_simulated_events

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-customer bank over 6 months (to 2026-04-30); no model registered."""
    ws = tmp_path_factory.mktemp("stream-cli")
    result = runner.invoke(
        app, ["--workspace", str(ws), "generate", "-n", "300", "--months", "6", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    return ws


def invoke(workspace: Path, *args: str) -> Any:
    return runner.invoke(app, ["--workspace", str(workspace), *args])


def text(result: Any) -> str:
    return " ".join(result.output.split())


def login(event_id: str, customer: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "login",
        "event_id": event_id,
        "customer_id": customer,
        "ts": "2026-04-30T10:00:00",
        **extra,
    }


def use_bus(monkeypatch: pytest.MonkeyPatch, bus: MemoryEventBus) -> None:
    """Make every command of this test use ``bus`` (filled beforehand)."""
    monkeypatch.setattr(Settings, "build_event_bus", lambda self: bus)


# -- replay ------------------------------------------------------------------------------------


def test_replay_feeds_two_days_through_the_in_process_stream(workspace: Path) -> None:
    result = invoke(workspace, "replay", "--from", "2026-04-20", "--to", "2026-04-22")

    assert result.exit_code == 0, result.output
    with load_settings(workspace).build_store() as store:
        expected = count_simulated_events(store, datetime(2026, 4, 20), datetime(2026, 4, 22))
    out = text(result)
    assert expected > 50
    assert f"Published {expected:,} events (2026-04-20 00:00 → 2026-04-22 00:00)" in out
    assert f"read {expected:,} · processed {expected:,} · duplicates 0 · dead letters 0" in out
    decisions = int(re.search(r"trigger decisions (\d+)", out).group(1))  # type: ignore[union-attr]
    with SQLiteDecisionLog(workspace / "decisions.db") as log:
        logged = log.decisions(since=datetime(2026, 4, 20), until=datetime(2026, 4, 22))
    assert logged.num_rows == decisions  # each trigger decision is in the log


@pytest.mark.parametrize(
    ("args", "code", "pattern"),
    [
        (["--from", "2026-04-22", "--to", "2026-04-20"], 1, "ends (2026-04-20 00:00) before"),
        (["--from", "2026-04-20", "--to", "2026-04-21", "--speed", "-1"], 2, "--speed"),
        (["--from", "April", "--to", "2026-04-21"], 2, "--from"),
    ],
)
def test_bad_replay_options_are_one_clear_line(
    workspace: Path, args: list[str], code: int, pattern: str
) -> None:
    result = invoke(workspace, "replay", *args)

    assert result.exit_code == code, result.output
    assert pattern in text(result)


# -- stream status -----------------------------------------------------------------------------


def test_status_shows_the_counts_and_the_latest_dead_letters(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = MemoryEventBus()
    bus.publish([login(f"l-{i}", 1 + i) for i in range(5)])
    delivered = bus.read("consumer-7", count=3)
    bus.dead_letter([(delivered[0], "unknown customer: test"), (delivered[1], "bad 'ts': test")])
    bus.mark_processed(["l-2"])
    bus.ack([d.message_id for d in delivered[:2]])
    use_bus(monkeypatch, bus)

    result = invoke(workspace, "stream", "status")

    assert result.exit_code == 0, result.output
    out = text(result)
    for row in ("length 消息数 │ 5", "lag 未投递 │ 2", "pending 处理中 │ 1", "死信 │ 2"):
        assert row in out, row
    assert "已处理 │ 1" in out and "consumer consumer-7 │ 1 pending" in out
    assert "l-1 │ login │ bad 'ts': test" in out  # newest first
    assert out.index("l-1") < out.index("l-0") and "unknown customer: test" in out


# -- stream run --------------------------------------------------------------------------------


def test_run_consumes_until_idle_and_dead_letters_bad_events(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = MemoryEventBus()
    bus.publish([*(login(f"l-{i}", 1 + i) for i in range(5)), login("bad", 0)])
    use_bus(monkeypatch, bus)

    result = invoke(
        workspace, "stream", "run", "--consumer", "c9", "--batch", "2", "--max-idle", "2"
    )

    assert result.exit_code == 0, result.output
    assert "Done. read 6 · processed 5 · duplicates 0 · dead letters 1" in text(result)
    status = bus.status()
    assert (status.pending, status.lag, status.processed) == (0, 0, 5)
    assert status.consumers == {"c9": 0}
    assert "customer_id" in bus.dead_letters()[0].reason


def test_ctrl_c_stops_after_the_batch_in_hand(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class InterruptedBus(MemoryEventBus):
        """Ctrl-C arrives while the second batch is being read."""

        reads = 0

        def read(self, consumer: str, *, count: int = 500, block_ms: int = 100) -> Any:
            self.reads += 1
            if self.reads == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return super().read(consumer, count=count, block_ms=block_ms)

    bus = InterruptedBus()
    bus.publish([login(f"l-{i}", 1 + i) for i in range(10)])
    use_bus(monkeypatch, bus)
    handler = signal.getsignal(signal.SIGINT)

    result = invoke(workspace, "stream", "run", "--batch", "3")

    assert result.exit_code == 0, result.output
    out = text(result)
    assert "Stopping after this batch" in out
    assert "Stopped. read 6 · processed 6" in out
    status = bus.status()
    assert (status.pending, status.lag, status.processed) == (0, 4, 6)  # both batches done
    assert signal.getsignal(signal.SIGINT) is handler  # the command put it back
