"""SHAP reason codes: additivity, faithful top reasons on a planted label, text, importance."""

from __future__ import annotations

import math
import re

import lightgbm as lgb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from explain_world import (
    DRIVERS,
    model_columns,
    planted_label,
    planted_model,
    training_frame,
    world_features,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from qianmian.data.pii_text import find_pii
from qianmian.errors import ConfigError, ValidationError
from qianmian.features.catalogue import FEATURES
from qianmian.models.explain import ReasonExplainer, importance_figure
from qianmian.models.propensity import PropensityClassifier
from qianmian.models.reasons import (
    KINDS,
    PeerShare,
    feature_label,
    format_value,
    peer_phrase,
    reason_text,
    value_kind,
)

# -- the planted world ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return world_features(tmp_path_factory.mktemp("explain-world"))


@pytest.fixture(scope="module")
def model(features: pd.DataFrame) -> lgb.LGBMClassifier:
    return planted_model(features)


@pytest.fixture(scope="module")
def explainer(model: lgb.LGBMClassifier, features: pd.DataFrame) -> ReasonExplainer:
    return ReasonExplainer(model, model_columns(features), reference=features)


@pytest.fixture(scope="module")
def high_travel(features: pd.DataFrame) -> pd.DataFrame:
    """Customers in the top 5% of travel spend (the first planted driver)."""
    spend = features["spend_travel_30d"]
    return features[spend >= spend.quantile(0.95)]


def test_shap_values_add_up_to_the_raw_margin_and_match_lightgbm(
    explainer: ReasonExplainer, model: lgb.LGBMClassifier, features: pd.DataFrame
) -> None:
    sample = features.sample(n=500, random_state=0)
    sv = explainer.shap_values(sample)
    assert list(sv.columns) == model_columns(features)
    assert sv.index.equals(sample.index)
    frame = training_frame(sample)
    margin = model.booster_.predict(frame, raw_score=True)
    np.testing.assert_allclose(sv.sum(axis=1) + explainer.expected_value_, margin, atol=1e-9)
    native = model.booster_.predict(frame, pred_contrib=True)
    np.testing.assert_allclose(sv.to_numpy(), native[:, :-1], atol=1e-12)
    np.testing.assert_allclose(native[:, -1], explainer.expected_value_, atol=1e-12)


def test_propensity_classifier_is_explained_in_its_raw_margin(features: pd.DataFrame) -> None:
    X, y = training_frame(features), planted_label(features)
    prop = PropensityClassifier(n_estimators=100, learning_rate=0.1, num_leaves=7, n_jobs=1).fit(
        X, y
    )
    explainer = ReasonExplainer(prop, list(prop.feature_names_in_), reference=features)
    sv = explainer.shap_values(features.head(300))
    np.testing.assert_allclose(
        sv.sum(axis=1) + explainer.expected_value_, prop.raw_margin(X.head(300)), atol=1e-9
    )


def test_a_booster_that_kept_its_trees_after_early_stopping_is_explained_as_it_predicts(
    features: pd.DataFrame,
) -> None:
    """The booster predicts with best_iteration trees; SHAP must leave the later ones out."""
    X, y = training_frame(features), planted_label(features)
    params = {"objective": "binary", "learning_rate": 0.5, "verbose": -1, "num_threads": 1}
    booster = lgb.train(
        params,
        lgb.Dataset(X.iloc[:3000], y[:3000]),
        num_boost_round=200,
        valid_sets=[lgb.Dataset(X.iloc[3000:], y[3000:])],
        callbacks=[lgb.early_stopping(10, verbose=False)],
        keep_training_booster=True,
    )
    assert 0 < booster.best_iteration < booster.num_trees()
    explainer = ReasonExplainer(booster, booster.feature_name(), reference=features)
    sv = explainer.shap_values(features.head(300))
    np.testing.assert_allclose(
        sv.sum(axis=1) + explainer.expected_value_,
        booster.predict(X.head(300), raw_score=True),
        atol=1e-9,
    )


def test_top_reason_of_customers_high_on_a_planted_driver_is_that_driver(
    explainer: ReasonExplainer, features: pd.DataFrame, high_travel: pd.DataFrame
) -> None:
    util = features["utilisation_last"]
    high_util = features[(util >= util.quantile(0.95)) & (features["spend_travel_30d"] == 0)]
    for group, driver in ((high_travel, "spend_travel_30d"), (high_util, "utilisation_last")):
        assert len(group) >= 150
        reasons = explainer.explain(group, k=3)
        top = reasons[reasons["rank"] == 1].set_index("customer_id")["feature"]
        assert (top.reindex(group["customer_id"]) == driver).mean() >= 0.9, driver


@pytest.mark.parametrize(
    ("lang", "phrase"), [("zh", "高于同群 {p}%"), ("en", "higher than {p}% of peers")]
)
def test_reason_text_shows_the_formatted_value_and_the_peer_percentile(
    explainer: ReasonExplainer,
    features: pd.DataFrame,
    high_travel: pd.DataFrame,
    lang: str,
    phrase: str,
) -> None:
    reasons = explainer.explain(high_travel, k=3, lang=lang)
    travel = reasons[reasons["feature"] == "spend_travel_30d"]
    assert len(travel) >= 0.9 * len(high_travel)
    population = features["spend_travel_30d"].to_numpy()
    label = "近30天旅游消费额" if lang == "zh" else "travel spend, last 30 days"
    for row in travel.itertuples():
        below = (population < row.value).mean() * 100
        assert row.percentile == pytest.approx(below)
        assert row.text.startswith(label)
        assert f"¥{row.value:,.0f}" in row.text
        assert phrase.format(p=math.floor(below)) in row.text
        assert row.direction == "raises" and row.shap > 0
    if lang == "zh":
        assert re.search(r"¥\d{1,3}(,\d{3})+，高于同群 9\d%$", travel["text"].iloc[0])


def test_reasons_raise_the_score_by_default_and_lowering_ones_are_an_option(
    explainer: ReasonExplainer, features: pd.DataFrame
) -> None:
    sample = features.sample(n=400, random_state=1)
    raising = explainer.explain(sample, k=3, min_shap=0.02)
    assert (raising["direction"] == "raises").all() and (raising["shap"] >= 0.02).all()
    assert raising.groupby("customer_id").size().max() <= 3
    for _, one in raising.groupby("customer_id"):
        assert list(one["rank"]) == list(range(1, len(one) + 1))
        assert one["shap"].is_monotonic_decreasing
    both = explainer.explain(sample, k=5, include_lowering=True)
    assert set(both["direction"]) == {"raises", "lowers"}
    assert (both["shap"].abs() >= 0.01).all()
    assert (
        both.groupby("customer_id")["shap"].apply(lambda s: s.abs().is_monotonic_decreasing).all()
    )
    # customers keep the order of the input
    order = {c: i for i, c in enumerate(sample["customer_id"])}
    assert both["customer_id"].map(order).is_monotonic_increasing


def test_global_importance_ranks_the_planted_drivers_first(
    explainer: ReasonExplainer, features: pd.DataFrame
) -> None:
    imp = explainer.importance(features.sample(n=1_500, random_state=2))
    assert set(imp["feature"].head(2)) == set(DRIVERS)
    assert list(imp["rank"]) == list(range(1, len(imp) + 1))
    assert imp["mean_abs_shap"].is_monotonic_decreasing
    assert imp["share"].sum() == pytest.approx(1.0)
    zh = importance_figure(imp)
    (bar,) = zh.data
    assert isinstance(bar, go.Bar) and bar.orientation == "h" and len(bar.y) == 20
    assert set(bar.y[-2:]) == {"近30天旅游消费额", "最近账单额度使用率"}  # the top bars
    en = importance_figure(imp, top=5, lang="en")
    assert len(en.data[0].y) == 5 and en.data[0].y[-1] in {feature_label(d, "en") for d in DRIVERS}


def test_beeswarm_figure_shows_the_top_features_coloured_by_peer_percentile(
    explainer: ReasonExplainer, features: pd.DataFrame
) -> None:
    fig = explainer.beeswarm_figure(features, top=10, lang="en", max_points=800)
    points = sum(len(trace.x) for trace in fig.data)
    assert points == 800 * 10
    ticks = fig.layout.yaxis.ticktext
    assert len(ticks) == 10 and set(ticks[-2:]) == {feature_label(d, "en") for d in DRIVERS}
    coloured = fig.data[1].marker.color
    assert np.min(coloured) >= 0 and np.max(coloured) <= 100


# -- bad input -----------------------------------------------------------------------------------


def test_unknown_language_is_a_clear_error(
    explainer: ReasonExplainer, features: pd.DataFrame
) -> None:
    message = r"The 'lang' parameter of .* must be \"zh\" or \"en\"\. Got 'fr' instead\."
    with pytest.raises(ConfigError, match=message):
        explainer.explain(features.head(3), lang="fr")
    with pytest.raises(ConfigError, match=message):
        explainer.beeswarm_figure(features.head(3), lang="fr")
    with pytest.raises(ConfigError, match=message):
        importance_figure(explainer.importance(features.head(3)), lang="fr")


def test_a_frame_missing_model_features_is_refused_naming_them(
    explainer: ReasonExplainer, model: lgb.LGBMClassifier, features: pd.DataFrame
) -> None:
    partial = features.drop(columns=["spend_travel_30d", "city_tier"]).head(5)
    with pytest.raises(ValidationError, match=r"lacks 2 .*spend_travel_30d, city_tier"):
        explainer.explain(partial)
    with pytest.raises(ValidationError, match=r"reference frame lacks 1 .*: utilisation_last"):
        ReasonExplainer(model, model_columns(features), features.drop(columns="utilisation_last"))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"k": 0}, r"The 'k' parameter .* must be a positive int\. Got 0"),
        ({"k": 2.5}, r"'k' parameter .* Got 2\.5"),
        ({"min_shap": -0.1}, r"'min_shap' parameter .* must be a non-negative number"),
    ],
)
def test_bad_explain_parameters_are_refused(
    explainer: ReasonExplainer, features: pd.DataFrame, kwargs: dict, pattern: str
) -> None:
    with pytest.raises(ConfigError, match=pattern):
        explainer.explain(features.head(3), **kwargs)


def test_bad_figure_parameters_are_refused(
    explainer: ReasonExplainer, features: pd.DataFrame
) -> None:
    with pytest.raises(ConfigError, match=r"The 'top' parameter of importance_figure"):
        importance_figure(explainer.importance(features.head(3)), top=0)
    with pytest.raises(ConfigError, match=r"The 'max_points' parameter of .*beeswarm_figure"):
        explainer.beeswarm_figure(features.head(3), max_points=-5)


def test_the_model_must_be_fitted_lightgbm_with_the_given_features(
    model: lgb.LGBMClassifier, features: pd.DataFrame
) -> None:
    columns = model_columns(features)
    with pytest.raises(ConfigError, match=r"fitted LightGBM models.*Got LGBMClassifier"):
        ReasonExplainer(lgb.LGBMClassifier(), columns, features)
    with pytest.raises(ConfigError, match="Got LinearRegression"):
        from sklearn.linear_model import LinearRegression

        ReasonExplainer(LinearRegression(), columns, features)
    renamed = [*columns[:-1], "segment"]
    with pytest.raises(ConfigError, match=r"Not in the model: \['segment'\]"):
        ReasonExplainer(model, renamed, features.assign(segment=1))
    with pytest.raises(ConfigError, match="same names in another order"):
        ReasonExplainer(model, columns[::-1], features)
    with pytest.raises(ConfigError, match="'kinds' parameter"):
        ReasonExplainer(model, columns, features, kinds={"age": "money_ish"})


# -- a model on columns the catalogue does not know (a bank's own, a public data set) -------------


@pytest.fixture(scope="module")
def uci_like() -> tuple[lgb.Booster, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 1_200
    frame = pd.DataFrame(
        {
            "LIMIT_BAL": rng.gamma(2.0, 40_000.0, n).round(-3),
            "PAY_0": rng.integers(-2, 4, n),
            "SEX_MALE": rng.random(n) < 0.4,
            # a careless bank column holding contact numbers: must never reach a reason text
            "CONTACT": pd.Series(rng.choice(["13812345678", "13987654321"], n), dtype="str"),
        }
    )
    logit = -1.0 + 1.2 * frame["PAY_0"] - frame["LIMIT_BAL"] / 80_000
    logit += np.where(frame["CONTACT"] == "13812345678", 1.5, 0.0)
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    data = frame.assign(CONTACT=frame["CONTACT"].astype("category"))
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 0}
    return lgb.train(params, lgb.Dataset(data, y), num_boost_round=60), frame


def test_non_catalogue_columns_use_their_names_kinds_and_never_show_pii(
    uci_like: tuple[lgb.Booster, pd.DataFrame],
) -> None:
    booster, frame = uci_like
    columns = list(frame.columns)
    explainer = ReasonExplainer(booster, columns, frame, kinds={"LIMIT_BAL": "money"})
    assert explainer.kinds_ == {
        "LIMIT_BAL": "money",
        "PAY_0": "count",
        "SEX_MALE": "flag",
        "CONTACT": "category",
    }
    reasons = explainer.explain(frame.head(200), k=4, lang="en", include_lowering=True)
    assert "row" in reasons.columns and "customer_id" not in reasons.columns
    assert set(reasons["feature"]) == set(columns)
    contact = reasons[reasons["feature"] == "CONTACT"]
    assert (
        contact["text"].str.fullmatch(r"CONTACT: 13\d\*{4}\d{4}, the same as \d+% of peers").all()
    )
    assert not contact["value"].isin(["13812345678", "13987654321"]).any()
    for text in reasons["text"]:
        assert find_pii(text) == []
    money = reasons[reasons["feature"] == "LIMIT_BAL"].iloc[0]
    assert money["text"].startswith(f"LIMIT_BAL: ¥{money['value']:,.0f}, ")
    flags = reasons[reasons["feature"] == "SEX_MALE"]
    assert flags["text"].str.fullmatch(r"SEX_MALE: (yes|no), the same as \d+% of peers").all()
    sv = explainer.shap_values(frame)
    data = frame.assign(CONTACT=frame["CONTACT"].astype("category"))
    np.testing.assert_allclose(
        sv.sum(axis=1) + explainer.expected_value_, booster.predict(data, raw_score=True)
    )
    assert explainer.explain(frame.head(0)).empty
    gappy = frame.head(50).astype({"SEX_MALE": object})
    gappy.loc[gappy.index[0], "SEX_MALE"] = None  # a flag with a gap arrives as objects
    as_float = data.head(50).astype({"SEX_MALE": float})
    as_float.loc[as_float.index[0], "SEX_MALE"] = np.nan
    np.testing.assert_allclose(
        explainer.shap_values(gappy).sum(axis=1) + explainer.expected_value_,
        booster.predict(as_float, raw_score=True),
    )


def test_percentiles_follow_the_reference_peer_group(
    model: lgb.LGBMClassifier, features: pd.DataFrame, high_travel: pd.DataFrame
) -> None:
    columns = model_columns(features)
    everyone = ReasonExplainer(model, columns, features)
    travellers = ReasonExplainer(model, columns, features[features["spend_travel_30d"] > 0])
    one = high_travel.head(40)
    a = everyone.explain(one).query("feature == 'spend_travel_30d'")
    b = travellers.explain(one).query("feature == 'spend_travel_30d'")
    assert len(a) == len(b) > 30
    assert (b["percentile"].to_numpy() < a["percentile"].to_numpy()).all()
    np.testing.assert_allclose(a["shap"], b["shap"])  # the peers change the words, not the score


# -- plain-language formatting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "zh", "en"),
    [
        ("spend_travel_30d", 8200.4, "¥8,200", "¥8,200"),
        ("monthly_income", 1_234_567.0, "¥1,234,567", "¥1,234,567"),
        ("revolving_balance_last", -50.0, "-¥50", "-¥50"),
        ("txn_count_30d", 12, "12笔", "12"),
        ("logins_7d", 3, "3次", "3"),
        ("revolving_months_6m", 4, "4期", "4"),
        ("n_cards", 2, "2张", "2"),
        ("age", 35, "35岁", "35 years"),
        ("active_days_30d", 1, "1天", "1 day"),
        ("tenure_days", 2829, "2,829天", "2,829 days"),
        ("recency_days", 366, "近一年无", "none in a year"),
        ("share_qr_90d", 0.453, "45%", "45%"),
        ("share_travel_90d", 0.035, "3.5%", "3.5%"),
        ("utilisation_last", 1.05, "105%", "105%"),
        ("spend_trend_30_90", 1.83, "1.8倍", "1.8×"),
        ("risk_level", 3, "C3", "C3"),
        ("max_wealth_risk", 0, "无", "none"),
        ("max_wealth_risk", 4, "R4", "R4"),
        ("holds_wealth", True, "是", "yes"),
        ("has_car_loan", False, "否", "no"),
        ("city_tier", "新一线", "新一线", "新一线"),
        ("credit_score", 712, "712", "712"),
        ("avg_ticket_90d", float("nan"), "无数据", "no data"),
    ],
)
def test_values_are_written_by_kind(name: str, value: object, zh: str, en: str) -> None:
    kind = value_kind(name)
    assert format_value(name, value, kind, "zh") == zh
    assert format_value(name, value, kind, "en") == en


def test_money_is_detected_from_the_catalogue_descriptions() -> None:
    money = {name for name in FEATURES if value_kind(name) == "money"}
    assert money == {n for n, f in FEATURES.items() if f.en.endswith("(CNY)")} | {
        "spend_prior_90d"  # only its zh description, 前90天消费额, says it is an amount
    }
    assert {"monthly_income", "wealth_balance", "total_credit_limit", "loan_principal_180d"} < money
    assert not {n for n in money if n.startswith(("share_", "utilisation", "spend_trend"))}
    assert all(value_kind(n) == "share" for n in FEATURES if n.startswith("share_"))
    assert all(value_kind(n) in KINDS for n in FEATURES)


@pytest.mark.parametrize(
    ("share", "zh", "en"),
    [
        (PeerShare(90.7, 0.3, 9.0), "高于同群 90%", "higher than 90% of peers"),
        (PeerShare(50.0, 0.0, 50.0), "高于同群 50%", "higher than 50% of peers"),
        (PeerShare(3.0, 2.0, 95.0), "低于同群 95%", "lower than 95% of peers"),
        (PeerShare(0.0, 91.4, 8.6), "与同群 91% 相同", "the same as 91% of peers"),
        (PeerShare(math.nan, 12.0, math.nan), "与同群 12% 相同", "the same as 12% of peers"),
        (PeerShare(math.nan, math.nan, math.nan), "", ""),
    ],
)
def test_peer_phrase_rounds_down_so_it_stays_true(share: PeerShare, zh: str, en: str) -> None:
    assert peer_phrase(share, "zh") == zh
    assert peer_phrase(share, "en") == en


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(FEATURES)),
    value=st.one_of(
        st.floats(min_value=-1e12, max_value=1e12),
        st.just(math.nan),
        st.integers(min_value=0, max_value=10**12),
        st.booleans(),
    ),
    below=st.floats(min_value=0, max_value=100),
    lang=st.sampled_from(["zh", "en"]),
)
def test_catalogue_reasons_contain_nothing_that_looks_like_pii(
    name: str, value: object, below: float, lang: str
) -> None:
    """Reason texts are built from the catalogue and numbers: masking never has to touch them."""
    kind = value_kind(name)
    if kind == "category":
        value = "二线"
    share = PeerShare(below, 0.0, 100.0 - below)
    text = reason_text(name, value, kind, share, lang)  # type: ignore[arg-type]
    unmasked = feature_label(name, lang) + " " + format_value(name, value, kind, lang)  # type: ignore[arg-type]
    assert find_pii(unmasked) == []
    assert text.startswith(feature_label(name, lang))  # type: ignore[arg-type]
