"""Customers' contact preferences and holdings, read from the store for the decision state.

The ``customers`` table gives each customer's consent per channel and opt-outs; the
``holdings`` table gives the products they hold. One SQL statement per batch (the common
subset of DuckDB and PostgreSQL) reads a slice of customers by id together with their held
products aggregated in the store, so a million customers stream through in batches without
all their rows held in Python at once.

A product counts as held while its holding is not closed: ``active`` and ``dormant``
(:data:`~qianmian.data.schema.vocab.HOLDING_STATUSES`) both keep it, since a dormant card is
still the customer's card; a holding without a status is held until it has a ``closed_date``.
A missing consent or opt-out value counts as ``False`` (no consent, no opt-out).

>>> import pyarrow as pa
>>> from qianmian.decide.state.memory import MemoryDecisionState
>>> from qianmian.store.duckdb import DuckDBStore
>>> with DuckDBStore(":memory:") as store:
...     _ = store.write("customers", pa.table({"customer_id": [1], "consent_sms": [True]}))
...     state = MemoryDecisionState()
...     load_customer_states(store, state)
...     sorted(state.customer(1).consents)
1
['sms']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from qianmian.data.schema.vocab import HOLDING_STATUSES
from qianmian.decide.state.base import CustomerContactState, DecisionState
from qianmian.errors import NotFoundError, invalid_parameter
from qianmian.store.base import Store

__all__ = [
    "CONSENT_COLUMNS",
    "HELD_STATUSES",
    "customer_batches",
    "customer_states",
    "load_customer_states",
]

CONSENT_COLUMNS: dict[str, str] = {
    "consent_sms": "sms",
    "consent_app_push": "app_push",
    "consent_email": "email",
    "consent_call_center": "call_center",
    "consent_wechat": "wechat",
}
HELD_STATUSES: tuple[str, ...] = tuple(s for s in HOLDING_STATUSES.values if s != "closed")
# Below any customer id: the first batch starts after it.
_BEFORE_ALL = -(2**63)

_CUSTOMER_COLUMNS = ", ".join(
    ["customer_id", *CONSENT_COLUMNS, "marketing_opt_out", "personalisation_opt_out"]
)
_HELD = ", ".join(f"'{s}'" for s in HELD_STATUSES)
# Each batch: the next `size` customers after `after`, and their held products aggregated
# over the same id range only (so no batch scans the holdings of everyone before it).
_BATCH_WITH_HOLDINGS = f"""
WITH batch AS (
    SELECT {_CUSTOMER_COLUMNS} FROM customers
    WHERE customer_id > $after ORDER BY customer_id LIMIT $size
)
SELECT batch.*, held.products
FROM batch
LEFT JOIN (
    SELECT customer_id, string_agg(DISTINCT product_id, ',') AS products
    FROM holdings
    WHERE customer_id > $after
      AND customer_id <= (SELECT max(customer_id) FROM batch)
      AND COALESCE(status, CASE WHEN closed_date IS NULL THEN '{HELD_STATUSES[0]}' END)
          IN ({_HELD})
    GROUP BY customer_id
) AS held ON held.customer_id = batch.customer_id
ORDER BY batch.customer_id
"""
_BATCH_WITHOUT_HOLDINGS = f"""
SELECT {_CUSTOMER_COLUMNS}, CAST(NULL AS VARCHAR) AS products FROM customers
WHERE customer_id > $after ORDER BY customer_id LIMIT $size
"""

Progress = Callable[[int, int], None]


def _check(store: Store, batch_size: int) -> None:
    """Reject a bad batch size or a store without customers before any work starts."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise invalid_parameter("customer_states", "batch_size", "a positive int", batch_size)
    if not store.has_table("customers"):
        raise NotFoundError(
            "The store has no 'customers' table, so there are no contact preferences to load; "
            "import customers (qianmian import customers FILE) or run qianmian generate first."
        )


def customer_batches(
    store: Store, *, batch_size: int = 50_000
) -> Iterator[list[CustomerContactState]]:
    """The customers' contact states, ``batch_size`` at a time, in customer id order."""
    _check(store, batch_size)
    sql = _BATCH_WITH_HOLDINGS if store.has_table("holdings") else _BATCH_WITHOUT_HOLDINGS
    # Few distinct consent patterns and product lists: build each set once and share it
    # (frozensets are immutable), which is several times faster and saves memory in the state.
    consent_sets: dict[tuple[bool | None, ...], frozenset[str]] = {}
    held_sets: dict[str, frozenset[str]] = {}  # emptied every batch, so it stays small
    channels = tuple(CONSENT_COLUMNS.values())

    def consent_set(agreed: tuple[bool | None, ...]) -> frozenset[str]:
        found = consent_sets.get(agreed)
        if found is None:
            found = frozenset(ch for ch, yes in zip(channels, agreed, strict=True) if yes)
            consent_sets[agreed] = found
        return found

    def held_set(products: str | None) -> frozenset[str]:
        if not products:
            return frozenset()
        found = held_sets.get(products)
        if found is None:
            found = held_sets[products] = frozenset(products.split(","))
        return found

    after = _BEFORE_ALL
    while True:
        table = store.query(sql, {"after": after, "size": batch_size})
        if table.num_rows == 0:
            return
        ids = table.column("customer_id").to_pylist()
        held_sets.clear()
        yield [
            CustomerContactState(customer_id, consent_set(agreed), bool(o), bool(p), held_set(h))
            for customer_id, agreed, o, p, h in zip(
                ids,
                zip(*(table.column(c).to_pylist() for c in CONSENT_COLUMNS), strict=True),
                table.column("marketing_opt_out").to_pylist(),
                table.column("personalisation_opt_out").to_pylist(),
                table.column("products").to_pylist(),
                strict=True,
            )
        ]
        if table.num_rows < batch_size:
            return
        after = ids[-1]


def customer_states(store: Store, *, batch_size: int = 50_000) -> Iterator[CustomerContactState]:
    """Every customer's contact state, read from ``store`` in batches, in customer id order.

    Parameters
    ----------
    store : Store
        Holds the ``customers`` table and, if present, ``holdings``.
    batch_size : int
        Customers read per SQL statement.

    Yields
    ------
    CustomerContactState
        Consents, opt-outs and held products (no suppressions: those live in the state).

    Raises
    ------
    NotFoundError
        If the store has no ``customers`` table.
    """
    for batch in customer_batches(store, batch_size=batch_size):
        yield from batch


def load_customer_states(
    store: Store,
    state: DecisionState,
    progress: Progress | None = None,
    *,
    batch_size: int = 50_000,
) -> int:
    """Load every customer's preferences and holdings from ``store`` into ``state``.

    Suppressions already in ``state`` are kept. ``progress(loaded, total)`` is called after
    each batch (``total`` is the number of rows in ``customers``), e.g. to move a Rich bar.
    Returns the number of customers loaded.
    """
    _check(store, batch_size)
    total = store.count("customers") if progress is not None else 0
    loaded = 0
    for batch in customer_batches(store, batch_size=batch_size):
        loaded += state.load_customers(batch)
        if progress is not None:
            progress(loaded, total)
    return loaded
