"""A batch's outcome built in one place: the row, the alarm event and the public record agree."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from app_fakes import OracleScorer

from pipeline.app import outcome
from pipeline.demo.synth import DriftKind
from pipeline.domain.policy_types import Action, Verdict
from pipeline.engine.observe import observe
from pipeline.io.data import validate_frame
from pipeline.stats.drift import ReferenceProfile


@pytest.fixture(scope="module")
def observed(schema, population, oracle):
    rng = np.random.default_rng(9)
    scorer = OracleScorer(oracle, schema)
    reference = population.sample_batch(2000, rng)
    profile = ReferenceProfile.scored(reference, scorer, schema, prediction_threshold=0.1, column_threshold=0.1)
    batch = validate_frame(population.sample_batch(1000, rng, DriftKind.covariate), schema, "b3.csv")
    band = profile.noise.band(batch.rows)
    seen = observe(batch, scorer, profile, None, 0.01)
    return batch, seen, band


def test_the_record_of_a_row_and_of_the_same_row_read_back_from_postgres_are_equal(observed):
    batch, seen, band = observed
    verdict = Verdict(True, False, False, ("prediction drift",), True)
    row = outcome.batch_row(
        "run", 3, "m", 1, batch, seen, verdict, Action.retrained_rejected, 0.1, band.prediction_edge(0.01)
    )
    drifted = [name for name, _score in seen.drift.drifted_features()]
    record = outcome.report_record(row, drifted)
    assert record == outcome.report_record(dataclasses.asdict(row), drifted)  # replayed batches read the same
    assert record["batch"] == 3 and record["rows"] == 1000 and record["action"] == "retrained-rejected"
    assert record["roc_auc"] == row.roc_auc and record["labelled_rows"] == 1000
    assert row.drift_noise_edge is not None and 0 < row.drift_noise_edge < row.prediction_drift


def test_an_alarm_event_names_each_drifted_feature_with_its_score_and_p_value(observed):
    batch, seen, _band = observed
    verdict = Verdict(True, False, False, ("prediction drift",), True)
    event = outcome.alarm_event("run", "m", 3, 1, seen, verdict)
    features = event.details["drifted_features"]
    assert event.kind == "alarm" and features
    assert set(features) == {name for name, _score in seen.drift.drifted_features()}
    assert all(0 <= item["p_value"] <= 0.01 for item in features.values())  # each beyond its noise


def test_an_unlabelled_batch_has_no_quality_fields_in_its_record(observed):
    batch, seen, _band = observed
    verdict = Verdict(False, False, False, (), False)
    row = outcome.batch_row("run", 4, "m", 1, batch, seen, verdict, Action.none, 0.1)
    unlabelled = dataclasses.replace(row, roc_auc=None, accuracy=None, positive_rate=None, labelled_rows=None)
    assert "roc_auc" in outcome.report_record(row, []) and "roc_auc" not in outcome.report_record(unlabelled, [])
