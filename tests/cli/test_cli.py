"""The command line: help everywhere, one-line errors, generate and demo end to end."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from qianmian.cli.app import app
from qianmian.store.duckdb import DuckDBStore

runner = CliRunner()


def _commands() -> list[str]:
    return sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_every_command_has_help():
    names = _commands()
    assert {"schema", "generate", "demo", "import"} <= set(names)
    for name in names:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage" in result.output


def test_schema_prints_the_dictionary():
    result = runner.invoke(app, ["schema", "transactions"])
    assert result.exit_code == 0
    assert "txn_id" in result.output and "交易流水" in result.output


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["schema", "nope"], "There is no table 'nope'"),
        (
            ["generate", "--start", "2019-03-01", "-n", "10", "--months", "1"],
            "Spring Festival only for",
        ),
        (["generate", "--start", "yesterday", "-n", "10"], "not a date like 2025-11-01"),
    ],
)
def test_errors_are_one_clear_line(tmp_path, args, pattern):
    result = runner.invoke(app, ["--workspace", str(tmp_path), *args])
    assert result.exit_code == 1
    text = result.output.strip()
    assert "Traceback" not in text
    assert text.startswith("Error:")
    assert pattern in " ".join(text.split())


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--workspace", str(tmp_path), "--debug", "schema", "nope"])
    assert result.exit_code != 0 and result.exception is not None


def test_generate_writes_parquet_and_loads_the_store(tmp_path):
    ws = tmp_path / "ws"
    result = runner.invoke(
        app, ["--workspace", str(ws), "generate", "-n", "400", "--months", "2", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert (ws / "data" / "transactions").is_dir()
    with DuckDBStore(ws / "qianmian.duckdb") as store:
        assert store.count("customers") == 400
        assert store.count("transactions") > 400 * 4
        assert {"customers", "transactions", "app_events", "identifiers"} <= set(store.tables())


def test_demo_writes_an_offline_html_summary(tmp_path):
    ws = tmp_path / "demo"
    result = runner.invoke(app, ["--workspace", str(ws), "demo", "-n", "600"])
    assert result.exit_code == 0, result.output
    page = (ws / "reports" / "bank_summary.html").read_text(encoding="utf-8")
    assert "Customers by city tier" in page and "Double 11" in page
    # customer 360: segments, their profiles, RFM and tags are charted too
    for title in ("Segment sizes", "Segment profiles", "RFM segments", "Tag coverage"):
        assert title in page, title
    # Plotly's JavaScript is embedded (banks run offline): no external script at all.
    assert "Plotly.newPlot" in page and len(page) > 1_000_000
    assert "<script src" not in page
    assert "Summary written to" in result.output
    assert "客户分群 segments" in result.output

    card = runner.invoke(app, ["--workspace", str(ws), "profile", "3"])
    assert card.exit_code == 0, card.output
    assert "客户画像" in card.output and "PII masked" in card.output
    assert "分群 segment" in card.output and "标签 tags" in card.output
    missing = runner.invoke(app, ["--workspace", str(ws), "profile", "99999999"])
    assert missing.exit_code == 1 and "is not in the store" in missing.output
    assert "客户分群 segments" in result.output

    card = runner.invoke(app, ["--workspace", str(ws), "profile", "3"])
    assert card.exit_code == 0, card.output
    assert "客户画像" in card.output and "PII masked" in card.output
    assert "分群 segment" in card.output and "标签 tags" in card.output
    missing = runner.invoke(app, ["--workspace", str(ws), "profile", "99999999"])
    assert missing.exit_code == 1 and "is not in the store" in missing.output


def test_show_masks_personal_data_and_identity_resolve_writes_the_map(tmp_path):
    ws = tmp_path / "ws"
    assert (
        runner.invoke(
            app,
            ["--workspace", str(ws), "generate", "-n", "300", "--months", "1", "--workers", "1"],
        ).exit_code
        == 0
    )
    with DuckDBStore(ws / "qianmian.duckdb") as store:
        raw = (
            store.query(
                "SELECT id_value FROM identifiers WHERE id_type = 'mobile' AND customer_id = 1"
            )
            .column(0)[0]
            .as_py()
        )
        name = store.query("SELECT name FROM customers WHERE customer_id = 1").column(0)[0]
    shown = runner.invoke(app, ["--workspace", str(ws), "show", "identifiers", "--where", "1"])
    assert shown.exit_code == 0
    assert raw not in shown.output and f"{raw[:3]}****{raw[-4:]}" in shown.output
    card = runner.invoke(app, ["--workspace", str(ws), "show", "customers", "--where", "1"])
    assert name.as_py() not in card.output and name.as_py()[0] + "*" in card.output

    result = runner.invoke(app, ["--workspace", str(ws), "identity", "resolve"])
    assert result.exit_code == 0, result.output
    with DuckDBStore(ws / "qianmian.duckdb") as store:
        first = store.read("identity_map").to_pandas()
    again = runner.invoke(app, ["--workspace", str(ws), "identity", "resolve"])
    assert again.exit_code == 0
    with DuckDBStore(ws / "qianmian.duckdb") as store:
        second = store.read("identity_map").to_pandas()
    assert first.equals(second)  # stable ids across runs
    assert first["customer_id"].nunique() >= 300
