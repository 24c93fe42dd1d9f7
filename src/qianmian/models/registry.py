"""Versioned models with their provenance, under ``<workspace>/models/registry/<name>/v<N>/``.

Every trained model is registered with a :class:`ModelCard`: version (1, 2, ... per name),
training window and as-of date, the ordered feature list with its types and their
:func:`schema_hash`, metrics, parameters, the Python and package versions, and the sha256 of the
artifact. A version folder holds ``card.json`` and either ``model.joblib`` (joblib, as
scikit-learn recommends) or, for models that persist themselves (PyTorch), a ``model/`` folder
written by their ``save(path)`` and read by their ``load(path)`` class method.

Stages (candidate → production → archived) live in ``<name>/stages.json``, one file replaced in a
single atomic rename, so promoting a version and archiving the previous one can never be seen
half done; ``card.json`` itself never changes after registration.

Safety::

    registry = ModelRegistry.for_workspace("qianmian-workspace")
    card = registry.register(model, name="churn", kind="churn", features=names,
                             training_window=("2025-08-01", "2026-08-01"), metrics={"auc": 0.81})
    registry.promote("churn", card.version)
    model, card = registry.load("churn", expect_schema=catalogue_schema(names))

- a version is written to a temporary folder and renamed into place, so a crash never leaves a
  half model; version numbers and stage changes are taken under a per-name file lock, so
  concurrent registrations and promotions (threads or processes) stay consistent;
- loading refuses (:class:`~qianmian.errors.ModelCompatibilityError`) a model whose feature
  schema differs from the caller's (naming the features that differ), whose artifact no longer
  matches its checksum, or that was saved with another major version of scikit-learn, LightGBM or
  PyTorch than the one installed.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib
import importlib.metadata
import json
import logging
import os
import pickle
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import joblib
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from qianmian.errors import (
    ModelCompatibilityError,
    NotFoundError,
    ValidationError,
    invalid_parameter,
)
from qianmian.models.registry_schema import (
    catalogue_schema,
    dtype_kind,
    schema_diff,
    schema_hash,
)

__all__ = [
    "ModelCard",
    "ModelRegistry",
    "SavableModel",
    "StageChange",
    "TrainingWindow",
    "catalogue_schema",
    "dtype_kind",
    "registry_dir",
    "schema_diff",
    "schema_hash",
]

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
MODEL_DIR = "model"
CARD_FILE = "card.json"
STAGES_FILE = "stages.json"
LOCK_FILE = ".lock"
#: Libraries whose pickles are only readable by the same major version.
MAJOR_CHECKED = ("scikit-learn", "lightgbm", "torch")
#: Versions recorded on every card (those installed).
RECORDED_PACKAGES = ("qianmian", "numpy", "pandas", "scikit-learn", "lightgbm", "torch", "joblib")
_DISTRIBUTION = {"sklearn": "scikit-learn", "lightgbm": "lightgbm", "torch": "torch"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

Stage = Literal["candidate", "production", "archived"]
VersionRef = int | Literal["latest", "production"] | None


@runtime_checkable
class SavableModel(Protocol):
    """A model that persists itself (e.g. a PyTorch wrapper) instead of being pickled by joblib.

    ``save(path)`` writes into an existing empty folder; ``load(path)``, a class method, returns
    the model from it.
    """

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Any: ...


class TrainingWindow(BaseModel):
    """The period of data the model was trained on: ``start`` to ``end`` (dates, end inclusive)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: date
    end: date


class StageChange(BaseModel):
    """One stage a version entered, and when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    stage: Stage
    at: datetime
    note: str = ""


class ModelCard(BaseModel):
    """What a registered model is, what it was trained on, how well it did and with what."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    name: str
    kind: str = Field(description="propensity, churn, ltv, uplift, forecast, recommend, ...")
    version: int = Field(ge=1)
    created_at: datetime
    training_window: TrainingWindow
    as_of: date
    features: list[str]
    feature_types: dict[str, str] = Field(description="feature → type, in feature order")
    schema_hash: str
    target: str = Field("", description="what the label is, e.g. 'applied within 30 days'")
    metrics: dict[str, float]
    key_metric: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    python_version: str
    packages: dict[str, str]
    requires: list[str] = Field(
        default_factory=list, description="packages the artifact needs (major version checked)"
    )
    artifact: Literal["joblib", "custom"]
    model_class: str = Field(description="'module:QualName' of the saved object")
    artifact_sha256: str
    stage: Stage = "candidate"
    stage_history: list[StageChange] = Field(default_factory=list)

    @property
    def label(self) -> str:
        """``name v<N>``, as messages print it."""
        return f"{self.name} v{self.version}"

    @property
    def key_metric_value(self) -> float | None:
        return self.metrics.get(self.key_metric) if self.key_metric else None


def registry_dir(workspace: Path | str) -> Path:
    """Where a workspace keeps its registered models."""
    return Path(workspace) / "models" / "registry"


class ModelRegistry:
    """Registered models in a folder (see the module docstring for the layout and guarantees).

    Parameters
    ----------
    root : path
        The registry folder, usually :func:`registry_dir` of the workspace.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @classmethod
    def for_workspace(cls, workspace: Path | str) -> ModelRegistry:
        return cls(registry_dir(workspace))

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # ----------------------------------------------------------------------------- reading
    def names(self) -> builtins.list[str]:
        """Names with at least one registered version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self._versions(p.name))

    def versions(self, name: str) -> builtins.list[int]:
        """Registered versions of ``name``, ascending; an unknown name is a NotFoundError."""
        found = self._versions(name)
        if not found:
            known = ", ".join(self.names()) or "(none)"
            raise NotFoundError(
                f"There is no model '{name}' in the registry {self.root}. Registered: {known}."
            )
        return found

    def list(self, name: str | None = None) -> builtins.list[ModelCard]:
        """Cards of every version (of ``name`` only, if given), by name then version."""
        names = [name] if name is not None else self.names()
        cards: builtins.list[ModelCard] = []
        for n in names:
            stages = self._read_stages(n)
            cards += [self._read_card(n, v, stages) for v in self.versions(n)]
        return cards

    def card(self, name: str, version: VersionRef = None) -> ModelCard:
        """The card of one version.

        ``version`` is a number, ``"latest"``, ``"production"``, or None: the production
        version if one was promoted, else the latest.
        """
        stages = self._read_stages(name)
        return self._read_card(name, self._resolve(name, version, stages), stages)

    def production(self, name: str) -> int | None:
        """The version of ``name`` in production, or None."""
        stages = self._read_stages(name)
        return next((int(v) for v, s in stages["stages"].items() if s == "production"), None)

    # ----------------------------------------------------------------------------- writing
    def register(
        self,
        model: Any,
        *,
        name: str,
        kind: str,
        features: Sequence[str],
        training_window: TrainingWindow | tuple[date | str, date | str],
        metrics: Mapping[str, float],
        schema: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
        dtypes: Mapping[str, Any] | pd.Series | None = None,
        target: str = "",
        params: Mapping[str, Any] | None = None,
        as_of: date | str | None = None,
        key_metric: str | None = None,
        requires: Iterable[str] = (),
        description: str = "",
    ) -> ModelCard:
        """Save a trained model as the next version of ``name`` (stage ``candidate``).

        Parameters
        ----------
        model : object
            A fitted estimator (saved with joblib), or a :class:`SavableModel`.
        name : str
            Letters, digits, ``_ . -``; versions are numbered per name.
        kind : str
            ``propensity``, ``churn``, ``ltv``, ``uplift``, ``forecast``, ``recommend``, ...
        features : sequence of str
            The model's input columns, in order.
        training_window : (start, end)
            Dates (or ISO strings) of the training data.
        metrics : mapping of str to float
            Finite numbers (hold-out AUC, Qini, RMSE, ...).
        schema : pairs of (feature, type), optional
            Default :func:`catalogue_schema` of ``features`` (with ``dtypes`` for columns outside
            the feature catalogue).
        dtypes : mapping, optional
            Column → dtype for non-catalogue features, e.g. ``training_frame.dtypes``.
        target : str
            What the label means.
        params : mapping, optional
            Default the estimator's ``get_params(deep=False)``.
        as_of : date, optional
            As-of date of the training features; default the window's end.
        key_metric : str, optional
            The metric listings show; default the first of ``metrics``.
        requires : iterable of str
            Extra packages whose major version must match on load (those found in the
            artifact are added).
        description : str

        Returns
        -------
        ModelCard
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise invalid_parameter(
                "ModelRegistry.register", "name", "letters, digits, '_', '.' or '-'", name
            )
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise invalid_parameter(
                "ModelRegistry.register", "kind", "a lowercase word such as 'churn'", kind
            )
        names = [str(f) for f in features]
        if not names or len(set(names)) != len(names):
            raise invalid_parameter(
                "ModelRegistry.register", "features", "a non-empty list of distinct names", names
            )
        pairs = _pairs(schema) if schema is not None else catalogue_schema(names, dtypes)
        if [n for n, _ in pairs] != names:
            raise ValidationError(
                f"The schema given for model '{name}' lists {[n for n, _ in pairs]}, not the "
                f"features {names} in that order; pass one (name, type) pair per feature."
            )
        window = _window(training_window)
        scores = _metrics(metrics)
        if key_metric is not None and key_metric not in scores:
            raise invalid_parameter(
                "ModelRegistry.register", "key_metric", f"one of {sorted(scores)}", key_metric
            )
        fmt: Literal["joblib", "custom"] = "custom" if isinstance(model, SavableModel) else "joblib"
        if fmt == "custom" and "<locals>" in type(model).__qualname__:
            raise ValidationError(
                f"{type(model).__qualname__} saves itself, so load() must find its class by "
                "name; define it at module level."
            )
        needed = sorted(set(_required_packages(model, fmt)) | set(requires))
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
        try:
            sha = _write_artifact(model, tmp, fmt)
            with self._lock(name):
                version = max(self._versions(name), default=0) + 1
                now = datetime.now(UTC)
                card = ModelCard(
                    name=name,
                    kind=kind,
                    version=version,
                    created_at=now,
                    training_window=window,
                    as_of=_date("as_of", as_of) if as_of is not None else window.end,
                    features=names,
                    feature_types=dict(pairs),
                    schema_hash=schema_hash(pairs),
                    target=target,
                    metrics=scores,
                    key_metric=key_metric or next(iter(scores), None),
                    params=_jsonable(dict(params) if params is not None else _params_of(model)),
                    description=description,
                    python_version=platform.python_version(),
                    packages=_installed_packages(),
                    requires=needed,
                    artifact=fmt,
                    model_class=f"{type(model).__module__}:{type(model).__qualname__}",
                    artifact_sha256=sha,
                )
                _write_json(tmp / CARD_FILE, card.model_dump(mode="json", exclude=_STAGE_FIELDS))
                os.rename(tmp, folder / f"v{version}")
                self._change_stages(name, {version: ("candidate", "registered")}, now)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("registered model %s v%d (%s) in %s", name, version, fmt, folder)
        return self.card(name, version)

    def promote(self, name: str, version: int) -> ModelCard:
        """Put ``version`` of ``name`` in production; the version there before is archived.

        Both changes land in one atomic write under the name's lock, so there is never more than
        one production version, even with concurrent callers. Promoting the production version
        again changes nothing; promoting an archived one rolls back to it.
        """
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise invalid_parameter("ModelRegistry.promote", "version", "a positive int", version)
        with self._lock(name):
            versions = self.versions(name)
            if version not in versions:
                raise NotFoundError(
                    f"Model '{name}' has no version {version}; registered versions: "
                    f"{', '.join(map(str, versions))}."
                )
            current = self.production(name)
            if current != version:
                changes: dict[int, tuple[Stage, str]] = {}
                if current is not None:
                    changes[current] = ("archived", f"replaced by v{version}")
                changes[version] = (
                    "production",
                    f"replaces v{current}" if current is not None else "first in production",
                )
                self._change_stages(name, changes, datetime.now(UTC))
                logger.info("promoted model %s v%d (archived v%s)", name, version, current)
        return self.card(name, version)

    # ----------------------------------------------------------------------------- loading
    def load(
        self,
        name: str,
        version: VersionRef = "production",
        *,
        expect_schema_hash: str | None = None,
        expect_schema: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
    ) -> tuple[Any, ModelCard]:
        """Load a registered model after checking it can be used here.

        Parameters
        ----------
        name : str
        version : int, "production", "latest" or None
        expect_schema_hash : str, optional
            :func:`schema_hash` of the features the caller will pass.
        expect_schema : pairs of (feature, type), optional
            The caller's schema itself; a mismatch then names the features that differ.

        Returns
        -------
        (model, ModelCard)

        Raises
        ------
        NotFoundError
            No such model or version (or none in production).
        ModelCompatibilityError
            Feature schema, artifact checksum or a library's major version differs.
        """
        card = self.card(name, version)
        caller: list[tuple[str, str]] | None = None
        expected = expect_schema_hash
        if expect_schema is not None:
            caller = _pairs(expect_schema)
            if expected is not None and expected != schema_hash(caller):
                raise ValidationError(
                    "expect_schema_hash and expect_schema disagree; pass one of them."
                )
            expected = schema_hash(caller)
        if expected is not None and expected != card.schema_hash:
            raise ModelCompatibilityError(self._schema_message(card, expected, caller))
        folder = self.root / name / f"v{card.version}"
        found = _artifact_sha256(folder, card.artifact)
        if found != card.artifact_sha256:
            raise ModelCompatibilityError(
                f"The artifact of model {card.label} in {folder} does not match the checksum "
                f"recorded at registration (sha256 {card.artifact_sha256[:12]}…, found "
                f"{found[:12] if found else 'no file'}…): it was altered or is corrupt. Restore "
                "it from a backup or retrain and register a new version."
            )
        _check_packages(card)
        if card.artifact == "joblib":
            model = joblib.load(folder / MODEL_FILE)
        else:
            module, _, qualname = card.model_class.partition(":")
            cls: Any = importlib.import_module(module)
            for part in qualname.split("."):
                cls = getattr(cls, part)
            model = cls.load(folder / MODEL_DIR)
        return model, card

    # ----------------------------------------------------------------------------- internals
    def _versions(self, name: str) -> builtins.list[int]:
        folder = self.root / name
        if not _NAME.match(name) or not folder.is_dir():
            return []
        return sorted(
            int(p.name[1:])
            for p in folder.iterdir()
            if re.fullmatch(r"v[1-9][0-9]*", p.name) and (p / CARD_FILE).is_file()
        )

    def _resolve(self, name: str, version: VersionRef, stages: dict[str, Any]) -> int:
        versions = self.versions(name)
        production = next((int(v) for v, s in stages["stages"].items() if s == "production"), None)
        if version == "production":
            if production is None:
                raise NotFoundError(
                    f"No version of model '{name}' is in production (versions: "
                    f"{', '.join(map(str, versions))}); promote one with "
                    f"`qianmian models promote {name} {versions[-1]}`."
                )
            return production
        if version is None:
            return production if production is not None else versions[-1]
        if version == "latest":
            return versions[-1]
        if isinstance(version, bool) or not isinstance(version, int) or version not in versions:
            raise NotFoundError(
                f"Model '{name}' has no version {version!r}; registered versions: "
                f"{', '.join(map(str, versions))}."
            )
        return version

    def _read_card(self, name: str, version: int, stages: dict[str, Any]) -> ModelCard:
        path = self.root / name / f"v{version}" / CARD_FILE
        try:
            card = ModelCard.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelCompatibilityError(
                f"The card of model {name} v{version} ({path}) cannot be read: {e}"
            ) from e
        history = [
            StageChange.model_validate(h) for h in stages["history"] if h["version"] == version
        ]
        return card.model_copy(
            update={
                "stage": stages["stages"].get(str(version), "candidate"),
                "stage_history": history,
            }
        )

    def _read_stages(self, name: str) -> dict[str, Any]:
        path = self.root / name / STAGES_FILE
        if not _NAME.match(name) or not path.is_file():
            return {"stages": {}, "history": []}
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def _change_stages(
        self, name: str, changes: Mapping[int, tuple[Stage, str]], at: datetime
    ) -> None:
        """Apply stage changes (version → stage, note) in one atomic replace, under the lock."""
        data = self._read_stages(name)
        for version, (stage, note) in changes.items():
            data["stages"][str(version)] = stage
            entry = StageChange(version=version, stage=stage, at=at, note=note)
            data["history"].append(entry.model_dump(mode="json"))
        _write_json(self.root / name / STAGES_FILE, data)

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """An exclusive lock on one model name, across threads and processes."""
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _schema_message(
        self, card: ModelCard, expected: str, caller: builtins.list[tuple[str, str]] | None
    ) -> str:
        head = (
            f"Model {card.label} was trained on features with schema hash "
            f"{card.schema_hash[:12]}…, but the caller expects {expected[:12]}…."
        )
        if caller is None:  # the caller gave a hash only: look for a card trained on it
            caller = next(
                (
                    list(c.feature_types.items())
                    for n in self.names()
                    for c in self.list(n)
                    if c.schema_hash == expected
                ),
                None,
            )
        if caller is None:
            shown = ", ".join(card.features[:15]) + (" …" if len(card.features) > 15 else "")
            detail = (
                f" The model reads {len(card.features)} features ({shown}); pass expect_schema "
                "to name the ones that differ."
            )
        else:
            detail = " Differences: " + "; ".join(schema_diff(card.feature_types, caller)) + "."
        return (
            f"{head}{detail} Build the features the model was trained on, or retrain it on "
            "the current ones and register a new version."
        )


_STAGE_FIELDS = {"stage", "stage_history"}


def _pairs(schema: Sequence[tuple[str, str]] | Mapping[str, str]) -> list[tuple[str, str]]:
    items = schema.items() if isinstance(schema, Mapping) else schema
    try:
        pairs = [(str(n), str(t)) for n, t in items]
    except (TypeError, ValueError) as e:
        raise ValidationError(
            f"A feature schema must be (name, type) pairs or a name → type mapping: {e}"
        ) from e
    schema_hash(pairs)  # validates names
    return pairs


def _date(field: str, value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise invalid_parameter(
            "ModelRegistry.register", field, "a date like 2026-08-01", value
        ) from None


def _window(value: TrainingWindow | tuple[date | str, date | str]) -> TrainingWindow:
    if isinstance(value, TrainingWindow):
        window = value
    else:
        try:
            start, end = value
        except (TypeError, ValueError):
            raise invalid_parameter(
                "ModelRegistry.register", "training_window", "a (start, end) pair of dates", value
            ) from None
        window = TrainingWindow(
            start=_date("training_window", start), end=_date("training_window", end)
        )
    if window.start > window.end:
        raise invalid_parameter(
            "ModelRegistry.register",
            "training_window",
            "a (start, end) pair with start <= end",
            (str(window.start), str(window.end)),
        )
    return window


def _metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if number != number or number in (float("inf"), float("-inf")):
            raise ValidationError(
                f"The metric '{key}' must be a finite number. Got {value!r} instead."
            )
        out[str(key)] = number
    if not out:
        raise ValidationError("A model needs at least one metric (e.g. its hold-out AUC).")
    return out


def _params_of(model: Any) -> dict[str, Any]:
    get_params = getattr(model, "get_params", None)
    return dict(get_params(deep=False)) if callable(get_params) else {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy scalars
    if isinstance(value, float) and value != value:
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed_packages() -> dict[str, str]:
    found = {d: _installed_version(d) for d in RECORDED_PACKAGES}
    return {d: v for d, v in found.items() if v is not None}


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


class _ModuleRecorder(pickle.Pickler):
    """Pickles into nothing, noting the top-level package of every object's type."""

    def __init__(self) -> None:
        super().__init__(_Discard(), protocol=pickle.HIGHEST_PROTOCOL)
        self.roots: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        module = obj.__module__ if isinstance(obj, type) else type(obj).__module__
        self.roots.add(str(module).split(".")[0])
        return NotImplemented


def _required_packages(model: Any, fmt: str) -> list[str]:
    """The checked libraries the saved artifact depends on."""
    if fmt == "joblib":
        recorder = _ModuleRecorder()
        try:
            recorder.dump(model)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            raise ValidationError(
                f"The model {type(model).__name__} cannot be pickled ({e}); give it "
                "save(path) and a load(path) class method to persist it itself."
            ) from e
        roots = recorder.roots
    else:  # a self-saving model: its class and the objects it holds directly
        roots = {c.__module__.split(".")[0] for c in type(model).__mro__}
        roots |= {type(v).__module__.split(".")[0] for v in vars(model).values()}
    return sorted({_DISTRIBUTION[r] for r in roots if r in _DISTRIBUTION})


def _write_artifact(model: Any, folder: Path, fmt: str) -> str:
    if fmt == "joblib":
        joblib.dump(model, folder / MODEL_FILE)
    else:
        (folder / MODEL_DIR).mkdir()
        model.save(folder / MODEL_DIR)
        if not any((folder / MODEL_DIR).rglob("*")):
            raise ValidationError(
                f"{type(model).__name__}.save(path) wrote nothing into {folder / MODEL_DIR}."
            )
    for path in folder.rglob("*"):  # on disk before the folder is renamed into place
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
    return _artifact_sha256(folder, fmt)


def _artifact_sha256(folder: Path, fmt: str) -> str:
    """sha256 of ``model.joblib``, or of every file (path and content) under ``model/``."""
    if fmt == "joblib":
        path = folder / MODEL_FILE
        if not path.is_file():
            return ""
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    root = folder / MODEL_DIR
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest() if root.is_dir() else ""


def _check_packages(card: ModelCard) -> None:
    for dist in card.requires:
        saved = card.packages.get(dist)
        now = _installed_version(dist)
        if saved is None:
            continue
        if now is None:
            raise ModelCompatibilityError(
                f"Model {card.label} needs {dist} (saved with {saved}), which is not installed; "
                f"install {dist} {saved.split('.')[0]}.x, or retrain the model and register it "
                "again."
            )
        if dist in MAJOR_CHECKED and saved.split(".")[0] != now.split(".")[0]:
            raise ModelCompatibilityError(
                f"Model {card.label} was saved with {dist} {saved}, but {dist} {now} is "
                f"installed (another major version). Retrain it with {dist} {now} and register "
                f"the new version, or install {dist}=={saved} to load this one."
            )
        if saved != now:
            logger.warning(
                "model %s was saved with %s %s; %s is installed", card.label, dist, saved, now
            )


def _write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a temporary file in the same folder, then a rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
