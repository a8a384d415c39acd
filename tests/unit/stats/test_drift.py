"""Drift on real Evidently: stable batches stay under the default threshold, each injected shift is seen."""

import numpy as np
import pytest

from pipeline.demo.synth import DriftKind, Population, load_sample_frame
from pipeline.stats.drift import ReferenceProfile


@pytest.fixture(scope="module")
def population(schema):
    return Population.fit(load_sample_frame(), schema)


@pytest.fixture(scope="module")
def profile(population, schema):
    reference = population.sample_batch(4000, np.random.default_rng(11))
    return ReferenceProfile(
        reference, _oracle(population, reference), schema, prediction_threshold=0.1, column_threshold=0.1
    )


def _oracle(population, frame):
    return 1 / (1 + np.exp(-population.logit(frame, "base")))


def test_stable_batches_stay_below_the_threshold(population, profile):
    rng = np.random.default_rng(12)
    for _ in range(3):
        batch = population.sample_batch(1500, rng)
        result = profile.measure(batch, _oracle(population, batch))
        assert result.prediction_drift < 0.1
        assert result.share_drifted_columns < 0.5
        assert 0.2 < result.share_missing < 0.4


@pytest.mark.parametrize("kind", [DriftKind.covariate, DriftKind.prior])
def test_injected_shift_raises_prediction_drift(kind, population, profile):
    batch = population.sample_batch(1500, np.random.default_rng(13), kind)
    assert profile.measure(batch, _oracle(population, batch)).prediction_drift >= 0.1


def test_score_grows_with_the_shift(population, profile):
    batch = population.sample_batch(1500, np.random.default_rng(14))
    base = _oracle(population, batch)
    scores = [profile.measure(batch, np.clip(base + shift, 0, 1)).prediction_drift for shift in (0.0, 0.05, 0.15)]
    assert scores[0] < scores[1] < scores[2]


def test_share_missing_counts_cells_and_unseen_levels_are_counted(population, profile, schema):
    batch = population.sample_batch(500, np.random.default_rng(15))
    batch[list(schema.numerical)] = np.nan
    batch.loc[:9, "arrivalmode"] = "helicopter"
    result = profile.measure(batch, _oracle(population, batch))
    expected = batch[list(schema.features)].isna().sum().sum() / (len(batch) * len(schema.features))
    assert result.share_missing == pytest.approx(expected)
    assert result.unseen_categories == 10
