"""The embedded online feature store: vectors in this process's memory.

The snapshot is one float64 matrix (a customer per row, see
:mod:`~qianmian.features.online.vector`) and a dict from customer id to row; events since
``as_of`` live in small per-customer accumulator dicts. ``load`` builds a new snapshot aside
and swaps one reference, so a reader sees the old snapshot or the new one; readers take no
lock (accumulators are replaced, never changed in place), writers of events share one lock so
no increment is lost. Memory: 8 bytes per feature per customer (about 1 GB for a million
customers and the whole catalogue) plus the events since ``as_of``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from qianmian.features.online.base import (
    EventOutcome,
    EventSource,
    OnlineFeatureStore,
    check_event,
)
from qianmian.features.online.configs import MemoryOnlineConfig
from qianmian.features.online.updates import UpdatePlan, apply_ops
from qianmian.features.online.vector import VectorLayout

__all__ = ["MemoryOnlineStore"]


@dataclass
class _Snapshot:
    layout: VectorLayout
    plan: UpdatePlan
    rows: dict[int, int]
    matrix: np.ndarray
    # customer → accumulators; each dict is replaced on update, so readers need no lock
    deltas: dict[int, dict[str, Any]] = field(default_factory=dict)
    seen: dict[int, set[str]] = field(default_factory=dict)


class MemoryOnlineStore(OnlineFeatureStore):
    """In-process :class:`~qianmian.features.online.base.OnlineFeatureStore` (thread-safe)."""

    def __init__(self) -> None:
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: MemoryOnlineConfig) -> MemoryOnlineStore:
        return cls()

    def load(self, features: pa.Table) -> int:
        layout, ids, matrix = VectorLayout.pack(features)
        rows = dict(zip(ids.tolist(), range(len(ids)), strict=True))
        snapshot = _Snapshot(layout, UpdatePlan(layout.names), rows, matrix)
        with self._lock:
            self._snapshot = snapshot
        return len(ids)

    def get(self, customer_id: int) -> dict[str, Any] | None:
        snap = self._snapshot
        if snap is None:
            return None
        row = snap.rows.get(int(customer_id))
        if row is None:
            return None
        vector = snap.layout.decode(snap.matrix[row].tolist())
        deltas = snap.deltas.get(int(customer_id))
        return snap.plan.apply(vector, deltas) if deltas else vector

    def get_many(self, customer_ids: Sequence[int]) -> list[dict[str, Any] | None]:
        return [self.get(c) for c in customer_ids]

    def apply_event(
        self, event_id: str | int, source: EventSource, event: Mapping[str, Any]
    ) -> EventOutcome:
        key, customer, checked = check_event(event_id, source, event)
        return self._apply_checked(key, customer, source, checked)

    def apply_events(
        self, items: Sequence[tuple[str | int, EventSource, Mapping[str, Any]]]
    ) -> list[EventOutcome]:
        checked = [(check_event(i, s, e), s) for i, s, e in items]  # all valid before any applied
        return [self._apply_checked(key, c, s, e) for (key, c, e), s in checked]

    def _apply_checked(
        self, key: str, customer: int, source: EventSource, event: dict[str, Any]
    ) -> EventOutcome:
        """Apply one validated event (see :func:`check_event`)."""
        while True:
            snap = self._snapshot
            if snap is None:
                return "no_snapshot"
            if customer not in snap.rows:
                return "unknown_customer"
            if event["ts"] < snap.layout.as_of:
                return "before_snapshot"
            ops = snap.plan.ops(source, event)
            with self._lock:
                if self._snapshot is not snap:  # reloaded meanwhile: redo against the new one
                    continue
                seen = snap.seen.setdefault(customer, set())
                if "e:" + key in seen:
                    return "duplicate"
                seen.add("e:" + key)
                deltas = dict(snap.deltas.get(customer, {}))
                apply_ops(deltas, seen, ops)
                snap.deltas[customer] = deltas
                return "applied"

    def as_of(self) -> datetime | None:
        snap = self._snapshot
        return None if snap is None else snap.layout.as_of
