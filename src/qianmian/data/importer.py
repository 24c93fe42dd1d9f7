"""Import a bank's own CSV or Parquet file into a dictionary table, with validation and quarantine.

The run: read the file (CSV as text, keeping each row's line number) → map its columns onto the
table's fields → validate → in one store transaction, append the good rows to the table, every
problem to ``quarantine`` and one row to ``import_log``. Either all three are written or none is;
no row is lost: ``rows_read == rows_loaded + rows_quarantined``.

>>> from qianmian.config import load_settings                          # doctest: +SKIP
>>> store = load_settings("ws").build_store()                          # doctest: +SKIP
>>> report = import_table(store, "customers", "customers.csv")         # doctest: +SKIP
>>> report.rows_read == report.rows_loaded + report.rows_quarantined   # doctest: +SKIP
True
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from qianmian.data.mapping import ColumnMapping, SourceOptions, load_mapping, map_columns
from qianmian.data.schema import Table
from qianmian.data.schema import table as dictionary_table
from qianmian.data.validate import PROBLEM_COLUMNS, to_quarantine_table, validate_rows
from qianmian.errors import ImportFileError
from qianmian.store.base import Store

__all__ = ["ImportReport", "ReasonCount", "SourceData", "import_table", "read_source"]

_CHINA = ZoneInfo("Asia/Shanghai")
_DELIMITERS = (",", ";", "\t", "|")
# GB18030 is a superset of GBK and GB2312: decoding with it also reads the rare characters
# (e.g. in names) that GBK exports sometimes contain, and changes nothing else.
_ENCODING_ALIASES = {
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "cp936": "gb18030",
    "utf-8": "utf-8-sig",
    "utf8": "utf-8-sig",
}
_MAGIC = {
    b"PK\x03\x04": "an Excel (.xlsx) or zip file",
    b"\xd0\xcf\x11\xe0": "an Excel (.xls) file",
}


@dataclass(frozen=True)
class SourceData:
    """A file as read: ``table`` (CSV columns as text), and per row its ``line_numbers`` (CSV:
    header = line 1; Parquet: row position from 1) and ``row_numbers`` (1 for the first record).
    ``rejected`` holds records that could not be split into the header's columns, as
    ``(line, row_number, fields, reason)``; they count as read."""

    path: Path
    format: Literal["csv", "parquet"]
    table: pa.Table
    line_numbers: np.ndarray
    row_numbers: np.ndarray
    encoding: str | None = None
    delimiter: str | None = None
    rejected: list[tuple[int, int, list[str], str]] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.table.num_rows + len(self.rejected)


def read_source(
    path: Path | str,
    *,
    format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> SourceData:
    """Read a CSV (UTF-8 with or without BOM, GBK/GB18030, ...) or Parquet file.

    Parameters
    ----------
    path : Path or str
    format : {"csv", "parquet"}, optional
        Default: from the extension (``.parquet``/``.pq``), else CSV.
    encoding : str, optional
        CSV text encoding; default UTF-8 (a BOM is skipped). ``gbk`` reads as GB18030.
    delimiter : str, optional
        CSV delimiter; default the most frequent of ``,`` ``;`` tab ``|`` in the header line.

    Raises
    ------
    ImportFileError
        The file is missing, is not CSV or Parquet, or is not in ``encoding``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(
            f"The import file {path} does not exist or is not a file; check "
            "the path (relative paths start from the current folder)."
        )
    head = path.read_bytes()[:4]
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise ImportFileError(
                f"The import file {path} is {what}, not CSV or Parquet; save "
                "it from Excel as 'CSV UTF-8' and import that."
            )
    chosen = format or (
        "parquet" if path.suffix.lower() in (".parquet", ".pq") or head == b"PAR1" else "csv"
    )
    if chosen == "parquet":
        return _read_parquet(path)
    if chosen != "csv":
        raise ImportFileError(
            f"The import format {format!r} for {path} is not supported; use csv or parquet."
        )
    return _read_csv(path, encoding, delimiter)


def _read_parquet(path: Path) -> SourceData:
    import pyarrow.parquet as pq

    try:
        data = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise ImportFileError(
            f"The import file {path} is not a readable Parquet file ({e}). "
            "If it is CSV, rename it to .csv or pass --format csv."
        ) from e
    positions = np.arange(1, data.num_rows + 1)
    return SourceData(path, "parquet", data, positions, positions)


def _read_csv(path: Path, encoding: str | None, delimiter: str | None) -> SourceData:
    raw = path.read_bytes()
    codec = _ENCODING_ALIASES.get((encoding or "utf-8").lower(), encoding or "utf-8")
    try:
        text = raw.decode(codec)
    except LookupError as e:
        raise ImportFileError(
            f"The encoding {encoding!r} for {path} is unknown; use e.g. utf-8, gbk or gb18030."
        ) from e
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        hint = (
            "--encoding gbk (or gb18030), as Chinese Excel exports usually are"
            if codec == "utf-8-sig"
            else "--encoding utf-8, or the encoding it was saved in"
        )
        raise ImportFileError(
            f"The import file {path} is not valid {encoding or 'UTF-8'} text "
            f"(line {line}, byte {e.start}); try {hint}."
        ) from e
    if "\x00" in text[:4096]:
        raise ImportFileError(
            f"The import file {path} holds binary data (or UTF-16 text), not "
            "CSV; save it as CSV UTF-8, or as Parquet named *.parquet."
        )
    header_line = next((ln for ln in io.StringIO(text) if ln.strip()), "")
    if not header_line:
        raise ImportFileError(
            f"The import file {path} is empty; it needs a header line naming "
            "the columns, then one line per row."
        )
    delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter or "", delimiter) or max(
        _DELIMITERS, key=header_line.count
    )
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ImportFileError(
            f"The delimiter {delimiter!r} for {path} is not usable; give one "
            "character such as ',' ';' '|' or 'tab'."
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header, values, lines, rejected = _split(path, reader)
    width, n = len(header), len(lines)
    flat = pa.array(values, pa.string())  # one array, then each column by stride: no zip(*rows)
    data = pa.table(
        {
            name: flat.take(pa.array(np.arange(i, n * width, width), pa.int64()))
            for i, name in enumerate(header)
        }
    )
    rows = np.arange(1, n + len(rejected) + 1)
    if rejected:  # record positions count rejected records too, so row_number stays stable
        rows = np.delete(rows, [r[1] - 1 for r in rejected])
    return SourceData(
        path, "csv", data, np.array(lines, dtype=np.int64), rows, codec, delimiter, rejected
    )


def _split(
    path: Path, reader: Any
) -> tuple[list[str], list[str], list[int], list[tuple[int, int, list[str], str]]]:
    """Header, field values row after row, each record's first line, and rejected records."""
    header: list[str] | None = None
    values: list[str] = []
    lines: list[int] = []
    rejected: list[tuple[int, int, list[str], str]] = []
    start, width = 1, -1
    try:
        for fields in reader:
            if len(fields) == width:
                values.extend(fields)
                lines.append(start)
            elif not fields or (len(fields) == 1 and not fields[0].strip()):
                pass  # a blank line holds no record
            elif header is None:
                header = _header(path, fields)
                width = len(header)
            else:
                reason = (
                    f"the row has {len(fields)} fields but the header has {width}; check "
                    "the delimiter and quoting"
                )
                rejected.append((start, len(lines) + len(rejected) + 1, fields, reason))
            start = reader.line_num + 1
    except csv.Error as e:
        raise ImportFileError(
            f"The import file {path} is not valid CSV at line {reader.line_num}: {e}. Check "
            "its quoting."
        ) from e
    assert header is not None
    return header, values, lines, rejected


def _header(path: Path, fields: list[str]) -> list[str]:
    names = [f.strip() or f"column_{i + 1}" for i, f in enumerate(fields)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ImportFileError(
            f"The header of {path} names column(s) {', '.join(twice)} more "
            "than once; rename them so each column has its own name."
        )
    return names


@dataclass(frozen=True)
class ReasonCount:
    """One kind of problem in an import: which field, which check, how many rows, examples."""

    field: str | None
    check: str
    reason: str
    rows: int
    example_lines: list[int]


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_table` did. ``problems`` has the columns of
    :data:`~qianmian.data.validate.PROBLEM_COLUMNS`, one row per problem sorted by line;
    ``row_index`` is -1 for records that did not split into the header's columns."""

    import_id: str
    table_name: str
    source: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    problems: pd.DataFrame
    started_at: datetime
    finished_at: datetime
    dry_run: bool = False
    unused_columns: list[str] = field(default_factory=list)

    def top_reasons(self, limit: int = 5, examples: int = 3) -> list[ReasonCount]:
        """The most frequent kinds of problem (by field and check), with example lines."""
        if self.problems.empty:
            return []
        frame = self.problems.assign(field=self.problems["field"].fillna("(row)"))
        out = []
        for (name, check), group in frame.groupby(["field", "check"], sort=False):
            lines = sorted(set(group["row_number"].tolist()))
            out.append(
                ReasonCount(
                    None if name == "(row)" else str(name),
                    str(check),
                    str(group["reason"].iloc[0]),
                    len(lines),
                    lines[:examples],
                )
            )
        return sorted(out, key=lambda r: (-r.rows, r.example_lines))[:limit]


def import_table(
    store: Store,
    table_name: str,
    path: Path | str,
    mapping: ColumnMapping | Path | str | None = None,
    encoding: str | None = None,
    *,
    delimiter: str | None = None,
    format: str | None = None,
    dry_run: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import file ``path`` into dictionary table ``table_name``, quarantining bad rows.

    Parameters
    ----------
    store : Store
        Where the table, ``quarantine`` and ``import_log`` live.
    table_name : str
        A table of the data dictionary.
    path : Path or str
        CSV or Parquet file.
    mapping : ColumnMapping or path, optional
        Column mapping (a YAML file); default: columns named like the fields, ignoring case.
    encoding, delimiter, format : str, optional
        Reading options; they override the mapping's ``source`` section.
    dry_run : bool
        Read, map and validate, but write nothing.
    on_stage : callable, optional
        Called with a short description as each stage starts (for progress display).

    Returns
    -------
    ImportReport

    Raises
    ------
    ImportFileError, MappingError, SchemaError
        Nothing is written when the file, the mapping or the table name is wrong.
    """
    stage = on_stage or (lambda _: None)
    started = _now()
    target = dictionary_table(table_name)
    if mapping is not None and not isinstance(mapping, ColumnMapping):
        mapping = load_mapping(mapping)
    options = mapping.source if mapping is not None else SourceOptions()
    stage(f"Reading {path}")
    source = read_source(
        path,
        format=format or options.format,
        encoding=encoding or options.encoding,
        delimiter=delimiter or options.delimiter,
    )
    stage(f"Mapping {source.table.num_rows:,} rows onto {table_name}")
    mapped = map_columns(
        target,
        source.table,
        mapping,
        row_numbers=source.row_numbers,
        line_numbers=source.line_numbers,
    )
    import_id = f"{started:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
    stage("Validating")
    result = validate_rows(
        target,
        mapped.data,
        row_numbers=source.line_numbers,
        stored_keys=_stored_keys(store, target),
        parent_keys=_parent_keys(store, target),
        prior_problems=mapped.problems,
        import_id=import_id,
        source=source.table,
        source_pii=mapped.source_pii,
    )
    problems = pd.concat(
        [p for p in (result.problems, _rejected(source, target, import_id)) if not p.empty]
        or [result.problems],
        ignore_index=True,
    )
    problems = problems.sort_values("row_number", kind="stable", ignore_index=True)
    quarantined = result.rows_quarantined + len(source.rejected)
    assert source.rows_read == result.rows_good + quarantined, "an imported row went missing"
    report = ImportReport(
        import_id,
        table_name,
        str(source.path.resolve()),
        source.rows_read,
        result.rows_good,
        quarantined,
        problems,
        started,
        started,
        dry_run,
        mapped.unused_columns,
    )
    if dry_run:
        return _finished(report)
    stage("Writing")
    report = _finished(report)
    with store.transaction() as tx:
        if result.good.num_rows:
            tx.write(table_name, result.good, mode="append")
        if not problems.empty:
            tx.write("quarantine", to_quarantine_table(problems), mode="append")
        tx.write("import_log", _log_row(report), mode="append")
    return report


def _now() -> datetime:
    return datetime.now(_CHINA).replace(tzinfo=None)


def _finished(report: ImportReport) -> ImportReport:
    return replace(report, finished_at=_now())


def _stored_keys(store: Store, target: Table) -> pa.Table | None:
    if not target.primary_key or not store.has_table(target.name):
        return None
    return store.read(target.name, columns=list(target.primary_key))


def _parent_keys(store: Store, target: Table) -> dict[str, pa.ChunkedArray | None]:
    keys: dict[str, pa.ChunkedArray | None] = {}
    for f in target.fields:
        if f.references is not None:
            parent, column = f.references.split(".", 1)
            keys[f.references] = (
                store.read(parent, columns=[column]).column(column)
                if store.has_table(parent)
                else None
            )
    return keys


def _rejected(source: SourceData, target: Table, import_id: str) -> pd.DataFrame:
    """Records that did not split into the header's columns, as problems. Their fields cannot
    be told apart, so all are masked when the table holds any personal data."""
    if not source.rejected:
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    if target.pii_fields:
        from qianmian.data.masking import mask_value

        rows = [
            (line, n, [str(mask_value(v, "identifier")) for v in fields], reason)
            for line, n, fields, reason in source.rejected
        ]
    else:
        rows = source.rejected
    return pd.DataFrame(
        {
            "import_id": import_id,
            "table_name": target.name,
            "row_number": [r[0] for r in rows],
            "field": None,
            "value": None,
            "reason": [r[3] for r in rows],
            "raw": [json.dumps(r[2], ensure_ascii=False) for r in rows],
            "check": "row",
            "row_index": -1,
        }
    )


def _log_row(report: ImportReport) -> pa.Table:
    return dictionary_table("import_log").conform(
        pa.table(
            {
                "import_id": [report.import_id],
                "table_name": [report.table_name],
                "source": [report.source],
                "rows_read": [report.rows_read],
                "rows_loaded": [report.rows_loaded],
                "rows_quarantined": [report.rows_quarantined],
                "started_at": pa.array([report.started_at], pa.timestamp("us")),
                "finished_at": pa.array([report.finished_at], pa.timestamp("us")),
            }
        )
    )
