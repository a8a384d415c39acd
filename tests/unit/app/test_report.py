"""The drift timeline and the run report: what is drawn is what was given, and the files are written."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.app import report
from pipeline.app.report import BATCHES_CSV, TIMELINE_PNG, plot_drift_timeline, write_run_report
from pipeline.domain.records import BatchRow, Event
from pipeline.io.store import MetricsStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
THRESHOLD = 0.1


def _batch(index: int, drift: float, *, drop: bool = False) -> dict[str, object]:
    return {
        "batch_index": index,
        "prediction_drift": drift,
        "drift_detected": drift >= THRESHOLD,
        "performance_drop": drop,
    }


BATCHES = [
    _batch(0, 0.02),
    _batch(1, 0.05),
    _batch(2, 0.18),
    _batch(3, 0.04),
    _batch(4, 0.10),
    _batch(5, 0.06, drop=True),
    _batch(6, 0.03),
]
EVENTS = [
    {"kind": "bootstrap", "batch_index": -1},
    {"kind": "alarm", "batch_index": 2},
    {"kind": "retrain", "batch_index": 2},
    {"kind": "promotion", "batch_index": 2},
    {"kind": "alarm", "batch_index": 4},
    {"kind": "retrain", "batch_index": 4},
    {"kind": "rejection", "batch_index": 4},
    {"kind": "alarm", "batch_index": 5},
    {"kind": "rollback", "batch_index": -1},
]


def test_timeline_returns_the_alarms_and_decisions_it_was_given(tmp_path: Path) -> None:
    out = tmp_path / "timeline.png"

    plotted = plot_drift_timeline(BATCHES, EVENTS, THRESHOLD, out)

    assert plotted["batch"] == [0, 1, 2, 3, 4, 5, 6]
    assert plotted["drift"] == [0.02, 0.05, 0.18, 0.04, 0.10, 0.06, 0.03]
    assert plotted["threshold"] == THRESHOLD
    assert plotted["alarms"] == [2, 4, 5]
    assert plotted["promotions"] == [2]
    assert plotted["rejections"] == [4]
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_timeline_marks_a_batch_as_alarm_from_its_flags_alone(tmp_path: Path) -> None:
    plotted = plot_drift_timeline(BATCHES, [], THRESHOLD, tmp_path / "t.png")

    assert plotted["alarms"] == [2, 4, 5]
    assert plotted["promotions"] == plotted["rejections"] == []


def test_timeline_marks_a_prior_shift_alone_as_an_alarm(tmp_path: Path) -> None:
    shifted = {**_batch(7, 0.03), "prior_shift": True}

    plotted = plot_drift_timeline([*BATCHES, shifted], [], THRESHOLD, tmp_path / "t.png")

    assert plotted["alarms"] == [2, 4, 5, 7]


def test_timeline_orders_batches_and_ignores_events_of_unplotted_batches(tmp_path: Path) -> None:
    shuffled = [BATCHES[3], BATCHES[0], BATCHES[2]]
    events = [{"kind": "promotion", "batch_index": 2}, {"kind": "promotion", "batch_index": 9}]

    plotted = plot_drift_timeline(shuffled, events, THRESHOLD, tmp_path / "nested" / "t.png")

    assert plotted["batch"] == [0, 2, 3]
    assert plotted["promotions"] == [2]
    assert (tmp_path / "nested" / "t.png").is_file()


def test_timeline_refuses_an_empty_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no batches"):
        plot_drift_timeline([], [], THRESHOLD, tmp_path / "t.png")


def test_importing_the_module_loads_no_plotting_library() -> None:
    code = "import sys, pipeline.app.report; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------ from Postgres


def _record_run(store: MetricsStore, run_key: str, model: str, drifts: list[float]) -> None:
    for index, drift in enumerate(drifts):
        detected = drift >= THRESHOLD
        events = []
        if detected:
            events = [
                Event(run_key, model, "alarm", f"drift on batch {index}", index, champion_version=1),
                Event(run_key, model, "retrain", "retrained", index, model_version=2, champion_version=1),
                Event(run_key, model, "promotion", "v2 promoted", index, model_version=2, champion_version=2),
            ]
        row = BatchRow(
            run_key=run_key,
            batch_index=index,
            model_name=model,
            champion_version=1,
            source=f"batch-{index}.parquet",
            n_rows=1000,
            prediction_drift=drift,
            drift_threshold=THRESHOLD,
            drifted_columns=3 if detected else 0,
            share_drifted_columns=0.2 if detected else 0.0,
            share_missing=0.01,
            unseen_categories=0,
            drift_detected=detected,
            roc_auc=None,
            accuracy=None,
            performance_drop=False,
            action="retrain" if detected else "none",
        )
        store.record_batch(row, events=events)


@pytest.mark.integration
def test_run_report_reads_the_latest_run_of_the_model_from_postgres(pg_dsn: str, tmp_path: Path) -> None:
    store = MetricsStore(pg_dsn)
    store.create_schema()
    _record_run(store, "run-old", "triage", [0.3, 0.02])
    _record_run(store, "run-new", "triage", [0.01, 0.04, 0.15, 0.03])
    _record_run(store, "run-other", "another-model", [0.5])

    written = write_run_report(store, None, "triage", tmp_path / "report")

    assert [p.name for p in written] == [TIMELINE_PNG, BATCHES_CSV]
    assert written[0].read_bytes()[:8] == PNG_MAGIC
    with written[1].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["batch_index"] for r in rows] == ["0", "1", "2", "3"]
    assert {r["run_key"] for r in rows} == {"run-new"}
    assert rows[2]["drift_detected"] == "True"
    assert rows[0]["ts"]


@pytest.mark.integration
def test_run_report_of_a_named_run_marks_its_alarm_and_promotion(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MetricsStore(pg_dsn)
    store.create_schema()
    _record_run(store, "run-old", "triage", [0.3, 0.02])
    _record_run(store, "run-new", "triage", [0.01])
    plotted: list[dict[str, object]] = []
    original = report.plot_drift_timeline
    monkeypatch.setattr(report, "plot_drift_timeline", lambda *a, **k: plotted.append(original(*a, **k)))

    write_run_report(store, "run-old", "triage", tmp_path)

    (data,) = plotted
    assert data["batch"] == [0, 1]
    assert data["alarms"] == [0]
    assert data["promotions"] == [0]
    assert data["threshold"] == THRESHOLD


@pytest.mark.integration
def test_run_report_says_when_there_is_nothing_to_report(pg_dsn: str, tmp_path: Path) -> None:
    store = MetricsStore(pg_dsn)
    store.create_schema()
    _record_run(store, "run-other", "another-model", [0.5])

    with pytest.raises(LookupError, match="no monitor run"):
        write_run_report(store, None, "triage", tmp_path)
    with pytest.raises(LookupError, match="no recorded batches"):
        write_run_report(store, "missing-run", "triage", tmp_path)
    with pytest.raises(LookupError, match="belongs to model another-model"):
        write_run_report(store, "run-other", "triage", tmp_path)


def test_timeline_draws_estimated_beside_realized_quality_when_there_is_any(tmp_path: Path) -> None:
    batches = [
        {"batch_index": 1, "prediction_drift": 0.02, "roc_auc": None, "estimated_roc_auc": 0.81},
        {"batch_index": 2, "prediction_drift": 0.03, "roc_auc": 0.52, "estimated_roc_auc": 0.80},
        {"batch_index": 3, "prediction_drift": 0.02, "estimated_drop": True, "estimated_roc_auc": 0.70},
    ]
    with_quality, without = tmp_path / "q.png", tmp_path / "d.png"

    plotted = plot_drift_timeline(batches, [], THRESHOLD, with_quality)
    plot_drift_timeline([{k: v for k, v in b.items() if "roc" not in k} for b in batches], [], THRESHOLD, without)

    assert plotted["roc_auc"] == [None, 0.52, None]
    assert plotted["estimated_roc_auc"] == [0.81, 0.80, 0.70]
    assert plotted["alarms"] == [3]  # an estimated drop is an alarm
    from PIL import Image

    taller, plain = Image.open(with_quality).size[1], Image.open(without).size[1]
    assert taller > plain * 1.4  # the quality panel is there, under the drift
