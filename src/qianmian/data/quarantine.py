"""Problems found by validation: collected check by check, then assembled as quarantine rows.

Each check adds the rows it rejects to a :class:`Findings`; :func:`assemble_problems` turns them
into one frame of :data:`PROBLEM_COLUMNS` (a problem per row, with the source line and the raw
record as JSON, personal data masked), and :func:`to_quarantine_table` into the Arrow table that
is stored in ``quarantine``.

>>> import numpy as np, pyarrow as pa
>>> findings = Findings(3)
>>> findings.add(np.array([False, True, False]), "age", pa.array(["1", "x", "3"]), "bad", "type")
>>> findings.bad.tolist()
[False, True, False]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from qianmian.data.schema import Table
from qianmian.data.schema import table as dictionary_table

__all__ = [
    "FINDING_COLUMNS",
    "PROBLEM_COLUMNS",
    "Findings",
    "assemble_problems",
    "to_quarantine_table",
]


#: Columns of :attr:`~qianmian.data.validate.ValidationResult.problems`: the quarantine
#: table's, plus ``check`` (the kind of problem, for summaries) and ``row_index`` (position of
#: the row in the validated input).
PROBLEM_COLUMNS = [
    "import_id",
    "table_name",
    "row_number",
    "field",
    "value",
    "reason",
    "raw",
    "check",
    "row_index",
]
#: Columns of the problems a check finds, before they are assembled.
FINDING_COLUMNS = ["row_index", "field", "value", "reason", "check"]


def to_quarantine_table(problems: pd.DataFrame) -> pa.Table:
    """Problems (:data:`PROBLEM_COLUMNS`) as an Arrow table of the ``quarantine`` table."""
    quarantine = dictionary_table("quarantine")
    frame = problems[quarantine.column_names].astype(
        {"row_number": "int64"} | {c: object for c in quarantine.column_names if c != "row_number"}
    )
    return quarantine.conform(pa.Table.from_pandas(frame, preserve_index=False))


class Findings:
    """Problems found so far, as small frames, and which rows have at least one."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.frames: list[pd.DataFrame] = []

    def add(
        self,
        mask: np.ndarray,
        field: str | None,
        text: pa.Array,
        reason: str | np.ndarray,
        check: str,
    ) -> None:
        """Record a problem of kind ``check`` with ``field`` on each row where ``mask`` is true;
        ``text`` gives the values shown, ``reason`` one text or one per row."""
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        values = text.take(pa.array(rows, pa.int64())).to_pylist()
        reasons = reason if isinstance(reason, str) else np.asarray(reason, dtype=object)[rows]
        self.extend(
            pd.DataFrame(
                {
                    "row_index": rows,
                    "field": field,
                    "value": values,
                    "reason": reasons,
                    "check": check,
                }
            )
        )

    def extend(self, frame: pd.DataFrame) -> None:
        """Record the problems of a frame with :data:`FINDING_COLUMNS`."""
        self.frames.append(frame[FINDING_COLUMNS])
        self.bad[frame["row_index"].to_numpy(dtype=np.int64)] = True


def _masker() -> Any:
    from qianmian.data.masking import mask_value

    return mask_value


def assemble_problems(
    findings: Findings,
    table: Table,
    lines: np.ndarray,
    import_id: str,
    source: pa.Table,
    source_pii: Mapping[str, str],
) -> pd.DataFrame:
    """The problems in ``findings`` as rows of :data:`PROBLEM_COLUMNS`, sorted by source line;
    ``source`` (with PII columns ``source_pii``) gives each problem row's ``raw`` JSON."""
    if not findings.frames:
        return pd.DataFrame(
            {
                c: pd.Series(dtype="int64" if c in ("row_number", "row_index") else object)
                for c in PROBLEM_COLUMNS
            }
        )
    frame = pd.concat(findings.frames, ignore_index=True)
    frame["row_index"] = frame["row_index"].astype("int64")
    frame["row_number"] = lines[frame["row_index"].to_numpy()]
    frame["import_id"], frame["table_name"] = import_id, table.name
    pii = table.pii_fields
    if frame["field"].isin(list(pii)).any():
        mask = _masker()
        frame["value"] = [
            mask(str(v), pii[f]) if f in pii and v is not None else v
            for f, v in zip(frame["field"], frame["value"], strict=True)
        ]
    frame["value"] = frame["value"].astype(object)
    frame["raw"] = frame["row_index"].map(
        _raw_rows(source, frame["row_index"].unique(), source_pii)
    )
    order = frame.sort_values(["row_number", "row_index"], kind="stable").index
    return frame.loc[order, PROBLEM_COLUMNS].reset_index(drop=True)


def _raw_rows(source: pa.Table, rows: np.ndarray, pii: Mapping[str, str]) -> dict[int, str]:
    """Each problem row of the source as JSON, PII columns masked."""
    records = source.take(pa.array(rows, pa.int64())).to_pylist()
    mask = _masker() if any(c in pii for c in source.column_names) else None
    out = {}
    for row, record in zip(rows.tolist(), records, strict=True):
        if mask is not None:
            record = {
                c: v if c not in pii or v is None else mask(str(v), pii[c])
                for c, v in record.items()
            }
        out[row] = json.dumps(record, ensure_ascii=False, default=str)
    return out
