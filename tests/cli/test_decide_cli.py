"""``qianmian decide``: one decision printed as a card, on a generated bank, with no server."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from qianmian.cli.app import app
from qianmian.decide.log.sqlite import SQLiteDecisionLog

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-customer bank over 6 months; no model registered (rules decide)."""
    ws = tmp_path_factory.mktemp("decide-cli")
    result = runner.invoke(
        app, ["--workspace", str(ws), "generate", "-n", "300", "--months", "6", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    return ws


def _decide(workspace: Path, *args: str):
    return runner.invoke(app, ["--workspace", str(workspace), "decide", *args])


def test_a_decision_is_printed_as_a_card_and_logged(workspace: Path) -> None:
    for customer in range(1, 40):
        result = _decide(workspace, str(customer), "--channel", "app", "--at", "2026-04-15 12:00")
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        assert f"customer {customer}" in text and "candidates by stage" in text
        # an offer was presented to someone who accepts personalised marketing: with no model
        # registered in this workspace, the rules decided, and the card says so
        if "copy:" in text and "非个性化" not in text:
            break
    else:
        pytest.fail("none of 39 customers got a personalised in-app offer")
    assert "fallback: model uplift-s is unavailable" in text
    assert "规则兜底" in text  # the reason names the rules
    with SQLiteDecisionLog(workspace / "decisions.db") as log:
        rows = log.decisions(customer_id=customer).to_pylist()
    assert len(rows) == 1 and rows[0]["requested_channel"] == "in_app"
    assert rows[0]["fallback"] is True and rows[0]["offer_id"]


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["5", "--channel", "fax"], "channel 'fax' is not one of"),
        (["999999", "--at", "2026-04-15 12:00"], "Customer 999999 is unknown"),
    ],
)
def test_bad_requests_are_one_clear_line(workspace: Path, args: list[str], pattern: str) -> None:
    result = _decide(workspace, *args)
    assert result.exit_code == 1
    assert pattern in " ".join(result.output.split())
