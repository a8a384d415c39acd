"""The multivariate drift score on synthetic streams whose truth is known: two features whose correlation flips
while each marginal stays put, and stable batches of the reference's own distribution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, ks_2samp

from pipeline.domain.schema import FeatureSchema
from pipeline.stats.multivariate import DomainClassifier, mann_whitney_stderr

SCHEMA = FeatureSchema(("a", "b", "c"), ("kind",), "y", 1, 0)


def correlated(rows: int, rho: float, rng: np.random.Generator) -> pd.DataFrame:
    """Features a and b standard normal with correlation ``rho``, c independent, a categorical with three levels."""
    z = rng.standard_normal((rows, 3))
    b = rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    return pd.DataFrame({"a": z[:, 0], "b": b, "c": z[:, 2], "kind": rng.choice(["x", "y", "z"], rows)})


@pytest.fixture(scope="module")
def classifier() -> DomainClassifier:
    return DomainClassifier.fit(correlated(5_000, 0.8, np.random.default_rng(7)), SCHEMA, sample_rows=1_000)


def test_a_flipped_correlation_with_the_same_marginals_is_seen_far_beyond_chance(classifier):
    rng = np.random.default_rng(11)
    flipped = correlated(3_000, -0.8, rng)
    stable = correlated(3_000, 0.8, rng)
    assert ks_2samp(flipped["b"], stable["b"]).pvalue > 0.01  # each marginal stays put
    result = classifier.measure(flipped, seed=1)
    assert result is not None
    assert result.auc > 0.75 and result.p_value < 1e-6 and result.auc > result.edge(0.01)
    assert (result.reference_rows, result.batch_rows) == (1_000, 1_000)


def test_on_stable_batches_the_alarm_rate_is_within_a_binomial_band_of_the_stated_rate(classifier):
    rng = np.random.default_rng(12)
    rate, batches = 0.05, 200
    p_values = [classifier.measure(correlated(1_000, 0.8, rng), seed=i).p_value for i in range(batches)]
    alarms = int(np.sum(np.array(p_values) <= rate))
    low, high = binom.ppf(0.0005, batches, rate), binom.ppf(0.9995, batches, rate)
    assert low <= alarms <= high, alarms


def test_the_noise_is_mann_whitneys_at_the_held_out_halfs_size(classifier):
    result = classifier.measure(correlated(300, 0.8, np.random.default_rng(3)), seed=0)
    assert result is not None
    assert result.stderr == pytest.approx(mann_whitney_stderr(500, 150))
    assert result.edge(0.01) > result.edge(0.05) > 0.5


def test_a_batch_is_measured_the_same_with_the_same_seed_and_a_tiny_one_not_at_all(classifier):
    batch = correlated(500, 0.8, np.random.default_rng(4))
    assert classifier.measure(batch, seed=3) == classifier.measure(batch, seed=3)
    assert classifier.measure(batch.head(10), seed=3) is None


def test_missing_values_and_unseen_levels_are_encoded_not_refused(classifier):
    batch = correlated(400, 0.8, np.random.default_rng(5))
    batch.loc[:50, "a"] = np.nan
    batch.loc[:50, "kind"] = "never seen"
    result = classifier.measure(batch, seed=0)
    assert result is not None and np.isfinite(result.auc)


def test_a_share_of_missing_values_the_reference_never_had_does_not_make_the_score_alarm(classifier):
    batch = correlated(2_000, 0.8, np.random.default_rng(6))
    batch.loc[batch.index[:600], ["a", "kind"]] = np.nan  # 30% missing: share_missing's business, not this score's
    result = classifier.measure(batch, seed=2)
    assert result is not None and result.auc < result.edge(0.01)
