"""Side features for the recommenders: who the customer is, what the product is.

Customer side features come from the point-in-time feature catalogue (only data before
``as_of``): demographics as bands (age, the application form's income band, city tier, risk
tolerance, children, marriage, occupation), spending mix (shares of e-commerce, travel, baby,
car and home spending), card use (utilisation, revolving), and app interest (views of card,
wealth, insurance and loan pages). Features derived from holdings and loans (``holds_*``,
``n_cards``, ``wealth_balance``, ``loans_*`` ...) are deliberately left out: the recommenders learn
from holdings as their *labels*, and a feature that restates the label teaches nothing that
carries over to products not yet held.

Product side features come from the ``products`` table: type, card tier and risk level.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime

import numpy as np
import pandas as pd

from qianmian.features.cold_start import income_band
from qianmian.features.engine import StoreFeatureEngine
from qianmian.store.base import Store

__all__ = [
    "AGE_BANDS",
    "CUSTOMER_CATEGORIES",
    "CUSTOMER_NUMBERS",
    "PRODUCT_CATEGORIES",
    "customer_side_features",
    "product_side_features",
]

AGE_BANDS: tuple[int, ...] = (25, 30, 35, 40, 45, 50, 55, 60)
CUSTOMER_CATEGORIES: tuple[str, ...] = (
    "age_band",
    "income_band",
    "city_tier",
    "risk_level",
    "children",
    "is_married",
    "gender",
    "occupation",
)
CUSTOMER_NUMBERS: tuple[str, ...] = (
    "tenure_days",
    "credit_score",
    "monetary_90d",
    "share_ecommerce_90d",
    "share_travel_90d",
    "share_airline_90d",
    "share_hotel_90d",
    "share_baby_90d",
    "share_education_90d",
    "share_auto_90d",
    "share_fuel_90d",
    "share_home_90d",
    "share_electronics_90d",
    "share_online_90d",
    "utilisation_avg_3m",
    "revolving_months_6m",
    "logins_30d",
    "views_card_travel_30d",
    "views_card_platinum_30d",
    "views_card_cobrand_30d",
    "views_card_youth_30d",
    "views_instalment_30d",
    "views_loan_30d",
    "views_car_loan_30d",
    "views_wealth_list_30d",
    "views_wealth_fund_30d",
    "views_insurance_30d",
    "views_home_deals_30d",
    "views_baby_deals_30d",
)
PRODUCT_CATEGORIES: tuple[str, ...] = ("product_type", "card_tier", "risk_level")
_SOURCE_CATEGORIES = ("city_tier", "gender", "occupation")


def _age_band(age: pd.Series) -> np.ndarray:
    edges = np.asarray(AGE_BANDS)
    labels = np.asarray(
        [f"<{edges[0]}"]
        + [f"{a}-{b - 1}" for a, b in itertools.pairwise(edges)]
        + [f"{edges[-1]}+"],
        dtype=object,
    )
    x = pd.to_numeric(age, errors="coerce").to_numpy(float)
    out = labels[np.searchsorted(edges, np.nan_to_num(x), "right")]
    return np.where(np.isnan(x), "unknown", out).astype(object)


def customer_side_features(store: Store, as_of: date | datetime | str) -> pd.DataFrame:
    """Customer side features as of ``as_of``, one row per customer who had signed up by then.

    Returns
    -------
    DataFrame indexed by ``customer_id``
        :data:`CUSTOMER_CATEGORIES` as strings (missing → ``"unknown"``), then
        :data:`CUSTOMER_NUMBERS` as floats (missing stays NaN).
    """
    needed = sorted(
        {"age", "monthly_income", "children", "is_married", *_SOURCE_CATEGORIES}
        | {"risk_level", *CUSTOMER_NUMBERS}
    )
    raw = StoreFeatureEngine(store).build(as_of, features=needed).to_pandas()
    children = pd.to_numeric(raw["children"], errors="coerce")
    cats = {
        "age_band": _age_band(raw["age"]),
        "income_band": income_band(pd.to_numeric(raw["monthly_income"], errors="coerce")),
        "city_tier": raw["city_tier"],
        "risk_level": pd.to_numeric(raw["risk_level"], errors="coerce").map(
            lambda v: "unknown" if pd.isna(v) else f"C{int(v)}"
        ),
        "children": children.map(lambda v: "unknown" if pd.isna(v) else str(min(int(v), 2))),
        "is_married": raw["is_married"].map(lambda v: "unknown" if pd.isna(v) else str(bool(v))),
        "gender": raw["gender"],
        "occupation": raw["occupation"],
    }
    frame = pd.DataFrame(
        {k: pd.Series(v, index=raw.index).astype(object) for k, v in cats.items()}
    ).fillna("unknown")
    frame = frame.astype(str)
    for name in CUSTOMER_NUMBERS:
        frame[name] = pd.to_numeric(raw[name], errors="coerce").astype(float)
    frame.index = pd.Index(raw["customer_id"].astype("int64"), name="customer_id")
    return frame


def product_side_features(store: Store) -> pd.DataFrame:
    """Product side features from the ``products`` table (missing → ``"none"``).

    Returns
    -------
    DataFrame indexed by ``product_id``
        :data:`PRODUCT_CATEGORIES` as strings.
    """
    raw = store.read("products", columns=["product_id", *PRODUCT_CATEGORIES]).to_pandas()
    frame = raw[list(PRODUCT_CATEGORIES)].astype(object).fillna("none").astype(str)
    frame.index = pd.Index(raw["product_id"].astype(str), name="product_id")
    return frame
