"""Adopting a user's version over fakes: the checks refuse before anything is written; a good holdout records the
metrics, schema, reference and calibration, promotes, and gives the model its own retraining mode."""

from __future__ import annotations

import numpy as np
import pytest
from app_fakes import FakeRegistry, loader

from pipeline.app.adopt import adopt
from pipeline.domain.retrain_mode import MODE_TAG, RetrainMode
from pipeline.io.data import validate_frame
from pipeline.io.tables import DataError
from pipeline.model.scoring import ModelMismatch
from pipeline.settings import Settings

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def registry():
    registry = FakeRegistry()
    registry.add(1)
    registry.champion_version = 1
    registry.add(2)
    return registry


@pytest.fixture
def holdout(population, schema):
    return validate_frame(population.sample_batch(400, np.random.default_rng(4)), schema, "holdout.csv")


def test_a_good_version_is_recorded_promoted_and_held_for_a_person(tracking, registry, holdout, schema, oracle):
    adopted = adopt(registry, 2, holdout, schema, SETTINGS, load=loader(oracle))
    assert registry.champion_version == 2 and adopted.previous == 1
    tags = registry.versions[2].tags
    assert float(tags["holdout_roc_auc"]) == pytest.approx(adopted.metrics["roc_auc"])
    assert 0.6 < adopted.metrics["roc_auc"] < 1
    assert {"schema_uri", "reference_uri", "calibration_uri"} <= tags.keys() and tags["holdout_source"] == "holdout.csv"
    assert registry.model_tags()[MODE_TAG] == "challenger"


def test_a_models_own_mode_is_kept_unless_one_is_given(tracking, registry, holdout, schema, oracle):
    registry.tag_model(MODE_TAG, "auto")
    adopt(registry, 2, holdout, schema, SETTINGS, load=loader(oracle))
    assert registry.model_tags()[MODE_TAG] == "auto"
    adopt(registry, 2, holdout, schema, SETTINGS, RetrainMode.off, load=loader(oracle))
    assert registry.model_tags()[MODE_TAG] == "off"


def test_a_holdout_without_both_labels_is_refused_before_anything_is_written(tracking, registry, holdout, schema):
    one_label = validate_frame(holdout.frame.assign(**{schema.target: schema.negative}), schema, "h.csv")
    with pytest.raises(DataError, match="both labels"):
        adopt(registry, 2, one_label, schema, SETTINGS, load=loader(lambda frame: np.full(len(frame), 0.3)))
    assert registry.champion_version == 1 and registry.versions[2].tags == {} and not registry.model_tags()


def test_a_model_that_does_not_return_probabilities_is_refused(tracking, registry, holdout, schema):
    with pytest.raises(ModelMismatch, match="did not return one probability"):
        adopt(registry, 2, holdout, schema, SETTINGS, load=loader(lambda frame: np.full(len(frame), 1.5)))
    assert registry.champion_version == 1 and registry.versions[2].tags == {}
