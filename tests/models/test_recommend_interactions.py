"""Interactions from the store, and the time and leave-latest-out splits."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from recommend_world import write_tables

from qianmian.config import load_settings
from qianmian.errors import ConfigError, ValidationError
from qianmian.models.recommend import (
    DEFAULT_WEIGHTS,
    EVENT_COLUMNS,
    interaction_pairs,
    leave_latest_out,
    load_interactions,
    time_split,
)


def _holdings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "holding_id": [1, 2, 3, 4, 5],
            "customer_id": [1, 1, 2, 2, 3],
            "product_id": ["CC-STD", "WM-R2", "CC-GOLD", "INS-CAR", "CC-STD"],
            "opened_date": [
                date(2024, 3, 1),
                date(2026, 8, 20),
                date(2025, 1, 5),
                date(2026, 2, 1),
                date(2026, 8, 15),  # customer 3 joins after the cutoff
            ],
        }
    )


def _loans() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "loan_id": [1, 2],
            "customer_id": [2, 1],
            "product_id": ["LN-CONSUMER", "INST-MERCHANT"],
            "principal": [20_000.0, 6_000.0],
            "start_date": [date(2026, 9, 1), date(2026, 12, 1)],  # the second after the horizon
        }
    )


def _offers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "offer_id": ["OF-WM-R3", "OF-INS-HEALTH", "OF-DINING-COUPON"],
            "offer_type": ["wealth", "insurance", "merchant_coupon"],
            "name_zh": ["固收+", "医疗险", "餐饮券"],
            "product_id": ["WM-R3", "INS-HEALTH", None],
        }
    )


def _responses() -> pd.DataFrame:
    ts = pd.to_datetime(
        ["2026-07-01 10:00", "2026-07-02 09:00", "2026-08-10 12:00", "2026-07-05 08:00"]
    )
    return pd.DataFrame(
        {
            "response_id": [1, 2, 3, 4],
            "customer_id": [1, 2, 2, 1],
            "offer_id": ["OF-WM-R3", "OF-INS-HEALTH", "OF-INS-HEALTH", "OF-DINING-COUPON"],
            "response_type": ["clicked", "applied", "approved", "clicked"],
            "ts": ts,
        }
    )


@pytest.fixture()
def small_store(tmp_path: Path):
    with load_settings(tmp_path).build_store() as store:
        write_tables(store, {"holdings": _holdings(), "loans": _loans()})
        yield store


def test_holdings_and_loans_are_acquisitions(small_store) -> None:
    events = load_interactions(small_store)
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert len(events) == 7
    assert set(events["kind"]) == {"holding", "loan"}
    assert events["held"].all() and (events["weight"] == 1.0).all()
    assert events["ts"].is_monotonic_increasing
    assert len(load_interactions(small_store, include_loans=False)) == 5


def test_responses_join_offers_to_products_with_their_weights(small_store) -> None:
    write_tables(small_store, {"offers": _offers(), "responses": _responses()})
    events = load_interactions(small_store)
    resp = events.loc[~events["kind"].isin(["holding", "loan"])]
    # The dining coupon has no product: its click is not a product interaction.
    assert sorted(zip(resp["customer_id"], resp["product_id"], resp["kind"], strict=True)) == [
        (1, "WM-R3", "clicked"),
        (2, "INS-HEALTH", "applied"),
        (2, "INS-HEALTH", "approved"),
    ]
    weights = dict(zip(resp["kind"], resp["weight"], strict=True))
    assert weights == {k: DEFAULT_WEIGHTS[k] for k in ("clicked", "applied", "approved")}
    assert weights["approved"] > weights["applied"] > weights["clicked"]
    assert dict(zip(resp["kind"], resp["held"], strict=True)) == {
        "clicked": False,
        "applied": False,
        "approved": True,
    }
    pairs = interaction_pairs(events)
    health = pairs.loc[(pairs["customer_id"] == 2) & (pairs["product_id"] == "INS-HEALTH")]
    assert health[["weight", "held"]].to_numpy().tolist() == [[1.0, True]]
    custom = load_interactions(small_store, weights={"clicked": 0.1})
    assert custom.loc[custom["kind"] == "clicked", "weight"].tolist() == [0.1]


def test_time_split_targets_are_new_acquisitions_of_existing_customers(small_store) -> None:
    write_tables(small_store, {"offers": _offers(), "responses": _responses()})
    events = load_interactions(small_store)
    split = time_split(events, "2026-08-01", 92)
    assert split.protocol == "time" and split.as_of == pd.Timestamp("2026-08-01")
    assert (split.train["ts"] < pd.Timestamp("2026-08-01")).all()
    # Customer 1: WM-R2 opened inside the horizon (the instalment is after it).
    # Customer 2: a consumer loan and the approved health insurance inside the horizon.
    # Customer 3 joined after the cutoff: not evaluated.
    assert sorted(map(tuple, split.targets.to_numpy().tolist())) == [
        (1, "WM-R2"),
        (2, "INS-HEALTH"),
        (2, "LN-CONSUMER"),
    ]
    assert split.customers.tolist() == [1, 2]
    only_two = time_split(events, "2026-08-01", 92, customers=[2, 3])
    assert only_two.customers.tolist() == [2]


def test_time_split_never_targets_a_product_held_before_the_cutoff(tmp_path: Path) -> None:
    holdings = pd.DataFrame(
        {
            "holding_id": [1, 2, 3],
            "customer_id": [1, 1, 1],
            "product_id": ["CC-STD", "WM-R1", "WM-R1"],  # WM-R1 bought again after the cutoff
            "opened_date": [date(2025, 1, 1), date(2026, 1, 1), date(2026, 8, 5)],
        }
    )
    with load_settings(tmp_path).build_store() as store:
        write_tables(store, {"holdings": holdings})
        split = time_split(load_interactions(store), date(2026, 8, 1), 30)
    assert split.targets.empty


def test_leave_latest_out_holds_out_each_customers_latest_product(small_store) -> None:
    split = leave_latest_out(load_interactions(small_store))
    assert split.protocol == "leave_latest_out"
    # Customer 3 has one product only; customer 1's latest is the instalment; customer 2's the loan.
    assert sorted(map(tuple, split.targets.to_numpy().tolist())) == [
        (1, "INST-MERCHANT"),
        (2, "LN-CONSUMER"),
    ]
    kept = set(zip(split.train["customer_id"], split.train["product_id"], strict=True))
    assert (1, "INST-MERCHANT") not in kept and (1, "WM-R2") in kept
    assert split.as_of == pd.Timestamp("2026-12-02")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: load_interactions(s, weights={"viewed": 1.0}), ConfigError, "'weights'"),
        (lambda s: load_interactions(s, weights={"clicked": -1}), ConfigError, "positive"),
        (lambda s: time_split(load_interactions(s), "2026-08-01", 0), ConfigError, "horizon"),
        (lambda s: time_split(load_interactions(s), "not a date", 30), ConfigError, "cutoff"),
        (lambda s: time_split(pd.DataFrame({"x": [1]}), "2026-08-01", 30), ValidationError, "ts"),
        (lambda s: leave_latest_out(load_interactions(s), min_products=1), ConfigError, ">= 2"),
        (
            lambda s: interaction_pairs(pd.DataFrame({"customer_id": [1]})),
            ValidationError,
            "product_id",
        ),
        (
            lambda s: interaction_pairs(
                pd.DataFrame({"customer_id": [1], "product_id": ["A"], "weight": [0.0]})
            ),
            ValidationError,
            "weight",
        ),
    ],
)
def test_bad_input_is_a_clear_error(small_store, call, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call(small_store)
