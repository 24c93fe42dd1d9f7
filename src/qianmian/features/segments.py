"""Customer segments: RFM scores and named segments, KMeans segments with human names, saved
versions, the per-customer segment history, and how stable segments are from month to month.

The parts live in their own modules; this one is the public entry point and runs a segmentation
end to end (:func:`run_segmentation`, used by ``qianmian segment``):

* :mod:`~qianmian.features.segments_rfm` — R, F, M quintile scores and the 8-class RFM model;
* :mod:`~qianmian.features.segments_kmeans` — :class:`CustomerSegmenter` (KMeans, k by silhouette);
* :mod:`~qianmian.features.segments_names` — names from cluster profiles;
* :mod:`~qianmian.features.segments_artifact` — versioned models under ``models/segments``;
* :mod:`~qianmian.features.cold_start` — the segment of a customer with no history yet, and
  :mod:`~qianmian.features.cold_start_eval`, how well that works on new customers.

KMeans fits use scikit-learn's OpenMP threads; on a machine whose cores are already busy, set
``OMP_NUM_THREADS=1`` (or use ``threadpoolctl.threadpool_limits(1)``) to avoid oversubscription.

Assignments go to the store table ``customer_segments`` (customer_id, as_of, version, rfm_r,
rfm_f, rfm_m, rfm_segment, cluster, segment_name), appended run after run so that every
customer's history is kept; a rerun for the same as_of and version replaces its own rows.

Example (needs a generated bank, so it is not run as a doctest)::

    from qianmian.features.segments import run_segmentation
    run = run_segmentation(store, workspace, "2026-08-01")
    run.segments[["name_zh", "size"]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from qianmian.errors import NotFoundError
from qianmian.features.catalogue import FEATURES
from qianmian.features.segments_artifact import (
    SegmentArtifact,
    list_segment_versions,
    load_segmenter,
    save_segmenter,
    segment_version,
    segments_dir,
)
from qianmian.features.segments_kmeans import SEGMENT_FEATURES, CustomerSegmenter
from qianmian.features.segments_names import PROFILE_COLUMNS, SegmentName, segment_profiles
from qianmian.features.segments_prepare import expand_features
from qianmian.features.segments_rfm import RFM_COLUMNS, RFM_SEGMENTS, rfm_scores
from qianmian.store.base import Store

__all__ = [
    "ASSIGNMENT_COLUMNS",
    "RFM_SEGMENTS",
    "SEGMENT_FEATURES",
    "SEGMENT_TABLE",
    "CustomerSegmenter",
    "SegmentArtifact",
    "SegmentName",
    "SegmentStability",
    "SegmentationRun",
    "assign_segments",
    "list_segment_versions",
    "load_segmenter",
    "rfm_scores",
    "run_segmentation",
    "save_assignments",
    "save_segmenter",
    "segment_history",
    "segment_stability",
    "segments_dir",
]

SEGMENT_TABLE = "customer_segments"
ASSIGNMENT_COLUMNS = (
    "customer_id",
    "as_of",
    "version",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_segment",
    "cluster",
    "segment_name",
)


def assign_segments(
    features: pd.DataFrame, segmenter: CustomerSegmenter, *, version: str
) -> pd.DataFrame:
    """RFM scores and the KMeans segment of every customer in a feature table.

    Parameters
    ----------
    features : DataFrame
        ``customer_id``, ``as_of`` and the features the segmenter and RFM read.
    segmenter : CustomerSegmenter
        Fitted.
    version : str
        The segmenter's version id, stored with each row.

    Returns
    -------
    DataFrame
        :data:`ASSIGNMENT_COLUMNS`, one row per customer.
    """
    rfm = rfm_scores(features)
    cluster = segmenter.predict(features)
    return pd.DataFrame(
        {
            "customer_id": features["customer_id"].to_numpy(np.int64),
            "as_of": pd.to_datetime(features["as_of"]).to_numpy("datetime64[us]"),
            "version": version,
            "rfm_r": rfm["rfm_r"].to_numpy(np.int64),
            "rfm_f": rfm["rfm_f"].to_numpy(np.int64),
            "rfm_m": rfm["rfm_m"].to_numpy(np.int64),
            "rfm_segment": rfm["rfm_segment"].to_numpy(object),
            "cluster": cluster.astype(np.int64),
            "segment_name": segmenter.names_of(cluster),
        }
    )


def save_assignments(store: Store, assignments: pd.DataFrame) -> int:
    """Append assignments to ``customer_segments``, replacing rows of the same as_of and version.

    The delete and the append run in one transaction. Returns the rows written.
    """
    table = pa.Table.from_pandas(assignments[list(ASSIGNMENT_COLUMNS)], preserve_index=False).cast(
        pa.schema(
            [
                ("customer_id", pa.int64()),
                ("as_of", pa.timestamp("us")),
                ("version", pa.string()),
                ("rfm_r", pa.int64()),
                ("rfm_f", pa.int64()),
                ("rfm_m", pa.int64()),
                ("rfm_segment", pa.string()),
                ("cluster", pa.int64()),
                ("segment_name", pa.string()),
            ]
        )
    )
    keys = assignments[["as_of", "version"]].drop_duplicates()
    with store.transaction() as tx:
        if tx.has_table(SEGMENT_TABLE):
            for at, version in keys.itertuples(index=False):
                tx.query(
                    f'DELETE FROM "{SEGMENT_TABLE}" WHERE as_of = $t AND version = $v',
                    {"t": pd.Timestamp(at).to_pydatetime(), "v": version},
                )
        return tx.write(SEGMENT_TABLE, table, mode="append")


def segment_history(store: Store, customer_id: int) -> pd.DataFrame:
    """Every stored segment assignment of one customer, oldest first.

    Returns
    -------
    DataFrame
        :data:`ASSIGNMENT_COLUMNS`; empty if the customer was never segmented.

    Raises
    ------
    NotFoundError
        No segmentation has been stored yet.
    """
    if not store.has_table(SEGMENT_TABLE):
        raise NotFoundError(
            f"The store has no table '{SEGMENT_TABLE}' yet; run `qianmian segment` first."
        )
    cols = ", ".join(ASSIGNMENT_COLUMNS)
    return (
        store.query(
            f'SELECT {cols} FROM "{SEGMENT_TABLE}" WHERE customer_id = $c ORDER BY as_of, version',
            {"c": int(customer_id)},
        )
        .to_pandas()
        .reset_index(drop=True)
    )


@dataclass(frozen=True)
class SegmentStability:
    """How much segments move between two as-of dates (customers present at both).

    ``ari_same_model``: adjusted Rand index between each customer's segment at the earlier and
    at the later date under the model fitted at the earlier date (1 = nobody moved).
    ``ari_refit``: at the later date, the earlier model against one refitted there (1 = refitting
    would not redraw the segments). ``moved_share``: customers whose segment changed under the
    same model. ``ari_rfm``: the same as ``ari_same_model`` for the 8-class RFM segments.
    """

    n_customers: int
    ari_same_model: float
    ari_refit: float
    moved_share: float
    ari_rfm: float


def segment_stability(
    earlier: pd.DataFrame, later: pd.DataFrame, segmenter: CustomerSegmenter
) -> SegmentStability:
    """Fit ``segmenter`` (cloned) at both dates and compare the customers present at both."""
    common = np.intersect1d(earlier["customer_id"], later["customer_id"])
    a = earlier.set_index("customer_id").loc[common].reset_index()
    b = later.set_index("customer_id").loc[common].reset_index()
    model_a = clone(segmenter).fit(earlier)
    model_b = clone(segmenter).fit(later)
    a_then, a_now = model_a.predict(a), model_a.predict(b)
    rfm_then, rfm_now = rfm_scores(earlier), rfm_scores(later)
    rfm_then = rfm_then.set_axis(earlier["customer_id"]).loc[common, "rfm_segment"]
    rfm_now = rfm_now.set_axis(later["customer_id"]).loc[common, "rfm_segment"]
    return SegmentStability(
        n_customers=len(common),
        ari_same_model=float(adjusted_rand_score(a_then, a_now)),
        ari_refit=float(adjusted_rand_score(a_now, model_b.predict(b))),
        moved_share=float(np.mean(a_then != a_now)),
        ari_rfm=float(adjusted_rand_score(rfm_then, rfm_now)),
    )


@dataclass(frozen=True)
class SegmentationRun:
    """What :func:`run_segmentation` did: the model used, the assignments and a summary."""

    as_of: datetime
    artifact: SegmentArtifact
    fitted: bool  # False: an existing version was reused
    assignments: pd.DataFrame
    segments: pd.DataFrame  # per segment: names, size, share, profile figures, description
    rfm: pd.DataFrame  # per RFM segment: names, size, share
    rows_written: int


def segmentation_columns(segmenter: CustomerSegmenter) -> list[str]:
    """Catalogue features to build for segmenting with ``segmenter``, RFM and naming."""
    wanted = [*expand_features(segmenter.features or ()), *RFM_COLUMNS, *PROFILE_COLUMNS]
    return [c for c in dict.fromkeys(wanted) if c in FEATURES]


def _summaries(
    features: pd.DataFrame, assignments: pd.DataFrame, names: list[SegmentName]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    prof = segment_profiles(features, assignments["cluster"].to_numpy())
    segments = pd.DataFrame(
        {
            "cluster": range(len(names)),
            "name_zh": [n.zh for n in names],
            "name_en": [n.en for n in names],
            "description_zh": [n.description_zh for n in names],
            "description_en": [n.description_en for n in names],
        }
    ).merge(
        prof[["size", "share", "monthly_spend", "age"]],
        left_on="cluster",
        right_index=True,
        how="left",
    )
    segments[["size", "share"]] = segments[["size", "share"]].fillna(0)
    counts = assignments["rfm_segment"].value_counts()
    rfm = pd.DataFrame(
        {
            "rfm_segment": [s.zh for s in RFM_SEGMENTS.values()],
            "rfm_segment_en": [s.en for s in RFM_SEGMENTS.values()],
            "rule": [s.rule for s in RFM_SEGMENTS.values()],
        }
    )
    rfm["size"] = rfm["rfm_segment"].map(counts).fillna(0).astype(int)
    rfm["share"] = rfm["size"] / max(len(assignments), 1)
    return segments.astype({"size": int}), rfm


def run_segmentation(
    store: Store,
    workspace: Path | str,
    as_of: date | datetime | str,
    *,
    n_clusters: int | None = None,
    model: str | None = None,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
) -> SegmentationRun:
    """Build features as of ``as_of``, fit (or reuse) a segmenter, save it and the assignments.

    Parameters
    ----------
    store : Store
        Holds the bank's tables; ``customer_segments`` is appended to.
    workspace : path
        Models are saved under ``<workspace>/models/segments``.
    as_of : date, datetime or ISO string
    n_clusters : int, optional
        Fixed k; default choose by silhouette.
    model : str, optional
        A saved version (or ``"latest"``) to apply instead of fitting: segments keep their
        definitions from month to month. Default: fit on these features, reusing a saved
        version with the same content hash.
    random_state : int
    progress : callable, optional
        Called with a short description of each step.

    Returns
    -------
    SegmentationRun
    """
    from qianmian.features.compile import AsOf
    from qianmian.features.engine import StoreFeatureEngine

    say = progress or (lambda _: None)
    at = AsOf.of(as_of).at
    template = CustomerSegmenter(n_clusters=n_clusters, random_state=random_state)
    if model is not None:
        segmenter, artifact = load_segmenter(workspace, model)
        template = segmenter
    say(f"Building features as of {at:%Y-%m-%d}")
    table = StoreFeatureEngine(store).build(at, features=segmentation_columns(template))
    features = table.to_pandas().sort_values("customer_id", kind="stable").reset_index(drop=True)
    if features.empty:
        raise NotFoundError(f"No customer had signed up before {at:%Y-%m-%d}; nothing to segment.")
    fitted = False
    if model is None:
        version = segment_version(template, features, at)
        if version in list_segment_versions(workspace):
            say(f"Reusing saved segment model {version}")
            segmenter, artifact = load_segmenter(workspace, version)
        else:
            say(f"Fitting segments on {len(features):,} customers")
            segmenter = template.fit(features)
            artifact = save_segmenter(segmenter, workspace, features=features, as_of=at)
            fitted = True
    say("Storing assignments")
    assignments = assign_segments(features, segmenter, version=artifact.version)
    written = save_assignments(store, assignments)
    segments, rfm = _summaries(features, assignments, segmenter.segment_names_)
    return SegmentationRun(at, artifact, fitted, assignments, segments, rfm, written)
