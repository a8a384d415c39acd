"""The Spark engine gives the local engine's result on the same file: rows, profile, scores, sample, errors.

Every expected value comes from the local engine (``engine.chunked_file``) or, for the probabilities, from the
champion scored on the driver; Spark runs in ``local[2]`` with small partitions, so every file is split in
several partitions and the merge, the order of partitions and the sample's second job are all exercised.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.demo.synth import DriftKind, Population, load_sample_frame
from pipeline.domain.schema import FeatureSchema, builtin_schema
from pipeline.engine.local import Chunked, ChunkWork, chunked_file, numeric_categories, observation_of_profile
from pipeline.engine.spark import _sample_partitions, chunked_with_spark, spark_session
from pipeline.io.data import labels_of, validate_frame
from pipeline.io.tables import DataError, read_table
from pipeline.model.flavors import LoadedModel
from pipeline.model.scoring import ModelMismatch, Scorer
from pipeline.model.train import ZOO, fit
from pipeline.stats.binned_reference import BinnedReference
from pipeline.stats.drift import ReferenceProfile
from pipeline.stats.estimate import Estimator

ROWS = 4000
CHUNK_ROWS = 700  # the local engine's chunks: boundaries unlike any partition's
# The partly labelled file's empty targets: its first 1,200 rows (whole partitions and chunks without a label)
# and every fourth row after them
PARTIAL_EMPTY = np.r_[np.arange(1200), np.arange(1200, ROWS, 4)]


# ---------------------------------------------------------------- the pure part: which partitions hold the sample


@pytest.mark.parametrize(
    ("counts", "sample_rows", "expected"),
    [
        ([(0, 500), (1, 500), (2, 500)], 400, [2]),
        ([(0, 500), (1, 500), (2, 500)], 500, [2]),
        ([(0, 500), (1, 500), (2, 500)], 501, [1, 2]),
        ([(0, 500), (1, 500), (2, 20)], 520, [1, 2]),
        ([(0, 500), (1, 500), (2, 20)], 521, [0, 1, 2]),
        ([(0, 500), (1, 500), (2, 500)], 5000, [0, 1, 2]),  # a sample larger than the batch: every partition
        ([(2, 10), (0, 300), (1, 10)], 15, [1, 2]),  # in file order whatever the order they came in
        ([(4, 100)], 1, [4]),
    ],
)
def test_the_sample_comes_from_the_last_partitions_that_hold_enough_rows(counts, sample_rows, expected):
    assert _sample_partitions(counts, sample_rows) == expected


# ---------------------------------------------------------------- Spark against the local engine


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("the Spark tests need Java 17")
    session = spark_session("local[2]", "test-spark-engine", chunk_rows=1000)
    # Small splits: a few-thousand-row file becomes several partitions, as a day's file does on a cluster.
    session.conf.set("spark.sql.files.maxPartitionBytes", str(320 * 1024))
    session.conf.set("spark.sql.files.openCostInBytes", "0")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def schema() -> FeatureSchema:
    return builtin_schema()


@pytest.fixture(scope="module")
def population(schema):
    return Population.fit(load_sample_frame(), schema)


@pytest.fixture(scope="module")
def work(population, schema, tmp_path_factory) -> ChunkWork:
    """A champion fitted on a reference read as the monitor reads it, its bins and its calibration."""
    path = tmp_path_factory.mktemp("reference") / "reference.csv"
    population.sample_batch(2500, np.random.default_rng(3)).to_csv(path, index=False)
    raw = read_table(str(path))
    reference = validate_frame(raw, schema, str(path)).frame
    scorer = Scorer.trained(fit(ZOO["logreg"], {}, reference, schema), schema)
    proba = scorer.proba(reference)
    profile = ReferenceProfile(reference, proba, schema, prediction_threshold=0.1, column_threshold=0.1)
    estimator = Estimator.fit(proba, labels_of(reference, schema))
    return ChunkWork(schema, scorer, BinnedReference(profile), estimator, numeric_categories(raw, schema))


@pytest.fixture(scope="module")
def files(population, schema, tmp_path_factory) -> dict[str, Path]:
    """One drifted batch written four ways: unlabelled CSV (``NA`` for missing), labelled CSV (blank for missing),
    labelled Parquet in small row groups, and a CSV with one bad value late in the file."""
    folder = tmp_path_factory.mktemp("batches")
    batch = population.sample_batch(ROWS, np.random.default_rng(5), DriftKind.covariate)
    paths = {
        "unlabelled": folder / "unlabelled.csv",
        "labelled": folder / "labelled.csv",
        "parquet": folder / "labelled.parquet",
        "bad": folder / "bad.csv",
        "partial": folder / "partial.csv",
    }
    batch.drop(columns=[schema.target]).to_csv(paths["unlabelled"], index=False, na_rep="NA")
    batch.to_csv(paths["labelled"], index=False)
    batch.to_parquet(paths["parquet"], index=False, row_group_size=500)
    bad = batch.astype({"age": object})
    bad.loc[4321, "age"] = "forty"
    bad.to_csv(paths["bad"], index=False)
    partial = batch.copy()
    partial.loc[PARTIAL_EMPTY, schema.target] = None
    partial.to_csv(paths["partial"], index=False)
    return paths


def _both(spark, work: ChunkWork, path: Path, sample_rows: int) -> tuple[Chunked, Chunked]:
    local = chunked_file(str(path), None, work, chunk_rows=CHUNK_ROWS, sample_rows=sample_rows)
    return local, chunked_with_spark(spark, str(path), work, sample_rows=sample_rows)


def _assert_same_profile(local, other) -> None:
    assert other.rows == local.rows == ROWS
    for mine, theirs in zip((*other.numerical, other.prediction), (*local.numerical, local.prediction), strict=True):
        np.testing.assert_array_equal(mine.counts, theirs.counts)
        np.testing.assert_allclose(mine.sums, theirs.sums, rtol=1e-9, atol=1e-9)
        assert (mine.missing, mine.infinite) == (theirs.missing, theirs.infinite)
    assert all(mine.same_as(theirs) for mine, theirs in zip(other.categorical, local.categorical, strict=True))
    assert other.labels.same_as(local.labels)
    np.testing.assert_array_equal(other.expected.rows, local.expected.rows)
    np.testing.assert_allclose(other.expected.expected_positives, local.expected.expected_positives, rtol=1e-9)
    assert other.expected.expected_correct == pytest.approx(local.expected.expected_correct, rel=1e-9)
    assert other.proba_sum == pytest.approx(local.proba_sum, rel=1e-9)
    assert other.proba_spread == pytest.approx(local.proba_spread, rel=1e-9)


def _assert_same_observation(work: ChunkWork, local: Chunked, other: Chunked) -> None:
    mine = observation_of_profile(work.binned, other, estimator=work.estimator)
    theirs = observation_of_profile(work.binned, local, estimator=work.estimator)
    assert mine.drift.column_scores.keys() == theirs.drift.column_scores.keys()
    for name, score in theirs.drift.column_scores.items():
        assert mine.drift.column_scores[name] == pytest.approx(score, abs=1e-9, nan_ok=True)
    assert mine.drift.prediction_drift == pytest.approx(theirs.drift.prediction_drift, abs=1e-9)
    assert mine.drift.drifted_columns == theirs.drift.drifted_columns
    assert mine.observation.rows == theirs.observation.rows
    assert mine.observation.mean_prediction == pytest.approx(theirs.observation.mean_prediction, rel=1e-9)
    assert mine.estimate is not None and theirs.estimate is not None
    assert mine.estimate.roc_auc == pytest.approx(theirs.estimate.roc_auc, abs=1e-9)
    assert mine.estimate.accuracy == pytest.approx(theirs.estimate.accuracy, abs=1e-9)
    assert mine.estimate.roc_auc_low == pytest.approx(theirs.estimate.roc_auc_low, abs=1e-9)
    assert mine.estimate.roc_auc_high == pytest.approx(theirs.estimate.roc_auc_high, abs=1e-9)
    assert (mine.roc_auc is None) == (theirs.roc_auc is None)
    if theirs.roc_auc is not None:
        assert mine.roc_auc == pytest.approx(theirs.roc_auc, abs=1e-12)
        assert mine.accuracy == theirs.accuracy


@pytest.mark.spark
@pytest.mark.parametrize(
    ("name", "sample_rows"),
    [
        ("unlabelled", 2000),  # more than the last two partitions hold: the sample's own job runs
        ("labelled", 350),
        ("parquet", 900),
        ("partial", 350),
    ],
)
def test_spark_gives_the_local_engines_result(spark, work, files, name, sample_rows):
    local, other = _both(spark, work, files[name], sample_rows)

    assert other.partitions >= 3, other.partitions
    if name == "unlabelled":  # the sample needs more than the last two partitions: its own job ran
        assert len(other.sample_partitions) > 2, other.sample_partitions
    _assert_same_profile(local.profile, other.profile)
    _assert_same_observation(work, local, other)
    assert other.has_labels == local.has_labels == (name != "unlabelled")
    assert other.extra_columns == local.extra_columns
    pd.testing.assert_frame_equal(other.sample, local.sample)
    assert len(other.sample) == sample_rows
    # P(positive) computed in the executors, against the champion scored here on the same rows.
    np.testing.assert_allclose(other.sample_proba, work.scorer.proba(local.sample), rtol=0, atol=1e-9)
    # A labelled file: the same quality (accuracy and the label counts exactly).
    mine, theirs = work.binned.quality(other.profile), work.binned.quality(local.profile)
    assert (mine.labelled, mine.positives, mine.accuracy) == (theirs.labelled, theirs.positives, theirs.accuracy)
    labelled = {"unlabelled": 0, "partial": ROWS - len(PARTIAL_EMPTY)}.get(name, ROWS)
    assert mine.labelled == labelled
    assert other.as_batch().labelled_rows == local.as_batch().labelled_rows == labelled
    assert mine.roc_auc == pytest.approx(theirs.roc_auc, abs=1e-12, nan_ok=True)


@pytest.mark.spark
def test_a_bad_value_gives_the_local_engines_one_line_error(spark, work, files):
    source = str(files["bad"])
    with pytest.raises(DataError) as local:
        chunked_file(source, None, work, chunk_rows=CHUNK_ROWS, sample_rows=100)
    with pytest.raises(DataError) as other:
        chunked_with_spark(spark, source, work, sample_rows=100)

    assert str(other.value) == str(local.value) == f"{source}: column 'age' holds non-numeric value 'forty'"


@pytest.mark.spark
def test_a_model_that_cannot_score_gives_the_local_engines_one_line_error(spark, work, files):
    model = work.scorer.model
    refusing = Scorer(LoadedModel(model.flavor, model.model, model.classes, ("no_such_column",)), work.schema, 1)
    broken = replace(work, scorer=refusing)
    source = str(files["labelled"])
    with pytest.raises(ModelMismatch) as local:
        chunked_file(source, None, broken, chunk_rows=CHUNK_ROWS, sample_rows=100)
    with pytest.raises(ModelMismatch) as other:
        chunked_with_spark(spark, source, broken, sample_rows=100)

    assert str(other.value) == str(local.value) == "the model takes columns the schema does not name: no_such_column"


def _worker_pids(spark) -> set[int]:
    import pyarrow as pa

    def pid(batches):  # a closure, so shipped by value: the workers cannot import this test module
        for _ in batches:  # read to the end, or the worker is not reused
            pass
        yield pa.RecordBatch.from_pylist([{"pid": os.getpid()}])

    return {row["pid"] for row in spark.range(0, 4, numPartitions=4).mapInArrow(pid, "pid LONG").collect()}


@pytest.mark.spark
def test_a_failed_batch_keeps_the_python_workers(spark, work, files):
    """A worker that stops reading its partition is not reused: the next batch would start new ones."""
    before = _worker_pids(spark)
    with pytest.raises(DataError):
        chunked_with_spark(spark, str(files["bad"]), work, sample_rows=100)

    assert _worker_pids(spark) <= before


@pytest.mark.spark
def test_a_missing_file_and_an_unreadable_s3_path_are_one_line_errors(spark, work, tmp_path):
    missing = str(tmp_path / "absent.csv")
    with pytest.raises(DataError, match=r"absent\.csv: no such file$"):
        chunked_with_spark(spark, missing, work, sample_rows=10)
    for endpoint in (None, "http://127.0.0.1:9"):
        with pytest.raises(DataError, match=r"^s3://bucket/day\.csv: this Spark cannot read S3") as caught:
            chunked_with_spark(spark, "s3://bucket/day.csv", work, sample_rows=10, s3_endpoint=endpoint)
        assert "\n" not in str(caught.value)


@pytest.mark.spark
def test_a_header_only_file_has_no_rows(spark, work, files, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(files["labelled"].read_text().splitlines()[0] + "\n")
    with pytest.raises(DataError, match=r"empty\.csv: no rows \(header only or empty\)$"):
        chunked_with_spark(spark, str(path), work, sample_rows=10)


def test_the_spark_engine_applies_the_caps_before_spark_reads(tmp_path, monkeypatch):
    import pipeline.engine.spark as spark_module
    from pipeline.settings import Settings

    def never(*args, **kwargs):
        raise AssertionError("Spark read a file over the caps")

    monkeypatch.setattr(spark_module, "spark_session", lambda *args, **kwargs: None)
    monkeypatch.setattr(spark_module, "chunked_with_spark", never)
    monkeypatch.setenv("PIPELINE_MAX_COLUMNS", "2")
    settings = Settings(_env_file=None)
    path = tmp_path / "wide.csv"
    path.write_text("a,b,c\n1,2,3\n")
    engine = spark_module.spark_engine(settings)
    with pytest.raises(DataError, match=r"wide\.csv: 3 columns, over the limit of 2 \(PIPELINE_MAX_COLUMNS\)"):
        engine(str(path), None, None, settings, None)
