"""Draw customers' responses to contacts from the oracle's ground truth.

A contacted customer may receive the message (delivered), open it, click, apply, be approved
and use the product, and independently complain or unsubscribe. A held-out customer (decided but
not contacted) is never reached but may still convert on their own with the baseline
probability, which is what makes incremental measurement possible. Fatigue counts the contacts
each customer received in the 30 days before each contact, within the batch and ``history``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qianmian.errors import ValidationError
from qianmian.world.truth import Oracle

__all__ = ["draw_responses", "recent_contact_counts"]


def recent_contact_counts(
    contacts: pd.DataFrame, history: pd.DataFrame | None = None
) -> np.ndarray:
    """For each contact, the customer's earlier (non-holdout) contacts in the previous 30 days."""

    def sent(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        keep = ~frame.get("is_holdout", pd.Series(False, index=frame.index)).to_numpy(bool)
        secs = pd.to_datetime(frame["ts"]).to_numpy().astype("datetime64[s]").astype(np.int64)
        return frame["customer_id"].to_numpy(np.int64)[keep], secs[keep]

    cid = contacts["customer_id"].to_numpy(np.int64)
    secs = pd.to_datetime(contacts["ts"]).to_numpy().astype("datetime64[s]").astype(np.int64)
    h_cid, h_secs = sent(contacts)
    if history is not None and len(history):
        o_cid, o_secs = sent(history)
        h_cid, h_secs = np.concatenate([h_cid, o_cid]), np.concatenate([h_secs, o_secs])
    # One sortable key per (customer, second): customers are 10^10 s (~300 years) apart.
    stride = np.int64(10_000_000_000)
    origin = min(secs.min(initial=0), h_secs.min(initial=0))
    history_keys = np.sort(h_cid * stride + (h_secs - origin))
    keys = cid * stride + (secs - origin)
    window = 30 * 86_400
    return np.searchsorted(history_keys, keys) - np.searchsorted(history_keys, keys - window)


def draw_responses(
    oracle: Oracle,
    contacts: pd.DataFrame,
    rng: np.random.Generator,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Responses (one row per outcome) to ``contacts``; see :meth:`qianmian.world.World.respond`."""
    if "contact_id" not in contacts.columns:
        contacts = contacts.assign(contact_id=np.arange(1, len(contacts) + 1, dtype=np.int64))
    if contacts["contact_id"].duplicated().any():
        raise ValidationError(
            "contact_id must be unique within the contacts passed to respond(); "
            f"{int(contacts['contact_id'].duplicated().sum())} are repeated."
        )
    req = contacts.assign(recent_contacts=recent_contact_counts(contacts, history))
    t = oracle.truth(req)
    n = len(req)
    holdout = req.get("is_holdout", pd.Series(False, index=req.index)).to_numpy(bool)
    u = rng.random((n, 8))
    p_deliver = t["p_deliver"].to_numpy()
    delivered = ~holdout & (u[:, 0] < p_deliver)
    opened = delivered & (u[:, 1] < t["p_open"].to_numpy() / np.maximum(p_deliver, 1e-12))
    p_conv = np.where(opened, t["p_treated"].to_numpy(), t["p_baseline"].to_numpy())
    p_app = t["p_approve"].to_numpy()
    p_apply = np.minimum(1.0, p_conv / np.maximum(p_app, 1e-9))
    applied = u[:, 2] < p_apply
    approved = applied & (u[:, 3] < p_conv / np.maximum(p_apply, 1e-12))
    clicked = opened & ((u[:, 4] < 0.12) | applied)
    first_use = approved & (u[:, 5] < 0.8)
    complained = delivered & (u[:, 6] < t["p_complain"].to_numpy() / np.maximum(p_deliver, 1e-12))
    unsub = delivered & (u[:, 7] < t["p_unsubscribe"].to_numpy() / np.maximum(p_deliver, 1e-12))

    ts = pd.to_datetime(req["ts"]).to_numpy().astype("datetime64[s]")
    lag = rng.exponential(1.0, (n, 6))
    minutes = lambda x: (x * 60).astype("timedelta64[s]")  # noqa: E731
    t_deliv = ts + np.timedelta64(20, "s")
    t_open = t_deliv + minutes(lag[:, 0] * 240)
    t_click = t_open + minutes(1 + lag[:, 1] * 3)
    t_apply = np.where(opened, t_click, ts) + minutes(np.minimum(lag[:, 2] * 2880, 40_000))
    t_approve = t_apply + minutes(60 + lag[:, 3] * 1440)
    t_use = t_approve + minutes(np.minimum(lag[:, 4] * 7200, 40_000))
    t_complain = t_deliv + minutes(lag[:, 5] * 1440)
    value = t["value"].to_numpy()

    parts = []
    for kind, mask, when in (
        ("delivered", delivered, t_deliv),
        ("opened", opened, t_open),
        ("clicked", clicked, t_click),
        ("applied", applied, t_apply),
        ("approved", approved, t_approve),
        ("first_use", first_use, t_use),
        ("complained", complained, t_complain),
        ("unsubscribed", unsub, t_complain + np.timedelta64(60, "s")),
    ):
        idx = np.flatnonzero(mask)
        parts.append(
            pd.DataFrame(
                {
                    "contact_id": req["contact_id"].to_numpy()[idx],
                    "customer_id": req["customer_id"].to_numpy()[idx],
                    "offer_id": req["offer_id"].to_numpy()[idx],
                    "response_type": kind,
                    "ts": when[idx].astype("datetime64[us]"),
                    "value": value[idx] if kind == "approved" else np.nan,
                }
            )
        )
    out = pd.concat(parts, ignore_index=True).sort_values(["contact_id", "ts"], kind="stable")
    out.insert(0, "response_id", np.arange(1, len(out) + 1, dtype=np.int64))
    return out.reset_index(drop=True)
