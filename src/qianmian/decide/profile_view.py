"""A customer as the decision engine sees them: record, preferences, live features, tags, history.

The record comes from the store's ``customers`` table and holds personal data (name, birth
date): callers mask it for roles that may not see it. Everything else is what decisions read.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from qianmian.errors import NotFoundError, StoreError

if TYPE_CHECKING:
    from qianmian.decide.engine import DecisionEngine

__all__ = ["RECENT_DECISIONS", "customer_profile"]

RECENT_DECISIONS = 10


def _plain(value: Any) -> Any:
    """JSON-friendly: dates as ISO text, NaN as None."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def customer_profile(engine: DecisionEngine, customer_id: int) -> dict[str, Any]:
    """Record, contact preferences, features, tags and recent decisions of one customer.

    Raises
    ------
    NotFoundError
        No part of qianmian knows the customer.
    """
    record: dict[str, Any] | None = None
    if engine.store is not None and engine.store.has_table("customers"):
        rows = engine.store.query(
            "SELECT * FROM customers WHERE customer_id = $id", {"id": customer_id}
        ).to_pylist()
        record = {k: _plain(v) for k, v in rows[0].items()} if rows else None
    contact: dict[str, Any] | str | None
    try:
        state = engine.state.customer(customer_id)
        contact = (
            {
                "consents": sorted(state.consents),
                "marketing_opt_out": state.marketing_opt_out,
                "personalisation_opt_out": state.personalisation_opt_out,
                "held_products": sorted(state.held_products),
                "marketing_suppressed_until": _plain(state.marketing_suppressed_until),
                "hidden_offers": {k: _plain(v) for k, v in state.hidden_offers.items()},
            }
            if state is not None
            else None
        )
    except StoreError as e:
        contact = f"unavailable: {e}"
    try:
        features = engine.features.get(customer_id)
    except StoreError:
        features = None
    if record is None and contact is None and features is None:
        raise NotFoundError(f"Customer {customer_id} is not known to qianmian.")
    tags = (
        [{"id": t.id, "name": t.name(engine.language)} for t in engine.tags.tags_of(features)]
        if features and engine.tags is not None
        else []
    )
    recent = engine.log.decisions(customer_id=customer_id).to_pylist()[-RECENT_DECISIONS:]
    return {
        "customer_id": customer_id,
        "customer": record,
        "contact": contact,
        "features": {k: _plain(v) for k, v in (features or {}).items()},
        "tags": tags,
        "recent_decisions": [{k: _plain(v) for k, v in d.items()} for d in recent],
    }
