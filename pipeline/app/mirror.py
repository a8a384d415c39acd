"""What a monitor run mirrors to MLflow besides Postgres, and the ``--report-json`` file. MLflow is a mirror:
when its server fails, the run goes on and says so (Postgres has every number)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.domain.policy_types import Verdict
from pipeline.domain.records import VERDICT_COLUMNS
from pipeline.domain.values import one_line
from pipeline.engine.observe import BatchObservation
from pipeline.model import tracking
from pipeline.stats.drift import DriftResult


class RunKeys(Protocol):
    """The metrics store's link from a monitor run to its MLflow run."""

    def set_run_mlflow_id(self, run_key: str, mlflow_run_id: str) -> None: ...


def open_monitor_run(
    store: RunKeys,
    run_key: str,
    existing: str | None,
    run_id: str,
    model: str,
    say: Callable[[str], None],
    params: dict[str, Any],
) -> None:
    """The monitor's MLflow run, just started: a new one is linked to the run key, tagged and given its params; an
    existing one (a rerun) has the runs an interrupted attempt left running marked KILLED."""
    import mlflow

    if existing:
        ended = tracking.end_running_children(existing, "KILLED")
        if ended:
            say(
                f"resuming run {run_key}: {len(ended)} MLflow runs left running by an interrupted attempt marked KILLED"
            )
        return
    store.set_run_mlflow_id(run_key, run_id)
    mlflow.set_tags({"step": "monitor", "run_key": run_key, "model_name": model})
    mlflow.log_params(params)


class RecordedRun(Protocol):
    """The metrics store's reads of one run (``pipeline.io.store.MetricsStore``)."""

    def batches_of_run(self, run_key: str) -> list[dict[str, Any]]: ...
    def events_of_run(self, run_key: str) -> list[dict[str, Any]]: ...


def log_batch_metrics(index: int, seen: BatchObservation, verdict: Verdict, say: Callable[[str], None]) -> None:
    """A batch's numbers as metrics of the monitor's MLflow run, step = batch index."""
    import mlflow

    drift = seen.drift
    metrics = {
        "prediction_drift": drift.prediction_drift,
        "drifted_columns": drift.drifted_columns,
        "share_missing": drift.share_missing,
        "mean_prediction": seen.mean_prediction,
        "alarm": float(verdict.alarm),
    }
    optional = {
        "roc_auc": seen.roc_auc,
        "positive_rate": seen.positive_rate,
        "estimated_roc_auc": seen.estimated_roc_auc,
    }
    metrics.update({name: value for name, value in optional.items() if value is not None})
    try:
        mlflow.log_metrics(metrics, step=index)
    except Exception as err:
        if not tracking.is_tracking_failure(err):
            raise
        say(f"[batch {index}] warning: metrics not mirrored to MLflow ({one_line(err, 120)}); Postgres has them")


def log_run_artifacts(
    records: list[dict[str, Any]],
    run_key: str,
    store: RecordedRun,
    threshold: float,
    latest_alarm: tuple[int, DriftResult] | None,
) -> None:
    """What the run logs to its MLflow run besides metrics: the batch records and the drift timeline's data
    (JSON) always; the pictures only when a batch of this run alarmed: the drift timeline PNG and the
    Evidently HTML of the latest alarmed batch against its reference, each side sampled to at most
    ``pipeline.stats.evidently_report.HTML_SAMPLE_ROWS`` rows. A run without alarm draws nothing (``pipeline report``
    draws both for any recorded run and batch)."""
    import mlflow

    from pipeline.app.report import plot_drift_timeline, timeline_data

    alarmed = any(record.get(name) for record in records for name in VERDICT_COLUMNS)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batches.json"
        path.write_text(json.dumps(records, indent=2, default=json_default))
        mlflow.log_artifact(str(path))
        reports = Path(tmp) / "reports"
        reports.mkdir()
        if latest_alarm is not None and latest_alarm[1].build_report is not None:
            index, drift = latest_alarm
            drift.save_html(str(reports / f"evidently_batch_{index:03d}.html"))
        batches = store.batches_of_run(run_key)
        if batches:
            events = store.events_of_run(run_key)
            if alarmed:
                plotted = plot_drift_timeline(batches, events, threshold, reports / "drift_timeline.png")
            else:
                plotted = timeline_data(batches, events, threshold)
            (reports / "drift_timeline.json").write_text(json.dumps(plotted, default=json_default))
        mlflow.log_artifacts(str(reports), "reports")


def write_report_json(records: list[dict[str, Any]], path: Path) -> None:
    """The public per-batch record (see docs/cli.md: "The --report-json record"), atomically written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(records, indent=2, default=json_default))
    tmp.replace(path)


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
