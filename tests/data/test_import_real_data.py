"""The example mappings import the real public files they were written for, row for row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from qianmian.config import load_settings
from qianmian.data.importer import import_table
from qianmian.store.base import Store

ROOT = Path(__file__).resolve().parents[2]
DATA = (ROOT / ".." / "shared" / "data").resolve()
MAPPINGS = ROOT / "examples" / "mappings"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = load_settings(tmp_path / "ws").build_store()
    yield opened
    opened.close()


def counts(store: Store, column: str) -> dict[str | None, int]:
    rows = store.query(f"SELECT {column} AS v, count(*) AS n FROM customers GROUP BY 1")
    return dict(zip(rows["v"].to_pylist(), rows["n"].to_pylist(), strict=True))


def test_uci_bank_marketing_bank_full(store: Store) -> None:
    report = import_table(
        store,
        "customers",
        DATA / "uci_bank_marketing/bank/bank-full.csv",
        MAPPINGS / "uci_bank_marketing_customers.yaml",
    )
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (45_211, 45_211, 0)
    # job counts of bank-full: blue-collar 9,732; admin. 5,171 + management 9,458; unknown 288
    occupation = counts(store, "occupation")
    assert occupation["工人"] == 9_732 and occupation["企业白领"] == 14_629
    assert occupation[None] == 288 and sum(occupation.values()) == 45_211
    assert counts(store, "marital_status") == {"已婚": 27_214, "未婚": 12_790, "离异": 5_207}
    assert counts(store, "education")[None] == 1_857
    first = store.query("SELECT * FROM customers WHERE customer_id = 1").to_pylist()[0]
    # record 1: 58 years old, contacted on 5 May 2008
    assert first["birth_date"] == dt.date(1949, 11, 5) and first["occupation"] == "企业白领"
    assert report.unused_columns == [
        "default",
        "balance",
        "housing",
        "loan",
        "contact",
        "duration",
        "campaign",
        "pdays",
        "previous",
        "poutcome",
        "y",
    ]


def test_bankchurners(store: Store) -> None:
    report = import_table(
        store,
        "customers",
        DATA / "bankchurners/BankChurners.csv",
        MAPPINGS / "bankchurners_customers.yaml",
    )
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (10_127, 10_127, 0)
    assert counts(store, "marital_status") == {"已婚": 4_687, "未婚": 3_943, "离异": 748, None: 749}
    assert counts(store, "education") == {
        "本科": 3_128,
        "高中及以下": 2_013 + 1_487,
        "大专": 1_013,
        "硕士及以上": 516 + 451,
        None: 1_519,
    }
    assert sum(counts(store, "gender").values()) == 10_127 and None not in counts(store, "gender")
    row = store.query("SELECT * FROM customers WHERE customer_id = 768805383").to_pylist()[0]
    assert (row["gender"], row["birth_date"], row["signup_date"]) == (
        "M",
        dt.date(1974, 7, 1),
        dt.date(2016, 10, 1),
    )  # age 45, 39 months on book
    assert row["monthly_income"] is None
