"""The loop over fakes of its collaborators: what it records, when it retrains, what a bad batch or a rerun does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from app_fakes import FakeRegistry, FakeRetrain, FakeStore, loader

from pipeline.app.monitor import Monitor
from pipeline.app.monitor_result import MonitorResult
from pipeline.app.sources import BatchSource
from pipeline.demo.synth import DriftKind
from pipeline.domain.retrain_mode import RetrainMode
from pipeline.io.data import validate_frame
from pipeline.io.store import StoreUnavailable
from pipeline.io.tables import DataError, SourceUnavailable
from pipeline.settings import Settings


@pytest.fixture
def parts(oracle, schema):
    registry = FakeRegistry()
    registry.add(1, holdout_roc_auc="0.80")
    registry.champion_version = 1
    store, retrain, said = FakeStore(), FakeRetrain(registry), []
    settings = Settings(_env_file=None, refresh_fraction=0)  # type: ignore[call-arg]
    monitor = Monitor(settings, schema, store, registry, said.append, load=loader(oracle), retrain_fn=retrain)  # type: ignore[arg-type]
    return monitor, registry, store, retrain, said


def _source(frame, schema, name):
    return BatchSource(name, lambda: validate_frame(frame, schema, name))


def _reference(population, schema, rng):
    return validate_frame(population.sample_batch(3000, rng), schema, "reference.csv")


def test_stable_batches_are_recorded_once_each_without_alarm_or_retrain(tracking, parts, population, schema):
    monitor, _registry, store, retrain, _said = parts
    rng = np.random.default_rng(1)
    sources = [_source(population.sample_batch(1500, rng), schema, f"b{i}") for i in (1, 2, 3)]
    result = monitor.run(_reference(population, schema, rng), sources, "run")
    assert [row.batch_index for row in store.rows] == [1, 2, 3]
    assert result.alarms == 0 and not retrain.calls
    assert all(row.action == "none" and row.champion_version == 1 for row in store.rows)


def test_a_drifted_batch_retrains_and_the_next_batch_is_scored_by_the_promoted_champion(
    tracking, parts, population, schema
):
    monitor, registry, store, retrain, _said = parts
    rng = np.random.default_rng(2)
    frames = [population.sample_batch(1500, rng), *(population.sample_batch(1500, rng, DriftKind.covariate),) * 2]
    result = monitor.run(
        _reference(population, schema, rng), [_source(f, schema, f"b{i}") for i, f in enumerate(frames)], "run"
    )
    assert store.rows[1].drift_detected and store.rows[1].action == "retrained-promoted"
    assert registry.champion_version == 2 and store.rows[2].champion_version == 2
    assert [event.kind for event in store.events if event.batch_index == 2] == ["alarm", "retrain", "promotion"]
    assert retrain.calls and result.retrains == 1
    assert registry.versions[1].tags.get("reference_uri") is None  # the promoted version names the new reference
    assert registry.versions[2].tags["reference_uri"].endswith("reference_batch_002.parquet")


def test_after_a_challenger_rejected_on_input_drift_the_next_batch_becomes_the_reference(
    tracking, parts, population, schema
):
    monitor, registry, store, retrain, said = parts
    retrain.promote = False
    _drifted_run(monitor, population, schema, 5)
    # batch 2 alarms and its challenger loses; batch 3 (the same shift) is held and becomes the reference;
    # batch 4, judged against it, is quiet
    assert [row.action for row in store.rows] == ["none", "retrained-rejected", "skipped-cooldown", "none"]
    assert [row.drift_detected for row in store.rows] == [False, True, True, False]
    assert registry.versions[1].tags["reference_uri"].endswith("reference_batch_003.parquet")
    assert len(retrain.calls) == 1
    assert any("[batch 3] the champion coped with the inputs that alarmed at batch 2" in line for line in said)


def _drifted_run(monitor, population, schema, seed):
    rng = np.random.default_rng(seed)
    frames = [population.sample_batch(1500, rng), *(population.sample_batch(1500, rng, DriftKind.covariate),) * 3]
    return monitor.run(
        _reference(population, schema, rng), [_source(f, schema, f"b{i}") for i, f in enumerate(frames)], "run"
    )


def test_in_challenger_mode_a_winner_is_registered_and_held_and_the_champion_stays(tracking, parts, population, schema):
    monitor, registry, store, retrain, said = parts
    monitor = Monitor(
        monitor.settings,
        schema,
        store,
        registry,
        said.append,
        load=monitor.cache._load,
        retrain_fn=retrain,
        mode=(RetrainMode.challenger, "model tag retrain_mode"),  # the model's own (monitor_run resolves it)
    )  # type: ignore[arg-type]
    _drifted_run(monitor, population, schema, 2)
    assert store.rows[1].drift_detected and store.rows[1].action == "retrained-challenger"
    assert registry.champion_version == 1 and registry.promotions == []
    assert registry.aliases["challenger"] == 2 and registry.versions[2].tags["decision"] == "held"
    assert [event.kind for event in store.events if event.batch_index == 2] == ["alarm", "retrain", "challenger"]
    # the winner waits for a person: the next drifted batches alarm, and the cooldown holds their retrain
    assert [row.action for row in store.rows[2:]] == ["skipped-cooldown", "skipped-cooldown"]
    assert all(row.champion_version == 1 for row in store.rows) and len(retrain.calls) == 1
    assert "m: retraining mode challenger (model tag retrain_mode)" in said


def test_in_off_mode_nothing_is_trained_and_every_drifted_batch_alarms(tracking, parts, population, schema):
    monitor, registry, store, retrain, said = parts
    monitor.settings = monitor.settings.model_copy(update={"retrain": "off"})
    _drifted_run(monitor, population, schema, 3)
    assert not retrain.calls and registry.versions.keys() == {1}
    assert [row.drift_detected for row in store.rows] == [False, True, True, True]
    assert all(row.action == "none" and row.champion_version == 1 for row in store.rows)
    assert "m: retraining mode off (setting PIPELINE_RETRAIN)" in said


def test_a_batch_that_cannot_be_read_is_skipped_and_the_run_goes_on(tracking, parts, population, schema):
    monitor, _registry, store, _retrain, said = parts
    rng = np.random.default_rng(3)

    def broken():
        raise DataError("b2.csv: no such file")

    sources = [
        _source(population.sample_batch(800, rng), schema, "b1"),
        BatchSource("b2.csv", broken),
        _source(population.sample_batch(800, rng), schema, "b3"),
    ]
    result = monitor.run(_reference(population, schema, rng), sources, "run")
    assert result.errors == ["b2.csv: no such file"]
    assert [row.batch_index for row in store.rows] == [1, 3]
    assert any("[batch 2] skipped, nothing written" in line for line in said)


def _inbox_source(name, load):
    """An inbox file as ``inbox_sources`` makes it (named by URI and ETag), read whole."""
    return BatchSource(f"s3://in/{name}#e-{name}", load, uri=f"s3://in/{name}", etag=f"e-{name}")


@pytest.fixture
def read_whole(parts, monkeypatch):
    """Every batch read whole: no S3 to ask a file's size."""
    monkeypatch.setattr(parts[0].reader, "in_chunks", lambda source: False)


def _nested(name):
    def load():
        raise TypeError("unhashable type: 'dict'")  # what a struct value did to validation before it was checked

    return _inbox_source(name, load)


def test_an_inbox_file_that_fails_in_any_way_is_set_aside_once_and_the_run_goes_on(
    tracking, parts, read_whole, population, schema
):
    monitor, _registry, store, _retrain, said = parts
    rng = np.random.default_rng(5)
    good = population.sample_batch(800, rng)
    sources = [_nested("a.parquet"), _inbox_source("b.csv", lambda: validate_frame(good, schema, "s3://in/b.csv"))]
    result = monitor.run(_reference(population, schema, rng), sources, "inbox-run")
    (rejected,) = store.rejections
    assert (rejected.run_key, rejected.uri, rejected.etag) == ("inbox-run", "s3://in/a.parquet", "e-a.parquet")
    assert rejected.reason == "s3://in/a.parquet: TypeError: unhashable type: 'dict'"
    assert rejected.champion_version == 1 and rejected.model_name == monitor.registry.name
    assert result.rejected == ["s3://in/a.parquet#e-a.parquet"] and result.errors == [rejected.reason]
    assert [row.batch_index for row in store.rows] == [2]  # the next file was monitored
    assert any("[batch 1] rejected and set aside (`pipeline inbox retry s3://in/a.parquet`" in line for line in said)
    assert result.exit_code(fail_on_alarm=True) == 4 and result.exit_code() == 1


def test_a_given_file_that_fails_in_any_way_is_skipped_and_never_set_aside(tracking, parts, population, schema):
    monitor, _registry, store, _retrain, _said = parts
    rng = np.random.default_rng(6)

    def broken():
        raise KeyError("c")

    sources = [BatchSource("b1.csv", broken), _source(population.sample_batch(800, rng), schema, "b2")]
    result = monitor.run(_reference(population, schema, rng), sources, "run")
    assert result.errors == ["b1.csv: KeyError: 'c'"] and result.rejected == [] and store.rejections == []
    assert [row.batch_index for row in store.rows] == [2]


def test_an_inbox_file_s3_will_not_give_stops_the_run_and_is_not_set_aside(
    tracking, parts, read_whole, population, schema
):
    monitor, _registry, store, _retrain, said = parts
    rng = np.random.default_rng(7)

    def unreachable():
        raise SourceUnavailable("s3://in/a.csv: S3 unreachable (EndpointConnectionError)")

    later = _inbox_source("b.csv", lambda: validate_frame(population.sample_batch(800, rng), schema, "b"))
    result = monitor.run(_reference(population, schema, rng), [_inbox_source("a.csv", unreachable), later], "run")
    assert store.rejections == [] and store.rows == [] and result.errors == []
    assert result.failures == [
        "s3://in/a.csv: S3 unreachable (EndpointConnectionError); nothing recorded for it, the next run reads it again"
    ]
    assert [record["batch"] for record in result.records] == [1]  # b.csv was not read: it waits for its turn
    assert result.exit_code(fail_on_alarm=True) == 1
    assert any("[batch 1] not read, the run stops here" in line for line in said)


def test_a_database_failure_while_setting_a_file_aside_stops_the_run(tracking, parts, read_whole, population, schema):
    monitor, _registry, store, _retrain, _said = parts

    def down(rejected):
        raise StoreUnavailable("metrics database unreachable: connection refused")

    store.record_rejection = down
    with pytest.raises(StoreUnavailable):
        monitor.run(_reference(population, schema, np.random.default_rng(8)), [_nested("a.parquet")], "run")


def test_a_tracking_failure_while_reading_is_raised_not_blamed_on_the_batch(
    tracking, parts, read_whole, population, schema
):
    from mlflow.exceptions import MlflowException

    monitor, _registry, store, _retrain, _said = parts

    def tracking_down():
        raise MlflowException("API request failed")

    with pytest.raises(MlflowException):
        monitor.run(
            _reference(population, schema, np.random.default_rng(9)), [_inbox_source("a.csv", tracking_down)], "run"
        )
    assert store.rejections == []


def test_a_rerun_skips_the_batches_already_recorded(tracking, parts, population, schema):
    monitor, _registry, store, _retrain, said = parts
    rng = np.random.default_rng(4)
    reference = _reference(population, schema, rng)
    frames = [population.sample_batch(800, rng) for _ in range(2)]
    first = monitor.run(reference, [_source(f, schema, f"b{i}") for i, f in enumerate(frames, 1)], "run")
    assert first.skipped == 0
    store.recorded = {1: dataclasses.asdict(store.rows[0])}  # an attempt that recorded batch 1, then died
    rows_before = len(store.rows)
    parts2 = Monitor(monitor.settings, schema, store, monitor.registry, said.append, load=monitor.cache._load)
    again = parts2.run(reference, [_source(f, schema, f"b{i}") for i, f in enumerate(frames, 1)], "run")
    assert again.skipped == 1
    assert [row.batch_index for row in store.rows[rows_before:]] == [2]
    assert "[batch 1] b1: already recorded in run run, skipped" in said


def test_a_later_run_goes_on_from_the_recorded_batches_and_knows_a_batch_by_its_source_not_its_place(
    tracking, parts, population, schema
):
    monitor, registry, store, retrain, said = parts
    rng = np.random.default_rng(2)
    reference = _reference(population, schema, rng)
    frames = [population.sample_batch(1500, rng), population.sample_batch(1500, rng, DriftKind.covariate)]
    monitor.run(reference, [_source(f, schema, f"b{i}") for i, f in enumerate(frames, 1)], "run")
    assert store.rows[1].action == "retrained-promoted" and len(retrain.calls) == 1
    store.recorded = {row.batch_index: dataclasses.asdict(row) for row in store.rows}
    later = Monitor(monitor.settings, schema, store, registry, said.append, load=monitor.cache._load)
    new = population.sample_batch(800, rng, DriftKind.covariate)
    # a new file first, then one recorded before: the new one is batch 3, the recorded one keeps its place
    result = later.run(reference, [_source(new, schema, "b3"), _source(frames[1], schema, "b2")], "run")
    assert [r["batch"] for r in result.records] == [3, 2] and result.skipped == 1
    assert [(row.batch_index, row.source) for row in store.rows[2:]] == [(3, "b3")]
    assert later.state.last_promotion == 2  # the cooldown the earlier run started holds in this one
    assert len(retrain.calls) == 1
    assert [position for position, _name, _frame in later.window] == [0, 2, 3]  # b2's labelled rows read again


@pytest.mark.parametrize(
    ("errors", "failures", "alarmed", "fail_on_alarm", "code"),
    [
        ([], [], False, False, 0),
        ([], [], True, False, 0),  # an alarm alone never fails the run unless asked
        ([], [], True, True, 3),
        (["b.csv: bad"], [], True, False, 1),
        (["b.csv: bad"], [], True, True, 4),  # a rejected batch outranks an alarm
        (["b.csv: bad"], ["retrain failed"], True, True, 1),  # the run's own failure outranks both
        ([], ["retrain failed"], False, False, 1),
        ([], [], False, True, 0),
    ],
)
def test_the_exit_code_tells_a_scheduler_a_failure_a_rejected_batch_and_an_alarm_apart(
    errors, failures, alarmed, fail_on_alarm, code
):
    records = [{"batch": 1, "drift_detected": alarmed, "action": "none"}]
    result = MonitorResult("run", records=records, errors=errors, failures=failures)
    assert result.exit_code(fail_on_alarm=fail_on_alarm) == code
