"""A simulated bank's features with a planted label, for the SHAP reason-code tests.

The label's log-odds rise with the log of travel spend in the last 30 days and with credit
utilisation (capped at 100%); nothing else matters, so a faithful explanation must name these two
drivers.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from qianmian.config import load_settings
from qianmian.features.engine import StoreFeatureEngine
from qianmian.world import BANK_TABLES, World, WorldConfig

AS_OF = "2026-08-01"
DRIVERS = ("spend_travel_30d", "utilisation_last")
NOT_FEATURES = ("customer_id", "as_of")


def world_features(workspace: Path) -> pd.DataFrame:
    """Features as of :data:`AS_OF` of a 4,000-customer, 12-month bank (seed 21)."""
    world = World.generate(WorldConfig(customers=4_000, months=12, seed=21), workspace, workers=1)
    with load_settings(workspace).build_store() as store:
        for name in BANK_TABLES:
            store.load_parquet(name, world.table_paths(name), mode="replace")
        return StoreFeatureEngine(store).build(AS_OF).to_pandas()


def planted_logit(features: pd.DataFrame) -> np.ndarray:
    travel = np.log1p(features["spend_travel_30d"].to_numpy(dtype=float))
    utilisation = features["utilisation_last"].fillna(0.0).clip(0.0, 1.0).to_numpy(dtype=float)
    return -3.0 + 0.5 * travel + 4.0 * utilisation


def planted_label(features: pd.DataFrame, seed: int = 7) -> np.ndarray:
    p = 1.0 / (1.0 + np.exp(-planted_logit(features)))
    return np.random.default_rng(seed).random(len(features)) < p


def model_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c not in NOT_FEATURES]


def training_frame(features: pd.DataFrame) -> pd.DataFrame:
    """The model's columns with text as categories (how LightGBM takes them)."""
    X = features[model_columns(features)].copy()
    for col in X.columns:
        if not (pd.api.types.is_numeric_dtype(X[col]) or pd.api.types.is_bool_dtype(X[col])):
            X[col] = X[col].astype("category")
    return X


def planted_model(features: pd.DataFrame) -> lgb.LGBMClassifier:
    """300 trees on every catalogue feature, fitted to :func:`planted_label`."""
    model = lgb.LGBMClassifier(
        n_estimators=300,
        learning_rate=0.03,
        num_leaves=7,
        min_child_samples=50,
        n_jobs=1,
        random_state=0,
        verbose=-1,
    )
    return model.fit(training_frame(features), planted_label(features))
