"""Campaign results as two tables: who was contacted (or held out), and what they did.

Every analysis of a campaign — funnel, attribution, channel ROI, experiment results, Qini curves,
off-policy evaluation, fairness of reach — reads the same :class:`CampaignFrames`, whichever way
the campaign ran: through the decision engine (read back from the decision log), through
``qianmian simulate``, or as the simulated bank's past randomised campaigns. One contract keeps
the analyses independent of where the data came from.

``contacts`` has one row per decision to contact a customer, including the held-out ones
(decided but deliberately not sent, ``is_holdout``), which are what incremental measurement
compares against. ``responses`` has one row per outcome, in the funnel's vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from qianmian.errors import ValidationError

__all__ = [
    "CONTACT_COLUMNS",
    "FUNNEL",
    "GUARD_RAILS",
    "RESPONSE_COLUMNS",
    "RESPONSE_TYPES",
    "CampaignFrames",
]

#: The funnel, in order: each stage is a subset of the one before (``approved`` is a conversion).
FUNNEL = ("delivered", "opened", "clicked", "applied", "approved", "first_use")
#: Harms watched beside the funnel.
GUARD_RAILS = ("complained", "unsubscribed")
RESPONSE_TYPES = (*FUNNEL, *GUARD_RAILS, "ignored", "failed")

CONTACT_COLUMNS = {
    "contact_id": "str — one id per contact decision (a decision id, or ``<decision>:<rank>``)",
    "customer_id": "int",
    "campaign_id": "str — the campaign ('' for always-on offers)",
    "policy": "str — the targeting policy or experiment arm that chose the contact",
    "offer_id": "str",
    "channel": "str — app_push, in_app, sms, email, call_center, wechat",
    "ts": "datetime64 — when the contact was decided (China time, naive)",
    "is_holdout": "bool — decided but held out on purpose (control group): nothing was sent",
    "cost": "float — CNY spent on the contact (channel cost; 0 for a holdout)",
    "action_probability": "float — P(this action | context) under the logging policy; NaN if unknown",
}
RESPONSE_COLUMNS = {
    "contact_id": "str — the contact responded to",
    "customer_id": "int",
    "offer_id": "str",
    "response_type": "str — one of RESPONSE_TYPES",
    "ts": "datetime64",
    "value": "float — value to the bank in CNY (on ``approved``; NaN otherwise)",
}


@dataclass(frozen=True)
class CampaignFrames:
    """A campaign's contacts and responses, checked against the contract above.

    ``customers`` optionally carries one row per customer (``customer_id`` plus attributes such
    as ``gender``, ``age_band``, ``city_tier``, ``segment``) for fairness and segment views.
    """

    contacts: pd.DataFrame
    responses: pd.DataFrame
    customers: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        _require("contacts", self.contacts, CONTACT_COLUMNS)
        _require("responses", self.responses, RESPONSE_COLUMNS)
        if self.contacts["contact_id"].duplicated().any():
            dup = self.contacts["contact_id"][self.contacts["contact_id"].duplicated()].iloc[0]
            raise ValidationError(f"contacts.contact_id must be unique; {dup!r} is repeated.")
        unknown = ~self.responses["response_type"].isin(RESPONSE_TYPES)
        if unknown.any():
            bad = self.responses["response_type"][unknown].iloc[0]
            raise ValidationError(
                f"responses.response_type {bad!r} is not one of {', '.join(RESPONSE_TYPES)}."
            )
        if self.customers is not None and "customer_id" not in self.customers.columns:
            raise ValidationError("customers needs a 'customer_id' column; it is missing.")

    def outcome(self, response_type: str) -> pd.Series:
        """Per contact (indexed like ``contacts``): did it lead to ``response_type``?"""
        if response_type not in RESPONSE_TYPES:
            raise ValidationError(
                f"response_type {response_type!r} is not one of {', '.join(RESPONSE_TYPES)}."
            )
        hit = self.responses.loc[
            self.responses["response_type"] == response_type, "contact_id"
        ].unique()
        return self.contacts["contact_id"].isin(hit).rename(response_type)

    def value(self) -> pd.Series:
        """Per contact: the value of its conversions (CNY, 0 when none)."""
        approved = self.responses[self.responses["response_type"] == "approved"]
        total = approved.groupby("contact_id")["value"].sum()
        return self.contacts["contact_id"].map(total).fillna(0.0).astype(float).rename("value")

    def of_policy(self, policy: str) -> CampaignFrames:
        """The contacts (and their responses) chosen by one policy."""
        contacts = self.contacts[self.contacts["policy"] == policy]
        responses = self.responses[self.responses["contact_id"].isin(contacts["contact_id"])]
        return CampaignFrames(contacts, responses, self.customers)


def _require(name: str, frame: pd.DataFrame, columns: dict[str, str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{name} is missing column(s) {', '.join(missing)}; "
            f"a {name} table needs {', '.join(columns)}."
        )
