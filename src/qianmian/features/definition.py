"""What a feature is: :class:`FeatureDef`, and the sources features are computed from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qianmian.errors import SchemaError

__all__ = ["SOURCES", "Agg", "FeatureDef", "FeatureType", "Source"]

FeatureType = Literal["float", "int", "bool", "string"]
Agg = Literal["sum", "count", "avg", "max", "min", "count_distinct", "days_since_last", "last"]


@dataclass(frozen=True)
class Source:
    """A table features aggregate over, and how to keep it point-in-time correct.

    ``available`` is a SQL condition true for rows known strictly before ``{as_of}``;
    ``time`` is the column windows are measured on.
    """

    table: str
    time: str
    available: str


SOURCES: dict[str, Source] = {
    "transactions": Source("transactions", "ts", "ts < {as_of_ts}"),
    "app_events": Source("app_events", "ts", "ts < {as_of_ts}"),
    # a holding counts while open at as_of
    "holdings": Source(
        "holdings",
        "opened_date",
        "opened_date < {as_of_date} AND (closed_date IS NULL OR closed_date >= {as_of_date})",
    ),
    # a month's statement is issued when the month ends: usable only strictly after that
    "statements": Source(
        "statements", "statement_month", "statement_month < {as_of_minus_1_month}"
    ),
    "loans": Source("loans", "start_date", "start_date < {as_of_date}"),
    "customers": Source("customers", "signup_date", "signup_date < {as_of_date}"),
    # the bank's own marketing: what it sent and what came back
    "contacts": Source("contacts", "ts", "ts < {as_of_ts}"),
    "responses": Source("responses", "ts", "ts < {as_of_ts}"),
}


@dataclass(frozen=True)
class FeatureDef:
    """One feature, declared once and compiled for every engine.

    Parameters
    ----------
    name : str
        Column name (snake_case).
    zh, en : str
        Descriptions.
    type : {"float", "int", "bool", "string"}
    group : str
        Family, for listing (rfm, rolling, category, trend, channel, time, app, holdings,
        credit, loans, profile, lifecycle).
    source : str
        A key of :data:`SOURCES`, or ``"derived"`` for an expression over other features.
    agg : str, optional
        Aggregate over the source rows in the window (not for ``customers`` or ``derived``).
    value : str
        SQL over the source's columns (the aggregated value), or over other features' names
        for a derived feature, or over ``customers`` columns. ``{as_of_ts}`` and
        ``{as_of_date}`` are replaced by the as-of time.
    where : str, optional
        SQL condition selecting the source rows that count.
    window_days : int, optional
        Only rows in the ``window_days`` days before ``as_of`` count (None: all history).
    default : str, optional
        SQL literal used when the customer has no rows (e.g. ``0`` for sums and counts).
    """

    name: str
    zh: str
    en: str
    type: FeatureType
    group: str
    source: str
    value: str
    agg: Agg | None = None
    where: str | None = None
    window_days: int | None = None
    default: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES and self.source != "derived":
            raise SchemaError(
                f"Feature '{self.name}' reads source '{self.source}', which is not one of "
                f"{', '.join([*SOURCES, 'derived'])}."
            )
        needs_agg = self.source not in ("customers", "derived")
        if needs_agg and self.agg is None:
            raise SchemaError(f"Feature '{self.name}' aggregates '{self.source}' but has no agg.")
        if not needs_agg and (self.agg is not None or self.window_days is not None):
            raise SchemaError(
                f"Feature '{self.name}' is computed per customer from '{self.source}'; it takes "
                "no agg and no window."
            )
        if self.window_days is not None and self.window_days <= 0:
            raise SchemaError(
                f"Feature '{self.name}' has window_days={self.window_days}; "
                "it must be a positive number of days."
            )
