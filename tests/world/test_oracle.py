"""The ground truth and respond(): responses drawn match the oracle within confidence intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qianmian.errors import NotFoundError, ValidationError
from qianmian.world import TRUTH_COLUMNS


def _contacts(world, n: int, offer: str, channel: str, seed: int = 0) -> pd.DataFrame:
    ids = world.table("customers", ["customer_id"]).column(0).to_numpy()
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "contact_id": np.arange(1, n + 1),
            "customer_id": rng.choice(ids, n),
            "offer_id": offer,
            "channel": channel,
            # spread over months so that fatigue stays low and life events vary
            "ts": pd.Timestamp("2026-03-01 10:00") + pd.to_timedelta(rng.integers(0, 180, n), "D"),
            "is_holdout": rng.random(n) < 0.5,
        }
    )


def _within_ci(observed: np.ndarray, p: np.ndarray, z: float = 4.0) -> bool:
    """Sum of Bernoulli(p) draws within z standard deviations of its expectation."""
    mean, sd = p.sum(), np.sqrt((p * (1 - p)).sum())
    return abs(observed.sum() - mean) <= z * sd + 1


@pytest.mark.parametrize(
    ("offer", "channel"),
    [
        ("OF-DINING-COUPON", "app_push"),
        ("OF-INST-12", "sms"),
        ("OF-WM-R3", "call_center"),
    ],
)
def test_respond_matches_the_oracle(small_world, offer, channel):
    contacts = _contacts(small_world, 40_000, offer, channel)
    responses = small_world.respond(contacts, seed=3)
    truth = small_world.oracle().truth(contacts.assign(recent_contacts=0 * contacts.contact_id))
    holdout = contacts["is_holdout"].to_numpy()

    def got(kind: str) -> np.ndarray:
        ids = set(responses.loc[responses.response_type == kind, "contact_id"])
        return contacts["contact_id"].isin(ids).to_numpy()

    # Fatigue: contacts spread over 6 months hit the same customer ~1.1 times per 30 days, so
    # compare with the truth at the fatigue respond() computed.
    from qianmian.world.respond import recent_contact_counts

    truth = small_world.oracle().truth(
        contacts.assign(recent_contacts=recent_contact_counts(contacts))
    )
    approved = got("approved")
    assert _within_ci(approved[~holdout], truth["p_contacted"].to_numpy()[~holdout])
    assert _within_ci(approved[holdout], truth["p_baseline"].to_numpy()[holdout])
    assert _within_ci(got("delivered")[~holdout], truth["p_deliver"].to_numpy()[~holdout])
    assert _within_ci(got("opened")[~holdout], truth["p_open"].to_numpy()[~holdout])
    assert _within_ci(got("complained")[~holdout], truth["p_complain"].to_numpy()[~holdout])
    assert _within_ci(got("unsubscribed")[~holdout], truth["p_unsubscribe"].to_numpy()[~holdout])
    assert not got("delivered")[holdout].any()
    value = responses.loc[responses.response_type == "approved", "value"]
    assert value.notna().all() and (value > 0).all()


def test_respond_is_deterministic(small_world):
    contacts = _contacts(small_world, 5_000, "OF-TRAVEL-CASHBACK", "sms")
    a = small_world.respond(contacts, seed=1)
    b = small_world.respond(contacts, seed=1)
    c = small_world.respond(contacts, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_persuasion_types_have_the_uplift_their_name_says(small_world):
    contacts = _contacts(small_world, 30_000, "OF-INST-12", "app_push").assign(is_holdout=False)
    t = small_world.oracle().truth(contacts)
    assert list(t.columns) == list(TRUTH_COLUMNS)
    mean = t.groupby("persuasion_type")["uplift"].mean()
    assert mean["persuadable"] > 5 * mean["sure_thing"] > 0
    assert mean["sleeping_dog"] < 0
    assert abs(mean["lost_cause"]) < mean["persuadable"] / 10
    complain = t.groupby("persuasion_type")["p_complain"].mean()
    assert complain["sleeping_dog"] > 1.5 * complain["persuadable"]


def test_fatigue_lowers_uplift_and_raises_complaints(small_world):
    contacts = _contacts(small_world, 5_000, "OF-INST-12", "sms")
    oracle = small_world.oracle()
    fresh = oracle.truth(contacts.assign(recent_contacts=0))
    tired = oracle.truth(contacts.assign(recent_contacts=6))
    pers = fresh["persuasion_type"] == "persuadable"
    assert tired.loc[pers, "uplift"].mean() < 0.6 * fresh.loc[pers, "uplift"].mean()
    assert tired["p_complain"].mean() > 1.5 * fresh["p_complain"].mean()


def test_life_event_raises_need(small_world):
    ev = small_world.table("life_events").to_pandas()
    ev["day"] = pd.to_datetime(ev["day"])
    trips = ev[(ev.event_name == "travel") & (ev.day > pd.Timestamp("2026-03-01"))].head(500)
    oracle = small_world.oracle()
    req = pd.DataFrame(
        {
            "customer_id": trips.customer_id.to_numpy(),
            "offer_id": "OF-TRAVEL-CASHBACK",
            "channel": "sms",
        }
    )
    during = oracle.truth(req.assign(ts=pd.to_datetime(trips.day.to_numpy()) - pd.Timedelta("20D")))
    far = oracle.truth(req.assign(ts=pd.to_datetime(trips.day.to_numpy()) - pd.Timedelta("200D")))
    assert during["p_baseline"].mean() > 3 * far["p_baseline"].mean()


def test_card_already_held_cannot_convert(small_world):
    h = small_world.table("holdings").to_pandas()
    plat = h[h.product_id == "CC-PLAT"].head(50)
    req = pd.DataFrame(
        {
            "customer_id": plat.customer_id.to_numpy(),
            "offer_id": "OF-PLAT-FEEWAIVE",
            "channel": "sms",
            "ts": pd.Timestamp("2026-10-30"),
        }
    )
    t = small_world.oracle().truth(req)
    assert (t["p_baseline"] == 0).all() and (t["p_contacted"] == 0).all()


@pytest.mark.parametrize(
    ("change", "error", "pattern"),
    [
        ({"offer_id": "OF-NOPE"}, NotFoundError, "offer_id 'OF-NOPE' is not an offer"),
        ({"channel": "fax"}, ValidationError, "channel 'fax' is not one of"),
        ({"customer_id": 10**9}, NotFoundError, "customer_id 1000000000 is not a customer"),
    ],
)
def test_bad_requests_name_the_field(small_world, change, error, pattern):
    req = pd.DataFrame(
        {
            "customer_id": [1],
            "offer_id": ["OF-INST-6"],
            "channel": ["sms"],
            "ts": [pd.Timestamp("2026-05-01")],
        }
    ).assign(**change)
    with pytest.raises(error, match=pattern):
        small_world.oracle().truth(req)
