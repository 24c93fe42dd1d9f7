"""Saved segment models: ``<workspace>/models/segments/<version>/`` with the model and its provenance.

Each version folder holds ``model.joblib`` (the fitted :class:`CustomerSegmenter`, preparation and
KMeans steps included) and ``metadata.json``: the as-of date of the training features, the
feature list and their catalogue types, k and how it was chosen, silhouette, segment names and
sizes, a hash of the training data, and the qianmian, scikit-learn, numpy, pandas and Python
versions. The version id is ``seg-<as_of YYYYMMDD>-<8 hex>``, the hex a hash of the training data
and the parameters, so refitting the same data with the same parameters gives the same version
(and :func:`qianmian.features.segments.run_segmentation` reuses it instead of fitting again).

Loading refuses, with a :class:`~qianmian.errors.SchemaError` naming both sides, a model whose
feature list differs from the one asked for, whose features no longer exist in the catalogue
with the same type, or that was saved with another major version of scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

import qianmian
from qianmian.errors import NotFoundError, SchemaError
from qianmian.features.catalogue import FEATURES
from qianmian.features.segments_kmeans import CustomerSegmenter
from qianmian.features.segments_prepare import expand_features

__all__ = [
    "SegmentArtifact",
    "list_segment_versions",
    "load_segmenter",
    "save_segmenter",
    "segment_version",
    "segments_dir",
]

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class SegmentArtifact:
    """A saved segment model: its version id, folder and metadata."""

    version: str
    path: Path
    metadata: dict[str, Any]


def segments_dir(workspace: Path | str) -> Path:
    """Where a workspace keeps its segment models."""
    return Path(workspace) / "models" / "segments"


def _params(segmenter: CustomerSegmenter) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v if isinstance(v, int | str | None) else repr(v)
        for k, v in segmenter.get_params().items()
    }


def _input_columns(segmenter: CustomerSegmenter, frame: pd.DataFrame) -> list[str]:
    """Columns of ``frame`` that fitting ``segmenter`` (fitted or not) reads."""
    if segmenter.features is None:
        return [str(c) for c in frame.columns]
    return expand_features(segmenter.features)


def _fitted_columns(segmenter: CustomerSegmenter) -> list[str]:
    names = getattr(segmenter, "feature_names_in_", None)
    if names is not None:
        return [str(c) for c in names]
    return [f"x{i}" for i in range(segmenter.n_features_in_)]


def segment_version(segmenter: CustomerSegmenter, features: pd.DataFrame, as_of: datetime) -> str:
    """The version id of fitting ``segmenter`` (its parameters) on ``features``.

    A hash of the parameters, the customer ids and the feature values read; the same inputs give
    the same id on any machine.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(_params(segmenter), sort_keys=True).encode())
    columns = _input_columns(segmenter, features)
    present = [c for c in ["customer_id", *columns] if c in features.columns]
    hashed = pd.util.hash_pandas_object(features[present], index=False)
    digest.update(np.ascontiguousarray(hashed.to_numpy()).tobytes())
    return f"seg-{as_of:%Y%m%d}-{digest.hexdigest()[:8]}"


def _schema(columns: list[str], frame: pd.DataFrame | None = None) -> dict[str, str]:
    """Column → catalogue type (or the pandas dtype for columns outside the catalogue)."""
    out: dict[str, str] = {}
    for c in columns:
        if c in FEATURES:
            out[c] = FEATURES[c].type
        else:
            out[c] = str(frame[c].dtype) if frame is not None and c in frame else "unknown"
    return out


def _longest_window(columns: list[str]) -> int:
    """Days of history the columns read: their longest window (365 if none declares one)."""
    days = [FEATURES[c].window_days for c in columns if c in FEATURES]
    return max([d for d in days if d is not None] or [365])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_segmenter(
    segmenter: CustomerSegmenter,
    workspace: Path | str,
    *,
    features: pd.DataFrame,
    as_of: datetime,
    version: str | None = None,
) -> SegmentArtifact:
    """Save a fitted segmenter and its metadata under ``<workspace>/models/segments/<version>/``.

    Parameters
    ----------
    segmenter : CustomerSegmenter
        Fitted.
    workspace : path
    features : DataFrame
        The training feature table (for the data hash and the customer count).
    as_of : datetime
        As-of time of the training features.
    version : str, optional
        Default :func:`segment_version`. An existing folder of that version is replaced.

    Returns
    -------
    SegmentArtifact
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(segmenter)
    version = version or segment_version(segmenter, features, as_of)
    columns = _fitted_columns(segmenter)
    schema = _schema(columns, features)
    metadata = {
        "version": version,
        "kind": "qianmian.features.segments.CustomerSegmenter",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "as_of": f"{as_of:%Y-%m-%d}",
        "data_window": {
            "start": f"{as_of - timedelta(days=_longest_window(columns)):%Y-%m-%d}",
            "end": f"{as_of:%Y-%m-%d}",
            "note": "features read only data in [start, end)",
        },
        "n_customers": len(features),
        "features": list(segmenter.features) if segmenter.features is not None else columns,
        "columns": columns,
        "feature_schema": schema,
        "feature_schema_hash": hashlib.sha256(
            json.dumps(schema, sort_keys=True).encode()
        ).hexdigest(),
        "params": _params(segmenter),
        "n_clusters": segmenter.n_clusters_,
        "k_selection": {
            "criterion": "silhouette on a fixed random sample, rounded to 3 decimals, "
            "ties to the smaller k",
            "fixed_k": segmenter.n_clusters is not None,
            "k_range": list(segmenter.k_range),
            "sample_size": min(segmenter.silhouette_sample, len(features)),
            "scores": segmenter.silhouette_scores_,
        },
        "silhouette": segmenter.silhouette_,
        "inertia": segmenter.inertia_,
        "segments": segmenter.describe().to_dict(orient="records"),
        "versions": {
            "qianmian": qianmian.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "python": platform.python_version(),
        },
    }
    folder = segments_dir(workspace) / version
    tmp = folder.with_name(f".{version}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    joblib.dump(segmenter, tmp / MODEL_FILE)
    (tmp / METADATA_FILE).write_text(
        json.dumps(_jsonable(metadata), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    logger.info("saved segment model %s to %s", version, folder)
    return SegmentArtifact(version, folder, _jsonable(metadata))


def _read_metadata(folder: Path) -> dict[str, Any]:
    return json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))


def list_segment_versions(workspace: Path | str) -> list[str]:
    """Saved versions, oldest first (by creation time, then id)."""
    root = segments_dir(workspace)
    if not root.is_dir():
        return []
    found = [
        (_read_metadata(p).get("created_at", ""), p.name)
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / METADATA_FILE).is_file()
    ]
    return [name for _, name in sorted(found)]


def load_segmenter(
    workspace: Path | str, version: str = "latest", *, features: list[str] | None = None
) -> tuple[CustomerSegmenter, SegmentArtifact]:
    """Load a saved segmenter after checking it still fits this installation and catalogue.

    Parameters
    ----------
    workspace : path
    version : str
        A version id, or ``"latest"``.
    features : list of str, optional
        The feature list the caller expects; a model fitted on another list is refused.

    Returns
    -------
    (CustomerSegmenter, SegmentArtifact)

    Raises
    ------
    NotFoundError
        No such version (the message lists those saved).
    SchemaError
        Feature list, catalogue types or scikit-learn major version differ.
    """
    versions = list_segment_versions(workspace)
    if version == "latest":
        if not versions:
            raise NotFoundError(
                f"No segment model is saved in {segments_dir(workspace)}; run `qianmian segment`."
            )
        version = versions[-1]
    folder = segments_dir(workspace) / version
    if version not in versions or not (folder / MODEL_FILE).is_file():
        raise NotFoundError(
            f"There is no segment model '{version}' in {segments_dir(workspace)}. "
            f"Saved: {', '.join(versions) or '(none)'}."
        )
    meta = _read_metadata(folder)
    saved = str(meta["versions"]["scikit-learn"])
    if saved.split(".")[0] != sklearn.__version__.split(".")[0]:
        raise SchemaError(
            f"The segment model {version} was saved with scikit-learn {saved}, but "
            f"{sklearn.__version__} is installed (another major version); refit it with "
            "`qianmian segment`."
        )
    if saved.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        logger.warning(
            "segment model %s was saved with scikit-learn %s; %s is installed",
            version,
            saved,
            sklearn.__version__,
        )
    if features is not None and list(features) != list(meta["features"]):
        raise SchemaError(
            f"The segment model {version} was fitted on the features {meta['features']}, "
            f"not the expected {list(features)}; refit it or load a matching version."
        )
    for col, typ in meta["feature_schema"].items():
        now = FEATURES[col].type if col in FEATURES else None
        if typ in {"int", "float", "bool", "string"} and now != typ:
            state = "is no longer in the feature catalogue" if now is None else f"is now {now}"
            raise SchemaError(
                f"The segment model {version} reads the feature '{col}' as {typ}, which "
                f"{state}; refit it with `qianmian segment`."
            )
    model = joblib.load(folder / MODEL_FILE)
    if not isinstance(model, CustomerSegmenter) or _fitted_columns(model) != list(meta["columns"]):
        raise SchemaError(
            f"The segment model file of {version} does not match its metadata.json "
            f"(columns {meta['columns']}); the folder {folder} was altered."
        )
    return model, SegmentArtifact(version, folder, meta)
