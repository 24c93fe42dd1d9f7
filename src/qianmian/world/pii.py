"""Realistic, vectorised generators of Chinese personal identifiers for the simulated bank.

Names follow the frequency of the ~100 most common surnames (a few compound ones such as 欧阳
are rare) with gender-leaning given-name characters; 18-character resident ID numbers carry a
real district code, the birth date, a sequence whose last digit is odd for men and even for
women, and the ISO 7064 MOD 11-2 check character; mobiles use real operator prefixes; card
numbers are 16-digit UnionPay numbers with a Luhn check digit. Identifiers that must be unique
(IDs, mobiles, cards, emails, device and app ids) are drawn, checked for duplicates, and only the
duplicates are drawn again (:mod:`qianmian.world.unique_draws`), so the result is unique and
bit-for-bit reproducible for a seed.

The tables drawn from (given-name characters, district codes, prefixes, BINs, email domains) are
in :mod:`qianmian.world.pii_tables`; surnames, province codes and the check characters are rules
of any data, in :mod:`qianmian.data.pii_rules`, and are re-exported here.

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> ids = national_ids(rng, np.array(["1990-03-07"], dtype="datetime64[D]"), np.array(["F"]))
>>> is_valid_national_id(ids[0]), ids[0][6:14], int(ids[0][16]) % 2
(True, '19900307', 0)
"""

from __future__ import annotations

import numpy as np

# The rules of any data (surnames, province codes, check characters) belong to the data layer;
# they are re-exported here, so `qianmian.world.pii.is_valid_national_id` and the like still work.
from qianmian.data.pii_rules import (
    COMPOUND_SURNAMES,
    PROVINCE_CODES,
    SURNAME_PINYIN,
    SURNAME_SHARES,
    SURNAMES,
    is_luhn_valid,
    is_valid_national_id,
    luhn_check_digit,
    luhn_check_digits,
    national_id_check_char,
    national_id_check_codes,
)
from qianmian.errors import NotFoundError, ValidationError
from qianmian.world.pii_tables import (
    DEFAULT_CARD_BINS,
    EMAIL_DOMAIN_SHARES,
    EMAIL_DOMAINS,
    EMAIL_SYLLABLES,
    MOBILE_PREFIXES,
    REGIONS,
    Region,
)

# the given-name pools keep the private names they had here (tests read them)
from qianmian.world.pii_tables import FEMALE_GIVEN_CHARS as _FEMALE
from qianmian.world.pii_tables import MALE_GIVEN_CHARS as _MALE
from qianmian.world.pii_tables import NEUTRAL_GIVEN_CHARS as _NEUTRAL
from qianmian.world.unique_draws import draw_unique, string_hash

__all__ = [
    "COMPOUND_SURNAMES",
    "DEFAULT_CARD_BINS",
    "PROVINCE_CODES",
    "REGIONS",
    "SURNAMES",
    "Region",
    "app_user_ids",
    "card_numbers",
    "device_ids",
    "emails",
    "is_luhn_valid",
    "is_valid_national_id",
    "luhn_check_digit",
    "mobiles",
    "names",
    "national_id_check_char",
    "national_ids",
    "region_codes",
]

_SURNAME_P = SURNAME_SHARES / SURNAME_SHARES.sum()


def _pool(chars: str) -> tuple[np.ndarray, np.ndarray]:
    unique = np.array(list(dict.fromkeys(chars)))
    weight = 1.0 / (np.arange(len(unique)) + 8.0)  # earlier characters are more common
    return unique, weight / weight.sum()


_POOLS = {"M": _pool(_MALE), "F": _pool(_FEMALE), "N": _pool(_NEUTRAL)}
_REGION_INTS = np.array([int(r.code) for r in REGIONS], dtype=np.int64)
# Older number ranges hold more subscribers: relative weights of the operator prefixes.
_MOBILE_PREFIXES = np.array(MOBILE_PREFIXES).astype(np.int64)
_MOBILE_P = np.array([3.0, 0.4, 2.0, 0.8, 2.5, 0.9])[
    np.digitize(_MOBILE_PREFIXES, [140, 150, 160, 180, 190])
]
_MOBILE_P = _MOBILE_P / _MOBILE_P.sum()
_SYLLABLES = np.array(EMAIL_SYLLABLES)
_DOMAINS = np.array(EMAIL_DOMAINS)
_DOMAIN_P = np.array(EMAIL_DOMAIN_SHARES)

# Zero-padded numbers by width: year strings up to 2100, then 2- and 3-digit strings.
_NUMBERS = (
    np.arange(2100).astype("U4"),
    np.char.zfill(np.arange(100).astype("U2"), 2),
    np.char.zfill(np.arange(1000).astype("U3"), 3),
)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits of non-negative integers, an ``(n, width)`` array, most significant first."""
    text = (values + 10**width).astype(f"S{width + 1}")  # the leading 1 keeps leading zeros
    return text.view(np.uint8).reshape(values.size, width + 1)[:, 1:].astype(np.int64) - 48


def _ascii_rows(codes: np.ndarray) -> np.ndarray:
    """Turn an ``(n, width)`` array of ASCII codes into an array of ``n`` strings."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    return codes.view(f"S{codes.shape[1]}").ravel().astype(f"U{codes.shape[1]}")


def _is_male(genders: np.ndarray) -> np.ndarray:
    genders = np.asarray(genders).astype(str)
    male = np.isin(genders, ["M", "男"])
    bad = ~male & ~np.isin(genders, ["F", "女"])
    if bad.any():
        raise ValidationError(
            f"Gender must be 'M' or 'F' (or 男/女). Got {genders[bad][0]!r} instead."
        )
    return male


def names(rng: np.random.Generator, genders: np.ndarray) -> np.ndarray:
    """Draw full Chinese names: a surname by national frequency and a 1-2 character given name.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    genders : array of str, shape (n,)
        ``"M"`` or ``"F"`` (``"男"``/``"女"`` also accepted); given-name characters lean to the
        gender's pool, with a few gender-neutral ones.

    Returns
    -------
    numpy.ndarray of str, shape (n,)

    Examples
    --------
    >>> out = names(np.random.default_rng(1), np.array(["M", "F", "F"]))
    >>> out.shape, all(2 <= len(s) <= 4 for s in out)
    ((3,), True)
    """
    male = _is_male(genders)
    n = male.size
    surname = np.array(SURNAMES)[rng.choice(len(SURNAMES), size=n, p=_SURNAME_P)]
    chars = []
    for _ in range(2):
        neutral = rng.random(n) < 0.1
        out = np.empty(n, dtype="<U1")
        for key, sel in (("M", male & ~neutral), ("F", ~male & ~neutral), ("N", neutral)):
            pool, p = _POOLS[key]
            out[sel] = pool[rng.choice(len(pool), size=int(sel.sum()), p=p)]
        chars.append(out)
    two = rng.random(n) < 0.75
    return np.strings.add(np.strings.add(surname, chars[0]), np.where(two, chars[1], ""))


def region_codes(city: str | None = None) -> np.ndarray:
    """District codes of ``city`` (all shipped codes if ``None``), as six-character strings.

    >>> region_codes("深圳")[:3].tolist()
    ['440303', '440304', '440305']
    """
    codes = [r.code for r in REGIONS if city is None or r.city == city]
    if not codes:
        cities = list(dict.fromkeys(r.city for r in REGIONS))
        raise NotFoundError(f"No region codes are shipped for city '{city}'. Known: {cities}.")
    return np.array(codes)


def national_ids(
    rng: np.random.Generator,
    birth_dates: np.ndarray,
    genders: np.ndarray,
    region_codes: np.ndarray | None = None,
) -> np.ndarray:
    """Draw unique 18-character resident ID numbers (居民身份证号码).

    Parameters
    ----------
    rng : numpy.random.Generator
    birth_dates : array of datetime64[D], shape (n,)
    genders : array of str, shape (n,)
        ``"M"``/``"F"``: the last digit of the sequence is odd for men, even for women.
    region_codes : array of str or int, shape (n,), optional
        Six-digit district codes; drawn from :data:`REGIONS` when omitted.

    Returns
    -------
    numpy.ndarray of str, shape (n,)
        Region (6) + birth date YYYYMMDD (8) + sequence (3) + MOD 11-2 check character.

    Examples
    --------
    >>> ids = national_ids(np.random.default_rng(0), np.array(["1985-12-31"], "datetime64[D]"),
    ...                    np.array(["M"]), np.array(["440305"]))
    >>> ids[0][:14], int(ids[0][16]) % 2, is_valid_national_id(ids[0])
    ('44030519851231', 1, True)
    """
    dates = np.asarray(birth_dates).astype("datetime64[D]")
    male = _is_male(genders).astype(np.int64)
    if np.isnat(dates).any() or dates.shape != male.shape:
        raise ValidationError("Every person needs a birth date, one per gender value.")
    years = dates.astype("datetime64[Y]")
    ymd = (
        (years.astype(np.int64) + 1970) * 10_000
        + ((dates.astype("datetime64[M]") - years).astype(np.int64) + 1) * 100
        + (dates - dates.astype("datetime64[M]")).astype(np.int64)
        + 1
    )
    n = dates.size
    if region_codes is None:
        region = _REGION_INTS[rng.integers(0, len(_REGION_INTS), n)]
    else:
        text = np.asarray(region_codes).astype(str)
        if text.shape != dates.shape or not np.all(
            np.strings.isdigit(text) & (np.strings.str_len(text) == 6)
        ):
            raise ValidationError("Every region code must be six digits, one per person.")
        region = text.astype(np.int64)
    base = region * 100_000_000_000 + ymd * 1000  # the first 17 digits, sequence 000

    def draw(rows: np.ndarray) -> np.ndarray:  # a new sequence number, same person
        return (
            base[rows]
            + rng.integers(0, 100, rows.size) * 10
            + rng.integers(0, 5, rows.size) * 2
            + male[rows]
        )

    digits = _digits(draw_unique(n, draw), 17)
    check = national_id_check_codes(digits)
    return _ascii_rows(np.column_stack([digits + 48, check]))


def mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` unique 11-digit mainland mobile numbers with weighted operator prefixes.

    >>> m = mobiles(np.random.default_rng(3), 1000)
    >>> len(set(m)), all(len(x) == 11 and x[0] == "1" for x in m)
    (1000, True)
    """

    def draw(rows: np.ndarray) -> np.ndarray:
        prefix = _MOBILE_PREFIXES[rng.choice(len(_MOBILE_PREFIXES), size=rows.size, p=_MOBILE_P)]
        return prefix * 100_000_000 + rng.integers(0, 100_000_000, rows.size)

    return draw_unique(n, draw).astype("U11")


def card_numbers(
    rng: np.random.Generator, n: int, bins: tuple[str, ...] = DEFAULT_CARD_BINS
) -> np.ndarray:
    """Draw ``n`` unique 16-digit UnionPay card numbers: BIN + 9 account digits + Luhn digit.

    >>> cards = card_numbers(np.random.default_rng(5), 3, bins=("622588",))
    >>> [c[:6] for c in cards], all(is_luhn_valid(c) for c in cards)
    (['622588', '622588', '622588'], True)
    """
    if not bins or not all(len(b) == 6 and b.isascii() and b.isdigit() for b in bins):
        raise ValidationError(f"Card BINs must be six-digit strings. Got {bins!r} instead.")
    bin_ints = np.array([int(b) for b in bins], dtype=np.int64)

    def draw(rows: np.ndarray) -> np.ndarray:
        k = rows.size
        return bin_ints[rng.integers(0, len(bin_ints), k)] * 10**9 + rng.integers(0, 10**9, k)

    body = _digits(draw_unique(n, draw), 15)
    return _ascii_rows(np.column_stack([body, luhn_check_digits(body)]) + 48)


def emails(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` unique email addresses: QQ numbers at qq.com, or pinyin local parts.

    Pinyin local parts join a surname and one or two syllables, with an optional ``.``/``_``
    and digits (a birth year or a short number), at 163.com, 126.com, gmail.com, foxmail.com ...

    >>> out = emails(np.random.default_rng(2), 500)
    >>> len(set(out)), all("@" in e for e in out)
    (500, True)
    """

    def draw(rows: np.ndarray) -> np.ndarray:
        k = rows.size
        width = rng.choice(np.arange(5, 11), size=k, p=[0.05, 0.1, 0.15, 0.25, 0.3, 0.15])
        low = 10 ** (width - 1)
        numeric = np.strings.add(
            (low + (rng.random(k) * 9 * low).astype(np.int64)).astype(str), "@qq.com"
        )
        surname = SURNAME_PINYIN[rng.choice(len(SURNAMES), size=k, p=_SURNAME_P)]
        sep = np.array(["", "", "", ".", "_"])[rng.integers(0, 5, k)]
        given = np.strings.add(
            _SYLLABLES[rng.integers(0, len(_SYLLABLES), k)],
            np.where(rng.random(k) < 0.5, _SYLLABLES[rng.integers(0, len(_SYLLABLES), k)], ""),
        )
        # none, 2-digit birth year, 4-digit birth year, 3 digits
        suffix = np.choose(
            rng.integers(0, 4, k),
            [
                np.full(k, ""),
                _NUMBERS[1][rng.integers(60, 106, k) % 100],
                _NUMBERS[0][rng.integers(1960, 2006, k)],
                _NUMBERS[2][rng.integers(0, 1000, k)],
            ],
        )
        domain = _DOMAINS[rng.choice(len(_DOMAINS), size=k, p=_DOMAIN_P)]
        pinyin = np.strings.add(np.strings.add(surname, sep), np.strings.add(given, suffix))
        pinyin = np.strings.add(np.strings.add(pinyin, "@"), domain)
        # one fixed width, so that a longer redraw is never cut short
        return np.where(rng.random(k) < 0.3, numeric, pinyin).astype("U40")

    out = draw_unique(n, draw, key=string_hash)
    return out.astype(f"U{max(int(np.strings.str_len(out).max(initial=1)), 1)}")


def device_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` unique device ids shaped like lower-case UUID version 4 strings.

    >>> d = device_ids(np.random.default_rng(4), 2)
    >>> len(d[0]), d[0][14], d[0][8] + d[0][13] + d[0][18] + d[0][23]
    (36, '4', '----')
    """
    nibbles = np.empty((n, 32), dtype=np.int64)

    def draw(rows: np.ndarray) -> np.ndarray:  # fills the rows; their first 60 bits are the key
        nibbles[rows] = rng.integers(0, 16, (rows.size, 32))
        nibbles[rows, 12] = 4
        nibbles[rows, 16] = 8 + nibbles[rows, 16] % 4
        return (nibbles[rows, :15] << np.arange(56, -4, -4)).sum(axis=1)

    draw_unique(n, draw)
    chars = _HEX[nibbles]
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    return _ascii_rows(
        np.hstack(
            [
                chars[:, :8],
                dash,
                chars[:, 8:12],
                dash,
                chars[:, 12:16],
                dash,
                chars[:, 16:20],
                dash,
                chars[:, 20:],
            ]
        )
    )


def app_user_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` unique mobile-app user ids: ``"U"`` and ten digits.

    >>> app_user_ids(np.random.default_rng(6), 2)[0][:1]
    'U'
    """
    values = draw_unique(n, lambda rows: rng.integers(1_000_000_000, 10_000_000_000, rows.size))
    return np.strings.add("U", values.astype("U10"))
