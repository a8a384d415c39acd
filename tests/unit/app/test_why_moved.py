"""Why it moved, in the loop: an alarmed batch's drift attribution in its alarm event, its notification, its report
record and the store; a quiet batch has none; an attribution that fails leaves the alarm as it was."""

from __future__ import annotations

import numpy as np
import pytest
from app_fakes import FakeRegistry, FakeRetrain, FakeStore, loader

from pipeline.app.monitor import Monitor
from pipeline.app.sources import BatchSource
from pipeline.app.why_moved import WhyMoved
from pipeline.io.data import validate_frame
from pipeline.settings import Settings


@pytest.fixture
def parts(oracle, schema):
    registry = FakeRegistry()
    registry.add(1, holdout_roc_auc="0.80")
    registry.champion_version = 1
    store, said = FakeStore(), []
    settings = Settings(_env_file=None, refresh_fraction=0, retrain="off")  # type: ignore[call-arg]
    monitor = Monitor(
        settings, schema, store, registry, said.append, load=loader(oracle), retrain_fn=FakeRetrain(registry)
    )  # type: ignore[arg-type]
    return monitor, store, said


def _run(monitor, population, schema, shift: dict[str, float]):
    rng = np.random.default_rng(5)
    reference = validate_frame(population.sample_batch(3000, rng), schema, "reference.csv")
    quiet = population.sample_batch(1500, rng)
    moved = population.sample_batch(1500, rng)
    for name, by in shift.items():
        moved[name] = moved[name] + by
    sources = [
        BatchSource(name, lambda frame=frame, name=name: validate_frame(frame, schema, name))
        for name, frame in (("quiet.csv", quiet), ("moved.csv", moved))
    ]
    return monitor.run(reference, sources, "run")


def test_an_alarmed_batch_names_the_feature_that_moved_its_predictions(tracking, parts, population, schema):
    monitor, store, said = parts
    result = _run(monitor, population, schema, {"age": 12.0})
    quiet, moved = result.records
    assert "drift_attribution" not in quiet and 1 not in store.attributions
    assert moved["drift_detected"] and moved["drift_attribution"][0]["feature"] == "age"
    assert moved["drift_attribution"][0]["share"] > 0.5
    shares = [item["share"] for item in moved["drift_attribution"]]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 1.0 + 1e-9  # the highest ones only
    stored = [share for _feature, share, *_rest in store.attributions[2]]
    assert sum(stored) == pytest.approx(1.0, abs=1e-3)  # every feature's share, stored: they sum to 1
    alarm = next(event for event in store.events if event.kind == "alarm")
    assert alarm.details["drift_attribution"] == moved["drift_attribution"]
    assert alarm.details["drift_attribution_sample"]["of_rows"] == 1500
    assert store.attributions[2][0][0] == "age" and len(store.attributions[2]) == len(schema.features)  # 81 <= 100
    assert any(line.startswith("[batch 2] why it moved (1500 rows sampled): age ") for line in said)


def test_an_attribution_that_fails_is_one_warning_and_the_alarm_goes_on(tracking, parts, population, schema):
    monitor, store, said = parts

    def broken(*_args, **_kwargs):
        raise ValueError("the model refuses\nthese rows")

    import pipeline.app.why_moved as why_moved

    original = why_moved.attribute_to_profile
    why_moved.attribute_to_profile = broken
    try:
        result = _run(monitor, population, schema, {"age": 12.0})
    finally:
        why_moved.attribute_to_profile = original
    assert result.records[1]["drift_detected"] and "drift_attribution" not in result.records[1]
    assert "[batch 2] warning: no drift attribution: the model refuses these rows" in said
    assert not store.attributions
    assert isinstance(monitor.why, WhyMoved)
