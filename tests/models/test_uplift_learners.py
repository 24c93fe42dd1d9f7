"""Uplift meta-learners: recovery of a known uplift, several offers, scikit-learn behaviour, errors.

The synthetic campaign is randomised with a known uplift per customer: an offer helps customers
with a high ``x2`` (up to +20 points) and puts off "sleeping dogs" — the ~10% with a high ``x0``,
who would mostly buy anyway — by 25 points. Learners are judged by their Qini coefficient on
fresh customers against the Qini of the true uplift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from threadpoolctl import threadpool_limits

from qianmian.errors import ConfigError, ValidationError
from qianmian.models.uplift import (
    LGBM_DEFAULTS,
    DRLearner,
    SLearner,
    TLearner,
    XLearner,
    arm_vs_control,
    default_learner,
    qini_coefficient,
)

OFFERS = ("cashback", "points")


@dataclass(frozen=True)
class Campaign:
    X: pd.DataFrame
    treatment: np.ndarray
    y: np.ndarray
    uplift: np.ndarray  # (n, offers): true P(y=1 | offer) - P(y=1 | control)
    sleeping_dog: np.ndarray


def campaign(n: int, seed: int, offers: int = 1) -> Campaign:
    """A randomised campaign; with two offers, ``cashback`` suits high and ``points`` low x2."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    base = 1 / (1 + np.exp(-(-2.0 + 0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.3 * x[:, 4])))
    dog = x[:, 0] > 1.28
    sign = np.array([1.0, -1.0][:offers])
    effect = 0.2 / (1 + np.exp(-2 * x[:, [2]] * sign)) - 0.25 * dog[:, None]
    p_offer = np.clip(base[:, None] + effect, 0.01, 0.99)
    shares = [0.5, 0.5] if offers == 1 else [0.3, 0.35, 0.35]
    arm = rng.choice(offers + 1, size=n, p=shares)
    p = np.where(arm == 0, base, p_offer[np.arange(n), np.maximum(arm - 1, 0)])
    y = (rng.random(n) < p).astype(np.int64)
    labels = np.array(["control", *OFFERS[:offers]], dtype=object)
    X = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])
    return Campaign(X, labels[arm], y, p_offer - base[:, None], dog)


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread():
    """scikit-learn's OpenMP models on one thread: the test machine's cores are shared."""
    with threadpool_limits(1):
        yield


def lgbm_classifier() -> LGBMClassifier:
    # The defaults, on one thread: fast for 20k rows on a machine shared with other work.
    return LGBMClassifier(**{**LGBM_DEFAULTS, "n_jobs": 1}, random_state=0)


def lgbm_regressor() -> LGBMRegressor:
    return LGBMRegressor(**{**LGBM_DEFAULTS, "n_jobs": 1}, random_state=0)


def make_learners(propensity: dict | None = None) -> dict:
    return {
        "S": SLearner(lgbm_classifier()),
        "T": TLearner(lgbm_classifier()),
        "X": XLearner(lgbm_classifier(), effect_learner=lgbm_regressor()),
        "DR": DRLearner(lgbm_classifier(), effect_learner=lgbm_regressor(), propensity=propensity),
    }


def qini_ratio(model_uplift: np.ndarray, data: Campaign, offer: int) -> float:
    """Qini of the model's score over the Qini of the true uplift, offer against control."""
    rows, treated = arm_vs_control(data.treatment, OFFERS[offer])
    y = data.y[rows]
    truth = qini_coefficient(y, data.uplift[rows, offer], treated)
    return qini_coefficient(y, model_uplift[rows], treated) / truth


@pytest.fixture(scope="module")
def one_offer() -> tuple[dict, Campaign]:
    """The four learners fitted on 20,000 customers; 50,000 fresh ones to judge them."""
    train, fresh = campaign(20_000, seed=1), campaign(50_000, seed=2)
    fitted = {name: m.fit(train.X, train.treatment, train.y) for name, m in make_learners().items()}
    return fitted, fresh


@pytest.fixture(scope="module")
def two_offers() -> tuple[dict, Campaign]:
    train, fresh = campaign(20_000, seed=3, offers=2), campaign(50_000, seed=4, offers=2)
    learners = make_learners(propensity={"cashback": 0.35, "points": 0.35})
    fitted = {name: m.fit(train.X, train.treatment, train.y) for name, m in learners.items()}
    return fitted, fresh


@pytest.mark.parametrize("name", ["S", "T", "X", "DR"])
def test_learner_reaches_most_of_the_true_qini(one_offer, name):
    fitted, fresh = one_offer
    uplift = fitted[name].predict(fresh.X)
    assert uplift.shape == (len(fresh.y),)
    assert qini_ratio(uplift, fresh, 0) >= 0.8


@pytest.mark.parametrize("name", ["S", "T", "X", "DR"])
def test_learner_ranks_sleeping_dogs_last(one_offer, name):
    fitted, fresh = one_offer
    uplift = fitted[name].predict(fresh.X)
    dog = fresh.sleeping_dog
    assert uplift[dog].mean() < 0 < uplift[~dog].mean()
    bottom = np.argsort(uplift)[: len(uplift) // 10]  # the 10% a campaign should leave alone
    assert dog[bottom].mean() >= 0.6  # dogs are ~10% of customers


@pytest.mark.parametrize("name", ["S", "T", "X", "DR"])
def test_learner_handles_two_offers_and_a_holdout(two_offers, name):
    fitted, fresh = two_offers
    model = fitted[name]
    assert model.treatments_.tolist() == list(OFFERS)
    uplift = model.predict(fresh.X)
    assert uplift.shape == (len(fresh.y), 2)
    for offer in (0, 1):
        assert qini_ratio(uplift[:, offer], fresh, offer) >= 0.7
    # The better offer, where the two differ by at least 5 points, is found for most customers.
    clear = np.abs(fresh.uplift[:, 0] - fresh.uplift[:, 1]) >= 0.05
    best = uplift[clear].argmax(axis=1) == fresh.uplift[clear].argmax(axis=1)
    assert best.mean() >= 0.8
    outcomes = model.predict_outcomes(fresh.X.iloc[:2_000])
    assert outcomes.shape == (2_000, 3)
    assert ((outcomes >= 0) & (outcomes <= 1)).all()


def test_known_propensity_skips_the_propensity_models(two_offers):
    fitted, _ = two_offers
    assert fitted["DR"].propensity_models_ is None
    assert fitted["X"].propensity_models_ is not None and len(fitted["X"].propensity_models_) == 2


# -- scikit-learn behaviour, on small data -----------------------------------------------------


@pytest.fixture(scope="module")
def small() -> Campaign:
    return campaign(1_200, seed=7)


ALL = [
    SLearner(LogisticRegression()),
    TLearner(HistGradientBoostingClassifier(max_iter=30)),
    XLearner(LogisticRegression(), effect_learner=LinearRegression(), propensity=0.5),
    DRLearner(
        HistGradientBoostingClassifier(max_iter=30),
        effect_learner=HistGradientBoostingRegressor(max_iter=30),
        cv=2,
    ),
]


@pytest.mark.parametrize("learner", ALL, ids=lambda m: type(m).__name__)
def test_clone_and_params_follow_scikit_learn(learner, small):
    params = learner.get_params(deep=False)
    copy = clone(learner)
    assert copy.get_params(deep=False).keys() == params.keys()
    assert copy.set_params(control="holdout").control == "holdout"
    assert learner.control == "control"
    assert "learner__C" in learner.get_params() or "learner__max_iter" in learner.get_params()
    fitted = clone(learner).fit(small.X, small.treatment, small.y)
    assert fitted.n_features_in_ == 6
    assert fitted.feature_names_in_.tolist() == list(small.X.columns)
    first = fitted.predict(small.X)
    assert first.shape == (len(small.y),) and np.isfinite(first).all()
    again = clone(learner).fit(small.X, small.treatment, small.y).predict(small.X)
    np.testing.assert_array_equal(first, again)  # same random_state, same result
    outcomes = fitted.predict_outcomes(small.X)
    assert outcomes.shape == (len(small.y), 2)
    if not isinstance(fitted, XLearner | DRLearner):  # X and DR model the uplift itself
        np.testing.assert_allclose(first, outcomes[:, 1] - outcomes[:, 0])


def test_not_fitted_and_wrong_width_are_refused(small):
    with pytest.raises(NotFittedError):
        TLearner(LogisticRegression()).predict(small.X)
    fitted = TLearner(LogisticRegression()).fit(small.X.to_numpy(), small.treatment, small.y)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(small.X.to_numpy()[:, :4])


@pytest.mark.parametrize("cls", [SLearner, TLearner, XLearner, DRLearner])
def test_continuous_outcome_with_a_regressor(cls):
    """Spend with a constant +2.0 effect of the offer; numeric labels with control=0."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2_000, 3))
    t = rng.integers(0, 2, 2_000)
    spend = 3 * x[:, 0] + 2.0 * t + rng.normal(size=2_000)
    kwargs = {} if cls in (SLearner, TLearner) else {"propensity": 0.5}
    model = cls(LinearRegression(), control=0, **kwargs).fit(x, t, spend)
    assert model.binary_outcome_ is False
    assert model.treatments_.tolist() == [1]
    assert model.predict(x).mean() == pytest.approx(2.0, abs=0.15)


def test_default_learner_is_lightgbm_with_modest_settings(small, monkeypatch):
    for binary, kind in ((True, LGBMClassifier), (False, LGBMRegressor)):
        model = default_learner(binary, random_state=3)
        assert isinstance(model, kind) and model.random_state == 3
        assert {k: model.get_params()[k] for k in LGBM_DEFAULTS} == LGBM_DEFAULTS
    # Which default each learner picks, fitted on one thread (two stall on a busy machine).
    monkeypatch.setitem(LGBM_DEFAULTS, "n_jobs", 1)
    few = small.X.iloc[:300], small.treatment[:300], small.y[:300]
    assert isinstance(SLearner().fit(*few).model_, LGBMClassifier)
    spend = few[2] * 100.0 + few[0]["x0"].to_numpy()
    assert all(isinstance(m, LGBMRegressor) for m in TLearner().fit(few[0], few[1], spend).models_)
    # The effect of a binary outcome is not binary: a classifier learner gets a LightGBM regressor.
    x_learner = XLearner(LogisticRegression(), propensity=0.5).fit(*few)
    assert all(isinstance(m, LGBMRegressor) for pair in x_learner.effect_models_ for m in pair)


def test_zero_sample_weight_is_the_same_as_leaving_rows_out():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2))
    t = np.where(rng.random(400) < 0.5, "offer", "control")
    y = x[:, 0] + (t == "offer") * (1 + x[:, 1]) + rng.normal(size=400)
    w = (rng.random(400) < 0.7).astype(float)
    keep = w > 0
    for model in (
        TLearner(LinearRegression()),
        XLearner(LinearRegression()),  # the default propensity pipeline takes the weights too
    ):
        weighted = clone(model).fit(x, t, y, sample_weight=w).predict(x)
        dropped = clone(model).fit(x[keep], t[keep], y[keep]).predict(x)
        np.testing.assert_allclose(weighted, dropped, atol=1e-6)


def _bad(**changes):
    """Small valid inputs with some replaced."""
    rng = np.random.default_rng(2)
    data = {
        "X": rng.normal(size=(40, 2)),
        "treatment": np.array(["control", "offer"] * 20, dtype=object),
        "y": np.array([0, 0, 1, 1] * 10),
        "sample_weight": None,
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("learner", "data", "error", "pattern"),
    [
        (
            TLearner(LogisticRegression()),
            _bad(treatment=["control", "offer"] * 19),
            ValidationError,
            "one label per row of X .40.",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(y=[0, 1] * 19),
            ValidationError,
            "y has 38 rows but X has 40",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(y=[0, 1, np.nan, 1] * 10),
            ValidationError,
            "y has 10 missing",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(treatment=["holdout", "offer"] * 20),
            ValidationError,
            "no row labelled with the control value 'control'",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(treatment=["control"] * 40),
            ValidationError,
            "only control rows",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(treatment=["control", "offer"] * 19 + ["control", "rare"]),
            ValidationError,
            "treatment 'rare' has 1 rows",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(treatment=["control", None] * 20),
            ValidationError,
            "treatment is missing at row 1",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(treatment=["control", "offer", 1, "offer"] * 10),
            ValidationError,
            "one type",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(y=[0, 2] * 20),
            ValidationError,
            "y must hold only 0 and 1",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(y=[0, 0, 0, 1] * 10),
            ValidationError,
            "y is always 0 among rows with treatment 'control'",
        ),
        (
            SLearner(LogisticRegression()),
            _bad(y=[0] * 40),
            ValidationError,
            "y is always 0 in every row",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(sample_weight=[-1.0] * 40),
            ValidationError,
            "sample_weight must be non-negative",
        ),
        (
            TLearner(LogisticRegression()),
            _bad(sample_weight=[1.0] * 39),
            ValidationError,
            "sample_weight has 39 rows",
        ),
        (TLearner(LogisticRegression()), _bad(X=np.ones(40)), ValueError, "2D array"),
        (
            SLearner("lightgbm"),
            _bad(),
            ConfigError,
            "The 'learner' parameter of SLearner must be None or an estimator",
        ),
        (
            TLearner(LogisticRegression(), random_state="x"),
            _bad(),
            ConfigError,
            "'random_state' parameter",
        ),
        (
            XLearner(propensity_clip=0.6),
            _bad(),
            ConfigError,
            "'propensity_clip' parameter of XLearner",
        ),
        (XLearner(propensity_learner=LinearRegression()), _bad(), ConfigError, "predict_proba"),
        (
            XLearner(LogisticRegression(), propensity={"other": 0.5}),
            _bad(),
            ConfigError,
            r"a dict with keys \['offer'\]",
        ),
        (XLearner(LogisticRegression(), propensity=1.0), _bad(), ConfigError, "leaving a share"),
        (
            DRLearner(LogisticRegression(), propensity="0.5"),
            _bad(),
            ConfigError,
            "'propensity' parameter",
        ),
        (
            DRLearner(LogisticRegression(), cv=1),
            _bad(),
            ConfigError,
            "'cv' parameter of DRLearner must be an int >= 2",
        ),
        (DRLearner(LogisticRegression(), cv=30), _bad(), ValidationError, "at least 30"),
    ],
)
def test_bad_input_is_named(learner, data, error, pattern):
    X, treatment, y, w = data["X"], data["treatment"], data["y"], data["sample_weight"]
    with pytest.raises(error, match=pattern):
        clone(learner).fit(X, treatment, y, sample_weight=w)
