"""The fast drift path agrees with Evidently: same scores (to rounding) and the same drift decisions.

Per-column scores are checked against Evidently's own stattest functions (the code its report runs for
``wasserstein`` and ``jensenshannon``), on columns cleaned as its report cleans them; the batch-level
figures (prediction drift, drifted-column count, missing share) against a full Evidently report.
"""

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType

from pipeline.demo.synth import DriftKind, Population, load_sample_frame
from pipeline.stats.drift import ReferenceProfile
from pipeline.stats.evidently_check import measure_with_evidently, usable_columns
from pipeline.stats.evidently_report import CAT_METHOD, NUM_METHOD

THRESHOLD = 0.1
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def population(schema):
    return Population.fit(load_sample_frame(), schema)


@pytest.fixture(scope="module")
def reference(population):
    return population.sample_batch(3000, np.random.default_rng(21))


@pytest.fixture(scope="module")
def profile(population, reference, schema):
    return ReferenceProfile(
        reference, _oracle(population, reference), schema, prediction_threshold=THRESHOLD, column_threshold=THRESHOLD
    )


def _oracle(population, frame):
    return 1 / (1 + np.exp(-population.logit(frame, "base")))


def _evidently_score(reference: pd.Series, current: pd.Series, categorical: bool) -> tuple[float, bool]:
    """Evidently's score and decision for one column, cleaned as its drift metrics clean it."""
    reference = reference.replace([-np.inf, np.inf], np.nan).dropna()
    current = current.replace([-np.inf, np.inf], np.nan).dropna()
    kind = ColumnType.Categorical if categorical else ColumnType.Numerical
    method = CAT_METHOD if categorical else NUM_METHOD
    result = get_stattest(reference, current, kind, method)(reference, current, kind, THRESHOLD)
    return float(result.drift_score), bool(result.drifted)


def _batch(population, kind: DriftKind, seed: int) -> pd.DataFrame:
    return population.sample_batch(1200, np.random.default_rng(seed), kind)


def _odd_batch(population, schema) -> pd.DataFrame:
    """Edge cases: a feature empty in the batch, unseen levels, infinities, a constant column."""
    batch = population.sample_batch(800, np.random.default_rng(31), DriftKind.covariate)
    batch["age"] = np.nan
    batch.loc[:40, "arrivalmode"] = "helicopter"
    batch.loc[:5, "triage_vital_hr"] = np.inf
    batch.loc[6:8, "triage_vital_hr"] = -np.inf
    batch[schema.numerical[10]] = 1.0
    return batch


@pytest.mark.parametrize("kind", list(DriftKind), ids=lambda kind: kind.value)
def test_column_scores_and_decisions_equal_evidentlys(kind, population, reference, profile, schema):
    batch = _batch(population, kind, seed=22 + list(DriftKind).index(kind))
    ours = profile.measure(batch, _oracle(population, batch))
    categorical = set(schema.categorical)
    for name in usable_columns(profile, batch):
        expected, drifted = _evidently_score(reference[name], batch[name], name in categorical)
        assert ours.column_scores[name] == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE), name
        assert (ours.column_scores[name] >= THRESHOLD) == drifted, name


def test_edge_cases_score_as_evidently_and_empty_columns_do_not_count(population, reference, profile, schema):
    batch = _odd_batch(population, schema)
    ours = profile.measure(batch, _oracle(population, batch))
    usable = usable_columns(profile, batch)
    assert "age" not in usable and np.isnan(ours.column_scores["age"])
    for name in usable:
        expected, drifted = _evidently_score(reference[name], batch[name], name in set(schema.categorical))
        assert ours.column_scores[name] == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE), name
        assert (ours.column_scores[name] >= THRESHOLD) == drifted, name
    assert ours.unseen_categories == 41


def test_prediction_score_equals_evidentlys(population, reference, profile):
    reference_proba = pd.Series(_oracle(population, reference))
    for kind in DriftKind:
        batch = _batch(population, kind, seed=40)
        proba = _oracle(population, batch)
        expected, _ = _evidently_score(reference_proba, pd.Series(proba), categorical=False)
        assert profile.measure(batch, proba).prediction_drift == pytest.approx(expected, rel=TOLERANCE)


@pytest.mark.parametrize("kind", [DriftKind.none, DriftKind.prior], ids=lambda kind: kind.value)
def test_batch_figures_equal_a_full_evidently_report(kind, population, profile):
    batch = _batch(population, kind, seed=50)
    proba = _oracle(population, batch)
    ours = profile.measure(batch, proba)
    theirs = measure_with_evidently(profile, batch, proba)
    assert ours.prediction_drift == pytest.approx(theirs.prediction_drift, rel=TOLERANCE)
    assert ours.drifted_columns == theirs.drifted_columns
    assert ours.share_drifted_columns == pytest.approx(theirs.share_drifted_columns)
    assert ours.share_missing == pytest.approx(theirs.share_missing)
    assert ours.unseen_categories == theirs.unseen_categories
