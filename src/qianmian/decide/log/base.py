"""The :class:`DecisionLog` interface: every decision, response and change, kept and queryable.

The decision log is the record compliance reads and analytics learn from: each
:class:`~qianmian.decide.decision.Decision` whole (request, every candidate with the stage that
removed it and why, scores, the offers presented, action probabilities, the arm, model
versions, reasons), the responses fed back, and the audit trail of changes (who, what, when).

Semantics:

* :meth:`DecisionLog.append` may buffer; :meth:`flush` makes everything appended durable, and
  :meth:`close` flushes. Queries flush first, so a caller always reads its own writes.
* :meth:`record_response` is idempotent on ``response_id``: a repeat returns False and changes
  nothing.
* Query methods return Arrow tables with the columns listed in
  :data:`DECISION_COLUMNS`, :data:`CANDIDATE_COLUMNS`, :data:`RESPONSE_COLUMNS` and
  :data:`AUDIT_COLUMNS`, oldest first.

Backends: :class:`~qianmian.decide.log.sqlite.SQLiteDecisionLog` (embedded default, a file in
the workspace) and :class:`~qianmian.decide.log.postgres.PostgresDecisionLog` (production);
the same contract tests run on both. Backend failures raise
:class:`~qianmian.errors.StoreError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from qianmian.decide.decision import Decision

__all__ = [
    "AUDIT_COLUMNS",
    "CANDIDATE_COLUMNS",
    "DECISION_COLUMNS",
    "RESPONSE_COLUMNS",
    "AuditEntry",
    "DecisionLog",
    "ResponseRecord",
]

DECISION_COLUMNS = (
    "decision_id",
    "ts",
    "customer_id",
    "requested_channel",
    "placement",
    "event_type",
    "campaign_filter",
    "request_id",
    "arm",
    "fallback",
    "fallback_reason",
    "offer_id",  # the first offer presented (None: nothing sent)
    "treatment_id",
    "channel",
    "campaign_id",
    "action_probability",
    "expected_value",
    "reservation_id",
    "n_offers",
    "n_candidates",
    "model_versions",  # JSON text
    "feature_ref",
    "catalogue_version",
    "latency_ms",
)
CANDIDATE_COLUMNS = (
    "decision_id",
    "ts",
    "customer_id",
    "offer_id",
    "treatment_id",
    "channel",
    "campaign_id",
    "removed_by",
    "reason",
    "p_response",
    "uplift",
    "value",
    "cost",
    "weight",
    "expected_value",
    "action_probability",
    "presented_rank",  # 1.. for presented offers, None otherwise
)
RESPONSE_COLUMNS = (
    "response_id",
    "decision_id",
    "customer_id",
    "offer_id",
    "response_type",
    "ts",
    "value",
)
AUDIT_COLUMNS = ("ts", "actor", "role", "action", "target", "detail")


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """A response fed back for a decision (delivered, clicked, applied, ignored, complained ...)."""

    response_id: str
    decision_id: str | None
    customer_id: int
    offer_id: str | None
    response_type: str
    ts: datetime
    value: float | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change made through the API or the CLI: who, in which role, did what, to what."""

    ts: datetime
    actor: str
    role: str
    action: str
    target: str
    detail: str = ""


class DecisionLog(ABC):
    """Decisions, responses and the audit trail."""

    @abstractmethod
    def append(self, decision: Decision) -> None:
        """Add a decision (may be buffered until :meth:`flush`)."""

    @abstractmethod
    def flush(self) -> None:
        """Write everything appended so far durably."""

    @abstractmethod
    def record_response(self, response: ResponseRecord) -> bool:
        """Store a response; False (nothing changed) if its ``response_id`` was seen before."""

    @abstractmethod
    def record_audit(self, entry: AuditEntry) -> None:
        """Store one audit entry, durably, before returning."""

    @abstractmethod
    def decisions(
        self,
        *,
        customer_id: int | None = None,
        offer_id: str | None = None,
        campaign_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """Decisions matching every filter given (``ts`` in [since, until)), oldest first."""

    @abstractmethod
    def candidates(
        self,
        *,
        decision_ids: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pa.Table:
        """One row per candidate of the matching decisions."""

    @abstractmethod
    def get(self, decision_id: str) -> dict[str, Any] | None:
        """One decision whole, as stored (JSON-compatible), or None."""

    @abstractmethod
    def responses(
        self, *, customer_id: int | None = None, since: datetime | None = None
    ) -> pa.Table:
        """Responses, oldest first."""

    @abstractmethod
    def audit(self, *, since: datetime | None = None, limit: int | None = None) -> pa.Table:
        """The audit trail, oldest first."""

    def close(self) -> None:
        """Flush and release connections."""
        self.flush()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
