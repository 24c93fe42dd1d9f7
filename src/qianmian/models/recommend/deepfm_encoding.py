"""Side features → the DeepFM's fields: integer codes for categories, [0, 1] values for numbers.

Text, category and bool columns are categorical: :class:`~sklearn.preprocessing.OrdinalEncoder`
codes shifted by one, so that 0 means "unknown" (missing, or a value unseen in training).
Numeric columns are median-imputed and mapped to [0, 1] by
:class:`~sklearn.preprocessing.QuantileTransformer` (spending is heavy-tailed). Each encoded
table ends with one extra row, the "unknown" customer (every code 0, every number the median).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder, QuantileTransformer

from qianmian.errors import ValidationError

__all__ = ["EncodedCustomers", "EncodedProducts", "encode_customers", "encode_products"]


@dataclass(frozen=True)
class EncodedCustomers:
    """Customers' side features as field codes and values; row ``len(ids)`` is "unknown"."""

    ids: np.ndarray  # sorted customer ids
    categorical: list[str]
    numeric: list[str]
    codes: np.ndarray  # (n + 1, n_categorical) int64, 0 = unknown
    values: np.ndarray  # (n + 1, n_numeric) float32 in [0, 1]
    cardinalities: list[int]

    def rows(self, customer_ids: np.ndarray) -> np.ndarray:
        """Row of each customer (the "unknown" row if absent)."""
        unknown = len(self.ids)
        if unknown == 0:
            return np.zeros(len(customer_ids), dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, customer_ids), unknown - 1)
        return np.where(self.ids[pos] == customer_ids, pos, unknown)


@dataclass(frozen=True)
class EncodedProducts:
    """Products as field codes: the product id first, then the product features."""

    categorical: list[str]
    codes: np.ndarray  # (n_products, 1 + n_categorical) int64
    cardinalities: list[int]


def _split_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric = [
        str(c)
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    return [str(c) for c in frame.columns if str(c) not in numeric], numeric


def _as_text(frame: pd.DataFrame) -> np.ndarray:
    """Values as strings, missing values as NaN (which the encoder maps to "unknown")."""
    return frame.astype(object).map(lambda v: str(v) if pd.notna(v) else np.nan).to_numpy()


def _indexed(frame: object, name: str, key: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(
            f"{name} must be a DataFrame indexed by {key}; got {type(frame).__name__}."
        )
    return frame.set_index(key) if key in frame.columns else frame


def encode_customers(side: pd.DataFrame | None, random_state: int) -> EncodedCustomers:
    """Fit the encoders on ``side`` (indexed by customer_id, or with that column) and apply them."""
    if side is None:
        side = pd.DataFrame(index=pd.Index([], dtype="int64", name="customer_id"))
    side = _indexed(side, "side_features", "customer_id")
    ids = pd.Index(side.index).astype("int64")
    if ids.has_duplicates:
        raise ValidationError("side_features has more than one row for some customer_id.")
    order = np.argsort(ids.to_numpy(), kind="stable")
    side = side.iloc[order]
    cats, nums = _split_columns(side)
    n = len(side)
    if cats and n:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
        )
        codes = encoder.fit_transform(_as_text(side[cats])) + 1
        cardinalities = [len(c) + 1 for c in encoder.categories_]
    else:
        codes, cardinalities = np.zeros((n, len(cats))), [1] * len(cats)
    if nums and n:
        scaler = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                (
                    "scale",
                    QuantileTransformer(n_quantiles=max(2, min(100, n)), random_state=random_state),
                ),
            ]
        )
        values = scaler.fit_transform(side[nums].to_numpy(float))
        unknown = scaler.transform(np.full((1, len(nums)), np.nan))
    else:
        values, unknown = np.zeros((n, len(nums))), np.zeros((1, len(nums)))
    return EncodedCustomers(
        ids=ids.to_numpy()[order],
        categorical=cats,
        numeric=nums,
        codes=np.vstack([codes, np.zeros((1, len(cats)))]).astype(np.int64),
        values=np.vstack([values, unknown]).astype(np.float32),
        cardinalities=cardinalities,
    )


def encode_products(products: np.ndarray, features: pd.DataFrame | None) -> EncodedProducts:
    """Codes of ``products`` (in order): the id, then each column of ``features`` (categorical)."""
    ids = np.asarray(products).astype(str)
    if features is None:
        frame = pd.DataFrame(index=pd.Index(ids, name="product_id"))
    else:
        frame = _indexed(features, "product_features", "product_id")
        frame = frame.set_axis(frame.index.astype(str), axis=0).reindex(ids)
    categorical = [str(c) for c in frame.columns]
    if categorical:
        encoder = OrdinalEncoder(encoded_missing_value=-1)
        extra = encoder.fit_transform(_as_text(frame)) + 1
        cardinalities = [len(c) + 1 for c in encoder.categories_]
    else:
        extra, cardinalities = np.zeros((len(ids), 0)), []
    id_codes = np.arange(1, len(ids) + 1)[:, None]
    return EncodedProducts(
        categorical=categorical,
        codes=np.hstack([id_codes, extra]).astype(np.int64),
        cardinalities=[len(ids) + 1, *cardinalities],
    )
