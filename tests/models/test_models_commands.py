"""``qianmian train``, ``evaluate`` and ``explain`` on a simulated bank with a campaign history."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from qianmian.cli.app import app
from qianmian.models.registry import ModelRegistry

runner = CliRunner()
OFFER = "OF-TRAVEL-CASHBACK"


@pytest.fixture(scope="module")
def workspace(model_workspace, tmp_path_factory):
    """A copy of the model world's workspace (the commands write a registry and reports)."""
    ws = tmp_path_factory.mktemp("commands") / "ws"
    shutil.copytree(model_workspace, ws)
    return ws


@pytest.fixture(scope="module")
def trained(workspace):
    result = runner.invoke(
        app, ["--workspace", str(workspace), "train", "propensity", "--offer", OFFER, "--promote"]
    )
    assert result.exit_code == 0, result.output
    return result


def test_train_registers_and_shows_the_oracle_beside_the_model(trained, workspace):
    assert "oracle" in trained.output and "propensity" in trained.output
    card = ModelRegistry.for_workspace(workspace).card(f"propensity-{OFFER}")
    assert card.stage == "production" and card.version == 1
    assert {"auc", "oracle_auc", "ece"} <= set(card.metrics)
    assert card.training_window.end < card.as_of


def test_evaluate_writes_an_offline_report(trained, workspace):
    result = runner.invoke(app, ["--workspace", str(workspace), "evaluate"])
    assert result.exit_code == 0, result.output
    page = (workspace / "reports" / "models.html").read_text(encoding="utf-8")
    assert "Plotly.newPlot" in page and "<script src" not in page
    for title in ("reliability", "fairness", "SHAP importance"):
        assert title in page, title


def test_explain_gives_reasons_in_plain_words(trained, workspace):
    from qianmian.config import load_settings

    with load_settings(workspace).build_store() as store:
        cid = store.query("SELECT min(customer_id) AS c FROM customers").column("c")[0].as_py()
    result = runner.invoke(app, ["--workspace", str(workspace), "explain", str(cid)])
    assert result.exit_code == 0, result.output
    assert "propensity" in result.output and "score" in result.output
    en = runner.invoke(app, ["--workspace", str(workspace), "explain", str(cid), "--lang", "en"])
    assert en.exit_code == 0 and "reason" in en.output


def test_unknown_kind_is_one_line(workspace):
    result = runner.invoke(app, ["--workspace", str(workspace), "train", "magic"])
    assert result.exit_code != 0
    assert "KIND 'magic' is not one of" in result.output
