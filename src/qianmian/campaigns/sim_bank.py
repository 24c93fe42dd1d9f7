"""What a campaign simulation reads once: the simulated bank's customers, features and history.

:func:`load_sim_bank` gathers, for one campaign of the catalogue, the latest feature snapshot of
every customer, their consents, the campaign's offers × channels (an offer can go out on a
channel only if the catalogue has copy for it there and the campaign allows the channel), the
bank's past contacts (they count towards fatigue and teach the models) and the oracle, whose
ground truth draws every response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from qianmian.decide.catalogue import Catalogue
from qianmian.decide.catalogue_schema import CampaignSpec
from qianmian.errors import NotFoundError, ValidationError
from qianmian.features.engine import FEATURE_TABLE, StoreFeatureEngine, latest_as_of
from qianmian.store.base import Store
from qianmian.world import World
from qianmian.world.catalogue import OFFERS as WORLD_OFFERS
from qianmian.world.truth import Oracle

__all__ = ["SimBank", "load_sim_bank"]

_CONSENT_FREE = ("in_app",)  # banners inside the app need no marketing consent


@dataclass
class SimBank:
    """The inputs of a simulation, aligned on one customer order (``customer_ids``)."""

    world: World
    oracle: Oracle
    catalogue: Catalogue
    campaign: CampaignSpec
    as_of: datetime
    features: pd.DataFrame  # one row per customer, ``customer_id`` first
    customer_ids: np.ndarray
    offers: tuple[str, ...]
    channels: tuple[str, ...]
    consent: np.ndarray  # (customers, channels) bool
    opted_out: np.ndarray  # (customers,) bool at the start
    offer_channel: np.ndarray  # (offers, channels) bool: the offer has copy for the channel
    history: (
        pd.DataFrame
    )  # past contacts: customer_id, offer_id, channel, ts, is_holdout, converted
    attributes: pd.DataFrame = field(default_factory=pd.DataFrame)

    def allowed(self, opted_out: np.ndarray) -> np.ndarray:
        """(customers, offers, channels): who may be sent what, where."""
        reach = self.consent & ~opted_out[:, None]
        return reach[:, None, :] & self.offer_channel[None, :, :]


def load_sim_bank(store: Store, world: World, catalogue: Catalogue, campaign_id: str) -> SimBank:
    """Read the simulation's inputs for campaign ``campaign_id`` of ``catalogue``."""
    campaign = catalogue.campaign(campaign_id)
    as_of = latest_as_of(store)
    if store.has_table(FEATURE_TABLE):
        table = store.query(f'SELECT * FROM "{FEATURE_TABLE}" WHERE as_of = $t', {"t": as_of})
    else:
        table = None
    if table is None or table.num_rows == 0:
        table = StoreFeatureEngine(store).build(as_of)
    features = table.to_pandas().sort_values("customer_id", kind="stable").reset_index(drop=True)
    ids = features["customer_id"].to_numpy(np.int64)

    customers = (
        store.query("SELECT * FROM customers").to_pandas().set_index("customer_id").reindex(ids)
    )
    offers = tuple(campaign.offers)
    channels = tuple(campaign.channels or catalogue.channels)
    consent = np.column_stack(
        [
            np.ones(len(ids), bool)
            if c in _CONSENT_FREE
            else customers[f"consent_{c}"].fillna(False).to_numpy(bool)
            for c in channels
        ]
    )
    offer_channel = np.array(
        [
            [any(t.channel == c for t in catalogue.offer(o).treatments) for c in channels]
            for o in offers
        ]
    )
    if not offer_channel.any():
        raise ValidationError(
            f"campaign {campaign_id}: none of its offers has copy on its channels "
            f"({', '.join(channels)}); nothing can be sent."
        )
    unknown = [o for o in offers if o not in {x.offer_id for x in WORLD_OFFERS}]
    if unknown:
        raise NotFoundError(
            f"campaign {campaign_id}: offer(s) {', '.join(unknown)} are not offers of the simulated "
            "bank, whose customers cannot respond to them; simulate a campaign of its offers."
        )
    attributes = customers.reset_index()[
        [
            c
            for c in ("customer_id", "gender", "birth_date", "city_tier")
            if c in customers.reset_index()
        ]
    ]
    return SimBank(
        world=world,
        oracle=world.oracle(),
        catalogue=catalogue,
        campaign=campaign,
        as_of=as_of,
        features=features,
        customer_ids=ids,
        offers=offers,
        channels=channels,
        consent=consent,
        opted_out=customers["marketing_opt_out"].fillna(False).to_numpy(bool),
        offer_channel=offer_channel,
        history=_history(store),
        attributes=attributes,
    )


def _history(store: Store) -> pd.DataFrame:
    """The bank's past contacts with whether each converted within 30 days."""
    if not store.has_table("contacts"):
        return pd.DataFrame(
            columns=["customer_id", "offer_id", "channel", "ts", "is_holdout", "converted"]
        )
    return store.query(
        """
        SELECT c.customer_id, c.offer_id, c.channel, c.ts, c.is_holdout,
               coalesce(max(CASE WHEN r.response_type = 'approved'
                                  AND r.ts < c.ts + INTERVAL '30 days' THEN 1 END), 0)
                   AS converted
        FROM contacts c LEFT JOIN responses r USING (contact_id)
        GROUP BY c.contact_id, c.customer_id, c.offer_id, c.channel, c.ts, c.is_holdout
        """
    ).to_pandas()
