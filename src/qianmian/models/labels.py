"""What churn and lifetime value mean here, as label queries over the window after ``as_of``.

Each query returns ``customer_id, label`` for the window ``[$as_of, $until)`` and runs in any
store (the SQL keeps to the common subset of DuckDB and PostgreSQL).

- **Churn (dormancy)**: a customer active in the 90 days before ``as_of`` makes no card
  transaction at all in the window (default 90 days). Closed cards show up the same way.
- **Value**: the bank's revenue from the customer in the window, annualised: interchange on card
  spend plus interest on revolving balances. Rates are assumptions, stated in
  :data:`REVENUE_ASSUMPTIONS` and recorded on every model card trained with them.
"""

from __future__ import annotations

__all__ = [
    "CHURN_ELIGIBLE",
    "CHURN_LABEL_SQL",
    "REVENUE_ASSUMPTIONS",
    "revenue_label_sql",
]

# Who can churn: customers with at least one transaction in the 90 days before as_of.
CHURN_ELIGIBLE = "frequency_90d > 0"

# Eligible customers with no transaction in the window are labelled 1 by the caller's fill value;
# this query returns 0 for every customer who did transact.
CHURN_LABEL_SQL = """
    SELECT customer_id, 0.0 AS label
    FROM transactions
    WHERE ts >= $as_of AND ts < $until
    GROUP BY customer_id
"""

REVENUE_ASSUMPTIONS = {
    "interchange_rate": 0.0045,  # issuer's share of the merchant discount on card spend
    "revolving_monthly_rate": 0.015,  # 日息万五 ≈ 1.5 % a month on the carried balance
}


def revenue_label_sql(horizon_days: int) -> str:
    """Revenue per customer in ``[$as_of, $until)``, scaled to a year (CNY).

    >>> "interchange" in revenue_label_sql(180)
    True
    """
    scale = 365.0 / horizon_days
    a = REVENUE_ASSUMPTIONS
    return f"""
        WITH interchange AS (
            SELECT customer_id, sum(amount) * {a["interchange_rate"]} AS revenue
            FROM transactions WHERE ts >= $as_of AND ts < $until GROUP BY customer_id
        ),
        interest AS (
            SELECT customer_id, sum(revolving_balance) * {a["revolving_monthly_rate"]} AS revenue
            FROM statements
            WHERE statement_month >= $as_of AND statement_month < $until
            GROUP BY customer_id
        )
        SELECT customer_id, sum(revenue) * {scale} AS label
        FROM (SELECT * FROM interchange UNION ALL SELECT * FROM interest) r
        GROUP BY customer_id
    """
