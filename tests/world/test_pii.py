"""Generators of Chinese personal identifiers: formats, check characters, uniqueness, speed."""

from __future__ import annotations

import re
import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qianmian.errors import NotFoundError, ValidationError
from qianmian.world import pii

GENERATORS = {  # name -> call with (rng, n)
    "mobiles": pii.mobiles,
    "card_numbers": pii.card_numbers,
    "emails": pii.emails,
    "device_ids": pii.device_ids,
    "app_user_ids": pii.app_user_ids,
    "national_ids": lambda rng, n: pii.national_ids(
        rng, _birth_dates(n), np.where(np.arange(n) % 2 == 0, "M", "F")
    ),
    "names": lambda rng, n: pii.names(rng, np.where(np.arange(n) % 2 == 0, "M", "F")),
}
FORMATS = {
    "mobiles": r"1(?:3[0-9]|4[579]|5[0-35-9]|66|7[0135-8]|8[0-9]|9[189])[0-9]{8}",
    "card_numbers": r"62[0-9]{14}",
    "emails": r"[a-z0-9._]+@(?:163|qq|126|gmail|foxmail|sina|outlook|hotmail|139|sohu)\.com",
    "device_ids": r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    "app_user_ids": r"U[1-9][0-9]{9}",
    "national_ids": r"[1-8][0-9]{16}[0-9X]",
}


def _birth_dates(n: int) -> np.ndarray:
    return np.datetime64("1950-01-01") + (np.arange(n) * 7919 % 20000).astype("timedelta64[D]")


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_values(name: str) -> None:
    first = GENERATORS[name](np.random.default_rng(11), 3000)
    again = GENERATORS[name](np.random.default_rng(11), 3000)
    other = GENERATORS[name](np.random.default_rng(12), 3000)
    assert first.tolist() == again.tolist()
    assert first.tolist() != other.tolist()


@pytest.mark.parametrize("name", FORMATS)
def test_format_and_uniqueness(name: str) -> None:
    values = GENERATORS[name](np.random.default_rng(3), 20_000)
    assert len(values) == 20_000
    assert len(set(values.tolist())) == 20_000
    pattern = re.compile(FORMATS[name])
    assert all(pattern.fullmatch(v) for v in values), [
        v for v in values if not pattern.fullmatch(v)
    ][:5]


def test_duplicates_are_redrawn_until_unique() -> None:
    # one district, one birthday, one gender: only 500 sequence numbers exist
    n = 450
    ids = pii.national_ids(
        np.random.default_rng(0),
        np.full(n, "1990-01-01", "datetime64[D]"),
        np.full(n, "F"),
        np.full(n, "440305"),
    )
    assert len(set(ids.tolist())) == n
    assert all(int(i[16]) % 2 == 0 and pii.is_valid_national_id(i) for i in ids)


def test_impossible_uniqueness_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="unique"):
        pii.national_ids(
            np.random.default_rng(0),
            np.full(501, "1990-01-01", "datetime64[D]"),
            np.full(501, "M"),
            np.full(501, "110101"),
        )


def test_national_ids_carry_birth_date_gender_and_region() -> None:
    n = 5000
    rng = np.random.default_rng(5)
    births = _birth_dates(n)
    genders = np.where(rng.random(n) < 0.5, "M", "F")
    regions = rng.choice(pii.region_codes("深圳"), n)
    ids = pii.national_ids(rng, births, genders, regions)
    assert all(pii.is_valid_national_id(i) for i in ids)
    assert [i[:6] for i in ids] == regions.tolist()
    assert [i[6:14] for i in ids] == [str(d).replace("-", "") for d in births]
    assert [int(i[16]) % 2 for i in ids] == (genders == "M").astype(int).tolist()
    assert any(i.endswith("X") for i in ids)  # about 1 in 11


def test_national_ids_draw_known_regions_when_none_given() -> None:
    ids = pii.national_ids(np.random.default_rng(1), _birth_dates(500), np.full(500, "男"))
    assert {i[:6] for i in ids} <= {r.code for r in pii.REGIONS}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("11010519491231002X", True),  # the GB 11643 example
        ("11010519491231002x", True),
        ("110105194912310021", False),  # wrong check character
        ("99010519491231002X", False),  # no province 99
        ("110105194902300020", False),  # 30 February
        ("11010518491231002X", False),  # check computed for another body
        ("11010519491231002", False),  # 17 characters
        ("1101051949123100２X", False),  # a full-width digit
        ("", False),
    ],
)
def test_is_valid_national_id(value: str, valid: bool) -> None:
    assert pii.is_valid_national_id(value) is valid


@given(st.text("0123456789", min_size=17, max_size=17), st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_error_breaks_the_id_check(body: str, pos: int, shift: int) -> None:
    value = body + pii.national_id_check_char(body)
    changed = body[:pos] + str((int(body[pos]) + shift) % 10) + body[pos + 1 :]
    assert pii.national_id_check_char(changed) != value[17]


@given(st.text("0123456789", min_size=15, max_size=18), st.data())
def test_any_single_digit_error_breaks_luhn(body: str, data: st.DataObject) -> None:
    number = body + pii.luhn_check_digit(body)
    assert pii.is_luhn_valid(number)
    pos = data.draw(st.integers(0, len(number) - 1))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != number[pos]]))
    assert not pii.is_luhn_valid(number[:pos] + digit + number[pos + 1 :])


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("79927398713", True),
        ("79927398710", False),
        ("6225881234567898", True),
        ("6225881234567899", False),
        ("", False),
        ("6225 8812 3456 7898", False),
    ],
)
def test_is_luhn_valid(value: str, valid: bool) -> None:
    assert pii.is_luhn_valid(value) is valid


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pii.national_id_check_char("1234"), "17 digits"),
        (lambda: pii.luhn_check_digit("12a"), "digits only"),
        (lambda: pii.card_numbers(np.random.default_rng(0), 3, bins=("62",)), "six-digit"),
        (lambda: pii.names(np.random.default_rng(0), np.array(["X"])), "Gender"),
        (
            lambda: pii.national_ids(
                np.random.default_rng(0),
                np.array(["2000-01-01"], "M8[D]"),
                np.array(["F"]),
                np.array(["1101"]),
            ),
            "six digits",
        ),
    ],
)
def test_invalid_arguments(call, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        call()


def test_cards_use_the_given_bins_and_pass_luhn() -> None:
    cards = pii.card_numbers(np.random.default_rng(2), 10_000, bins=("622588", "625802"))
    assert {c[:6] for c in cards} == {"622588", "625802"}
    assert all(pii.is_luhn_valid(c) for c in cards)


def test_names_follow_surname_frequencies_and_gender_pools() -> None:
    n = 100_000
    genders = np.where(np.arange(n) < n // 2, "M", "F")
    names = pii.names(np.random.default_rng(8), genders)
    surnames = [s[:2] if s[:2] in pii.COMPOUND_SURNAMES else s[0] for s in names]
    assert set(surnames) <= set(pii.SURNAMES)
    top = [s for s, _ in Counter(surnames).most_common(5)]
    assert set(top[:3]) == {"王", "李", "张"}
    assert 0.0 < sum(len(s) == 2 for s in surnames) / n < 0.002  # compound surnames are rare
    assert all(len(name) - len(s) in (1, 2) for name, s in zip(names, surnames, strict=True))
    male_chars = Counter(
        "".join(n[len(s) :] for n, s in zip(names[: n // 2], surnames, strict=False))
    )
    female_chars = Counter(
        "".join(n[len(s) :] for n, s in zip(names[n // 2 :], surnames[n // 2 :], strict=True))
    )
    assert set(male_chars) != set(female_chars)
    assert sum(c in pii._MALE for c in male_chars.elements()) / male_chars.total() > 0.85
    assert sum(c in pii._FEMALE for c in female_chars.elements()) / female_chars.total() > 0.85


def test_region_codes_by_city() -> None:
    assert "440305" in pii.region_codes("深圳").tolist()
    assert len(pii.REGIONS) >= 100
    assert len({r.code for r in pii.REGIONS}) == len(pii.REGIONS)
    assert all(
        pii.is_valid_national_id(
            r.code + "19900101001" + pii.national_id_check_char(r.code + "19900101001")
        )
        for r in pii.REGIONS
    )
    with pytest.raises(NotFoundError, match="Atlantis"):
        pii.region_codes("Atlantis")


def test_every_city_of_the_simulated_bank_has_region_codes() -> None:
    from qianmian.world import geography

    cities = {r.city for r in pii.REGIONS}
    assert [c.name for c in geography.CITIES if c.name not in cities] == []


@pytest.mark.slow
def test_a_million_of_each_in_about_a_second() -> None:
    n = 1_000_000
    timings = {}
    for name, generate in GENERATORS.items():
        start = time.perf_counter()
        values = generate(np.random.default_rng(0), n)
        timings[name] = time.perf_counter() - start
        assert len(values) == n
    print("\n" + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    assert max(timings.values()) < 8.0  # loose: ~0.2-1.5 s each on a laptop core
