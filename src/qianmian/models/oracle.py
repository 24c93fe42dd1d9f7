"""How close a model trained on the simulated bank comes to the best possible: the oracle's.

The simulated bank knows each contact's true conversion probability and true uplift. Scoring the
same test contacts with them gives the best AUC and Qini any model could reach on those draws
(the draws' noise is the same for both), so a model's figures are read next to the oracle's:
AUC within a couple of hundredths, Qini as a share of the oracle's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from qianmian.errors import ValidationError
from qianmian.models.train import TrainedModel
from qianmian.models.uplift.metrics import qini_coefficient
from qianmian.store.base import Store
from qianmian.world import World
from qianmian.world.respond import recent_contact_counts

__all__ = ["contact_truth", "oracle_comparison"]


def contact_truth(world: World, store: Store, rows: pd.DataFrame) -> pd.DataFrame:
    """The oracle's truth for past contacts ``rows`` (as sent, or as if sent for holdouts).

    Fatigue counts each customer's sent contacts in the 30 days before, from the store's
    ``contacts`` table, exactly as the responses were drawn.
    """
    history = store.query("SELECT customer_id, ts, is_holdout FROM contacts").to_pandas()
    requests = rows[["customer_id", "offer_id", "channel", "ts"]].assign(
        is_holdout=rows["treated"].to_numpy(int) == 0
    )
    # ``history`` holds the rows themselves; marking them held out here counts them only there.
    counts = recent_contact_counts(requests.assign(is_holdout=True), history)
    truth = world.oracle().truth(requests.assign(recent_contacts=counts))
    return truth.set_index(rows.index)


def oracle_comparison(world: World, store: Store, trained: TrainedModel) -> dict[str, float]:
    """The model's test metric next to the oracle's on the same test rows."""
    test = trained.test
    truth = contact_truth(world, store, test)
    y = test["converted"].to_numpy(int)
    if trained.kind == "propensity":
        model_auc = float(roc_auc_score(y, test["score"]))
        oracle_auc = float(roc_auc_score(y, truth["p_contacted"]))
        return {"auc": model_auc, "oracle_auc": oracle_auc, "auc_gap": oracle_auc - model_auc}
    if trained.kind == "uplift":
        t = test["treated"].to_numpy(int)
        model_q = float(qini_coefficient(y, test["score"], t))
        oracle_q = float(qini_coefficient(y, truth["uplift"].to_numpy(), t))
        return {
            "qini": model_q,
            "oracle_qini": oracle_q,
            "qini_share_of_oracle": model_q / oracle_q if oracle_q > 0 else float(np.nan),
        }
    raise ValidationError(
        f"The oracle compares propensity and uplift models; '{trained.name}' is a "
        f"'{trained.kind}' model."
    )
