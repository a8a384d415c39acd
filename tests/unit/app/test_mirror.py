"""The run's artifacts: pictures only when a batch of the run alarmed, the Evidently HTML on a bounded sample."""

from __future__ import annotations

import mlflow
import numpy as np

from pipeline.app import mirror
from pipeline.demo.synth import DriftKind
from pipeline.stats import evidently_report
from pipeline.stats.drift import ReferenceProfile


class RecordedRun:
    """The two store reads ``log_run_artifacts`` makes, answered from memory."""

    def __init__(self, drifts: list[float]) -> None:
        self.rows = [
            {"batch_index": i, "prediction_drift": d, "drift_detected": d >= 0.1} for i, d in enumerate(drifts, 1)
        ]

    def batches_of_run(self, run_key: str) -> list[dict]:
        return self.rows

    def events_of_run(self, run_key: str) -> list[dict]:
        return []


def _artifacts(records: list[dict], drifts: list[float], latest_alarm=None) -> set[str]:
    with mlflow.start_run() as run:
        mirror.log_run_artifacts(records, "k", RecordedRun(drifts), 0.1, latest_alarm)
    client = mlflow.MlflowClient()
    return {a.path for a in client.list_artifacts(run.info.run_id)} | {
        a.path for a in client.list_artifacts(run.info.run_id, "reports")
    }


def test_a_run_without_alarm_logs_the_timeline_data_and_no_picture(tracking, schema):
    records = [{"batch": 1, "drift_detected": False}, {"batch": 2}]
    assert _artifacts(records, [0.02, 0.03]) == {"batches.json", "reports", "reports/drift_timeline.json"}


def test_a_run_with_an_alarm_logs_the_html_of_its_latest_alarm_on_a_bounded_sample(
    tracking, schema, population, oracle, monkeypatch, evidently_frame_sizes
):
    monkeypatch.setattr(evidently_report, "HTML_SAMPLE_ROWS", 300)
    rng = np.random.default_rng(3)
    reference = population.sample_batch(1000, rng)
    batch = population.sample_batch(700, rng, DriftKind.covariate)
    profile = ReferenceProfile(reference, oracle(reference), schema, prediction_threshold=0.1, column_threshold=0.1)
    latest_alarm = (2, profile.measure(batch, oracle(batch)))
    records = [{"batch": 1}, {"batch": 2, "drift_detected": True}]
    assert _artifacts(records, [0.02, 0.5], latest_alarm) == {
        "batches.json",
        "reports",
        "reports/drift_timeline.json",
        "reports/drift_timeline.png",
        "reports/evidently_batch_002.html",
    }
    assert evidently_frame_sizes == [300, 300]  # the batch and the reference, each sampled to the bound
