"""A notification's text (what a person reads in Slack or Teams) and its record (what a program reads)."""

from __future__ import annotations

import json

from pipeline.domain.incidents import Notice
from pipeline.domain.notices import SUBJECT_LIMIT, Notification


def _alarm(**overrides) -> Notification:
    values = dict(
        kind=Notice.alarm,
        model="ed-triage-admission",
        summary="the monitor alarmed on input drift",
        version=3,
        batch=7,
        run_key="run-a",
        source="batch_007.csv",
        causes=("prediction drift 0.312 >= 0.1", "41 of 81 columns drifted"),
        drifted_features=(("age", 0.2), ("esi", 0.61), ("pulse", 0.4), ("a", 0.15), ("b", 0.14), ("c", 0.13)),
        scores={"prediction_drift": 0.3121, "drifted_columns": 41, "roc_auc": None},
        action="retrained-promoted",
        links={"mlflow_run": "http://mlflow:5000/#/experiments/1/runs/r", "grafana": "http://grafana/d/x"},
    )
    return Notification(**{**values, **overrides})  # type: ignore[arg-type]


def test_the_text_names_model_version_batch_and_causes():
    text = _alarm().text()
    headline, blank, *rest = text.splitlines()
    assert headline == "ALARM: ed-triage-admission v3, batch 7 (batch_007.csv)" and blank == ""
    assert "- causes: prediction drift 0.312 >= 0.1; 41 of 81 columns drifted" in rest
    # the strongest first, five of them, the rest counted
    assert "- top drifted features: esi (0.610), pulse (0.400), age (0.200), a (0.150), b (0.140) and 1 more" in rest
    assert "- scores: prediction_drift 0.312, drifted_columns 41" in rest  # a missing score is left out
    assert "- action: retrained-promoted" in rest and "- monitor run: run-a" in rest
    assert "- grafana: http://grafana/d/x" in rest


def test_a_notification_without_batch_or_version_says_so_briefly():
    note = Notification(kind=Notice.rollback, model="m", summary="champion rolled back from v2 to v1", version=1)
    assert note.text().splitlines()[0] == "Rolled back: m v1"
    assert "batch" not in note.text()


def test_the_record_carries_the_fields_and_the_text_and_is_json():
    record = json.loads(json.dumps(_alarm(time="2026-01-01T00:00:00+00:00").record()))
    assert record["text"] == _alarm().text()
    assert record["kind"] == "alarm" and record["model"] == "ed-triage-admission"
    assert (record["version"], record["batch"], record["source"]) == (3, 7, "batch_007.csv")
    assert record["causes"][0].startswith("prediction drift")
    assert record["drifted_features"][1] == {"feature": "esi", "score": 0.61}
    assert record["scores"]["roc_auc"] is None and record["links"]["grafana"] == "http://grafana/d/x"
    assert record["time"] == "2026-01-01T00:00:00+00:00"


def test_the_subject_is_one_line_within_the_limit():
    note = _alarm(source="s3://bucket/" + "deep/" * 40 + "batch.csv")
    assert len(note.subject) == SUBJECT_LIMIT and note.subject.endswith("...") and "\n" not in note.subject
