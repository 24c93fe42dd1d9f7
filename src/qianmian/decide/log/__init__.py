"""The decision log: every decision, response and change, kept and queryable.

Backends are registered here by the short name used in configuration (``decision_log.type``)
and imported only when chosen, so the embedded default never loads psycopg. Importing this
package loads only the pydantic configurations; the log classes load on first use.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as workspace:
...     with open_decision_log(SQLiteLogConfig(), workspace=Path(workspace)) as log:
...         print(type(log).__name__, log.decisions().num_rows)
SQLiteDecisionLog 0
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qianmian.decide.configs import LogConfig, PostgresLogConfig, SQLiteLogConfig

if TYPE_CHECKING:
    from qianmian.decide.log.base import AuditEntry, DecisionLog, ResponseRecord
    from qianmian.decide.log.postgres import PostgresDecisionLog
    from qianmian.decide.log.sqlite import SQLiteDecisionLog

__all__ = [
    "BACKENDS",
    "AuditEntry",
    "DecisionLog",
    "LogConfig",
    "PostgresDecisionLog",
    "PostgresLogConfig",
    "ResponseRecord",
    "SQLiteDecisionLog",
    "SQLiteLogConfig",
    "open_decision_log",
]

BACKENDS: dict[str, str] = {
    "sqlite": "qianmian.decide.log.sqlite:SQLiteDecisionLog",
    "postgres": "qianmian.decide.log.postgres:PostgresDecisionLog",
}
_LAZY = {
    "AuditEntry": "base",
    "DecisionLog": "base",
    "ResponseRecord": "base",
    "PostgresDecisionLog": "postgres",
    "SQLiteDecisionLog": "sqlite",
}


def open_decision_log(
    config: SQLiteLogConfig | PostgresLogConfig, *, workspace: Path
) -> DecisionLog:
    """Open the decision log ``config`` describes (its ``type`` names the backend).

    Parameters
    ----------
    config : SQLiteLogConfig or PostgresLogConfig
        The backend and its settings.
    workspace : Path
        The workspace folder: the SQLite file's default home, and where the PostgreSQL log
        spools decisions while the database is unreachable.
    """
    module_name, class_name = BACKENDS[config.type].split(":")
    backend: Any = getattr(importlib.import_module(module_name), class_name)
    log: DecisionLog = backend.from_config(config, workspace=Path(workspace))
    return log


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"qianmian.decide.log.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
