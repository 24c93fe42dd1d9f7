"""Saved segment models (round trip, version ids, mismatches), the stored history and stability."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sklearn
from threadpoolctl import threadpool_limits

from qianmian.config import load_settings
from qianmian.errors import NotFoundError, SchemaError
from qianmian.features.segments import (
    ASSIGNMENT_COLUMNS,
    SEGMENT_FEATURES,
    CustomerSegmenter,
    assign_segments,
    list_segment_versions,
    load_segmenter,
    run_segmentation,
    save_assignments,
    save_segmenter,
    segment_history,
    segment_stability,
)
from qianmian.features.segments_artifact import METADATA_FILE, segment_version
from qianmian.world import BANK_TABLES, World

AS_OF = datetime(2026, 8, 1)


@pytest.fixture(autouse=True)
def _one_thread():
    """KMeans' OpenMP threads crawl when other test runs share the cores; one is plenty here."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def frame(feature_table: pa.Table) -> pd.DataFrame:
    return feature_table.to_pandas()


@pytest.fixture(scope="module")
def fitted(frame: pd.DataFrame) -> CustomerSegmenter:
    with threadpool_limits(1):
        return CustomerSegmenter(n_clusters=6, n_init=3).fit(frame)


@pytest.fixture()
def saved(tmp_path: Path, fitted: CustomerSegmenter, frame: pd.DataFrame):
    return tmp_path, save_segmenter(fitted, tmp_path, features=frame, as_of=AS_OF)


def test_artifact_round_trip(saved, fitted, frame):
    workspace, artifact = saved
    assert re.fullmatch(r"seg-20260801-[0-9a-f]{8}", artifact.version)
    assert artifact.path == workspace / "models" / "segments" / artifact.version
    assert {p.name for p in artifact.path.iterdir()} == {"model.joblib", METADATA_FILE}
    model, loaded = load_segmenter(workspace, "latest", features=list(SEGMENT_FEATURES))
    np.testing.assert_array_equal(model.predict(frame), fitted.labels_)
    meta = loaded.metadata
    assert meta["as_of"] == "2026-08-01" and meta["n_customers"] == len(frame)
    assert meta["data_window"]["start"] == "2025-08-01"  # recency reads 365 days
    assert meta["features"] == list(SEGMENT_FEATURES)
    assert "share_hotel_90d" in meta["columns"]  # composites are stored as their parts
    assert meta["feature_schema"]["monetary_90d"] == "float"
    assert meta["n_clusters"] == 6 and meta["k_selection"]["fixed_k"] is True
    assert meta["silhouette"] == pytest.approx(fitted.silhouette_)
    assert [s["name_zh"] for s in meta["segments"]] == [n.zh for n in fitted.segment_names_]
    assert sum(s["size"] for s in meta["segments"]) == len(frame)
    assert set(meta["versions"]) == {"qianmian", "scikit-learn", "numpy", "pandas", "python"}
    assert meta["versions"]["scikit-learn"] == sklearn.__version__


def test_version_is_a_content_hash(fitted, frame):
    same = segment_version(CustomerSegmenter(n_clusters=6, n_init=3), frame, AS_OF)
    assert same == segment_version(fitted, frame, AS_OF)
    other_seed = CustomerSegmenter(n_clusters=6, n_init=3, random_state=1)
    assert segment_version(other_seed, frame, AS_OF) != same
    changed = frame.assign(monetary_90d=frame["monetary_90d"] + 1)
    assert segment_version(fitted, changed, AS_OF) != same


def _edit(artifact, **changes) -> None:
    path = artifact.path / METADATA_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        target = meta
        *parents, last = key.split("__")
        for p in parents:
            target = target[p]
        target[last] = value
    path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize(
    ("changes", "load_kwargs", "error", "pattern"),
    [
        ({}, {"features": ["age", "monetary_90d"]}, SchemaError,
         r"was fitted on the features \[.*\], not the expected \['age', 'monetary_90d'\]"),
        ({"versions__scikit-learn": "0.24.2"}, {}, SchemaError,
         "saved with scikit-learn 0.24.2, but .* is installed .another major version."),
        ({"feature_schema__age": "string"}, {}, SchemaError,
         "reads the feature 'age' as string, which is now int"),
        ({"feature_schema": {"spend_99d": "float"}}, {}, SchemaError,
         "'spend_99d' as float, which is no longer in the feature catalogue"),
        ({"columns": ["age"]}, {}, SchemaError, "does not match its metadata.json"),
        ({}, {"version": "seg-19990101-deadbeef"}, NotFoundError,
         "There is no segment model 'seg-19990101-deadbeef' .* Saved: seg-20260801-"),
    ],
)  # fmt: skip
def test_mismatched_artifacts_are_refused(saved, changes, load_kwargs, error, pattern):
    workspace, artifact = saved
    _edit(artifact, **changes)
    with pytest.raises(error, match=pattern):
        load_segmenter(workspace, **load_kwargs)


def test_no_saved_model_is_a_clear_error(tmp_path):
    assert list_segment_versions(tmp_path) == []
    with pytest.raises(NotFoundError, match=r"No segment model is saved .* run `qianmian segment`"):
        load_segmenter(tmp_path)


@pytest.fixture(scope="module")
def bank_copy(tmp_path_factory: pytest.TempPathFactory, feature_world: World) -> Path:
    """A private workspace with the bank's tables (tests here write to its store)."""
    workspace = tmp_path_factory.mktemp("segments-ws")
    with load_settings(workspace).build_store() as store:
        for name in BANK_TABLES:
            store.load_parquet(name, feature_world.table_paths(name), mode="replace")
    return workspace


def test_history_is_appended_per_run_and_reruns_replace(bank_copy):
    with load_settings(bank_copy).build_store() as store:
        july = run_segmentation(store, bank_copy, "2026-07-01", n_clusters=6)
        august = run_segmentation(store, bank_copy, "2026-08-01", n_clusters=6)
        again = run_segmentation(store, bank_copy, "2026-08-01", n_clusters=6)
        september = run_segmentation(store, bank_copy, "2026-09-01", model="latest")
        assert july.fitted and august.fitted and not again.fitted and not september.fitted
        assert again.artifact.version == august.artifact.version
        assert september.artifact.version == august.artifact.version
        assert july.artifact.version != august.artifact.version
        counts = store.query(
            "SELECT as_of, version, count(*) AS n FROM customer_segments "
            "GROUP BY as_of, version ORDER BY as_of"
        ).to_pandas()
        assert counts["n"].tolist() == [
            len(july.assignments),
            len(august.assignments),
            len(september.assignments),
        ]
        customer = int(july.assignments["customer_id"].iloc[0])
        history = segment_history(store, customer)
    assert list(history.columns) == list(ASSIGNMENT_COLUMNS)
    assert history["as_of"].tolist() == [
        pd.Timestamp("2026-07-01"),
        pd.Timestamp("2026-08-01"),
        pd.Timestamp("2026-09-01"),
    ]
    assert history["version"].tolist() == [july.artifact.version] + [august.artifact.version] * 2
    assert history["rfm_r"].between(1, 5).all() and history["cluster"].between(0, 5).all()
    assert list_segment_versions(bank_copy) == [july.artifact.version, august.artifact.version]
    assert len(august.segments) == 6 and august.segments["size"].sum() == len(august.assignments)
    assert august.rfm["size"].sum() == len(august.assignments)


def test_history_of_unknown_customer_is_empty_and_of_unsegmented_store_an_error(
    frame, fitted, tmp_path
):
    with load_settings(tmp_path / "segmented").build_store() as store:
        save_assignments(store, assign_segments(frame.head(5), fitted, version="seg-test"))
        assert segment_history(store, 99_999_999).empty
    with (
        load_settings(tmp_path).build_store() as empty,
        pytest.raises(NotFoundError, match="no table 'customer_segments' yet"),
    ):
        segment_history(empty, 1)


def test_a_failed_rerun_keeps_the_earlier_rows(bank_copy, frame, fitted, monkeypatch):
    rows = assign_segments(frame.head(20), fitted, version="seg-test")
    with load_settings(bank_copy).build_store() as store:
        assert save_assignments(store, rows) == 20
        before = store.count("customer_segments")

        def fail(*args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr(store, "write", fail)  # after the DELETE, inside the transaction
        with pytest.raises(OSError, match="disk full"):
            save_assignments(store, rows)
        monkeypatch.undo()
        assert store.count("customer_segments") == before
        kept = (
            store.query("SELECT count(*) AS n FROM customer_segments WHERE version = 'seg-test'")
            .column("n")[0]
            .as_py()
        )
        assert kept == 20


def test_stability_between_adjacent_months(feature_store, frame):
    from qianmian.features.engine import StoreFeatureEngine

    july = StoreFeatureEngine(feature_store).build("2026-07-01").to_pandas()
    report = segment_stability(july, frame, CustomerSegmenter(n_clusters=6))
    assert report.n_customers == len(july)  # everyone there in July is still there in August
    # Segment definitions barely move when refitted a month later ...
    assert report.ari_refit > 0.7
    # ... but 90-day behaviour does: a good third of customers change segment in a month.
    assert 0.2 < report.ari_same_model < 0.8
    assert 0.1 < report.moved_share < 0.6
    assert 0.2 < report.ari_rfm < 0.9
