"""Identifiers of every customer, drawn in one pass so they are unique across the whole bank.

Sources: the core banking system knows the national ID and the mobile; the card system the card
numbers; the app its user id and the devices (15% of app users have two); the CRM the email
(about 60% of customers gave one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from qianmian.data.schema import table
from qianmian.errors import NotFoundError
from qianmian.world import pii
from qianmian.world.geography import CITIES

__all__ = ["identifiers_table", "sightings_table"]


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


def sightings_table(
    rng: np.random.Generator, identifiers: pa.Table, holdings: pa.Table
) -> tuple[pa.Table, pa.Table]:
    """What each source system recorded, before the bank unified its customers.

    - core banking: one record per customer with the national ID and the mobile;
    - card system: one record per card account with the card number and the mobile;
    - app: one record per app user with the app user id, the devices and the mobile;
    - CRM: one record per email with the email and, usually, the mobile (sometimes the ID).
    Noise a real bank has: 1.5% of app users also used a family member's phone (a shared
    device); 3% of CRM records carry an old mobile number that nothing else knows.

    Returns the sightings and the truth (source, source_record_id, customer_id).
    """
    ids = identifiers.to_pandas()
    by_type = {t: g for t, g in ids.groupby("id_type")}
    mobile = by_type["mobile"].set_index("customer_id")["id_value"]
    nid = by_type["national_id"].set_index("customer_id")["id_value"]
    rows: list[pd.DataFrame] = []
    truth: list[pd.DataFrame] = []

    def record(
        source: str,
        prefix: str,
        owners: np.ndarray,
        id_type: str,
        values: np.ndarray,
        seen: np.ndarray,
        record_no: np.ndarray,
    ) -> None:
        rid = np.char.add(prefix, np.char.zfill(record_no.astype(str), 9))
        rows.append(
            pd.DataFrame(
                {
                    "source": source,
                    "source_record_id": rid,
                    "id_type": id_type,
                    "id_value": values,
                    "seen_at": seen,
                }
            )
        )
        truth.append(
            pd.DataFrame({"source": source, "source_record_id": rid, "customer_id": owners})
        )

    # Record numbers are a random permutation so that they say nothing about the customer.
    core = by_type["national_id"]
    n = len(core)
    no = rng.permutation(n) + 1
    cid = core["customer_id"].to_numpy()
    record(
        "core_banking",
        "K",
        cid,
        "national_id",
        core["id_value"].to_numpy(),
        core["first_seen"].to_numpy(),
        no,
    )
    record(
        "core_banking",
        "K",
        cid,
        "mobile",
        mobile.loc[cid].to_numpy(),
        core["first_seen"].to_numpy(),
        no,
    )

    cards = by_type["card_number"]
    no = rng.permutation(len(cards)) + 1
    cid = cards["customer_id"].to_numpy()
    record(
        "card_system",
        "C",
        cid,
        "card_number",
        cards["id_value"].to_numpy(),
        cards["first_seen"].to_numpy(),
        no,
    )
    record(
        "card_system",
        "C",
        cid,
        "mobile",
        mobile.loc[cid].to_numpy(),
        cards["first_seen"].to_numpy(),
        no,
    )

    app = by_type["app_user_id"].reset_index(drop=True)
    no_of = pd.Series(rng.permutation(len(app)) + 1, index=app["customer_id"].to_numpy())
    cid = app["customer_id"].to_numpy()
    record(
        "app",
        "A",
        cid,
        "app_user_id",
        app["id_value"].to_numpy(),
        app["first_seen"].to_numpy(),
        no_of.loc[cid].to_numpy(),
    )
    record(
        "app",
        "A",
        cid,
        "mobile",
        mobile.loc[cid].to_numpy(),
        app["first_seen"].to_numpy(),
        no_of.loc[cid].to_numpy(),
    )
    dev = by_type["device_id"]
    d_cid = dev["customer_id"].to_numpy()
    record(
        "app",
        "A",
        d_cid,
        "device_id",
        dev["id_value"].to_numpy(),
        dev["first_seen"].to_numpy(),
        no_of.loc[d_cid].to_numpy(),
    )
    # Shared family devices: an app user also logged in on another customer's device.
    share = rng.random(len(app)) < 0.015
    donors = dev.sample(
        n=int(share.sum()), random_state=np.random.RandomState(rng.integers(0, 2**31)), replace=True
    )
    s_cid = cid[share]
    record(
        "app",
        "A",
        s_cid,
        "device_id",
        donors["id_value"].to_numpy(),
        donors["first_seen"].to_numpy(),
        no_of.loc[s_cid].to_numpy(),
    )

    crm = by_type["email"]
    no = rng.permutation(len(crm)) + 1
    cid = crm["customer_id"].to_numpy()
    seen = crm["first_seen"].to_numpy()
    record("crm", "M", cid, "email", crm["id_value"].to_numpy(), seen, no)
    u = rng.random(len(crm))
    old = u < 0.03
    by_id = u > 0.88
    plain = ~old & ~by_id
    record(
        "crm", "M", cid[plain], "mobile", mobile.loc[cid[plain]].to_numpy(), seen[plain], no[plain]
    )
    record(
        "crm",
        "M",
        cid[by_id],
        "national_id",
        nid.loc[cid[by_id]].to_numpy(),
        seen[by_id],
        no[by_id],
    )
    stale = pii.mobiles(rng, int(old.sum()) + len(mobile))
    # pandas isin hashes; numpy's isin on strings compares every pair
    stale = stale[~pd.Series(stale).isin(mobile.to_numpy()).to_numpy()][: int(old.sum())]
    record("crm", "M", cid[old], "mobile", stale, seen[old], no[old])

    sightings = pd.concat(rows, ignore_index=True).drop_duplicates(
        ["source", "source_record_id", "id_type", "id_value"]
    )
    truth_frame = pd.concat(truth, ignore_index=True).drop_duplicates(
        ["source", "source_record_id"]
    )
    return (
        table("identifier_sightings").conform(
            pa.Table.from_pandas(sightings, preserve_index=False)
        ),
        pa.Table.from_pandas(truth_frame, preserve_index=False),
    )
