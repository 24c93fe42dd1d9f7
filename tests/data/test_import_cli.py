"""The ``qianmian import`` command: summary, exit codes, dry run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from qianmian.cli.app import app
from qianmian.config import load_settings


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), terminal_width=200)
    return result.exit_code, result.output


def test_import_shows_counts_and_top_reasons_and_exits_zero(tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text("customer_id;gender;children\n1;M;1\n2;X;2\n3;F;20\n4;x;\n", encoding="utf-8")
    code, out = run("-w", str(tmp_path / "ws"), "import", "customers", str(source))
    assert code == 0, out
    assert "Rows read" in out and "Quarantined" in out
    assert "gender" in out and "is not one of the allowed values (M, F)" in out
    assert "3, 5" in out  # example lines of the gender problem
    store = load_settings(tmp_path / "ws").build_store()
    try:
        assert store.count("customers") == 1 and store.count("quarantine") == 3
    finally:
        store.close()


def test_dry_run_reports_without_writing(tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_text("customer_id,gender\n1,M\n", encoding="utf-8")
    code, out = run("-w", str(tmp_path / "ws"), "import", "customers", str(source), "--dry-run")
    assert code == 0 and "dry run" in out
    store = load_settings(tmp_path / "ws").build_store()
    try:
        assert not store.has_table("customers")
    finally:
        store.close()


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["missing.csv"], "does not exist"),
        ("gbk", ["c.csv"], "--encoding gbk"),
        ("gbk", ["c.csv", "--encoding", "gbk", "--delimiter", "ab"], "is not usable"),
        ("utf8", ["c.csv", "--mapping", "nope.yaml"], "cannot be read"),
    ],
)
def test_unreadable_input_exits_non_zero_with_one_line(
    tmp_path: Path, setup: str | None, args: list[str], message: str
) -> None:
    if setup is not None:
        (tmp_path / "c.csv").write_bytes(
            "customer_id,name\n1,张伟\n".encode("gbk" if setup == "gbk" else "utf-8")
        )
    paths = [str(tmp_path / a) if a.endswith((".csv", ".yaml")) else a for a in args]
    code, out = run("-w", str(tmp_path / "ws"), "import", "customers", *paths)
    assert code == 1
    out = " ".join(out.split())  # error lines wrap at the console width
    assert out.startswith("Error:") and message in out
