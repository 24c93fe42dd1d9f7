"""Unified customer ID: linking records across systems, hubs, conflicts, stable ids, speed."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from qianmian.data.identity import normalise_identifiers, resolve_identities
from qianmian.errors import ValidationError
from qianmian.world import pii

COLUMNS = ["source", "source_record_id", "id_type", "id_value"]


def sightings(*rows: tuple[str, str, str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def customer_of(result, source: str, record: str) -> int:
    m = result.mapping
    return int(
        m.loc[(m["source"] == source) & (m["source_record_id"] == record), "customer_id"].iloc[0]
    )


ONE_PERSON = sightings(
    ("card_system", "C001", "card_number", "6225 8812 3456 7898"),
    ("card_system", "C001", "mobile", "13812345678"),
    ("app", "A042", "app_user_id", "U1234567890"),
    ("app", "A042", "device_id", "45F7A4D2-2DD3-4B26-A0CF-D2140B6ADDAB"),
    ("app", "A042", "mobile", "+86 138-1234-5678"),
    ("crm", "K7", "national_id", "11010519491231002x"),
    ("crm", "K7", "email", "Li.Na@QQ.com"),
    ("crm", "K7", "mobile", "138 1234 5678"),
    ("wechat", "W9", "email", "li.na@qq.com "),
    ("card_system", "C002", "card_number", "6225881234567880"),  # someone else
    ("card_system", "C002", "mobile", "13900000000"),
)


def test_one_person_seen_by_four_systems_is_one_customer() -> None:
    result = resolve_identities(ONE_PERSON)
    assert result.mapping.to_dict("list") == {
        "source": ["app", "card_system", "card_system", "crm", "wechat"],
        "source_record_id": ["A042", "C001", "C002", "K7", "W9"],
        "customer_id": [1, 1, 2, 1, 1],
    }
    first = result.customers[result.customers["customer_id"] == 1]
    assert sorted(zip(first["id_type"], first["id_value"], first["source"], strict=True)) == [
        ("app_user_id", "U1234567890", "app"),
        ("card_number", "6225881234567898", "card_system"),
        ("device_id", "45f7a4d2-2dd3-4b26-a0cf-d2140b6addab", "app"),
        ("email", "li.na@qq.com", "crm"),
        ("mobile", "13812345678", "app"),
        ("national_id", "11010519491231002X", "crm"),
    ]
    s = result.stats
    assert (s.sightings, s.records, s.customers, s.merged_customers) == (11, 5, 2, 1)
    assert (s.hub_identifiers, s.conflicts_split, s.existing_merges) == (0, 0, 0)


def test_arrow_input_gives_the_same_result() -> None:
    from_arrow = resolve_identities(pa.Table.from_pandas(ONE_PERSON))
    pd.testing.assert_frame_equal(from_arrow.mapping, resolve_identities(ONE_PERSON).mapping)


def test_links_are_transitive() -> None:
    chain = sightings(
        ("a", "1", "mobile", "13800000001"),
        ("b", "2", "mobile", "13800000001"),
        ("b", "2", "email", "x@163.com"),
        ("c", "3", "email", "x@163.com"),
        ("c", "3", "device_id", "dev-9"),
        ("d", "4", "device_id", "dev-9"),
        ("d", "4", "card_number", "6225881234567898"),
        ("e", "5", "card_number", "6225881234567898"),
        ("f", "6", "mobile", "13800000002"),
    )
    result = resolve_identities(chain)
    assert result.mapping["customer_id"].tolist() == [1, 1, 1, 1, 1, 2]


def test_records_without_identifiers_are_customers_of_their_own() -> None:
    result = resolve_identities(
        sightings(
            ("crm", "K1", "email", None),
            ("crm", "K2", "email", " "),
            ("crm", "K3", "email", "a@b.cn"),
        )
    )
    assert result.mapping["customer_id"].tolist() == [1, 2, 3]
    assert result.customers["id_value"].tolist() == ["a@b.cn"]


def _family_tablet(n: int) -> pd.DataFrame:
    """``n`` people, each with an own mobile, who all log in from one shared tablet."""
    rows = [("app", f"A{i:03d}", "device_id", "family-tablet") for i in range(n)]
    rows += [("app", f"A{i:03d}", "mobile", f"1390000{i:04d}") for i in range(n)]
    return sightings(*rows)


def test_hub_identifiers_link_nothing_and_are_reported() -> None:
    result = resolve_identities(_family_tablet(25))
    assert result.stats.customers == 25
    assert result.hub_identifiers.to_dict("records") == [
        {"id_type": "device_id", "id_value": "family-tablet", "records": 25}
    ]
    assert "family-tablet" not in result.customers["id_value"].tolist()


@pytest.mark.parametrize(
    ("limit", "customers"),
    [(20, 25), (25, 1), ({"device_id": 30}, 1), ({"mobile": 2}, 25), ({"device_id": 24}, 25)],
)
def test_hub_limit_is_configurable_per_type(limit, customers: int) -> None:
    result = resolve_identities(_family_tablet(25), max_records_per_identifier=limit)
    assert result.stats.customers == customers


def _couple(shared: list[tuple[str, str]]) -> pd.DataFrame:
    """Two people, each linked strongly (mobile) across two systems, sharing ``shared``."""
    rows = [
        ("core_banking", "H1", "national_id", "11010519491231002X"),
        ("core_banking", "H1", "mobile", "13800000001"),
        ("app", "A1", "mobile", "13800000001"),
        ("core_banking", "W1", "national_id", "440305199001011231"),
        ("core_banking", "W1", "mobile", "13900000002"),
        ("app", "A2", "mobile", "13900000002"),
    ]
    rows += [("app", "A1", t, v) for t, v in shared] + [("app", "A2", t, v) for t, v in shared]
    return sightings(*rows)


@pytest.mark.parametrize(
    ("shared", "removed", "customers"),
    [
        ([("device_id", "ipad")], "device_id", 2),
        ([("device_id", "ipad"), ("email", "home@163.com")], "device_id,email", 2),
        # a shared home line recorded as a mobile: every mobile link of the component is cut,
        # so each record stands alone: over-split, never two ID numbers in one customer
        ([("mobile", "02088880000")], "mobile", 4),
        # cutting the mobiles already separates the two ID numbers; the shared card stays
        ([("card_number", "6225881234567898")], "mobile", 3),
    ],
)
def test_two_national_ids_are_split_by_the_weakest_links(
    shared, removed: str, customers: int
) -> None:
    result = resolve_identities(_couple(shared))
    assert result.stats.customers == customers and result.stats.conflicts_split == 1
    conflict = result.conflicts.iloc[0]
    assert conflict["national_ids"] == "11010519491231002X,440305199001011231"
    assert conflict["removed_link_types"] == removed
    assert conflict["records"] == 4 and conflict["resolved"]
    assert len(conflict["customer_ids"].split(",")) == customers
    husband = {customer_of(result, "core_banking", "H1"), customer_of(result, "app", "A1")}
    wife = {customer_of(result, "core_banking", "W1"), customer_of(result, "app", "A2")}
    assert customer_of(result, "core_banking", "H1") != customer_of(result, "core_banking", "W1")
    if customers == 2:
        assert len(husband) == 1 and len(wife) == 1


def test_one_record_with_two_national_ids_is_reported_unresolved() -> None:
    result = resolve_identities(
        sightings(
            ("crm", "K1", "national_id", "11010519491231002X"),
            ("crm", "K1", "national_id", "440305199001011231"),
        )
    )
    assert result.stats.customers == 1 and result.stats.conflicts_unresolved == 1
    assert not result.conflicts["resolved"].iloc[0]


def _bank(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.Series]:
    """Sightings of ``n`` people across four systems, and the true person of each record.

    Core banking holds everyone (national ID, mobile); the card system (card, mobile), the app
    (app user id, device, ``+86`` mobile) and the CRM (national ID, email) 80% each.
    """
    genders = np.where(rng.random(n) < 0.5, "M", "F")
    births = np.datetime64("1960-01-01") + rng.integers(0, 15000, n).astype("timedelta64[D]")
    ids = {
        "national_id": pii.national_ids(rng, births, genders),
        "mobile": pii.mobiles(rng, n),
        "card_number": pii.card_numbers(rng, n),
        "app_user_id": pii.app_user_ids(rng, n),
        "device_id": pii.device_ids(rng, n),
        "email": pii.emails(rng, n),
    }
    spaced = np.strings.add("+86 ", ids["mobile"])
    person = np.arange(n).astype(str)
    systems = [
        ("core_banking", "CB", ["national_id", "mobile"]),
        ("card_system", "CS", ["card_number", "mobile"]),
        ("app", "AP", ["app_user_id", "device_id", "mobile"]),
        ("crm", "CR", ["national_id", "email"]),
    ]
    frames, truth = [], {}
    for source, prefix, types in systems:
        seen = (rng.random(n) < 0.8) | (source == "core_banking")  # the bank knows everyone
        record = np.strings.add(prefix, np.strings.add(person, "x"))
        for id_type in types:
            value = spaced if (source == "app" and id_type == "mobile") else ids[id_type]
            frames.append(
                pd.DataFrame(
                    {
                        "source": source,
                        "source_record_id": record[seen],
                        "id_type": id_type,
                        "id_value": value[seen],
                    }
                )
            )
        truth.update(
            zip(
                zip([source] * int(seen.sum()), record[seen], strict=True),
                person[seen],
                strict=True,
            )
        )
    # family tablets: groups of 30 people share one device on top of their own
    tablets = pd.DataFrame(
        {
            "source": "app",
            "source_record_id": np.strings.add("AP", np.strings.add(person[:300], "x")),
            "id_type": "device_id",
            "id_value": np.strings.add("tablet-", (np.arange(300) // 30).astype(str)),
        }
    )
    frames.append(tablets[tablets["source_record_id"].isin(frames[4]["source_record_id"])])
    return pd.concat(frames, ignore_index=True), pd.Series(truth)


def test_resolution_recovers_the_true_people() -> None:
    data, truth = _bank(np.random.default_rng(3), 5000)
    result = resolve_identities(data)
    m = result.mapping
    people = truth.loc[list(zip(m["source"], m["source_record_id"], strict=True))].to_numpy()
    pairs = pd.crosstab(m["customer_id"].to_numpy(), people)
    assert ((pairs > 0).sum(axis=1) == 1).all()  # no customer holds two people
    assert ((pairs > 0).sum(axis=0) == 1).all()  # no person is split
    assert result.stats.hub_identifiers == 10


def test_result_does_not_depend_on_row_order() -> None:
    data, _ = _bank(np.random.default_rng(4), 2000)
    first = resolve_identities(data)
    shuffled = resolve_identities(data.sample(frac=1.0, random_state=9, ignore_index=True))
    for name in ("mapping", "customers", "hub_identifiers", "conflicts", "merges"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(shuffled, name))
    assert first.stats == shuffled.stats


def test_customer_ids_follow_the_smallest_record() -> None:
    result = resolve_identities(
        sightings(
            ("z", "1", "mobile", "13800000001"),
            ("b", "9", "mobile", "13800000002"),
            ("a", "5", "mobile", "13800000001"),
        )
    )
    assert result.mapping.to_dict("list") == {
        "source": ["a", "b", "z"],
        "source_record_id": ["5", "9", "1"],
        "customer_id": [1, 2, 1],
    }


def test_existing_ids_are_kept_and_new_customers_numbered_above() -> None:
    before = sightings(
        ("crm", "K1", "mobile", "13800000001"), ("crm", "K2", "mobile", "13800000002")
    )
    existing = pd.DataFrame(
        {
            "source": ["crm", "crm", "crm"],
            "source_record_id": ["K1", "K2", "K_gone"],
            "customer_id": [70, 41, 99],
        }
    )
    after = pd.concat(
        [
            before,
            sightings(
                ("app", "A1", "mobile", "13800000001"), ("aaa", "X1", "mobile", "13800000003")
            ),
        ]
    )
    result = resolve_identities(after, existing=existing)
    assert result.mapping.to_dict("list") == {
        "source": ["aaa", "app", "crm", "crm"],
        "source_record_id": ["X1", "A1", "K1", "K2"],
        "customer_id": [100, 70, 70, 41],
    }
    assert result.merges.empty and result.stats.existing_merges == 0


def test_joining_two_existing_customers_keeps_the_smallest_id() -> None:
    existing = pd.DataFrame(
        {"source": ["crm", "crm"], "source_record_id": ["K1", "K2"], "customer_id": [70, 41]}
    )
    joined = sightings(
        ("crm", "K1", "mobile", "13800000001"),
        ("crm", "K2", "mobile", "13800000002"),
        ("app", "A1", "mobile", "13800000001"),
        ("app", "A1", "email", "j@qq.com"),
        ("crm", "K2", "email", "j@qq.com"),
    )
    result = resolve_identities(joined, existing=pa.Table.from_pandas(existing))
    assert set(result.mapping["customer_id"]) == {41}
    assert result.merges.to_dict("records") == [{"customer_id": 41, "merged_customer_id": 70}]
    assert result.stats.existing_merges == 1


def test_a_rerun_with_its_own_mapping_changes_nothing() -> None:
    data, _ = _bank(np.random.default_rng(6), 1000)
    first = resolve_identities(data)
    again = resolve_identities(data, existing=first.mapping)
    pd.testing.assert_frame_equal(first.mapping, again.mapping)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (ONE_PERSON.drop(columns="id_type"), {}, "id_type is missing"),
        (sightings(("crm", "K1", "phone", "1")), {}, "'phone', which is not one of"),
        (sightings(("crm", None, "mobile", "1")), {}, "source_record_id"),
        (ONE_PERSON, {"max_records_per_identifier": 0}, "must be a positive int"),
        (ONE_PERSON, {"max_records_per_identifier": {"fax": 3}}, "'fax'"),
        (ONE_PERSON, {"existing": pd.DataFrame({"source": ["a"]})}, "customer_id"),
        (
            ONE_PERSON,
            {
                "existing": pd.DataFrame(
                    {"source": ["a", "a"], "source_record_id": [1, 1], "customer_id": [1, 2]}
                )
            },
            "twice",
        ),
    ],
)
def test_invalid_input_is_a_clear_error(data, kwargs, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        resolve_identities(data, **kwargs)


@pytest.mark.parametrize(
    ("id_type", "value", "expected"),
    [
        ("mobile", "+86 138-1234-5678", "13812345678"),
        ("mobile", "0086 13812345678", "13812345678"),
        ("mobile", "(138) 1234 5678", "13812345678"),
        ("mobile", "8613812345678", "13812345678"),
        ("mobile", "020-8888-0000", "02088880000"),
        ("email", "  Li.Na@QQ.COM ", "li.na@qq.com"),
        ("national_id", "110105 19491231 002x", "11010519491231002X"),
        ("card_number", "6225-8812-3456-7898", "6225881234567898"),
        ("device_id", "ABC-DEF", "abc-def"),
        ("app_user_id", " U1234567890 ", "U1234567890"),
        ("email", "   ", None),
        ("mobile", None, None),
    ],
)
def test_normalise_identifiers(id_type: str, value: str | None, expected: str | None) -> None:
    assert normalise_identifiers([id_type], pa.array([value], pa.string())).to_pylist() == [
        expected
    ]


@pytest.mark.slow
def test_a_million_sightings_in_a_few_seconds() -> None:
    data, _ = _bank(np.random.default_rng(0), 100_000)
    data = pd.concat([data] * 2, ignore_index=True).iloc[:1_000_000]  # repeat sightings happen
    start = time.perf_counter()
    result = resolve_identities(data)
    elapsed = time.perf_counter() - start
    print(
        f"\n{len(data):,} sightings, {result.stats.records:,} records -> "
        f"{result.stats.customers:,} customers in {elapsed:.2f}s"
    )
    assert result.stats.customers == 100_000
    assert elapsed < 20.0  # loose: about 2 s on a laptop core


def test_customers_are_listed_by_customer_id_even_with_existing_ids() -> None:
    data = sightings(
        ("a", "1", "mobile", "13800000001"),
        ("a", "1", "email", "z@qq.com"),
        ("b", "2", "mobile", "13800000002"),
        ("b", "2", "email", "a@qq.com"),
    )
    existing = pd.DataFrame(
        {"source": ["a", "b"], "source_record_id": ["1", "2"], "customer_id": [10**15, 7]}
    )
    result = resolve_identities(data, existing=existing)
    assert result.customers.to_dict("list") == {
        "customer_id": [7, 7, 10**15, 10**15],
        "id_type": ["mobile", "email", "mobile", "email"],
        "id_value": ["13800000002", "a@qq.com", "13800000001", "z@qq.com"],
        "source": ["b", "b", "a", "a"],
    }
