"""A batch with some labels empty: every row scored and drift-measured, quality on the labelled rows only, the
same whether it is read whole (``engine.observe``) or in chunks (``engine.local``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.demo.synth import Population, load_sample_frame
from pipeline.domain.schema import FeatureSchema, builtin_schema
from pipeline.engine.local import ChunkWork, chunked_file, numeric_categories, observation_of_profile
from pipeline.engine.observe import observe
from pipeline.io.data import labels_of, validate_frame
from pipeline.io.tables import read_table
from pipeline.model.scoring import Scorer
from pipeline.model.train import ZOO, fit
from pipeline.stats.binned_reference import BinnedReference
from pipeline.stats.drift import ReferenceProfile

ROWS = 1200


@pytest.fixture(scope="module")
def schema() -> FeatureSchema:
    return builtin_schema()


@pytest.fixture(scope="module")
def setup(schema, tmp_path_factory):
    population = Population.fit(load_sample_frame(), schema)
    folder = tmp_path_factory.mktemp("partial")
    reference_path = folder / "reference.csv"
    population.sample_batch(1500, np.random.default_rng(1)).to_csv(reference_path, index=False)
    raw = read_table(str(reference_path))
    reference = validate_frame(raw, schema, str(reference_path)).frame
    scorer = Scorer.trained(fit(ZOO["logreg"], {}, reference, schema), schema)
    proba = scorer.proba(reference)
    profile = ReferenceProfile(reference, proba, schema, prediction_threshold=0.1, column_threshold=0.1)
    work = ChunkWork(schema, scorer, BinnedReference(profile), None, numeric_categories(raw, schema))
    full = population.sample_batch(ROWS, np.random.default_rng(2))
    partial = full.copy()
    empty = np.random.default_rng(3).random(ROWS) < 0.25
    empty[:400] = True  # the first chunk has no label at all: unlabelled rows of a batch labelled elsewhere
    partial.loc[empty, schema.target] = None
    path = folder / "partial.csv"
    partial.to_csv(path, index=False)
    return work, profile, full, empty, path


def _expected_auc(work: ChunkWork, full, empty, schema) -> float:
    """ROC AUC of the champion on the labelled rows, by scikit-learn on the fully labelled twin of the batch."""
    batch = validate_frame(full, schema, "full.csv")
    proba = work.scorer.proba(batch.frame)
    return float(roc_auc_score(labels_of(batch.frame, schema)[~empty], proba[~empty]))


def test_a_partly_labelled_batch_read_whole_has_its_quality_on_the_labelled_rows(setup, schema):
    work, profile, full, empty, path = setup
    batch = validate_frame(read_table(str(path)), schema, str(path))
    assert batch.has_labels and batch.unlabelled_rows == int(empty.sum())
    assert batch.labelled_rows == ROWS - int(empty.sum())
    seen = observe(batch, work.scorer, profile)
    assert seen.observation.rows == ROWS  # every row scored and measured
    assert seen.observation.label_rows == batch.labelled_rows
    assert seen.roc_auc == pytest.approx(_expected_auc(work, full, empty, schema), abs=1e-9)
    positives = int(labels_of(validate_frame(full, schema, "f").frame, schema)[~empty].sum())
    assert seen.observation.positives == positives
    assert seen.positive_rate == pytest.approx(positives / batch.labelled_rows)


def test_a_partly_labelled_batch_read_in_chunks_counts_the_same_rows(setup, schema):
    work, _profile, full, empty, path = setup
    chunked = chunked_file(str(path), None, work, chunk_rows=400, sample_rows=300)
    assert chunked.has_labels and chunked.unlabelled_rows == int(empty.sum())
    assert chunked.as_batch().labelled_rows == ROWS - int(empty.sum())
    seen = observation_of_profile(work.binned, chunked)
    assert seen.observation.rows == ROWS
    assert seen.observation.label_rows == ROWS - int(empty.sum())
    assert seen.roc_auc == pytest.approx(_expected_auc(work, full, empty, schema), abs=1e-3)
    mean, _spread = seen.observation.labelled_mean_prediction
    exact = work.scorer.proba(validate_frame(full, schema, "f").frame)[~empty].mean()
    assert mean == pytest.approx(exact, abs=1e-3)


def test_a_file_whose_labels_are_all_empty_is_an_unlabelled_batch_in_chunks(setup, schema, tmp_path: Path):
    work, _profile, full, _empty, _path = setup
    path = tmp_path / "none.csv"
    full.assign(**{schema.target: None}).to_csv(path, index=False)
    chunked = chunked_file(str(path), None, work, chunk_rows=400, sample_rows=300)
    assert not chunked.has_labels
    assert observation_of_profile(work.binned, chunked).roc_auc is None
