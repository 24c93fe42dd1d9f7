"""``qianmian models``: list, show and promote registered models; clear one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from qianmian.cli.app import app
from qianmian.models.registry import ModelRegistry

runner = CliRunner()


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """A workspace whose registry holds two versions of a small churn model."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] > 0).astype(int)
    registry = ModelRegistry.for_workspace(tmp_path)
    for c, auc in ((0.1, 0.71), (1.0, 0.74)):
        registry.register(
            LogisticRegression(C=c).fit(x, y),
            name="churn",
            kind="churn",
            features=["recency_days", "tenure_days"],
            training_window=("2025-08-01", "2026-07-31"),
            metrics={"auc": auc, "logloss": 0.52},
            target="closes the card within 90 days",
        )
    return tmp_path


def _run(workspace: Path, *args: str):
    return runner.invoke(app, ["--workspace", str(workspace), "models", *args])


def _text(result) -> str:
    return " ".join(result.output.split())


def test_list_show_and_promote(workspace):
    listed = _run(workspace, "list")
    assert listed.exit_code == 0, listed.output
    text = _text(listed)
    assert "churn" in text and "v1" in text and "v2" in text
    assert text.count("candidate") == 2 and "auc 0.71" in text and "auc 0.74" in text

    shown = _run(workspace, "show", "churn", "--features")
    assert shown.exit_code == 0, shown.output
    text = _text(shown)
    assert "churn v2 (churn)" in text  # latest while nothing is in production
    card = ModelRegistry.for_workspace(workspace).card("churn", 2)
    for expected in ("2025-08-01 → 2026-07-31", "closes the card within 90 days", "recency_days"):
        assert expected in text
    assert card.schema_hash[:20] in text.replace(" ", "")
    assert "v1 candidate, v2 candidate" in text

    promoted = _run(workspace, "promote", "churn", "1")
    assert promoted.exit_code == 0 and "churn v1 is now in production" in _text(promoted)
    promoted = _run(workspace, "promote", "churn", "2")
    assert "churn v2 is now in production (v1 archived)" in _text(promoted)
    again = _run(workspace, "promote", "churn", "2")
    assert "already in production" in _text(again)

    text = _text(_run(workspace, "list", "churn"))
    assert "archived" in text and "production" in text and "candidate" not in text
    text = _text(_run(workspace, "show", "churn", "--version", "1"))
    assert "churn v1 (churn)" in text and "archived" in text and "replaces v1" not in text
    assert ModelRegistry.for_workspace(workspace).production("churn") == 2


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["promote", "churn", "9"], "Model 'churn' has no version 9; registered versions: 1, 2."),
        (["promote", "nope", "1"], "There is no model 'nope'"),
        (["show", "nope"], "There is no model 'nope'"),
        (["show", "churn", "--version", "3"], "Model 'churn' has no version 3"),
        (["list", "nope"], "There is no model 'nope'"),
    ],
)
def test_errors_are_one_clear_line(workspace, args, pattern):
    result = _run(workspace, *args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.strip().startswith("Error:")
    assert pattern in _text(result)


def test_an_empty_registry_says_so(tmp_path):
    result = _run(tmp_path, "list")
    assert result.exit_code == 0 and "No model is registered" in _text(result)
