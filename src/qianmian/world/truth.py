"""The oracle: the simulated bank's ground truth for any customer × offer × channel × time.

For each request it returns the probability of converting (applying and being approved within
30 days) without contact (``p_baseline``) and when contacted (``p_contacted``), their
difference (``uplift``, negative for sleeping dogs), the chance the message is delivered and
opened, of a complaint and of an unsubscribe, and the value of a conversion to the bank.

The model (see docs/world.md):

    need     = f(offer's need, customer's tastes and life stage, life events active at t)
    b        = alpha_offer + 1.1·need + 0.35·engagement          (−∞ if already held/unsuitable)
    p_base   = σ(b)
    p_treat  = σ(b + persuadability · strength_offer · (0.6 + 0.6·need) · e^(−fatigue·f))
    p_contact= p_base + p_open · (p_treat − p_base)

where ``f`` is the number of contacts in the previous 30 days. Persuadables have a large
positive persuadability, sure things a high engagement and none, lost causes neither, and
sleeping dogs a negative one plus a high propensity to complain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qianmian.errors import NotFoundError, ValidationError
from qianmian.world.catalogue import OFFERS, OfferTruth
from qianmian.world.life_events import EVENT_TYPES, NEED_WINDOWS
from qianmian.world.population import CHANNELS, PERSUASION_TYPES

__all__ = ["TRUTH_COLUMNS", "Oracle"]

_OFFER = {o.offer_id: o for o in OFFERS}
_DELIVER = {
    "app_push": 0.93,
    "in_app": 1.0,
    "sms": 0.97,
    "email": 0.92,
    "call_center": 0.55,
    "wechat": 0.9,
}
_COMPLAIN_SHIFT = {
    "app_push": 0.0,
    "in_app": -1.5,
    "sms": 0.5,
    "email": -0.5,
    "call_center": 1.3,
    "wechat": -0.3,
}
_UNSUB_SHIFT = {
    "app_push": 0.2,
    "in_app": -2.0,
    "sms": 0.6,
    "email": 0.3,
    "call_center": -0.5,
    "wechat": 0.0,
}
_DELIVER_A = np.array([_DELIVER[c] for c in CHANNELS])
_COMPLAIN_A = np.array([_COMPLAIN_SHIFT[c] for c in CHANNELS])
_UNSUB_A = np.array([_UNSUB_SHIFT[c] for c in CHANNELS])
_CREDIT = {"card_acquisition", "limit_increase", "loan_discount", "instalment_coupon"}

TRUTH_COLUMNS = (
    "p_deliver",
    "p_open",
    "p_baseline",
    "p_treated",
    "p_contacted",
    "uplift",
    "p_approve",
    "p_complain",
    "p_unsubscribe",
    "value",
    "persuasion_type",
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Oracle:
    """Ground truth of one simulated bank (built by :meth:`qianmian.world.World.oracle`).

    ``customers`` holds, per customer_id, the observable attributes and hidden traits;
    ``events`` the hidden life events; ``holdings`` (customer_id, product_id, opened_date).
    """

    customers: pd.DataFrame
    events: pd.DataFrame
    holdings: pd.DataFrame

    def __post_init__(self) -> None:
        self.customers = self.customers.set_index("customer_id", drop=False).sort_index()
        self.events = self.events.sort_values(["customer_id", "day"]).reset_index(drop=True)

    def _rows(self, customer_ids: np.ndarray) -> pd.DataFrame:
        missing = ~np.isin(customer_ids, self.customers.index.to_numpy())
        if missing.any():
            raise NotFoundError(
                f"customer_id {int(customer_ids[missing][0])} is not a customer of this "
                f"simulated bank ({int(missing.sum())} unknown ids in the request)."
            )
        return self.customers.loc[customer_ids]

    def active_events(self, customer_ids: np.ndarray, ts: np.ndarray) -> pd.DataFrame:
        """Which life events are inside their need window at ``ts``: one bool column per type."""
        req = pd.DataFrame(
            {
                "customer_id": customer_ids,
                "req": np.arange(len(customer_ids)),
                "t": pd.to_datetime(ts).values.astype("datetime64[D]"),
            }
        )
        out = pd.DataFrame(False, index=range(len(req)), columns=list(EVENT_TYPES))
        m = req.merge(self.events, on="customer_id")
        if len(m):
            t = m["t"].to_numpy().astype("datetime64[D]")
            day = m["day"].to_numpy().astype("datetime64[D]")
            rel = (t - day).astype("timedelta64[D]").astype(np.int64)
            for k, name in enumerate(EVENT_TYPES):
                lo, hi = NEED_WINDOWS[name]
                hit = (m["event_type"].to_numpy() == k) & (rel >= lo) & (rel <= hi)
                out.loc[np.unique(m["req"].to_numpy()[hit]), name] = True
        return out

    def need(
        self, offer: OfferTruth, c: pd.DataFrame, ev: pd.DataFrame, ts: np.ndarray
    ) -> np.ndarray:
        """How much the customer needs what ``offer`` gives, at ``ts`` (0 … ~3)."""
        g = lambda col: c[col].to_numpy(dtype=float)  # noqa: E731
        ev_ = lambda name: ev[name].to_numpy(dtype=float)  # noqa: E731
        days = pd.to_datetime(ts)
        promo = np.asarray(
            ((days.month == 11) & (days.day <= 11)) | ((days.month == 6) & (days.day <= 18)),
            dtype=float,
        )
        z_inc = np.log(g("monthly_income") / 7000) / 0.6
        match offer.need:
            case "premium":
                need = np.clip(z_inc - 0.6, 0, 2.5) + 4 * g("travel_share")
            case "ecommerce":
                need = np.clip(6 * g("ecommerce_share") - 0.8, 0, 2.5) + 0.5 * promo
            case "travel":
                need = 2.2 * ev_("travel") + np.clip(8 * g("travel_share"), 0, 1.2)
            case "youth":
                age = g("age")
                need = 2.0 * (age < 28) + 1.0 * ((age >= 28) & (age < 32))
            case "big_purchase":
                need = (
                    2.0 * np.maximum(ev_("renovation"), ev_("wedding"))
                    + 1.5 * ev_("car_purchase")
                    + np.clip(5 * g("big_share"), 0, 1)
                    + 0.6 * promo
                )
            case "liquidity":
                need = 1.5 * g("revolver") + 1.0 * (g("utilisation") > 0.7)
            case "limit":
                need = 4 * np.clip(g("utilisation") - 0.5, 0, 0.5) + 0.5 * (g("credit_score") > 650)
            case "loan":
                need = 1.8 * np.maximum.reduce(
                    [ev_("car_purchase"), ev_("renovation"), ev_("wedding")]
                ) + 0.8 * g("had_loan")
            case "wealth":
                need = np.clip(g("wealth_appetite") + 0.5, 0, 2.5)
            case "protection":
                need = (
                    1.0 * (g("children") > 0)
                    + 1.5 * ev_("new_baby")
                    + 0.8 * ev_("car_purchase")
                    + 0.5 * ((g("age") >= 30) & (g("age") <= 50))
                )
            case "baby":
                need = 2.5 * ev_("new_baby") + 0.8 * ((g("children") > 0) & (g("age") < 45))
            case "dining":
                need = np.clip(6 * g("dining_share"), 0, 2.5)
            case _:
                raise ValidationError(f"Offer '{offer.offer_id}' has unknown need '{offer.need}'.")
        return need

    def truth(self, requests: pd.DataFrame) -> pd.DataFrame:
        """Ground truth for each row of ``requests``.

        Parameters
        ----------
        requests : DataFrame
            Columns ``customer_id``, ``offer_id``, ``channel``, ``ts`` and optionally
            ``recent_contacts`` (contacts in the previous 30 days; default 0).

        Returns
        -------
        DataFrame
            One row per request with the columns of :data:`TRUTH_COLUMNS`.
        """
        for col in ("customer_id", "offer_id", "channel", "ts"):
            if col not in requests.columns:
                raise ValidationError(f"The requests need a '{col}' column; it is missing.")
        bad_offer = ~requests["offer_id"].isin(list(_OFFER))
        if bad_offer.any():
            raise NotFoundError(
                f"offer_id '{requests['offer_id'][bad_offer].iloc[0]}' is not "
                f"an offer of the simulated bank; known: {', '.join(_OFFER)}."
            )
        bad_ch = ~requests["channel"].isin(list(CHANNELS))
        if bad_ch.any():
            raise ValidationError(
                f"channel '{requests['channel'][bad_ch].iloc[0]}' is not one "
                f"of {', '.join(CHANNELS)}."
            )
        n = len(requests)
        cid = requests["customer_id"].to_numpy(dtype=np.int64)
        ts = pd.to_datetime(requests["ts"]).to_numpy()
        c = self._rows(cid)
        ev = self.active_events(cid, ts)
        f = (
            requests["recent_contacts"].to_numpy(dtype=float)
            if "recent_contacts" in requests
            else np.zeros(n)
        )
        channel = requests["channel"].to_numpy()
        out = {k: np.zeros(n) for k in TRUTH_COLUMNS[:-1]}
        held = self._held(cid, requests["offer_id"].to_numpy(), ts)
        for oid in pd.unique(requests["offer_id"]):
            offer = _OFFER[oid]
            sel = np.flatnonzero(requests["offer_id"].to_numpy() == oid)
            cs, es = c.iloc[sel], ev.iloc[sel].reset_index(drop=True)
            need = self.need(offer, cs, es, ts[sel])
            eng = cs["engagement"].to_numpy()
            b = offer.alpha + 1.1 * need + 0.35 * eng
            unsuitable = np.zeros(len(sel), bool)
            if offer.offer_type == "wealth" and offer.product_id is not None:
                level = int(offer.product_id[-1])  # WM-R3 → 3
                unsuitable = cs["risk_tolerance_level"].to_numpy() < level
            if offer.offer_id == "OF-YOUTH-CARD":
                unsuitable = cs["age"].to_numpy() > 35
            blocked = unsuitable | held[sel]
            fat = np.exp(-cs["fatigue"].to_numpy() * f[sel])
            lift = cs["persuadability"].to_numpy() * offer.strength * (0.6 + 0.6 * need) * fat
            p0 = np.where(blocked, 0.0, _sigmoid(b))
            p1 = np.where(blocked, 0.0, _sigmoid(b + lift))
            ch = channel[sel]
            ch_idx = pd.Categorical(ch, categories=list(CHANNELS)).codes
            aff = cs[[f"affinity_{x}" for x in CHANNELS]].to_numpy()[np.arange(len(sel)), ch_idx]
            deliver = _DELIVER_A[ch_idx]
            deliver = np.where(
                ch == "in_app", 1 - np.exp(-cs["app_rate"].to_numpy() * 7 / 30.4), deliver
            )
            deliver = np.where(
                np.isin(ch, ["app_push", "in_app"]) & ~cs["app_user"].to_numpy(), 0.0, deliver
            )
            p_open = deliver * aff * np.exp(-0.15 * f[sel])
            p_contact = p0 + p_open * (p1 - p0)
            shift_c = _COMPLAIN_A[ch_idx]
            shift_u = _UNSUB_A[ch_idx]
            personal_refused = cs["personalisation_opt_out"].to_numpy() & offer.personalised
            p_comp = deliver * _sigmoid(
                -7.0
                + cs["complaint"].to_numpy()
                + 0.35 * f[sel]
                + shift_c
                + 2.0 * unsuitable
                + 1.5 * personal_refused
            )
            p_uns = deliver * _sigmoid(
                -5.3
                + 0.5 * cs["complaint"].to_numpy()
                + 0.3 * f[sel]
                + shift_u
                + 1.0 * personal_refused
            )
            score = cs["credit_score"].to_numpy()
            p_approve = (
                _sigmoid((score - 560) / 40) if offer.offer_type in _CREDIT else np.ones(len(sel))
            )
            scale = np.clip(np.sqrt(cs["monthly_income"].to_numpy() / 8000), 0.3, 4.0)
            value = offer.value * (scale if offer.offer_type != "merchant_coupon" else 1.0)
            for k, v in (
                ("p_deliver", deliver),
                ("p_open", p_open),
                ("p_baseline", p0),
                ("p_treated", p1),
                ("p_contacted", p_contact),
                ("uplift", p_contact - p0),
                ("p_approve", p_approve),
                ("p_complain", p_comp),
                ("p_unsubscribe", p_uns),
                ("value", value),
            ):
                out[k][sel] = v
        frame = pd.DataFrame(out, index=requests.index)
        frame["persuasion_type"] = np.array(PERSUASION_TYPES)[c["persuasion_type"].to_numpy()]
        return frame

    def _held(self, cid: np.ndarray, offer_ids: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Whether the customer already holds the offer's product (cards) at ``ts``."""
        products = np.array(
            [
                _OFFER[o].product_id if _OFFER[o].offer_type == "card_acquisition" else None
                for o in offer_ids
            ],
            dtype=object,
        )
        if not np.any(products != None):  # noqa: E711
            return np.zeros(len(cid), bool)
        req = pd.DataFrame(
            {
                "customer_id": cid,
                "product_id": products,
                "req": np.arange(len(cid)),
                "t": pd.to_datetime(ts),
            }
        )
        m = req.dropna(subset=["product_id"]).merge(self.holdings, on=["customer_id", "product_id"])
        hit = m["req"].to_numpy()[pd.to_datetime(m["opened_date"]).to_numpy() <= m["t"].to_numpy()]
        out = np.zeros(len(cid), bool)
        out[hit] = True
        return out
