"""Identity resolution recovers the simulated bank's customers from its systems' records."""

from __future__ import annotations

from qianmian.data.identity import resolve_identities


def test_resolution_never_merges_two_customers_and_keeps_almost_all_whole(small_world):
    sightings = small_world.table("identifier_sightings")
    truth = small_world.table("identity_truth").to_pandas()
    result = resolve_identities(sightings)
    m = result.mapping.merge(truth, on=["source", "source_record_id"], suffixes=("_found", "_true"))
    assert len(m) == len(truth) == result.stats.records
    # precision: no resolved customer holds records of two real customers (shared family
    # devices are cut by the national-ID conflict rule)
    assert (m.groupby("customer_id_found")["customer_id_true"].nunique() == 1).all()
    assert result.stats.conflicts_split > 0
    # recall: a customer is split only when a CRM record's only link was a stale mobile
    split = m.groupby("customer_id_true")["customer_id_found"].nunique()
    assert (split > 1).mean() < 0.03
    assert split.size == 6_000
