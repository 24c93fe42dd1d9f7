"""import_table end to end on the DuckDB store: quarantine, encodings, atomicity, bad files."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qianmian.config import load_settings
from qianmian.data.importer import import_table, read_source
from qianmian.data.masking import mask_value
from qianmian.data.schema import table
from qianmian.errors import ImportFileError, MappingError, SchemaError
from qianmian.store.base import Store


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each backend in turn, in a fresh workspace (or PostgreSQL schema)."""
    overrides: dict[str, object] = {}
    if request.param == "postgres":
        overrides["store"] = {
            "type": "postgres",
            "dsn": request.getfixturevalue("postgres_dsn"),
            "db_schema": request.getfixturevalue("postgres_schema"),
        }
    opened = load_settings(tmp_path / "ws", **overrides).build_store()
    yield opened
    opened.close()


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# Contacts: every check of the dictionary fires on some line. Header = line 1.
CORRUPTED = """\
contact_id,customer_id,offer_id,channel,ts,campaign_id,action_probability,cost_fen,holdout
1,1,OF1,sms,2024-01-31 10:00:00,SPRING,0.5,100,否
x,1,OF1,sms,2024-01-31 10:00:00,SPRING,0.5,100,否
3,1,OF1,sms,2024-13-01 10:00,SPRING,0.5,100,否
4,2,OF2,app_push,2024/02/01 08:00,,1.5,0,否
5,2,OF2,carrier_pigeon,20240201080000,,0.1,0,否
6,2,,sms,2024-02-01 08:00,,0.1,0,否
1,3,OF1,email,2024-02-01 08:00,,0.1,0,否
100,3,OF1,email,2024-02-01 08:00,,0.1,0,否
7,99,OF1,email,2024-02-01 08:00,,0.1,0,否

8,3,OF1,email,2024-02-01 08:00,bad id!,0.1,0,否
9,3,OF1,email,2024-02-01 08:00,,0.1,abc,否
10,1,OF9,sms,2024年2月1日 08:00,,0.1,5,否
11,1,OF1,wechat,2024-02-01,C-1,0.2,250,是
12,2,OF2,sms,2024-02-01 08:00,,-0.1,x,maybe
13,3,OF2,in_app,2024-02-01 08:00:00.5,,,,
"13,3,OF2,in_app,2024-02-01 08:00:00.5"
14,"3",OF1,sms,2024-02-01 08:00,"multi
line",0.1,0,Y
15,1,OF1,sms,2024-02-01 08:00,,0.1,0,N
"""
# (line, field, check) of every problem, and the contact ids that must load.
EXPECTED_PROBLEMS = {
    (3, "contact_id", "type"),
    (4, "ts", "type"),
    (5, "action_probability", "range"),
    (6, "channel", "enum"),
    (7, "offer_id", "required"),
    (8, "contact_id", "duplicate"),
    (9, "contact_id", "stored"),
    (10, "customer_id", "reference"),
    (12, "campaign_id", "pattern"),
    (13, "cost", "expression"),
    (14, "offer_id", "reference"),
    (16, "action_probability", "range"),
    (16, "cost", "expression"),
    (16, "is_holdout", "type"),
    (18, None, "row"),
    (19, "campaign_id", "pattern"),
}
EXPECTED_LOADED = {1, 11, 13, 15}
CONTACTS_MAPPING = """\
table: contacts
columns:
  contact_id: contact_id
  cost: {expr: "CAST(cost_fen AS DOUBLE) / 100"}
  is_holdout: holdout
"""


@pytest.fixture
def contacts_store(store: Store) -> Store:
    """A store holding customers 1-3, offers OF1/OF2 and contact 100."""
    store.write("customers", table("customers").conform(pa.table({"customer_id": [1, 2, 3]})))
    store.write(
        "offers",
        table("offers").conform(
            pa.table(
                {
                    "offer_id": ["OF1", "OF2"],
                    "offer_type": ["wealth", "insurance"],
                    "name_zh": ["稳健理财", "意外险"],
                }
            )
        ),
    )
    store.write(
        "contacts",
        table("contacts").conform(
            pa.table(
                {
                    "contact_id": [100],
                    "customer_id": [1],
                    "offer_id": ["OF1"],
                    "channel": ["sms"],
                    "ts": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us")),
                }
            )
        ),
    )
    return store


def test_every_bad_row_is_quarantined_and_every_good_row_loaded(
    contacts_store: Store, tmp_path: Path
) -> None:
    source = write(tmp_path / "contacts.csv", CORRUPTED)
    mapping = write(tmp_path / "contacts.yaml", CONTACTS_MAPPING)
    report = import_table(contacts_store, "contacts", source, mapping)

    quarantine = contacts_store.read("quarantine").to_pandas()
    fields = quarantine["field"].astype(object).where(quarantine["field"].notna(), None)
    found = set(zip(quarantine["row_number"], fields, report.problems["check"], strict=True))
    assert found == EXPECTED_PROBLEMS
    assert set(quarantine["import_id"]) == {report.import_id}
    assert quarantine["reason"].notna().all()
    by_line = quarantine.set_index(["row_number", "field"])["reason"]
    assert by_line[(8, "contact_id")] == "duplicate key contact_id=1, first seen on line 2"
    assert "customers.customer_id" in by_line[(10, "customer_id")]
    assert "Could not convert string 'abc'" in by_line[(13, "cost")]
    raw = quarantine.loc[quarantine["row_number"] == 3, "raw"].iloc[0]
    assert json.loads(raw)["contact_id"] == "x"

    loaded = contacts_store.read("contacts").to_pandas().set_index("contact_id")
    assert set(loaded.index) == EXPECTED_LOADED | {100}
    assert loaded.loc[11, "cost"] == 2.5 and bool(loaded.loc[11, "is_holdout"]) is True
    assert loaded.loc[11, "ts"] == dt.datetime(2024, 2, 1)
    assert loaded.loc[13, "ts"] == dt.datetime(2024, 2, 1, 8, 0, 0, 500000)

    assert report.rows_read == 18 and report.rows_loaded == 4 and report.rows_quarantined == 14
    assert report.rows_read == report.rows_loaded + report.rows_quarantined
    [log] = contacts_store.read("import_log").to_pylist()
    assert (log["import_id"], log["rows_read"], log["rows_loaded"], log["rows_quarantined"]) == (
        report.import_id,
        18,
        4,
        14,
    )
    assert log["started_at"] <= log["finished_at"]
    top = report.top_reasons(limit=20)
    assert sum(r.rows for r in top) == len(EXPECTED_PROBLEMS)


def test_a_failure_inside_the_transaction_writes_nothing(
    contacts_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {name: contacts_store.read(name) for name in contacts_store.tables()}
    write_table = contacts_store.write

    def failing_write(name: str, data: pa.Table, *, mode: str = "append") -> int:
        if name == "quarantine":
            raise RuntimeError("disk full")
        return write_table(name, data, mode=mode)  # type: ignore[arg-type]

    monkeypatch.setattr(contacts_store, "write", failing_write)
    source = write(tmp_path / "contacts.csv", CORRUPTED)
    mapping = write(tmp_path / "contacts.yaml", CONTACTS_MAPPING)
    with pytest.raises(RuntimeError, match="disk full"):
        import_table(contacts_store, "contacts", source, mapping)
    assert contacts_store.tables() == sorted(before)
    for name, data in before.items():
        assert contacts_store.read(name).equals(data), name


def test_dry_run_writes_nothing(contacts_store: Store, tmp_path: Path) -> None:
    source = write(tmp_path / "contacts.csv", CORRUPTED)
    mapping = write(tmp_path / "contacts.yaml", CONTACTS_MAPPING)
    report = import_table(contacts_store, "contacts", source, mapping, dry_run=True)
    assert report.dry_run and report.rows_loaded == 4
    assert contacts_store.count("contacts") == 1
    assert not contacts_store.has_table("quarantine")


CUSTOMERS_GBK = """\
客户号,姓名,性别,出生日期,职业,城市
1,张伟,男,1985年3月12日,企业白领,北京
2,欧阳娜娜,女,1990/7/1,教师,上海
3,王芳,女,19881109,工程师,深圳
4,李𠮷,男,1979-02-28,工人,成都
"""
CUSTOMERS_MAPPING = """\
table: customers
source: {encoding: gbk}
columns:
  customer_id: 客户号
  name: 姓名
  gender: {from: 性别, values: {男: M, 女: F}}
  birth_date: 出生日期
  occupation: 职业
  city: 城市
"""


def test_gbk_file_with_chinese_names_imports_and_masks_pii_in_quarantine(
    store: Store, tmp_path: Path
) -> None:
    source = write(tmp_path / "customers.csv", CUSTOMERS_GBK, encoding="gb18030")
    mapping = write(tmp_path / "customers.yaml", CUSTOMERS_MAPPING)
    report = import_table(store, "customers", source, mapping)
    assert (report.rows_loaded, report.rows_quarantined) == (3, 1)
    loaded = store.read("customers").to_pandas().set_index("customer_id")
    assert loaded.loc[[1, 2, 4], "name"].tolist() == ["张伟", "欧阳娜娜", "李𠮷"]
    assert loaded.loc[1, "birth_date"] == dt.date(1985, 3, 12)
    assert loaded.loc[2, "gender"] == "F" and loaded.loc[1, "city"] == "北京"
    [problem] = store.read("quarantine").to_pylist()
    assert (problem["row_number"], problem["field"]) == (4, "occupation")
    raw = json.loads(problem["raw"])
    assert raw["姓名"] == mask_value("王芳", "name") != "王芳"
    assert raw["职业"] == "工程师"


def test_gbk_file_read_as_utf8_says_to_try_gbk(store: Store, tmp_path: Path) -> None:
    source = write(tmp_path / "customers.csv", CUSTOMERS_GBK, encoding="gb18030")
    with pytest.raises(
        ImportFileError,
        match=r"customers\.csv is not valid UTF-8 text \(line 1"
        r".*--encoding gbk",
    ):
        import_table(store, "customers", source)
    assert store.tables() == []


@pytest.mark.parametrize(
    ("text", "encoding", "delimiter"),
    [
        ("\ufeffcustomer_id;gender\n1;M\n2;F\n", "utf-8", ";"),
        ("customer_id\tgender\r\n1\tM\r\n2\tF\r\n", "utf-8", "\t"),
        ("customer_id|gender\n1|M\n2|F\n", "gb18030", "|"),
    ],
)
def test_bom_line_endings_and_delimiters_are_detected(
    store: Store, tmp_path: Path, text: str, encoding: str, delimiter: str
) -> None:
    source = write(tmp_path / "c.csv", text, encoding)
    read = read_source(source, encoding=None if encoding == "utf-8" else "gbk")
    assert read.delimiter == delimiter and read.table.column_names == ["customer_id", "gender"]
    report = import_table(
        store, "customers", source, encoding=None if encoding == "utf-8" else "gbk"
    )
    assert report.rows_loaded == 2


def test_parquet_files_import_with_their_own_types(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "customers.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": pa.array([1, 2, 2], pa.int32()),
                "birth_date": pa.array([dt.date(1990, 1, 1), None, None]),
                "monthly_income": [12000.5, -1.0, 3.0],
            }
        ),
        path,
    )
    report = import_table(store, "customers", path)
    assert (report.rows_loaded, report.rows_quarantined) == (1, 2)
    assert report.problems["row_number"].tolist() == [2, 3]
    assert store.read("customers")["birth_date"].to_pylist() == [dt.date(1990, 1, 1)]


def test_stored_rows_are_reported_as_duplicates_on_reimport(store: Store, tmp_path: Path) -> None:
    source = write(tmp_path / "c.csv", "customer_id,gender\n1,M\n2,F\n")
    assert import_table(store, "customers", source).rows_loaded == 2
    again = import_table(store, "customers", source)
    assert (again.rows_loaded, again.rows_quarantined) == (0, 2)
    assert set(again.problems["check"]) == {"stored"}
    assert store.count("customers") == 2 and store.count("import_log") == 2


def xlsx(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    return path


UNREADABLE = [
    # (make the file, exception, message pattern)
    (
        lambda d: d / "missing.csv",
        ImportFileError,
        r"missing\.csv does not exist .* check the path",
    ),
    (
        lambda d: xlsx(d / "book.xlsx"),
        ImportFileError,
        r"is an Excel .* save it from Excel as "
        r"'CSV UTF-8'",
    ),
    (
        lambda d: write(d / "empty.csv", "\n\n"),
        ImportFileError,
        r"empty\.csv is empty; it needs "
        r"a header line",
    ),
    (
        lambda d: write(d / "twice.csv", "customer_id,gender,gender\n1,M,F\n"),
        ImportFileError,
        r"names column\(s\) gender more than once",
    ),
    (
        lambda d: write(d / "u16.csv", "customer_id\n1\n", "utf-16"),
        ImportFileError,
        r"not valid UTF-8|binary data \(or UTF-16 text\)",
    ),
    (
        lambda d: write(d / "fake.parquet", "customer_id\n1\n"),
        ImportFileError,
        r"fake\.parquet is not a readable Parquet file",
    ),
    (
        lambda d: write(d / "c.csv", "gender\nM\n"),
        MappingError,
        r"Table 'customers' requires customer_id, but the file has no column of that name",
    ),
]


@pytest.mark.parametrize(("make", "exception", "message"), UNREADABLE)
def test_unreadable_files_are_explained_and_nothing_is_written(
    store: Store, tmp_path: Path, make: object, exception: type[Exception], message: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(exception, match=message):
        import_table(store, "customers", path)
    assert store.tables() == []


@pytest.mark.parametrize(
    ("kwargs", "exception", "message"),
    [
        ({"table_name": "customer"}, SchemaError, r"There is no table 'customer'"),
        ({"encoding": "klingon"}, ImportFileError, r"encoding 'klingon' .* is unknown"),
        ({"delimiter": ";;"}, ImportFileError, r"delimiter ';;' .* is not usable"),
        ({"format": "xlsx"}, ImportFileError, r"format 'xlsx' .* is not supported"),
    ],
)
def test_invalid_options_are_explained(
    store: Store, tmp_path: Path, kwargs: dict[str, str], exception: type[Exception], message: str
) -> None:
    source = write(tmp_path / "c.csv", "customer_id\n1\n")
    arguments = {"table_name": "customers", "path": source} | kwargs
    with pytest.raises(exception, match=message):
        import_table(store, **arguments)  # type: ignore[arg-type]
