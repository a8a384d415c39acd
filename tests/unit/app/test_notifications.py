"""The monitor's notifications over fakes of its collaborators: one per incident, not per batch; a notifier that
fails is counted and never fails the batch; the dispatcher tries every sink and says a failure in one line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from app_fakes import FakeRegistry, FakeRetrain, FakeStore, Kept, loader

from pipeline.app.monitor import Monitor
from pipeline.app.notify import Dispatcher, Links, batch_notification, message_notification
from pipeline.app.sources import BatchSource
from pipeline.demo.synth import DriftKind
from pipeline.domain.incidents import Incidents, Notice
from pipeline.domain.notices import Notification
from pipeline.domain.records import BatchRow, Event
from pipeline.io.data import validate_frame
from pipeline.io.tables import DataError
from pipeline.settings import Settings


class Broken:
    """A notifier that breaks its promise never to raise."""

    def __init__(self) -> None:
        self.calls = 0

    def notify(self, notification: Notification) -> bool:
        self.calls += 1
        raise ConnectionError("receiver down")


class Sink:
    def __init__(self, name: str, error: Exception | None = None) -> None:
        self.name, self.error, self.got = name, error, []

    def send(self, notification: Notification) -> None:
        if self.error is not None:
            raise self.error
        self.got.append(notification)


def _monitor(oracle, schema, notifier, retrain_mode: str = "auto"):
    registry = FakeRegistry()
    registry.add(1, holdout_roc_auc="0.80")
    registry.champion_version = 1
    store, said = FakeStore(), []
    settings = Settings(_env_file=None, refresh_fraction=0, retrain=retrain_mode)  # type: ignore[call-arg]
    retrain = FakeRetrain(registry)
    monitor = Monitor(
        settings, schema, store, registry, said.append, load=loader(oracle), retrain_fn=retrain, notifier=notifier
    )  # type: ignore[arg-type]
    return monitor, store, said


def _sources(population, schema, rng, kinds):
    frames = [
        population.sample_batch(1500, rng, kind) if kind else population.sample_batch(1500, rng) for kind in kinds
    ]
    return [BatchSource(f"b{i}", lambda f=f, i=i: validate_frame(f, schema, f"b{i}")) for i, f in enumerate(frames, 1)]


def _reference(population, schema, rng):
    return validate_frame(population.sample_batch(3000, rng), schema, "reference.csv")


def test_a_drift_promoted_at_once_sends_its_alarm_and_its_promotion_only(tracking, oracle, population, schema):
    kept = Kept()
    monitor, store, _said = _monitor(oracle, schema, kept)
    rng = np.random.default_rng(2)
    drifted = DriftKind.covariate
    result = monitor.run(_reference(population, schema, rng), _sources(population, schema, rng, [None, drifted]), "r")
    assert store.rows[1].action == "retrained-promoted"
    assert [(n.kind, n.batch, n.version) for n in kept.notes] == [(Notice.alarm, 2, 1), (Notice.promotion, 2, 2)]
    alarm = kept.notes[0]
    assert alarm.causes and alarm.causes[0].startswith("prediction drift") and alarm.drifted_features
    assert "v2 promoted over v1" in kept.notes[1].summary
    assert result.notified == 2 and result.notify_failures == []


def test_a_persisting_drift_is_one_alarm_and_its_challenger(tracking, oracle, population, schema):
    kept = Kept()
    monitor, store, _said = _monitor(oracle, schema, kept, retrain_mode="challenger")
    rng = np.random.default_rng(2)
    kinds = [None, *[DriftKind.covariate] * 3]
    monitor.run(_reference(population, schema, rng), _sources(population, schema, rng, kinds), "r")
    assert [row.drift_detected for row in store.rows] == [False, True, True, True]  # batch after batch
    assert [(n.kind, n.batch) for n in kept.notes] == [(Notice.alarm, 2), (Notice.challenger, 2)]


def test_a_notifier_that_raises_never_fails_the_batch_and_is_counted(tracking, oracle, population, schema):
    broken = Broken()
    monitor, store, said = _monitor(oracle, schema, broken)
    rng = np.random.default_rng(2)
    kinds = [None, DriftKind.covariate]
    result = monitor.run(_reference(population, schema, rng), _sources(population, schema, rng, kinds), "r")
    assert [row.batch_index for row in store.rows] == [1, 2] and store.rows[1].action == "retrained-promoted"
    assert broken.calls == 2 and result.notified == 0
    assert result.notify_failures == ["alarm (batch 2)", "promotion (batch 2)"]
    assert result.exit_code() == 0  # a notification that failed is not a failed run
    assert sum("notification not sent: receiver down" in line for line in said) == 2


def test_a_refused_batch_is_told_once_and_monitoring_again_once(tracking, oracle, population, schema):
    kept = Kept()
    monitor, _store, _said = _monitor(oracle, schema, kept)
    rng = np.random.default_rng(3)

    def broken():
        raise DataError("b.csv: missing feature columns")

    sources = [BatchSource("b.csv", broken), BatchSource("c.csv", broken), *_sources(population, schema, rng, [None])]
    monitor.run(_reference(population, schema, rng), sources, "r")
    assert [(n.kind, n.batch) for n in kept.notes] == [(Notice.batch_refused, 1), (Notice.monitoring_resumed, 3)]
    assert kept.notes[0].source == "b.csv" and "missing feature columns" in kept.notes[0].summary


def test_a_rerun_sends_nothing_for_batches_recorded_before_and_remembers_the_open_alarm(
    tracking, oracle, population, schema
):
    kept = Kept()
    monitor, store, said = _monitor(oracle, schema, kept, retrain_mode="off")
    rng = np.random.default_rng(2)
    reference = _reference(population, schema, rng)
    sources = _sources(population, schema, rng, [None, DriftKind.covariate, DriftKind.covariate])
    monitor.run(reference, sources[:2], "r")
    assert [n.kind for n in kept.notes] == [Notice.alarm]
    # the next timer run of the same run: batch 3 drifts as batch 2 did, the same incident, nothing to say
    store.recorded = {row.batch_index: dataclasses.asdict(row) for row in store.rows}
    again = Kept()
    second, _, _ = _monitor(oracle, schema, again, retrain_mode="off")
    second.store = store
    second.run(reference, sources, "r")
    assert store.rows[-1].batch_index == 3 and store.rows[-1].drift_detected
    assert again.notes == []


def test_the_dispatcher_tries_every_sink_and_says_a_failure_in_one_line():
    said: list[str] = []
    bad, good = Sink("webhook", OSError("connection refused\n  at line 2")), Sink("sns")
    dispatcher = Dispatcher([bad, good], said.append)
    note = Notification(kind=Notice.message, model="m", summary="hello")
    assert dispatcher.notify(note) is False
    assert len(good.got) == 1 and good.got[0].time is not None  # stamped when sent
    assert dispatcher.sent == 0 and dispatcher.failures == [
        "message notification not sent to webhook: connection refused at line 2"
    ]
    assert said == [f"warning: {dispatcher.failures[0]}"]
    bad.error = None
    assert dispatcher.notify(note) is True and dispatcher.sent == 1


def _row(**overrides) -> BatchRow:
    values = dict(
        run_key="run-1",
        batch_index=4,
        model_name="churn-model",
        champion_version=1,
        source="batch_004.csv",
        n_rows=800,
        prediction_drift=0.31,
        drift_threshold=0.1,
        drifted_columns=12,
        share_drifted_columns=0.15,
        share_missing=0.0,
        unseen_categories=0,
        drift_detected=True,
        roc_auc=None,
        accuracy=None,
        performance_drop=False,
        action="retrained-promoted",
    )
    return BatchRow(**{**values, **overrides})  # type: ignore[arg-type]


LINKS = Links("http://mlflow:5000", "churn-model", "http://grafana:3000/", "7", "abc")


def test_an_alarm_names_model_version_batch_causes_and_links():
    incident = Incidents(opened_at=4, causes=frozenset({"drift_detected"}))
    note = batch_notification(
        Notice.alarm, _row(), incident, LINKS, causes=("prediction drift 0.310 >= 0.1",), drifted=[("age", 0.4)]
    )
    text = note.text()
    assert text.startswith("ALARM: churn-model v1, batch 4 (batch_004.csv)")
    assert "prediction drift 0.310 >= 0.1" in text and "age (0.400)" in text and "input drift" in text
    assert note.scores["prediction_drift"] == 0.31 and note.scores["roc_auc"] is None
    assert note.links == {
        "mlflow_run": "http://mlflow:5000/#/experiments/7/runs/abc",
        "grafana": "http://grafana:3000/d/model-monitoring?var-model=churn-model",
    }


def test_a_promotion_names_the_new_version_and_links_to_it():
    event = Event("run-1", "churn-model", "promotion", "v2 promoted over v1: gain 0.01", 4, 2, 1, {})
    note = batch_notification(Notice.promotion, _row(), Incidents(), LINKS, events=[event])
    assert note.version == 2 and note.summary == "v2 promoted over v1: gain 0.01" and not note.causes
    assert note.links["mlflow_version"] == "http://mlflow:5000/#/models/churn-model/versions/2"
    assert note.text().startswith("Promoted: churn-model v2, batch 4")


@pytest.mark.parametrize(
    ("record", "kind", "summary"),
    [
        ({"text": "unit failed", "kind": "message"}, Notice.message, "unit failed"),
        ({"text": "x", "kind": "run-failed", "batch": 3}, Notice.run_failed, "x"),
        ({"summary": "y", "kind": "no-such-kind"}, Notice.message, "y"),
    ],
)
def test_a_message_of_pipeline_notify(record, kind, summary):
    note = message_notification(record, "m", Links("file:///tmp", "m"))
    assert (note.kind, note.summary, note.model) == (kind, summary, "m")
    assert note.batch == record.get("batch")
