"""Segments in the monitor's loop: a schema with segments gets each batch's segments in its report record and the
store; a shift confined to one segment alarms there only; a schema without segments gets none. A segment alarm is
an incident a person hears of once: when it opens and when it clears, also across the runs that resume a run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from app_fakes import FakeRegistry, FakeRetrain, FakeStore, Kept, loader

from pipeline.app.monitor import Monitor
from pipeline.app.sources import BatchSource
from pipeline.domain.incidents import Notice
from pipeline.domain.schema import SegmentSpec
from pipeline.io.data import validate_frame
from pipeline.settings import Settings

AGE = SegmentSpec("age", (30.0, 50.0, 65.0, 80.0))  # five segments: <30, 30-50, 50-65, 65-80, >=80


def of_segments(kept: Kept) -> list[tuple[Notice, int | None, tuple[str, ...]]]:
    """The segment notices a notifier was given: (kind, batch, causes)."""
    kinds = (Notice.segment_alarm, Notice.segment_alarm_grew, Notice.segment_cleared)
    return [(n.kind, n.batch, tuple(n.causes)) for n in kept.notes if n.kind in kinds]


def monitor_of(oracle, schema, store, notifier=None):
    registry = FakeRegistry()
    registry.add(1, holdout_roc_auc="0.80")
    registry.champion_version = 1
    said: list[str] = []
    settings = Settings(_env_file=None, refresh_fraction=0, retrain="off")  # type: ignore[call-arg]
    monitor = Monitor(
        settings,
        schema,
        store,
        registry,
        said.append,
        load=loader(oracle),
        retrain_fn=FakeRetrain(registry),
        notifier=notifier,
    )  # type: ignore[arg-type]
    return monitor, said


def stream(population, schema, kinds, seed=7):
    """The reference and one batch per kind: quiet, or moved (the oldest grow older: they stay in their segment)."""
    rng = np.random.default_rng(seed)
    reference = validate_frame(population.sample_batch(6000, rng), schema, "reference.csv")
    sources = []
    for index, kind in enumerate(kinds, 1):
        frame = population.sample_batch(3000, rng)
        if kind == "moved":
            old = frame["age"] >= 80
            frame.loc[old, "age"] = frame.loc[old, "age"] + 15
        name = f"{index}-{kind}.csv"
        sources.append(BatchSource(name, lambda frame=frame, name=name: validate_frame(frame, schema, name)))
    return reference, sources


def run(oracle, schema, population, segments):
    store = FakeStore()
    schema = dataclasses.replace(schema, segments=segments)
    monitor, said = monitor_of(oracle, schema, store)
    reference, sources = stream(population, schema, ["quiet", "moved"])
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


@pytest.mark.usefixtures("tracking")
def test_a_segment_alarm_is_told_when_it_opens_and_when_it_clears(oracle, schema, population):
    schema = dataclasses.replace(schema, segments=(AGE,))
    kept, store = Kept(), FakeStore()
    monitor, _said = monitor_of(oracle, schema, store, kept)
    reference, sources = stream(population, schema, ["quiet", "moved", "moved", "quiet"])
    result = monitor.run(reference, sources, "run")
    assert [record["segments"]["alarmed"] for record in result.records] == [[], ["age=>=80"], ["age=>=80"], []]
    told = of_segments(kept)
    assert [(kind, batch) for kind, batch, _causes in told] == [(Notice.segment_alarm, 2), (Notice.segment_cleared, 4)]
    assert told[0][2][0].startswith("age=>=80 (prediction drift ")
    opened = next(n for n in kept.notes if n.kind is Notice.segment_alarm)
    assert opened.details["segments"][0]["segment"] == "age=>=80" and opened.source == "2-moved.csv"
    assert "open since batch 2 is cleared" in next(n for n in kept.notes if n.kind is Notice.segment_cleared).summary


@pytest.mark.usefixtures("tracking")
def test_a_resumed_run_remembers_the_open_segment_alarm(oracle, schema, population):
    """The next timer run of the same run: its segment alarm stays the one incident, then clears once."""
    schema = dataclasses.replace(schema, segments=(AGE,))
    store, first = FakeStore(), Kept()
    reference, sources = stream(population, schema, ["quiet", "moved", "moved", "quiet"])
    monitor, _said = monitor_of(oracle, schema, store, first)
    monitor.run(reference, sources[:2], "run")
    assert [kind for kind, _batch, _causes in of_segments(first)] == [Notice.segment_alarm]
    store.recorded = {row.batch_index: dataclasses.asdict(row) for row in store.rows}
    again = Kept()
    resumed, _said = monitor_of(oracle, schema, store, again)
    resumed.run(reference, sources, "run")
    assert [row.batch_index for row in store.rows] == [1, 2, 3, 4]
    assert [(kind, batch) for kind, batch, _causes in of_segments(again)] == [(Notice.segment_cleared, 4)]
