"""``qianmian segment``: fits, prints the segments and the RFM classes, reuses saved models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import typer
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from qianmian.cli import commands_segments
from qianmian.config import load_settings
from qianmian.world import BANK_TABLES, World

runner = CliRunner()


def _app() -> typer.Typer:
    """A root command with only ``segment`` (the real app wires it in cli/app.py)."""
    app = typer.Typer()

    @app.callback()
    def root(workspace: Annotated[Path, typer.Option("--workspace")]) -> None:
        from qianmian.cli.context import state

        state.reset(str(workspace), False)

    commands_segments.register(app)
    return app


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, feature_world: World) -> Path:
    ws = tmp_path_factory.mktemp("segment-cli")
    with load_settings(ws).build_store() as store:
        for name in BANK_TABLES:
            store.load_parquet(name, feature_world.table_paths(name), mode="replace")
    return ws


def _run(workspace: Path, *args: str):
    with threadpool_limits(1):
        return runner.invoke(_app(), ["--workspace", str(workspace), "segment", *args])


def test_segment_fits_prints_and_stores(workspace):
    result = _run(workspace, "--as-of", "2026-08-01", "--k", "5")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "客户分群 customer segments" in text and "(fitted)" in text
    assert "RFM 八类客户" in text and "重要价值客户" in text and "High-value to win back" in text
    assert "k=5 fixed" in text and "rows → table customer_segments" in text
    with load_settings(workspace).build_store() as store:
        assert store.count("customer_segments") == 3_939
    assert len(list((workspace / "models" / "segments").iterdir())) == 1


def test_segment_reuses_a_saved_model(workspace):
    first = _run(workspace, "--as-of", "2026-08-01", "--k", "5")
    assert first.exit_code == 0 and "(reused)" in first.output
    later = _run(workspace, "--as-of", "2026-09-01", "--model", "latest")
    assert later.exit_code == 0, later.output
    assert "(reused), as of 2026-09-01" in " ".join(later.output.split())


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--k", "5", "--model", "latest"], "--k 5 and --model latest cannot be combined"),
        (["--model", "seg-19990101-deadbeef"], "There is no segment model 'seg-19990101-deadbeef'"),
        (["--as-of", "someday"], "as_of 'someday' is not a date"),
    ],
)
def test_errors_are_one_clear_line(workspace, args, pattern):
    result = _run(workspace, *args)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert text.startswith("Error:") and "Traceback" not in text
    assert pattern in text
