"""Segments in the monitor's loop: a schema with segments gets each batch's segments in its report record and the
store; a shift confined to one segment alarms there only; a schema without segments gets none."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from app_fakes import FakeRegistry, FakeRetrain, FakeStore, loader

from pipeline.app.monitor import Monitor
from pipeline.app.sources import BatchSource
from pipeline.domain.schema import SegmentSpec
from pipeline.io.data import validate_frame
from pipeline.settings import Settings

AGE = SegmentSpec("age", (30.0, 50.0, 65.0, 80.0))  # five segments: <30, 30-50, 50-65, 65-80, >=80


def run(oracle, schema, population, segments):
    registry = FakeRegistry()
    registry.add(1, holdout_roc_auc="0.80")
    registry.champion_version = 1
    store, said = FakeStore(), []
    schema = dataclasses.replace(schema, segments=segments)
    settings = Settings(_env_file=None, refresh_fraction=0, retrain="off")  # type: ignore[call-arg]
    monitor = Monitor(
        settings, schema, store, registry, said.append, load=loader(oracle), retrain_fn=FakeRetrain(registry)
    )  # type: ignore[arg-type]
    rng = np.random.default_rng(7)
    reference = validate_frame(population.sample_batch(6000, rng), schema, "reference.csv")
    quiet, moved = population.sample_batch(3000, rng), population.sample_batch(3000, rng)
    old = moved["age"] >= 80
    moved.loc[old, "age"] = moved.loc[old, "age"] + 15  # the oldest grow older: they stay in their segment
    sources = [
        BatchSource(name, lambda frame=frame, name=name: validate_frame(frame, schema, name))
        for name, frame in (("quiet.csv", quiet), ("moved.csv", moved))
    ]
    return monitor.run(reference, sources, "run"), store, said


@pytest.mark.usefixtures("tracking")
def test_a_shift_in_one_segment_alarms_there_only(oracle, schema, population):
    result, store, said = run(oracle, schema, population, (AGE,))
    quiet, moved = result.records
    assert quiet["segments"]["alarmed"] == []
    assert moved["segments"]["alarmed"] == ["age=>=80"]
    assert {row["segment_value"] for row in store.segments[2]} == {"<30", "30-50", "50-65", "65-80", ">=80"}
    assert [row["segment_value"] for row in store.segments[2] if row["alarmed"]] == [">=80"]
    assert any("segments: age=>=80" in line for line in said)


@pytest.mark.usefixtures("tracking")
def test_a_schema_without_segments_records_none(oracle, schema, population):
    result, store, _said = run(oracle, schema, population, ())
    assert all("segments" not in record for record in result.records) and not store.segments
