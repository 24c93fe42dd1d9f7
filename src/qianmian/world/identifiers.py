"""Identifiers of every customer, drawn in one pass so they are unique across the whole bank.

Sources: the core banking system knows the national ID and the mobile; the card system the card
numbers; the app its user id and the devices (15% of app users have two); the CRM the email
(about 60% of customers gave one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from qianmian.data.schema import table
from qianmian.errors import NotFoundError
from qianmian.world import pii
from qianmian.world.geography import CITIES

__all__ = ["identifiers_table"]


def _region_codes(rng: np.random.Generator, city: np.ndarray) -> np.ndarray:
    out = np.empty(len(city), dtype=object)
    for c in CITIES:
        sel = city == c.name
        if not sel.any():
            continue
        try:
            codes = pii.region_codes(c.name)
        except NotFoundError:
            codes = np.array([c.region_code])
        out[sel] = codes[rng.integers(0, len(codes), int(sel.sum()))]
    return out.astype(str)


def identifiers_table(rng: np.random.Generator, data_dir: Path, hidden_dir: Path) -> pa.Table:
    cust = pq.read_table(
        data_dir / "customers",
        columns=["customer_id", "gender", "birth_date", "city", "signup_date"],
    )
    traits = pq.read_table(hidden_dir / "traits", columns=["customer_id", "app_user"])
    hold = pq.read_table(
        data_dir / "holdings", columns=["customer_id", "product_id", "opened_date"]
    )
    cid = cust["customer_id"].to_numpy()
    order = np.argsort(cid, kind="stable")
    cid = cid[order]
    gender = cust["gender"].to_numpy(zero_copy_only=False)[order]
    birth = cust["birth_date"].to_numpy().astype("datetime64[D]")[order]
    city = cust["city"].to_numpy(zero_copy_only=False)[order]
    signup = cust["signup_date"].to_numpy().astype("datetime64[D]")[order]
    t_order = np.argsort(traits["customer_id"].to_numpy(), kind="stable")
    app_user = traits["app_user"].to_numpy(zero_copy_only=False)[t_order].astype(bool)
    n = len(cid)

    nid = pii.national_ids(rng, birth, gender, _region_codes(rng, city))
    mob = pii.mobiles(rng, n)
    has_email = rng.random(n) < 0.6
    mail = pii.emails(rng, int(has_email.sum()))
    app_idx = np.flatnonzero(app_user)
    app_ids = pii.app_user_ids(rng, len(app_idx))
    two_dev = rng.random(len(app_idx)) < 0.15
    dev_owner = np.concatenate([app_idx, app_idx[two_dev]])
    devs = pii.device_ids(rng, len(dev_owner))
    is_card = np.char.startswith(
        hold["product_id"].to_numpy(zero_copy_only=False).astype(str), "CC-"
    )
    card_cid = hold["customer_id"].to_numpy()[is_card]
    card_open = hold["opened_date"].to_numpy().astype("datetime64[D]")[is_card]
    card_order = np.lexsort((card_open, card_cid))
    cards = pii.card_numbers(rng, int(is_card.sum()))
    pos = np.searchsorted(cid, card_cid[card_order])
    dev_seen = signup[dev_owner] + rng.integers(0, 400, len(dev_owner)).astype("timedelta64[D]")

    parts = [
        (cid, "national_id", nid, "core_banking", signup),
        (cid, "mobile", mob, "core_banking", signup),
        (cid[has_email], "email", mail, "crm", signup[has_email]),
        (cid[app_idx], "app_user_id", app_ids, "app", signup[app_idx]),
        (cid[dev_owner], "device_id", devs, "app", dev_seen),
        (cid[pos], "card_number", cards, "card_system", card_open[card_order]),
    ]
    return table("identifiers").conform(
        pa.table(
            {
                "customer_id": np.concatenate([p[0] for p in parts]),
                "id_type": np.concatenate([np.full(len(p[0]), p[1]) for p in parts]),
                "id_value": np.concatenate([np.asarray(p[2]).astype(str) for p in parts]),
                "source": np.concatenate([np.full(len(p[0]), p[3]) for p in parts]),
                "first_seen": np.concatenate([p[4] for p in parts]),
            }
        )
    )
