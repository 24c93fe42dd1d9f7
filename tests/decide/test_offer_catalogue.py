"""The offer catalogue: line-numbered errors, the starter against the simulated bank, merging
folders, round trips, changes, and the fields and rows rules are evaluated on."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml
from jinja2.sandbox import SandboxedEnvironment

from qianmian.data.schema.vocab import CONTACT_CHANNELS
from qianmian.data.yaml_lines import compose_with_lines, key_lines, loc_text
from qianmian.decide.catalogue import Catalogue, load_catalogue, parse_catalogue, starter_catalogue
from qianmian.decide.catalogue_schema import CampaignSpec, OfferSpec
from qianmian.decide.decision import DecisionRequest
from qianmian.decide.rule_fields import CONTEXT_FIELDS, context_row, decision_fields, tag_row
from qianmian.decide.state.base import SuppressionRules
from qianmian.errors import ConfigError, NotFoundError, RuleError
from qianmian.features.catalogue import FEATURES
from qianmian.features.tags import TagLibrary
from qianmian.world.catalogue import OFFERS

OFFER = """\
  - id: OF-A
    type: wealth
    name_zh: 稳健理财
    name_en: Steady wealth
    product_id: WM-R2
    value: 400
    risk_level: R2
    treatments:
      - channel: sms
        copy_zh: 稳健理财，点击了解
        copy_en: Steady wealth
"""
CAMPAIGN = """\
campaigns:
  - id: CP-A
    name_zh: 理财季
    name_en: Wealth season
    status: full
    offers: [OF-A]
    start_date: 2026-01-01
    end_date: 2026-12-31
"""


def doc(offer: str = OFFER, extra: str = "") -> str:
    return f"version: v1\noffers:\n{offer}{extra}"


INVALID = [
    # (YAML text, message pattern): the file, the line and the field path must all be named
    (
        doc(OFFER.replace("R2", "R6")),
        r"^offers\.yaml, line 9, offers\[0\]\.risk_level: 'R6' is not one of R1, R2, R3, R4, R5\.$",
    ),
    (doc(OFFER.replace("type: wealth", "type: wealthy")), r"line 4, offers\[0\]\.type: 'wealthy'"),
    (
        doc(OFFER.replace("    value: 400\n", "    value: 400\n    valeu: 3\n")),
        r"line 9, offers\[0\]\.valeu: is not a known key \(did you mean value\?\)",
    ),
    (doc(OFFER.replace("value: 400", "value: -5")), r"line 8, offers\[0\]\.value: .*got -5"),
    (doc(OFFER.replace("    value: 400\n", "")), r"line 3, offers\[0\]\.value: Field required"),
    (doc(OFFER + "    prior_rate: 1.5\n"), r"line 14, offers\[0\]\.prior_rate: .*less than 1"),
    (
        doc(OFFER + "    eligibility:\n      - {when: incom > 3, reason_zh: 收入, reason_en: x}\n"),
        r"line 15, offers\[0\]\.eligibility\[0\]\.when: The rule 'incom > 3' uses an unknown "
        r"field 'incom'",
    ),
    (
        doc(OFFER + "    applicable_when: {when: 'age >', reason_zh: x, reason_en: y}\n"),
        r"line 14, offers\[0\]\.applicable_when\.when: The rule 'age >' is not valid",
    ),
    (
        doc(
            OFFER + "    suitable_when:\n      - {when: 'risk_level', reason_zh: x, reason_en: y}\n"
        ),
        r"line 15, offers\[0\]\.suitable_when\[0\]\.when: ",
    ),
    (
        doc(OFFER.replace("稳健理财，点击了解", "'买{{ offer 理财'")),
        r"line 12, offers\[0\]\.treatments\[0\]\.copy_zh: the template does not parse",
    ),
    (
        doc(OFFER.replace("稳健理财，点击了解", "买" * 141)),
        r"line 12, offers\[0\]\.treatments\[0\]\.copy_zh: the copy has 141 characters .* at most "
        r"140",
    ),
    (
        doc(OFFER.replace("channel: sms", "channel: fax")),
        r"line 11, offers\[0\]\.treatments\[0\]\.channel: 'fax' is not one",
    ),
    (
        doc(OFFER.replace("type: wealth", "type: card_acquisition")),
        r"line 9, offers\[0\]\.risk_level: a risk level is for wealth offers",
    ),
    (
        doc(OFFER.replace("    risk_level: R2\n", "")),
        r"line 3, offers\[0\]\.risk_level: a wealth offer needs",
    ),
    (
        doc(OFFER + "    min_age: 40\n    max_age: 30\n"),
        r"line 15, offers\[0\]\.max_age: max_age 30",
    ),
    (
        doc(OFFER + "    start_date: 2026-05-01\n    end_date: 2026-04-01\n"),
        r"line 15, offers\[0\]\.end_date: end_date 2026-04-01 is before",
    ),
    (doc(OFFER + "    service: true\n"), r"line 14, offers\[0\]\.service: service messages"),
    (
        doc(OFFER + OFFER),
        r"line 14, offers\[1\]\.id: the offer id 'OF-A' is already used \(at offers\.yaml, line "
        r"3, offers\[0\]\.id\)",
    ),
    (
        doc(extra=CAMPAIGN.replace("[OF-A]", "[OF-B]")),
        r"line 19, campaigns\[0\]\.offers\[0\]: there is no offer 'OF-B' .*did you mean 'OF-A'",
    ),
    (
        doc(extra=CAMPAIGN.replace("2026-12-31", "2025-12-31")),
        r"line 21, campaigns\[0\]\.end_date: end_date 2025-12-31 is before",
    ),
    (
        doc(extra=CAMPAIGN + "    channels: [app_push]\n"),
        r"campaigns\[0\]\.offers\[0\]: offer 'OF-A' has no treatment on the campaign's channels",
    ),
    (doc(extra=CAMPAIGN + "    holdout_share: 0.8\n"), r"line 22, campaigns\[0\]\.holdout_share"),
    (
        doc(extra=CAMPAIGN + "    audience: agee < 30\n"),
        r"line 22, campaigns\[0\]\.audience: .*agee",
    ),
    (doc(extra=CAMPAIGN.replace("full", "live")), r"line 18, campaigns\[0\]\.status: 'live'"),
    (
        doc(
            OFFER.replace("type: wealth", "type: service").replace("    risk_level: R2\n", ""),
            CAMPAIGN,
        ),
        r"campaigns\[0\]\.offers\[0\]: 'OF-A' is a service message, which no campaign may carry",
    ),
    (
        doc(OFFER + "      - {channel: sms, copy_zh: 再看看, copy_en: Again}\n"),
        r"line 14, offers\[0\]\.treatments\[1\]\.id: the treatment id 'OF-A:sms' is already used; "
        r"give each treatment of an offer on one channel its own id",
    ),
    ("version: v1\nchannels:\n  fax: {cost: 1}\n", r"line 3, channels\.fax: 'fax' is not one of"),
    (
        "version: v1\nchannels:\n  sms: {quiet_hours: {start: '25:00', end: '08:00'}}\n",
        r"line 3, channels\.sms\.quiet_hours\.start: '25:00' is not a time of day",
    ),
    (
        "version: v1\ncontact_policy:\n  caps:\n    per_channel:\n      sms: {day: -1}\n",
        r"line 5, contact_policy\.caps\.per_channel\.sms\.day: .*got -1",
    ),
    ("version: v1\nofers: []\n", r"line 2: 'ofers' is not a section .* Did you mean offers\?"),
    ("version: v1\noffers: {a: 1}\n", r"line 2: 'offers' must be a list of offers; got dict"),
    ("version: v1\nversion: v2\n", r"line 2, version: the key is already set at line 1"),
    ("offers: []\n", r"no file sets the catalogue's 'version'"),
    ("- a list\n", r"a mapping of sections .* holds a list"),
    ("version: v1\noffers: [\n", r"not valid YAML at line 3, column 1"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_catalogues_are_explained_with_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_catalogue(text, "offers.yaml")


def test_many_problems_are_listed_up_to_five() -> None:
    offers = "".join(OFFER.replace("OF-A", f"OF-{i}").replace("R2", "R9") for i in range(7))
    with pytest.raises(ConfigError) as info:
        parse_catalogue(doc(offers), "offers.yaml")
    assert str(info.value).count("is not one of") == 5
    assert str(info.value).endswith("; and 2 more problem(s).")


# -- the starter catalogue ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def starter() -> Catalogue:
    return starter_catalogue()


def test_starter_carries_the_simulated_banks_offers_unchanged(starter: Catalogue) -> None:
    for truth in OFFERS:
        offer = starter.offer(truth.offer_id)
        assert (offer.type, offer.name_zh, offer.name_en, offer.product_id) == (
            truth.offer_type,
            truth.name_zh,
            truth.name_en,
            truth.product_id,
        )
        assert (offer.personalised, offer.incentive_cost) == (
            truth.personalised,
            truth.incentive_cost,
        )
        assert not offer.service and offer.value > 0
    services = {o.id for o in starter.offers.values() if o.service}
    assert services == {"SV-BILL-DUE", "SV-LIMIT-GUIDE"}
    assert len(starter.offers) == len(OFFERS) + 2


def test_starter_rules_and_policy_are_as_documented(starter: Catalogue) -> None:
    assert set(starter.fields_used) <= set(decision_fields())
    assert {o.risk_level for o in starter.offers.values() if o.type == "wealth"} == {
        "R1", "R2", "R3", "R4", "R5",
    }  # fmt: skip
    assert starter.offer("OF-YOUTH-CARD").max_age == 35
    assert starter.offer("OF-PLAT-FEEWAIVE").not_holding == ["CC-PLAT"]
    assert starter.offer("OF-LOAN-DISC").credit and not starter.offer("OF-WM-R3").credit
    policy = starter.contact_policy
    assert policy.caps.per_channel["sms"].by_period() == {"day": 1, "week": 2, "month": 4}
    assert policy.caps.per_channel["call_center"].by_period() == {
        "day": None, "week": 1, "month": 2,
    }  # fmt: skip
    assert policy.caps.all_channels.by_period() == {"day": 2, "week": 4, "month": 10}
    assert starter.suppression_rules() == SuppressionRules(2, 30, 60, 90)
    assert starter.channels["call_center"].capacity_per_day == 2000
    quiet = {c for c, spec in starter.channels.items() if spec.quiet_hours is not None}
    assert quiet == {"sms", "app_push", "call_center"}
    assert [c for c, spec in starter.channels.items() if not spec.needs_consent] == ["in_app"]


def test_starter_campaigns_are_live_for_demos_on_the_simulated_bank(starter: Catalogue) -> None:
    statuses = {c.status for c in starter.campaigns.values()}
    assert statuses == {"full", "pilot"}
    for day in (date(2026, 1, 1), date(2026, 11, 11), date(2027, 6, 30)):
        live = [c for c in starter.campaigns.values() if c.start_date <= day <= c.end_date]
        assert len(live) >= 7, day
    assert all(0 < c.holdout_share <= 0.5 and c.budget_cny for c in starter.campaigns.values())


def test_starter_copy_renders_and_fits_its_channel(starter: Catalogue) -> None:
    env = SandboxedEnvironment()
    events = [{}, {"type": "transaction", "amount": 12_345.6, "category": "家装"}]
    for offer in starter.offers.values():
        for t in offer.treatments:
            assert t.id == f"{offer.id}:{t.channel}"
            for event in events:
                zh = env.from_string(t.copy_zh).render(
                    bank="千面银行", offer=offer.name_zh, f={}, event=event
                )
                env.from_string(t.copy_en).render(
                    bank="Qianmian", offer=offer.name_en, f={}, event=event
                )
                limit = starter.channels[t.channel].max_length
                if t.channel == "sms":  # the engine adds the signature and the opt-out
                    assert "【" not in zh and "退订" not in zh, t.id
                    zh = f"【千面银行】{zh} 回T退订"
                assert limit is None or len(zh) <= limit, (t.id, len(zh))


@pytest.mark.parametrize(
    ("offer_id", "row", "applicable"),
    [
        ("SV-LIMIT-GUIDE", {"event_type": "transfer_failure"}, True),
        ("SV-LIMIT-GUIDE", {"event_type": "login"}, False),
        ("SV-LIMIT-GUIDE", {"event_type": None}, False),
        ("OF-INST-6", {"event_amount": 5000.0, "max_ticket_90d": 0.0}, True),
        ("OF-INST-6", {"event_amount": None, "max_ticket_90d": 800.0}, False),
    ],
)
def test_starter_applicability_reads_the_request_context(
    starter: Catalogue, offer_id: str, row: dict[str, object], applicable: bool
) -> None:
    condition = starter.offer(offer_id).applicable_when
    assert condition is not None
    rule = starter.rule(condition.when)
    full = {name: row.get(name) for name in rule.fields_used}
    assert rule.evaluate_one(full) is applicable


# -- round trips, defaults and changes -----------------------------------------------------------

TRICKY = doc(
    OFFER.replace("type: wealth", "type: card_acquisition").replace("    risk_level: R2\n", "")
    + "    credit: false\n    not_holding: []\n    min_age: null\n",
    "channels:\n  sms: {quiet_hours: null, max_length: null}\n  call_center: {cost: 4.5}\n",
)


@pytest.mark.parametrize(
    "text", [TRICKY, doc(extra=CAMPAIGN)], ids=["overridden-defaults", "plain"]
)
def test_to_yaml_round_trips(text: str) -> None:
    catalogue = parse_catalogue(text)
    again = parse_catalogue(catalogue.to_yaml())
    assert again == catalogue and again.sha256 == catalogue.sha256
    assert (again.offers, again.campaigns) == (catalogue.offers, catalogue.campaigns)
    assert (again.channels, again.contact_policy) == (catalogue.channels, catalogue.contact_policy)


def test_starter_round_trips(starter: Catalogue) -> None:
    again = parse_catalogue(starter.to_yaml())
    assert again == starter and again.offers == starter.offers
    assert list(again.offers) == list(starter.offers)


def test_defaults_follow_the_offer_type_and_channel() -> None:
    catalogue = parse_catalogue(TRICKY)
    offer = catalogue.offer("OF-A")
    assert (offer.credit, offer.not_holding, offer.min_age) == (False, [], None)
    assert catalogue.channels["sms"].quiet_hours is None
    assert catalogue.channels["sms"].cost == 0.05  # the rest of the channel keeps its defaults
    assert catalogue.channels["call_center"].cost == 4.5
    assert catalogue.channels["call_center"].capacity_per_day == 2000
    assert list(catalogue.channels) == list(CONTACT_CHANNELS.values)
    plain = parse_catalogue(
        doc(OFFER.replace("type: wealth", "type: insurance").replace("    risk_level: R2\n", ""))
    )
    assert plain.offer("OF-A").not_holding == ["WM-R2"] and not plain.offer("OF-A").credit
    unquoted = parse_catalogue(
        "version: 1.0\nchannels:\n  sms: {quiet_hours: {start: 22:00, end: 07:30}}\n"
    )
    assert unquoted.version == "1.0"
    assert (
        unquoted.channels["sms"].quiet_hours.start,
        unquoted.channels["sms"].quiet_hours.end,
    ) == (  # type: ignore[union-attr]
        "22:00",
        "07:30",
    )


def test_copy_variants_on_one_channel_need_their_own_ids() -> None:
    variant = "      - {id: OF-A:sms:b, channel: sms, copy_zh: 再看看, copy_en: Again}\n"
    offer = parse_catalogue(doc(OFFER + variant)).offer("OF-A")
    assert [t.id for t in offer.treatments] == ["OF-A:sms", "OF-A:sms:b"]
    assert offer.treatment("OF-A:sms:b").copy_zh == "再看看"


def test_content_not_formatting_defines_the_catalogue() -> None:
    one = parse_catalogue(doc(extra=CAMPAIGN))
    assert (
        parse_catalogue("# a comment\n" + doc(extra=CAMPAIGN).replace("[OF-A]", "\n      - OF-A"))
        == one
    )
    assert parse_catalogue(doc(extra=CAMPAIGN.replace("full", "pilot"))) != one


def test_with_offer_replaces_in_place_or_appends(starter: Catalogue) -> None:
    plat = starter.offer("OF-PLAT-FEEWAIVE")
    changed = starter.with_offer(plat.model_copy(update={"value": 3000.0}), version="v2")
    assert changed.offer("OF-PLAT-FEEWAIVE").value == 3000.0 and changed.version == "v2"
    assert list(changed.offers) == list(starter.offers) and changed != starter
    assert starter.offer("OF-PLAT-FEEWAIVE").value == 2500.0  # the original is untouched
    new = OfferSpec.model_validate(yaml.safe_load(OFFER)[0] | {"id": "OF-NEW"})
    added = starter.with_offer(new)
    assert (
        list(added.offers)[-1] == "OF-NEW"
        and added.offer("OF-NEW").treatments[0].id == "OF-NEW:sms"
    )
    assert added.version == starter.version


def test_changes_are_checked_like_a_file(starter: Catalogue) -> None:
    bad = CampaignSpec.model_validate(
        {"id": "CP-X", "name_zh": "x", "name_en": "x", "offers": ["OF-NOPE"],
         "start_date": "2026-01-01", "end_date": "2026-02-01"}
    )  # fmt: skip
    with pytest.raises(
        ConfigError, match=r"campaigns\[9\]\.offers\[0\]: there is no offer 'OF-NOPE'"
    ):
        starter.with_campaign(bad)
    good = bad.model_copy(update={"offers": ["OF-WM-R4"]})
    assert [c.id for c in starter.with_campaign(good).campaigns_of("OF-WM-R4")] == ["CP-X"]
    with pytest.raises(ConfigError, match=r"'OF-PLAT-FEEWAIVE' cannot be removed: .*CP-PLAT-HV"):
        starter.without_offer("OF-PLAT-FEEWAIVE")
    smaller = starter.without_offer("OF-WM-R5")
    assert "OF-WM-R5" not in smaller.offers and len(smaller.offers) == len(starter.offers) - 1
    with pytest.raises(NotFoundError, match=r"no offer 'OF-WM-R9'.*Did you mean"):
        starter.without_offer("OF-WM-R9")


def test_lookups_and_rules(starter: Catalogue) -> None:
    assert [c.id for c in starter.campaigns_of("OF-INST-6")] == ["CP-INST-BIG", "CP-D11-INST"]
    assert starter.campaigns_of("OF-WM-R5") == []
    with pytest.raises(NotFoundError, match=r"no campaign 'CP-PLAT'.*Did you mean CP-PLAT-HV"):
        starter.campaign("CP-PLAT")
    text = starter.offer("OF-PLAT-FEEWAIVE").eligibility[0].when
    assert starter.rule(text) is starter.rule(text)
    assert starter.rule("hour >= 9 AND tag_high_income").evaluate_one(
        {"hour": 10, "tag_high_income": True}
    )
    with pytest.raises(RuleError, match="unknown field"):
        starter.rule("no_such_field > 1")


# -- folders ----------------------------------------------------------------------------------


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_folder_is_merged_in_name_order(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "cat",
        {
            "b_offers.yaml": f"offers:\n{OFFER}",
            "a_more.yaml": "offers:\n" + OFFER.replace("OF-A", "OF-B"),
            "c_campaigns.yaml": "version: v7\n" + CAMPAIGN + "channels:\n  sms: {cost: 0.04}\n",
            "empty.yaml": "",
            "notes.txt": "not read",
        },
    )
    catalogue = load_catalogue(folder)
    assert list(catalogue.offers) == ["OF-B", "OF-A"] and catalogue.version == "v7"
    assert catalogue.channels["sms"].cost == 0.04
    assert catalogue == load_catalogue(folder)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"a.yaml": f"version: v1\noffers:\n{OFFER}", "b.yaml": "offers:\n" + OFFER},
            r"^b\.yaml, line 2, offers\[0\]\.id: the offer id 'OF-A' is already used \(at a\.yaml, "
            r"line 3, offers\[0\]\.id\)",
        ),
        (
            {"a.yaml": "version: v1\n", "b.yaml": "offers: []\nversion: v2\n"},
            r"b\.yaml, line 2: 'version' is already set at a\.yaml, line 1",
        ),
        (
            {"a.yaml": "offers: []\n", "b.yaml": "campaigns: []\n"},
            r"a\.yaml, b\.yaml: no file sets",
        ),
        (
            {
                "a.yaml": "version: v1\nchannels: {sms: {cost: 1}}\n",
                "b.yaml": "channels:\n  sms: {cost: 2}\n",
            },
            r"b\.yaml, line 2: channel 'sms' is already configured at a\.yaml, line 2",
        ),
        (
            {
                "a.yaml": "version: v1\noffers:\n" + OFFER.replace("OF-A", "OF-B"),
                "b.yaml": "offers:\n" + OFFER.replace("R2", "R0"),
            },
            r"^b\.yaml, line 8, offers\[0\]\.risk_level: 'R0' is not one of",
        ),
        (
            {"a.yaml": "version: v1\ncontact_policy: {}\n", "b.yaml": "contact_policy: {}\n"},
            r"'contact_policy' is already set",
        ),
    ],
)
def test_folder_errors_name_the_file_and_its_own_line(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_catalogue(write(tmp_path / "cat", files))


def test_unreadable_and_empty_locations_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_catalogue(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"holds no \.yaml files"):
        load_catalogue(write(tmp_path / "empty", {}))
    (tmp_path / "gbk.yaml").write_bytes("version: 版本\n".encode("gbk"))
    with pytest.raises(ConfigError, match=r"cannot be read .*UTF-8"):
        load_catalogue(tmp_path / "gbk.yaml")
    single = tmp_path / "one.yaml"
    single.write_text(doc(extra=CAMPAIGN), encoding="utf-8")
    assert load_catalogue(single) == parse_catalogue(doc(extra=CAMPAIGN))


# -- rule fields and rows -----------------------------------------------------------------------


def test_decision_fields_are_features_context_and_tags() -> None:
    library = TagLibrary.load()
    fields = decision_fields(library)
    assert {n: fields[n] for n in CONTEXT_FIELDS} == CONTEXT_FIELDS
    assert all(fields[n] == str(f.type) for n, f in FEATURES.items())
    assert {n for n in fields if n.startswith("tag_")} == {f"tag_{t.id}" for t in library}
    assert len(fields) == len(FEATURES) + len(CONTEXT_FIELDS) + len(library)


@pytest.mark.parametrize(
    ("ts", "event", "expected"),
    [
        (
            datetime(2026, 11, 15, 21, 30),  # a Sunday
            {"type": "transaction", "amount": "5000", "category": "家装"},
            {"event_type": "transaction", "event_amount": 5000.0, "event_category": "家装",
             "event_page": None, "hour": 21, "weekday": 7, "day": 15, "month": 11},
        ),
        (
            datetime(2026, 11, 16, 8, 0),  # a Monday
            {"type": "page_view", "page": "bill", "amount": "n/a"},
            {"event_type": "page_view", "event_amount": None, "event_page": "bill", "weekday": 1},
        ),
        (datetime(2026, 1, 1), None, {"event_type": None, "event_amount": None, "month": 1, "day": 1}),
    ],
)  # fmt: skip
def test_context_row(
    ts: datetime, event: dict[str, str] | None, expected: dict[str, object]
) -> None:
    row = context_row(DecisionRequest(1, ts, channel="sms", placement="home", event=event))
    assert set(row) == set(CONTEXT_FIELDS)
    assert (row["channel"], row["placement"]) == ("sms", "home")
    assert {k: row[k] for k in expected} == expected


def test_tag_row_evaluates_only_the_tags_named() -> None:
    features = {"age": 26, "holds_youth": False, "monthly_income": 9000.0}
    row = tag_row(
        ["tag_youth_card_prospect", "tag_high_income", "age", "tag_high_income"], features
    )
    assert row == {"tag_youth_card_prospect": True, "tag_high_income": False}
    assert tag_row([], features) == {}
    with pytest.raises(NotFoundError, match="'tag_no_such_tag' names no tag"):
        tag_row(["tag_no_such_tag"], features)


# -- YAML with lines ---------------------------------------------------------------------------


def test_yaml_reads_times_and_words_as_text_and_knows_every_line() -> None:
    data, lines = compose_with_lines("a: 21:00\nb: yes\nc: [1, {d: true}]\n", "x.yaml")
    assert data == {"a": "21:00", "b": "yes", "c": [1, {"d": True}]}
    assert lines == {("a",): 1, ("b",): 2, ("c",): 3, ("c", 0): 3, ("c", 1): 3, ("c", 1, "d"): 3}
    assert key_lines(None) == {}
    assert loc_text(()) == "top level" and loc_text(("channels", "fax", "[key]")) == "channels.fax"
    with pytest.raises(
        ConfigError, match=r"x\.yaml, line 3, c\[0\]\.e: the key is already set at line 2"
    ):
        compose_with_lines("c:\n  - e: 1\n    e: 2\n", "x.yaml")
    assert compose_with_lines("e: 1\ne: 2\n", "x.yaml", unique_keys=False)[0] == {"e": 2}


def test_error_messages_are_one_sentence_each() -> None:
    with pytest.raises(ConfigError) as info:
        parse_catalogue(doc(OFFER.replace("R2", "R6")), "offers.yaml")
    assert not re.search(r"\.\.|\?\.", str(info.value))
