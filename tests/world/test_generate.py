"""The simulated bank: determinism, shape, seasonality and the life-event signal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from qianmian.data.schema import TABLES
from qianmian.data.schema.vocab import APP_PAGES, CATEGORIES
from qianmian.errors import ConfigError
from qianmian.world import BANK_TABLES, World, WorldConfig
from qianmian.world import generate as gen
from qianmian.world.pii import is_luhn_valid, is_valid_national_id


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.parquet"))
    }


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "CHUNK_SIZE", 700)  # several chunks from a small bank
    cfg = WorldConfig(customers=2_000, months=3, seed=5)
    a = World.generate(cfg, tmp_path / "a", workers=1)
    b = World.generate(cfg, tmp_path / "b", workers=2)
    assert len(list((a.data_dir / "customers").glob("*.parquet"))) == 3
    assert _digest(a.workspace) == _digest(b.workspace)
    c = World.generate(WorldConfig(customers=2_000, months=3, seed=6), tmp_path / "c", workers=1)
    assert _digest(c.data_dir) != _digest(a.data_dir)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, "'customers' parameter of WorldConfig must be a positive int. Got 0"),
        ({"months": 0}, "'months' parameter of WorldConfig must be an int from 1 to 60. Got 0"),
        ({"seed": -1}, "'seed' parameter of WorldConfig must be a non-negative int. Got -1"),
    ],
)
def test_invalid_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        WorldConfig(**kwargs)


def test_every_table_follows_the_dictionary(small_world):
    for name in BANK_TABLES:
        t = small_world.table(name)
        expected = TABLES[name].arrow_schema
        assert t.schema.names == expected.names, name
        for f in expected:
            assert t.schema.field(f.name).type == f.type, (name, f.name)
            if f.nullable is False:
                assert t.column(f.name).null_count == 0, (name, f.name)
        for field in TABLES[name].fields:
            col = t.column(field.name).to_pandas().dropna()
            if field.enum is not None:
                assert set(col.unique()) <= set(field.enum), (name, field.name)
            if field.min is not None and len(col) and field.type in ("int", "float"):
                assert col.min() >= field.min, (name, field.name)
            if field.max is not None and len(col) and field.type in ("int", "float"):
                assert col.max() <= field.max, (name, field.name)
        pk = TABLES[name].primary_key
        if pk:
            assert not t.select(list(pk)).to_pandas().duplicated().any(), name


def test_volumes_and_shapes(small_world):
    rows = small_world.manifest["rows"]
    n = rows["customers"]
    assert n == 6_000
    assert rows["transactions"] >= 30 * n  # at least 30 transactions per customer-year
    c = small_world.table("customers").to_pandas()
    age = (pd.Timestamp("2026-11-01") - pd.to_datetime(c["birth_date"])).dt.days / 365.25
    assert age.min() >= 18 and age.max() < 77
    assert 0.15 < (c["city_tier"] == "一线").mean() < 0.25
    by_tier = c.groupby("city_tier")["monthly_income"].median()
    assert by_tier["一线"] > by_tier["二线"] > by_tier["四线及以下"]
    assert set(c["risk_tolerance"]) == {"C1", "C2", "C3", "C4", "C5"}
    tx = small_world.table("transactions", ["category", "channel"]).to_pandas()
    assert set(tx["category"]) == set(CATEGORIES.values)
    assert (tx["channel"] == "online").mean() > 0.2


def test_identifiers_are_unique_and_valid(small_world):
    ids = small_world.table("identifiers").to_pandas()
    assert not ids.duplicated(["id_type", "id_value"]).any()
    per_customer = ids.groupby("id_type")["customer_id"].nunique()
    assert per_customer["national_id"] == per_customer["mobile"] == 6_000
    assert ids.loc[ids.id_type == "national_id", "id_value"].map(is_valid_national_id).all()
    assert ids.loc[ids.id_type == "card_number", "id_value"].map(is_luhn_valid).all()
    cards = small_world.table("holdings").to_pandas()
    assert (ids.id_type == "card_number").sum() == cards["product_id"].str.startswith("CC-").sum()


def _daily(small_world: World, category: str) -> pd.Series:
    tx = small_world.table("transactions", ["ts", "amount", "category"]).to_pandas()
    tx = tx[tx["category"] == category]
    return tx.groupby(tx["ts"].dt.normalize())["amount"].sum()


def test_double_11_and_618_spikes(small_world):
    daily = _daily(small_world, "电商")
    typical = daily.median()
    assert daily[pd.Timestamp("2025-11-11")] > 3.5 * typical
    assert daily[pd.Timestamp("2026-06-18")] > 2.5 * typical
    assert daily.idxmax() == pd.Timestamp("2025-11-11")


def test_spring_festival_and_golden_week(small_world):
    supermarket = _daily(small_world, "超市")
    pre_sf = supermarket["2026-01-27":"2026-02-16"].mean()
    march = supermarket["2026-03-02":"2026-03-29"].mean()
    assert pre_sf > 1.4 * march
    travel = _daily(small_world, "旅游")
    assert travel["2026-10-01":"2026-10-07"].mean() > 1.8 * travel["2026-03-01":"2026-03-31"].mean()


def _event_window_rate(frame: pd.DataFrame, anchors: pd.DataFrame, lo: int, hi: int) -> float:
    """Share of (customer, anchor day) pairs with at least one row of ``frame`` in [lo, hi] days."""
    m = anchors.merge(frame, on="customer_id")
    rel = (m["ts"].dt.normalize() - m["day"]).dt.days
    hit = m[(rel >= lo) & (rel <= hi)].groupby(["customer_id", "day"]).size()
    return len(hit) / len(anchors)


def test_life_events_show_up_ahead_in_app_and_spending(small_world):
    """Weeks before a trip, travellers look at travel pages and book; the signal is forecastable."""
    ev = small_world.table("life_events").to_pandas()
    ev["day"] = pd.to_datetime(ev["day"])
    trips = ev[(ev.event_name == "travel") & (ev.day >= "2026-02-01") & (ev.day < "2026-10-01")]
    traits = small_world.table("traits", ["customer_id", "app_user"]).to_pandas()
    trips = trips.merge(traits, on="customer_id")
    trips = trips[trips.app_user].drop_duplicates(["customer_id"])[["customer_id", "day"]]
    rng = np.random.default_rng(0)
    control = trips.assign(
        day=trips["day"] + pd.to_timedelta(rng.choice([-1, 1], len(trips)) * 90, unit="D")
    )
    app = small_world.table("app_events", ["customer_id", "ts", "page"]).to_pandas()
    travel_pages = app[app["page"].isin(["card_travel", "travel_deals"])]
    before = _event_window_rate(travel_pages, trips, -42, -3)
    baseline = _event_window_rate(travel_pages, control, -42, -3)
    assert len(trips) > 300
    assert before > 0.7 and before > 3 * baseline, (before, baseline)

    tx = small_world.table("transactions", ["customer_id", "ts", "category"]).to_pandas()
    bookings = tx[tx["category"].isin(["航空", "酒店", "旅游"])]
    booked = _event_window_rate(bookings, trips, -35, -3)
    booked_control = _event_window_rate(bookings, control, -35, -3)
    assert booked > 2 * booked_control, (booked, booked_control)

    homes = ev[
        (ev.event_name == "renovation") & (ev.day >= "2026-01-01") & (ev.day < "2026-08-01")
    ][["customer_id", "day"]]
    home_tx = tx[tx["category"] == "家装"]
    after = _event_window_rate(home_tx, homes, 0, 30)
    before_works = _event_window_rate(home_tx, homes, -90, -31)
    assert after > 3 * before_works, (after, before_works)


def test_app_pages_and_events_are_known(small_world):
    app = small_world.table("app_events", ["event_type", "page", "search_query"]).to_pandas()
    assert set(app["page"].dropna()) <= set(APP_PAGES.values)
    assert app.loc[app.event_type == "page_view", "page"].notna().all()
    assert app.loc[app.event_type != "page_view", "page"].isna().all()
    assert app.loc[app.event_type == "search", "search_query"].notna().all()
    assert (app.event_type == "transfer_failure").sum() > 0


def test_statements_follow_spending(small_world):
    st = small_world.table("statements").to_pandas()
    st["statement_month"] = pd.to_datetime(st["statement_month"])
    tx = small_world.table("transactions", ["customer_id", "ts", "amount"]).to_pandas()
    one = st.customer_id.iloc[0]
    spent = tx[tx.customer_id == one].groupby(tx["ts"].dt.to_period("M"))["amount"].sum()
    rows = st[st.customer_id == one]
    rows = rows.set_index(rows["statement_month"].dt.to_period("M"))
    common = spent.index.intersection(rows.index)
    assert ((rows.loc[common, "statement_balance"] + 1e-6) >= spent[common].round(2) - 0.01).all()
    assert (st["revolving_balance"] >= 0).all()


def test_parquet_parts_are_readable_by_duckdb(small_world):
    import duckdb

    path = str(small_world.data_dir / "transactions" / "*.parquet")
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
    parts = small_world.data_dir.glob("transactions/*.parquet")
    assert n == sum(pq.read_metadata(p).num_rows for p in parts)
