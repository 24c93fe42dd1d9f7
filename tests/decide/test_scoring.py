"""Model scorers for the decision engine: the fast path equals the model, failures give reasons."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from qianmian.config import load_settings
from qianmian.decide.configs import DecideConfig
from qianmian.decide.scoring import (
    Scores,
    ScoringUnavailable,
    UpliftModelScorer,
    load_scorer_or_reason,
)
from qianmian.decide.scoring_guard import GuardedScorer, circuit_breaker
from qianmian.errors import ConfigError, ValidationError
from qianmian.models.datasets import prepare_features
from qianmian.models.pipeline import register_trained
from qianmian.models.registry import ModelRegistry
from qianmian.models.train import TrainedModel, train_uplift
from qianmian.world import BANK_TABLES, World, WorldConfig
from small_bank import FAST_PARAMS

CHANNELS = ("app_push", "sms")


@pytest.fixture(scope="module")
def contacts(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Past contacts of a 1,500-customer bank over 8 months, with their features (~2 s)."""
    ws = tmp_path_factory.mktemp("scoring-world")
    world = World.generate(WorldConfig(customers=1_500, months=8, seed=5), ws, workers=1)
    with load_settings(ws).build_store() as store:
        for name in BANK_TABLES:
            store.load_parquet(name, world.table_paths(name), mode="replace")
        from qianmian.models.datasets import contact_training_set

        return contact_training_set(store)


@pytest.fixture(scope="module")
def trained(contacts: pd.DataFrame) -> dict[str, TrainedModel]:
    # train_uplift reads the store only when no data are given
    return {
        learner: train_uplift(None, learner=learner, data=contacts, base_params=FAST_PARAMS)  # type: ignore[arg-type]
        for learner in ("s", "t")
    }


@pytest.fixture()
def registry(tmp_path, trained) -> ModelRegistry:
    registry = ModelRegistry(tmp_path / "registry")
    for model in trained.values():
        card = register_trained(registry, model)
        registry.promote(card.name, card.version)
    return registry


def _candidates(contacts: pd.DataFrame) -> tuple[list[str], list[str]]:
    """30 candidates: 14 offers × 2 channels, one repeated pair, one offer never trained on."""
    offers = sorted(contacts["offer_id"].unique())[:14]
    offer_ids = [o for o in offers for _ in CHANNELS] + [offers[0], "OF-NEW"]
    channels = [c for _ in offers for c in CHANNELS] + [CHANNELS[0], "wechat"]
    return offer_ids, channels


def _feature_vector(row: pd.Series, names: Sequence[str], *, none_for_nan: bool) -> dict[str, Any]:
    """One customer's features as the online store gives them (missing as None or NaN)."""
    vector = {n: row[n] for n in names if n not in ("offer_id", "channel")}
    if none_for_nan:
        vector = {n: (None if pd.isna(v) else v) for n, v in vector.items()}
    return vector


def _model_outcomes(
    model: Any, row: pd.Series, features: list[str], offers: list[str], channels: list[str]
) -> np.ndarray:
    """The model's own predict_outcomes on the customer's row repeated per candidate."""
    frame = pd.DataFrame([row] * len(offers)).assign(offer_id=offers, channel=channels)
    return np.asarray(model.predict_outcomes(prepare_features(frame, features)))


@pytest.mark.parametrize("learner", ["s", "t"])
def test_scores_equal_the_models_own_predictions(registry, trained, contacts, learner):
    scorer = UpliftModelScorer.from_registry(registry, f"uplift-{learner}")
    assert scorer.fast is (learner == "s")
    offers, channels = _candidates(contacts)
    rows = trained[learner].test.sample(40, random_state=1)
    uplifts = []
    for k, (_, row) in enumerate(rows.iterrows()):
        vector = _feature_vector(row, scorer.card.features, none_for_nan=k % 2 == 0)
        scores = scorer.score(vector, offers, channels)
        mu = _model_outcomes(scorer.model, row, scorer.card.features, offers, channels)
        np.testing.assert_allclose(scores.p_response, mu[:, 1], rtol=0, atol=1e-9)
        np.testing.assert_allclose(scores.uplift, mu[:, 1] - mu[:, 0], rtol=0, atol=1e-9)
        assert scores.model_versions == {f"uplift-{learner}": 1}
        assert scores.unseen_offers == ("OF-NEW",)
        uplifts.append(scores.uplift)
    assert np.count_nonzero(np.concatenate(uplifts)) > 0  # the comparison covers real uplifts


def test_scoring_30_candidates_takes_well_under_two_ms(registry, trained, contacts):
    scorer = UpliftModelScorer.from_registry(registry)
    offers, channels = _candidates(contacts)
    vector = _feature_vector(trained["s"].test.iloc[0], scorer.card.features, none_for_nan=True)
    for _ in range(20):
        scorer.score(vector, offers, channels)
    times = []
    for _ in range(200):
        start = time.perf_counter()
        scorer.score(vector, offers, channels)
        times.append(time.perf_counter() - start)
    median_ms = float(np.median(times) * 1000)
    print(f"uplift-s scoring, 30 candidates: median {median_ms:.3f} ms")
    assert median_ms < 2.0


def test_no_candidates_give_empty_scores(registry):
    scores = UpliftModelScorer.from_registry(registry).score({}, [], [])
    assert scores.p_response.shape == (0,) and scores.uplift.shape == (0,)


@pytest.mark.parametrize(
    ("drop", "offers", "channels", "message"),
    [
        ("age", ["OF-WM-R1"], ["sms"], "lacks 1 model feature.*age"),
        (None, ["OF-WM-R1", "OF-WM-R2"], ["sms"], "2 offer ids but 1 channels"),
    ],
)
def test_bad_input_is_a_clear_error(registry, trained, drop, offers, channels, message):
    scorer = UpliftModelScorer.from_registry(registry)
    vector = _feature_vector(trained["s"].test.iloc[0], scorer.card.features, none_for_nan=True)
    vector.pop(drop, None)
    with pytest.raises(ValidationError, match=message):
        scorer.score(vector, offers, channels)


def _corrupt(registry: ModelRegistry) -> None:
    path = registry.root / "uplift-s" / "v1" / "model.joblib"
    path.write_bytes(path.read_bytes()[:-100] + b"\0" * 100)


def _register_non_uplift(registry: ModelRegistry) -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 0, 1])
    card = registry.register(
        model,
        name="uplift-x",
        kind="uplift",
        features=["age", "offer_id", "channel"],
        training_window=("2026-01-01", "2026-06-01"),
        metrics={"qini": 0.0},
        dtypes={"offer_id": "string", "channel": "string"},
    )
    registry.promote(card.name, card.version)


@pytest.mark.parametrize(
    ("name", "damage", "reason"),
    [
        (
            "uplift-nope",
            None,
            r"model uplift-nope is unavailable: NotFoundError: There is no model",
        ),
        ("uplift-s", _corrupt, r"ModelCompatibilityError: .*altered or is corrupt"),
        ("uplift-x", _register_non_uplift, r"not an uplift model of sent vs held-out contacts"),
    ],
)
def test_an_unusable_model_gives_none_and_the_reason(registry, name, damage, reason):
    if damage is not None:
        damage(registry)
    scorer, why = load_scorer_or_reason(registry, name)
    assert scorer is None
    assert why is not None and re.search(reason, why), why


def test_a_model_not_in_production_gives_the_reason(tmp_path, trained):
    registry = ModelRegistry(tmp_path / "registry")
    register_trained(registry, trained["s"])
    scorer, why = load_scorer_or_reason(registry, "uplift-s")
    assert scorer is None and "No version of model 'uplift-s' is in production" in str(why)
    scorer, why = load_scorer_or_reason(registry, "uplift-s", "latest")
    assert isinstance(scorer, UpliftModelScorer) and why is None


# -- the guard -------------------------------------------------------------------------------


class FakeScorer:
    """Answers after ``delay`` seconds (or when ``release`` is set), or raises when ``fail``."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.release: threading.Event | None = None

    def score(
        self, features: Mapping[str, Any], offer_ids: Sequence[str], channels: Sequence[str]
    ) -> Scores:
        self.calls += 1
        if self.release is not None:
            self.release.wait(timeout=5)
        if self.fail:
            raise ValueError("the booster is corrupt")
        n = len(offer_ids)
        return Scores(np.full(n, 0.1), np.full(n, 0.02), {"fake": 1})


@pytest.fixture()
def fake() -> Iterator[FakeScorer]:
    scorer = FakeScorer()
    yield scorer
    if scorer.release is not None:
        scorer.release.set()  # free the worker threads of abandoned calls


def _guard(scorer: FakeScorer, budget_ms: float = 200, failures: int = 3, reset: float = 0.3):
    return GuardedScorer(scorer, budget_ms, failures=failures, reset_seconds=reset)


def test_a_healthy_model_answers_through_the_guard(fake):
    with _guard(fake) as guard:
        scores = guard.score({}, ["OF-A"], ["sms"])
    assert scores.p_response.tolist() == [0.1] and guard.state == "closed"


def test_the_breaker_opens_after_n_failures_and_recovers_after_reset(fake):
    fake.fail = True
    with _guard(fake, failures=3, reset=0.3) as guard:
        for i in range(3):
            with pytest.raises(ScoringUnavailable) as raised:
                guard.score({}, ["OF-A"], ["sms"])
            assert raised.value.reason.startswith("model raised ValueError: the booster is corrupt")
            assert ("circuit open after 3" in raised.value.reason) is (i == 2)
        assert guard.state == "open" and fake.calls == 3
        with pytest.raises(ScoringUnavailable, match=r"^circuit open after 3 consecutive model "):
            guard.score({}, ["OF-A"], ["sms"])
        assert re.search(r"retrying at \d\d:\d\d:\d\d", guard._open_reason())
        assert fake.calls == 3  # an open circuit does not touch the model
        time.sleep(0.35)
        fake.fail = False
        assert guard.score({}, ["OF-A"], ["sms"]).p_response.tolist() == [0.1]
        assert guard.state == "closed" and fake.calls == 4


def test_a_failed_trial_opens_the_circuit_again(fake):
    fake.fail = True
    with _guard(fake, failures=2, reset=0.2) as guard:
        for _ in range(2):
            with pytest.raises(ScoringUnavailable):
                guard.score({}, ["OF-A"], ["sms"])
        time.sleep(0.25)
        with pytest.raises(ScoringUnavailable, match=r"model raised ValueError.*circuit open"):
            guard.score({}, ["OF-A"], ["sms"])  # the trial call fails
        assert guard.state == "open" and fake.calls == 3
        with pytest.raises(ScoringUnavailable, match=r"^circuit open"):
            guard.score({}, ["OF-A"], ["sms"])
        assert fake.calls == 3


def test_a_slow_model_is_abandoned_at_the_budget(fake):
    fake.release = threading.Event()  # hangs until released (at most 5 s)
    with _guard(fake, budget_ms=30, failures=5) as guard:
        start = time.perf_counter()
        with pytest.raises(ScoringUnavailable) as raised:
            guard.score({}, ["OF-A"], ["sms"])
        elapsed_ms = (time.perf_counter() - start) * 1000
        assert elapsed_ms < 30 + 100, elapsed_ms
        assert re.fullmatch(
            r"model took more than \d+ ms > budget 30 ms \(the request stopped waiting\)",
            raised.value.reason,
        ), raised.value.reason
        # the hung call holds one worker; the next request still gets an answer
        fake.release.set()
        assert guard.score({}, ["OF-A"], ["sms"]).p_response.tolist() == [0.1]
        assert guard.state == "closed"


def test_time_outs_count_towards_opening_the_circuit(fake):
    fake.release = threading.Event()
    with _guard(fake, budget_ms=10, failures=2, reset=30) as guard:
        for _ in range(2):
            with pytest.raises(ScoringUnavailable, match="budget 10 ms"):
                guard.score({}, ["OF-A"], ["sms"])
        assert guard.state == "open"
        calls = fake.calls
        with pytest.raises(ScoringUnavailable, match=r"^circuit open after 2 consecutive"):
            guard.score({}, ["OF-A"], ["sms"])
        assert fake.calls == calls


def test_the_guard_takes_budget_and_breaker_from_the_decide_config(fake):
    config = DecideConfig(model_budget_ms=25, breaker_failures=7, breaker_reset_seconds=12)
    with GuardedScorer.from_config(fake, config) as guard:
        assert guard.budget_ms == 25
        assert guard.breaker.fail_max == 7 and guard.breaker.reset_timeout == 12


def test_a_given_breaker_is_used(fake):
    breaker = circuit_breaker(failures=1, reset_seconds=60)
    fake.fail = True
    with GuardedScorer(fake, 100, breaker) as guard:
        with pytest.raises(ScoringUnavailable, match="circuit open after 1 consecutive"):
            guard.score({}, ["OF-A"], ["sms"])
        assert breaker.current_state == "open"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: GuardedScorer(s, 0), ConfigError, "'budget_ms' parameter of GuardedScorer"),
        (lambda s: GuardedScorer(s, -5), ConfigError, "'budget_ms'"),
        (lambda s: GuardedScorer(s, float("nan")), ConfigError, "'budget_ms'"),
        (lambda s: GuardedScorer(s, True), ConfigError, "'budget_ms'"),
        (lambda s: GuardedScorer(s, 10, failures=0), ConfigError, "'failures' parameter"),
        (lambda s: circuit_breaker(3, reset_seconds=0), ConfigError, "'reset_seconds' parameter"),
    ],
)
def test_bad_guard_parameters_are_refused(fake, call, error, message):
    with pytest.raises(error, match=message):
        call(fake)
