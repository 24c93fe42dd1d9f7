"""Import a bank's own CSV or Parquet file into a dictionary table, with validation and quarantine.

The run: read the file (CSV as text, keeping each row's line number) → map its columns onto the
table's fields → validate → in one store transaction, append the good rows to the table, every
problem to ``quarantine`` and one row to ``import_log``. Either all three are written or none is;
no row is lost: ``rows_read == rows_loaded + rows_quarantined``. Reading is
:mod:`qianmian.data.readers` (:func:`read_source` is re-exported here), mapping
:mod:`qianmian.data.mapping`, validation :mod:`qianmian.data.validate`.

Example (needs a generated bank, so it is not run as a doctest)::

    from qianmian.config import load_settings
    store = load_settings("ws").build_store()
    report = import_table(store, "customers", "customers.csv")
    report.rows_read == report.rows_loaded + report.rows_quarantined
    # True
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa

from qianmian.data.mapping import ColumnMapping, SourceOptions, load_mapping, map_columns
from qianmian.data.quarantine import PROBLEM_COLUMNS, to_quarantine_table
from qianmian.data.readers import SourceData, read_source
from qianmian.data.schema import Table
from qianmian.data.schema import table as dictionary_table
from qianmian.data.validate import validate_rows
from qianmian.store.base import Store

__all__ = ["ImportReport", "ReasonCount", "SourceData", "import_table", "read_source"]

_CHINA = ZoneInfo("Asia/Shanghai")


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
