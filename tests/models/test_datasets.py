"""Training sets: labels from the window after as_of, features from before it, splits by time."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from qianmian.errors import ValidationError
from qianmian.models.datasets import (
    contact_training_set,
    customer_training_set,
    model_features,
    prepare_features,
    time_series_folds,
    time_split,
)
from qianmian.models.labels import CHURN_LABEL_SQL, revenue_label_sql


@pytest.fixture(scope="module")
def contacts(model_world, tmp_path_factory):
    from qianmian.config import load_settings

    with load_settings(model_world.workspace).build_store() as store:
        return contact_training_set(store, offers=["OF-TRAVEL-CARD", "OF-INS-HEALTH"])


def test_contact_rows_carry_the_outcome_drawn_by_the_world(contacts, model_store):
    responses = model_store.read("responses").to_pandas()
    approved = set(responses.loc[responses["response_type"] == "approved", "contact_id"])
    sample = contacts.sample(500, random_state=0)
    for row in sample.itertuples():
        # every conversion in the set is an approved response; holdouts can convert organically
        if row.converted:
            assert row.contact_id in approved
    assert set(contacts["offer_id"]) == {"OF-TRAVEL-CARD", "OF-INS-HEALTH"}
    assert contacts["treated"].isin([0, 1]).all() and 0.1 < 1 - contacts["treated"].mean() < 0.3


def test_contact_features_are_from_before_the_contact_day(contacts, model_store):
    """The features of a contact are the catalogue as of its day: recomputing agrees."""
    from qianmian.features.engine import StoreFeatureEngine

    row = contacts.iloc[len(contacts) // 2]
    again = StoreFeatureEngine(model_store).build(
        row["as_of"].date(), customers=[int(row["customer_id"])]
    )
    again = again.to_pandas().iloc[0]
    for name in ("spend_30d", "logins_30d", "contacts_90d", "opened_365d"):
        assert again[name] == pytest.approx(row[name]), name
    assert (contacts["as_of"] <= contacts["ts"]).all()
    assert (contacts["ts"] - contacts["as_of"] < pd.Timedelta(days=1)).all()


def test_a_contact_window_still_open_is_left_out(model_store):
    latest = model_store.query("SELECT max(ts) AS t FROM responses").column("t")[0].as_py()
    rows = contact_training_set(model_store, offers=["OF-DINING-COUPON"], horizon_days=30)
    assert (rows["ts"] + pd.Timedelta(days=30) <= pd.Timestamp(latest)).all()


def test_time_split_never_leaks_across_time(contacts):
    split = time_split(contacts["as_of"], horizon_days=30)
    train = contacts.iloc[split.train]
    val = contacts.iloc[split.validation]
    test = contacts.iloc[split.test]
    # every training label window (contact day + 30 days) closes before validation begins
    assert (train["as_of"] + pd.Timedelta(days=30)).max() <= val["as_of"].min()
    assert val["as_of"].max() < test["as_of"].min()
    assert not set(split.train) & set(split.test) and not set(split.train) & set(split.validation)


def test_time_split_drops_training_dates_whose_window_reaches_validation():
    dates = pd.Series(pd.to_datetime(["2026-01-01", "2026-02-01", "2026-02-15", "2026-03-01"]))
    split = time_split(dates, horizon_days=30, validation=1, test=1)
    # 2026-02-01 + 30 days reaches past 2026-02-15 (validation): purged
    assert split.train.tolist() == [0]


def test_time_split_needs_enough_dates():
    with pytest.raises(ValidationError, match="at least 3 distinct as_of dates"):
        time_split(pd.Series(pd.to_datetime(["2026-01-01", "2026-02-01"])), horizon_days=30)


def test_time_series_folds_expand_and_purge():
    dates = pd.Series(pd.date_range("2026-01-01", periods=6, freq="MS"))
    folds = list(time_series_folds(dates, horizon_days=45, n_splits=3))
    assert len(folds) == 3
    for train, test in folds:
        assert (dates[train] + pd.Timedelta(days=45)).max() <= dates[test].min()
    assert [len(t) for t, _ in folds] == sorted(len(t) for t, _ in folds)


def test_prepare_features_names_missing_columns():
    with pytest.raises(ValidationError, match="lacks 1 model feature"):
        prepare_features(pd.DataFrame({"recency_days": [1]}), ["recency_days", "spend_30d"])


def test_prepare_features_fixes_the_channel_categories():
    frame = pd.DataFrame({"channel": ["sms", "email"], "recency_days": [3, 4]})
    X = prepare_features(frame, ["recency_days", "channel"])
    assert list(X["channel"].cat.categories)[:3] == ["app_push", "in_app", "sms"]
    assert X["recency_days"].dtype == np.float64
    assert model_features(("channel",))[-1] == "channel"


def test_churn_label_marks_customers_without_transactions(model_store):
    frame = customer_training_set(
        model_store, [date(2026, 6, 1)], CHURN_LABEL_SQL, horizon_days=90, fill=1.0
    )
    tx = model_store.query(
        "SELECT DISTINCT customer_id FROM transactions "
        "WHERE ts >= TIMESTAMP '2026-06-01' AND ts < TIMESTAMP '2026-08-30'"
    ).to_pandas()
    active_after = set(tx["customer_id"])
    expected = (~frame["customer_id"].isin(active_after)).astype(float)
    assert (frame["label"].to_numpy() == expected.to_numpy()).all()
    assert 0 < frame["label"].mean() < 0.5


def test_revenue_label_is_annualised_and_non_negative(model_store):
    frame = customer_training_set(
        model_store, [date(2026, 5, 1)], revenue_label_sql(180), horizon_days=180
    )
    assert (frame["label"] >= 0).all() and frame["label"].median() > 0


def test_a_label_window_past_the_data_is_refused(model_store):
    with pytest.raises(ValidationError, match="needs data until"):
        customer_training_set(
            model_store, [date(2026, 10, 1)], CHURN_LABEL_SQL, horizon_days=90, fill=1.0
        )
