"""Mapping expressions: DuckDB SQL evaluated over a file's rows, with failing rows isolated.

An expression is checked once on no rows (a mistake in it is the mapping's error), then run on
all rows; if that fails, the rows where it fails are found by bisection and reported as problems,
while the other rows keep their values (DuckDB's ``TRY``). Empty text and NULL tokens are
missing values to expressions, as to validation. External access (files, network) is disabled.

>>> import pyarrow as pa
>>> rows = np.arange(1, 3)
>>> evaluator = ExpressionEvaluator(pa.table({"amount": ["12", "x"]}), rows, rows + 1)
>>> values, problems = evaluator.evaluate("amount_fen", "CAST(amount AS INTEGER) * 100", "")
>>> values.to_pylist(), problems["row_index"].tolist()
([1200, None], [1])
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qianmian.data.coerce import clean_text
from qianmian.errors import MappingError

__all__ = ["MAX_ISOLATION_QUERIES", "ExpressionEvaluator", "no_problems"]


#: Queries spent isolating the rows where an expression fails; past it, a row whose expression
#: gives NULL although its input columns are all present counts as failed.
MAX_ISOLATION_QUERIES = 400


def no_problems() -> pd.DataFrame:
    """An empty frame of problems (``row_index, field, value, reason, check``)."""
    return pd.DataFrame(
        {
            "row_index": pd.Series(dtype="int64"),
            "field": pd.Series(dtype=object),
            "value": pd.Series(dtype=object),
            "reason": pd.Series(dtype=object),
            "check": pd.Series(dtype=object),
        }
    )


class ExpressionEvaluator:
    """Evaluates mapping expressions with DuckDB over the source rows, row failures isolated.

    ``rows`` and ``lines`` (one per source row) are offered to expressions as ``row_number`` and
    ``line_number``, unless the source has columns of those names.
    """

    def __init__(self, source: pa.Table, rows: np.ndarray, lines: np.ndarray) -> None:
        import duckdb  # only mappings with expressions need it

        self._duckdb = duckdb
        extra = {
            "row_number": pa.array(rows, pa.int64()),
            "line_number": pa.array(lines, pa.int64()),
            "__position": pa.array(np.arange(len(rows)), pa.int64()),
        }
        # as for validation, empty text and NULL tokens are missing values, not text to parse
        self.frame = pa.table(
            {
                name: clean_text(column.combine_chunks())
                if pa.types.is_string(column.type)
                else column
                for name, column in zip(source.column_names, source.columns, strict=True)
            }
        )
        for name, values in extra.items():
            if name.casefold() not in {c.casefold() for c in source.column_names}:
                self.frame = self.frame.append_column(name, values)
        self.columns = self.frame.column_names
        self._connection: Any = None

    def referenced(self, expr: str) -> list[str]:
        """Source columns an expression appears to use (identifiers matching a column name)."""
        words = {w.casefold() for w in re.findall(r'"([^"]+)"|(\w+)', expr) for w in w if w}
        return [
            c
            for c in self.frame.column_names
            if c.casefold() in words and c not in ("row_number", "line_number", "__position")
        ]

    def _run(self, expr: str, rows: np.ndarray | None = None, limit: str = "") -> pa.Array:
        if self._connection is None:
            self._connection = self._duckdb.connect(config={"enable_external_access": False})
        part = self.frame if rows is None else self.frame.take(pa.array(rows, pa.int64()))
        self._connection.register("source", part)
        sql = f"SELECT ({expr}) AS v FROM source ORDER BY __position {limit}"
        return self._connection.sql(sql).to_arrow_table().column("v").combine_chunks()

    def evaluate(self, field_name: str, expr: str, where: str) -> tuple[pa.Array, pd.DataFrame]:
        """Values of ``expr`` for every row (null where it fails), and a problem per failed row.

        Raises :class:`~qianmian.errors.MappingError` (naming the field and ``where``, the place
        in the mapping file) when the expression cannot run at all.
        """
        try:
            self._run(expr, limit="LIMIT 0")
        except self._duckdb.Error as e:
            raise MappingError(
                f"The expression for field '{field_name}'{where} cannot be used: "
                f"{_first_line(e)}. Source columns are: "
                f"{', '.join(self.columns)}."
            ) from e
        try:
            return self._run(expr), no_problems()
        except self._duckdb.Error:
            pass  # some rows fail: evaluate the others and find which ones
        try:
            result = self._run(f"TRY({expr})")
        except self._duckdb.Error:
            result = pa.nulls(self.frame.num_rows)
        failures = self._isolate(
            expr, np.flatnonzero(pc.is_null(result).to_numpy(zero_copy_only=False))
        )
        rows = np.array(sorted(failures), dtype=np.int64)
        return result, pd.DataFrame(
            {
                "row_index": rows,
                "field": field_name,
                "value": None,
                "reason": [f"the mapping expression failed: {failures[r]}" for r in rows.tolist()],
                "check": "expression",
            }
        )

    def _isolate(self, expr: str, candidates: np.ndarray) -> dict[int, str]:
        """Rows among ``candidates`` (NULL under TRY) where ``expr`` raises, by bisection."""
        failures: dict[int, str] = {}
        unresolved: list[np.ndarray] = []
        stack, queries = [candidates], 0
        while stack:
            rows = stack.pop()
            if rows.size == 0:
                continue
            if queries >= MAX_ISOLATION_QUERIES:
                unresolved.append(rows)
                continue
            queries += 1
            try:
                self._run(expr, rows)
            except self._duckdb.Error as e:
                if rows.size == 1:
                    failures[int(rows[0])] = _first_line(e)
                else:
                    stack += [rows[rows.size // 2 :], rows[: rows.size // 2]]
        if unresolved:  # too many to isolate: NULL with every input present counts as a failure
            rest = np.concatenate(unresolved)
            present = np.ones(rest.size, dtype=bool)
            for name in self.referenced(expr):
                values = self.frame.column(name).take(pa.array(rest, pa.int64()))
                present &= pc.is_valid(values).to_numpy(zero_copy_only=False)
            example = next(iter(failures.values()), "no value")
            for r in rest[present].tolist():
                failures[r] = f"no value (like other rows: {example})"
        return failures


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0].rstrip(".")
