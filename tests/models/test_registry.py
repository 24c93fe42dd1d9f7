"""The model registry: versions, provenance, stages, and refusing models that do not fit."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import date
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression

from qianmian.errors import ConfigError, ModelCompatibilityError, NotFoundError, ValidationError
from qianmian.models.registry import (
    ModelRegistry,
    catalogue_schema,
    dtype_kind,
    registry_dir,
    schema_hash,
)

WINDOW = ("2025-08-01", "2026-07-31")
#: two catalogue features and one column of the bank's own data
FEATURES = ["recency_days", "tenure_days", "branch_score"]


def _data(seed: int = 0, n: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 365, n),
            "tenure_days": rng.integers(30, 3000, n),
            "branch_score": rng.normal(size=n),
        }
    )
    y = (x["branch_score"] + rng.normal(scale=0.5, size=n) > 0).astype(int).to_numpy()
    return x, y


def _register(registry: ModelRegistry, seed: int = 0, name: str = "churn", **kw):
    x, y = _data(seed)
    model = LogisticRegression(C=0.5 + seed, max_iter=200).fit(x, y)
    kw.setdefault("metrics", {"auc": 0.7 + seed / 100, "logloss": 0.5})
    card = registry.register(
        model,
        name=name,
        kind="churn",
        features=FEATURES,
        dtypes=x.dtypes,
        training_window=WINDOW,
        target="closes the card within 90 days",
        **kw,
    )
    return model, card


@pytest.fixture()
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry.for_workspace(tmp_path)


def test_round_trip_predicts_the_same_and_records_provenance(registry, tmp_path):
    model, card = _register(registry)
    x, _ = _data(seed=7)
    loaded, loaded_card = registry.load("churn", "latest")
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded_card == card

    folder = registry_dir(tmp_path) / "churn" / "v1"
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "model.joblib"]
    assert (
        card.artifact_sha256 == hashlib.sha256((folder / "model.joblib").read_bytes()).hexdigest()
    )
    assert (card.version, card.kind, card.stage, card.artifact) == (
        1,
        "churn",
        "candidate",
        "joblib",
    )
    assert card.training_window.start == date(2025, 8, 1) and card.as_of == date(2026, 7, 31)
    assert card.feature_types == {
        "recency_days": "int",
        "tenure_days": "int",
        "branch_score": "float",
    }
    assert card.schema_hash == schema_hash(catalogue_schema(FEATURES, x.dtypes))
    assert card.metrics == {"auc": 0.7, "logloss": 0.5} and card.key_metric == "auc"
    assert card.params["C"] == 0.5 and card.params["max_iter"] == 200
    assert {"qianmian", "numpy", "pandas", "scikit-learn", "lightgbm", "torch"} <= set(
        card.packages
    )
    assert card.packages["scikit-learn"] == __import__("sklearn").__version__
    assert card.requires == ["scikit-learn"]
    assert card.python_version.count(".") == 2
    assert card.model_class == "sklearn.linear_model._logistic:LogisticRegression"
    assert [h.stage for h in card.stage_history] == ["candidate"]
    on_disk = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    assert "stage" not in on_disk and on_disk["version"] == 1  # stages live in stages.json


def test_versions_increment_per_name(registry):
    cards = [_register(registry, seed=s)[1] for s in range(3)]
    _register(registry, name="ltv")
    assert [c.version for c in cards] == [1, 2, 3]
    assert registry.versions("churn") == [1, 2, 3] and registry.names() == ["churn", "ltv"]
    assert [(c.name, c.version) for c in registry.list()] == [
        ("churn", 1),
        ("churn", 2),
        ("churn", 3),
        ("ltv", 1),
    ]
    assert registry.card("churn").version == 3  # latest while nothing is in production
    first, _ = registry.load("churn", 1)
    assert first.C == 0.5


def test_one_production_version_at_a_time(registry):
    for s in range(3):
        _register(registry, seed=s)
    with pytest.raises(NotFoundError, match=r"No version of model 'churn' is in production"):
        registry.load("churn")
    assert registry.promote("churn", 1).stage == "production"
    card = registry.promote("churn", 3)
    assert card.stage == "production" and card.stage_history[-1].note == "replaces v1"
    assert [c.stage for c in registry.list("churn")] == ["archived", "candidate", "production"]
    assert registry.card("churn", 1).stage_history[-1].stage == "archived"
    model, loaded = registry.load("churn")
    assert loaded.version == 3 and model.C == 2.5
    assert registry.card("churn").version == 3  # production beats latest
    registry.promote("churn", 3)  # again: nothing changes
    assert len(registry.card("churn", 3).stage_history) == 2
    registry.promote("churn", 1)  # roll back
    assert [c.stage for c in registry.list("churn")] == ["production", "candidate", "archived"]


def test_promoting_a_missing_version_is_a_clear_error(registry):
    _register(registry)
    with pytest.raises(
        NotFoundError, match=r"Model 'churn' has no version 4; registered versions: 1\."
    ):
        registry.promote("churn", 4)
    with pytest.raises(NotFoundError, match=r"There is no model 'nope' .* Registered: churn\."):
        registry.promote("nope", 1)
    with pytest.raises(ConfigError, match=r"The 'version' parameter .* must be a positive int"):
        registry.promote("churn", 0)


def _promote_many(root: str, versions: list[int]) -> None:
    registry = ModelRegistry(root)
    for v in versions:
        registry.promote("churn", v)


def _assert_one_production(registry: ModelRegistry) -> None:
    stages = [c.stage for c in registry.list("churn")]
    assert stages.count("production") == 1, stages
    # replaying the history gives the same single production version
    history = json.loads((registry.root / "churn" / "stages.json").read_text(encoding="utf-8"))
    live: set[int] = set()
    for entry in history["history"]:
        if entry["stage"] == "production":
            live.add(entry["version"])
        else:
            live.discard(entry["version"])
        assert len(live) <= 1, entry
    assert live == {registry.production("churn")}


def test_concurrent_promotions_from_threads_leave_one_production(registry):
    for s in range(4):
        _register(registry, seed=s)
    rng = np.random.default_rng(5)
    plans = [rng.integers(1, 5, 15).tolist() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: _promote_many(str(registry.root), p), plans))
    _assert_one_production(registry)


def test_concurrent_promotions_from_processes_leave_one_production(registry):
    for s in range(3):
        _register(registry, seed=s)
    versions = [1, 2, 3] * 10
    # the bound method pickles as the registry (its root) plus the method name
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        cards = list(pool.map(registry.promote, ["churn"] * len(versions), versions))
    assert [c.version for c in cards] == versions
    _assert_one_production(registry)


def test_concurrent_registrations_get_distinct_versions(registry):
    barrier = threading.Barrier(4)

    def register(seed: int) -> int:
        barrier.wait()
        return _register(registry, seed=seed)[1].version

    with ThreadPoolExecutor(4) as pool:
        versions = sorted(pool.map(register, range(4)))
    assert versions == [1, 2, 3, 4] and registry.versions("churn") == [1, 2, 3, 4]


def test_a_mismatched_schema_is_refused_naming_the_features(registry):
    _register(registry)
    x, _ = _data()
    caller = [("recency_days", "float"), ("tenure_days", "int"), ("card_count", "int")]
    with pytest.raises(ModelCompatibilityError) as err:
        registry.load("churn", 1, expect_schema=caller)
    message = str(err.value)
    assert "Model churn v1" in message
    assert schema_hash(catalogue_schema(FEATURES, x.dtypes))[:12] in message
    assert schema_hash(caller)[:12] in message
    assert "the caller lacks branch_score" in message
    assert "the caller adds card_count" in message
    assert "types differ for recency_days (model 'int', caller 'float')" in message
    # reordered features are a different schema too
    with pytest.raises(ModelCompatibilityError, match="another order"):
        registry.load(
            "churn", 1, expect_schema=list(reversed(catalogue_schema(FEATURES, x.dtypes)))
        )
    # the right schema (as pairs or as its hash) loads
    registry.load("churn", 1, expect_schema=catalogue_schema(FEATURES, x.dtypes))
    registry.load("churn", 1, expect_schema_hash=registry.card("churn", 1).schema_hash)


def test_a_hash_only_mismatch_names_features_when_the_registry_knows_the_schema(registry):
    _register(registry)
    x, y = _data()
    other = LogisticRegression().fit(x[["recency_days", "tenure_days"]], y)
    card = registry.register(
        other,
        name="churn",
        kind="churn",
        features=["recency_days", "tenure_days"],
        training_window=WINDOW,
        metrics={"auc": 0.6},
    )
    with pytest.raises(ModelCompatibilityError, match="the caller lacks branch_score"):
        registry.load("churn", 1, expect_schema_hash=card.schema_hash)
    with pytest.raises(ModelCompatibilityError, match="pass expect_schema to name the ones"):
        registry.load("churn", 1, expect_schema_hash="0" * 64)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "delete"])
def test_a_corrupted_artifact_is_refused(registry, damage):
    _register(registry)
    path = registry.root / "churn" / "v1" / "model.joblib"
    data = path.read_bytes()
    if damage == "flip a byte":
        path.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.unlink()
    with pytest.raises(ModelCompatibilityError, match=r"churn v1 .* does not match the checksum"):
        registry.load("churn", 1)


def test_another_major_library_version_is_refused(registry):
    _register(registry)
    x, y = _data()
    registry.register(
        LGBMClassifier(n_estimators=5, n_jobs=1, verbose=-1).fit(x, y),
        name="propensity",
        kind="propensity",
        features=FEATURES,
        dtypes=x.dtypes,
        training_window=WINDOW,
        metrics={"auc": 0.8},
    )
    assert registry.card("propensity").requires == ["lightgbm", "scikit-learn"]
    for name, dist, old in (
        ("churn", "scikit-learn", "0.24.2"),
        ("propensity", "lightgbm", "3.3.5"),
    ):
        path = registry.root / name / "v1" / "card.json"
        card = json.loads(path.read_text(encoding="utf-8"))
        card["packages"][dist] = old
        path.write_text(json.dumps(card), encoding="utf-8")
        pattern = rf"Model {name} v1 was saved with {dist} {old}, but {dist} .* Retrain it"
        with pytest.raises(ModelCompatibilityError, match=pattern):
            registry.load(name, 1)


class TinyNet:
    """A self-saving PyTorch model, as forecasting models are."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.net = torch.nn.Linear(3, 1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.net(torch.as_tensor(x, dtype=torch.float32)).numpy().ravel()

    def save(self, path: Path) -> None:
        torch.save(self.net.state_dict(), path / "weights.pt")

    @classmethod
    def load(cls, path: Path) -> TinyNet:
        model = cls()
        model.net.load_state_dict(torch.load(path / "weights.pt", weights_only=True))
        return model


def test_a_self_saving_torch_model_round_trips(registry):
    model = TinyNet(seed=3)
    card = registry.register(
        model,
        name="need-forecast",
        kind="forecast",
        features=FEATURES,
        schema={"recency_days": "int", "tenure_days": "int", "branch_score": "float"},
        training_window=WINDOW,
        metrics={"rmse": 1.5},
    )
    assert card.artifact == "custom" and card.requires == ["torch"]
    assert (registry.root / "need-forecast" / "v1" / "model" / "weights.pt").is_file()
    loaded, _ = registry.load("need-forecast", 1)
    x = _data()[0].to_numpy()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    (registry.root / "need-forecast" / "v1" / "model" / "weights.pt").write_bytes(b"junk")
    with pytest.raises(ModelCompatibilityError, match="does not match the checksum"):
        registry.load("need-forecast", 1)


def test_a_crash_while_saving_leaves_no_half_model(registry, monkeypatch):
    _register(registry)

    def crash(model, path):
        Path(path).write_bytes(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(joblib, "dump", crash)
    with pytest.raises(OSError, match="disk full"):
        _register(registry, seed=1)
    assert registry.versions("churn") == [1]
    assert sorted(p.name for p in (registry.root / "churn").iterdir()) == [
        ".lock",
        "stages.json",
        "v1",
    ]
    monkeypatch.undo()
    assert _register(registry, seed=1)[1].version == 2


@pytest.mark.parametrize(
    ("change", "error", "pattern"),
    [
        ({"name": "my model"}, ConfigError, r"'name' parameter .* Got 'my model'"),
        ({"kind": "Churn"}, ConfigError, r"'kind' parameter .* lowercase word"),
        ({"features": ["a", "a"]}, ConfigError, r"'features' parameter .* distinct names"),
        ({"training_window": ("2026-08-01", "2026-01-01")}, ConfigError, "start <= end"),
        ({"training_window": ("last year", "2026-01-01")}, ConfigError, "a date like"),
        ({"metrics": {"auc": float("nan")}}, ValidationError, "'auc' must be a finite number"),
        ({"metrics": {}}, ValidationError, "at least one metric"),
        ({"key_metric": "qini"}, ConfigError, r"'key_metric' parameter .* one of \['auc'\]"),
        ({"schema": [("b", "float")]}, ValidationError, "not the features"),
        ({"features": ["recency_days", "no_such_col"]}, Exception, "no dtype was given"),
    ],
)
def test_bad_registrations_are_clear_errors(registry, change, error, pattern):
    x, y = _data()
    kwargs = {
        "name": "churn",
        "kind": "churn",
        "features": ["a"],
        "schema": [("a", "float")],
        "training_window": WINDOW,
        "metrics": {"auc": 0.7},
    }
    if "features" in change and "schema" not in change:
        kwargs.pop("schema")
    kwargs.update(change)
    with pytest.raises(error, match=pattern):
        registry.register(LogisticRegression().fit(x, y), **kwargs)
    assert registry.names() == []


def test_schema_hash_is_stable_and_order_sensitive():
    pairs = [("recency_days", "int"), ("monetary_30d", "float")]
    # a fixed value: the same schema hashes the same on every machine and release
    assert schema_hash(pairs) == schema_hash([list(p) for p in pairs])
    assert schema_hash(pairs).startswith("155bacad4d380484")
    assert schema_hash(pairs) != schema_hash(pairs[::-1])
    assert schema_hash(pairs) != schema_hash([("recency_days", "float"), pairs[1]])
    with pytest.raises(ValidationError, match="repeated a"):
        schema_hash([("a", "int"), ("a", "int")])


def test_catalogue_schema_takes_catalogue_types_then_dtypes():
    from qianmian.features.catalogue import feature

    frame = pd.DataFrame({"x": np.arange(3, dtype="int32"), "tier": ["a", "b", "c"]})
    schema = catalogue_schema(["recency_days", "x", "tier"], frame.dtypes)
    assert schema == [
        ("recency_days", feature("recency_days").type),
        ("x", "int"),
        ("tier", "string"),
    ]
    # int32 in training and int64 when scoring give the same schema
    assert schema_hash(schema) == schema_hash(
        catalogue_schema(["recency_days", "x", "tier"], frame.astype({"x": "int64"}).dtypes)
    )
    assert [dtype_kind(d) for d in ("Int64", "boolean", "category", "float")] == [
        "int",
        "bool",
        "category",
        "float",
    ]
