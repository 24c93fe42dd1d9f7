"""Read a bank's CSV or Parquet file as Arrow, keeping each row's line number.

CSV is read as text (UTF-8 with or without BOM, GBK/GB18030 ...), its delimiter found from the
header line; records that do not split into the header's columns are kept aside, not dropped.
Excel files and other binaries are refused with a hint. :func:`read_source` is the entry point;
:func:`qianmian.data.importer.import_table` maps, validates and stores what it reads.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
>>> _ = path.write_text("customer_id;gender\\n1;M\\n2;F;x\\n", encoding="utf-8")
>>> source = read_source(path)
>>> source.delimiter, source.table.num_rows, source.rows_read, source.rejected[0][0]
(';', 1, 2, 3)
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from qianmian.errors import ImportFileError

__all__ = ["SourceData", "read_source"]

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
