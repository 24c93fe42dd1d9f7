"""``qianmian keys`` and ``qianmian catalogue``: keys printed once, catalogues validated and saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qianmian.cli.app import app
from qianmian.service.keys import ApiKeyStore

runner = CliRunner()
STARTER = Path(__file__).parents[2] / "src" / "qianmian" / "decide" / "starter"


def _run(workspace: Path, *args: str):
    result = runner.invoke(app, ["--workspace", str(workspace), *args])
    return result, " ".join(result.output.split())


def test_a_key_is_shown_once_and_stored_hashed(tmp_path: Path) -> None:
    result, text = _run(tmp_path, "keys", "create", "mobile-app", "--role", "engineer")
    assert result.exit_code == 0, text
    key = next(word for word in text.split() if word.startswith("qm_"))
    stored = (tmp_path / "api_keys.json").read_text()
    assert key not in stored and json.loads(stored)["keys"][0]["role"] == "engineer"
    record = ApiKeyStore(tmp_path / "api_keys.json").verify(key)
    assert record is not None and record.name == "mobile-app"
    result, text = _run(tmp_path, "keys", "list")
    assert "mobile-app" in text and key not in text
    result, text = _run(tmp_path, "keys", "disable", "mobile-app")
    assert result.exit_code == 0 and ApiKeyStore(tmp_path / "api_keys.json").verify(key) is None


def test_catalogue_validate_load_and_revisions(tmp_path: Path) -> None:
    result, text = _run(tmp_path, "catalogue", "validate", str(STARTER))
    assert result.exit_code == 0 and "is valid — 20 offers" in text
    result, text = _run(tmp_path, "catalogue", "revisions")
    assert "No catalogue revision is saved yet" in text
    result, text = _run(tmp_path, "catalogue", "load", str(STARTER), "--author", "张三")
    assert result.exit_code == 0 and "as revision 1" in text
    result, text = _run(tmp_path, "catalogue", "revisions")
    assert "张三" in text


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["keys", "create", "x", "--role", "boss"], "'role' is invalid"),
        (["keys", "disable", "nobody"], "nobody"),
        (["catalogue", "validate", "missing.yaml"], "missing.yaml"),
    ],
)
def test_errors_are_one_clear_line(tmp_path: Path, args: list[str], pattern: str) -> None:
    result, text = _run(tmp_path, *args)
    assert result.exit_code == 1 and pattern in text


def test_a_bad_catalogue_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: x\noffers:\n  - id: A\n    type: wealth\n    risk_level: R9\n")
    result, text = _run(tmp_path, "catalogue", "validate", str(bad))
    assert result.exit_code == 1 and "bad.yaml, line" in text
