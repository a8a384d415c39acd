"""Notifications end to end: the CLI on the demo stream, real MLflow, Postgres and moto, with PIPELINE_NOTIFY_URL at
a local receiver. A drifting stream tells a person twice (the alarm at the change, the promotion); a stable one
never. (Notifications of a rejected challenger and of a persisting alarm: tests/unit/app/test_notifications.py.)"""

from __future__ import annotations

import pytest
from test_loop import invoke, synth  # the loop tests' own helpers

pytestmark = pytest.mark.integration


def _monitor(data, batches) -> str:
    return invoke("monitor", "--reference", str(data / "reference.csv"), "--current", *batches)


@pytest.mark.e2e
def test_a_drifting_stream_notifies_its_alarm_once_and_its_promotion(settings, tmp_path, webhook_receiver, monkeypatch):
    """The demo's concept drift at batch 3 (1,500 rows, enough for the challenger to learn the new concept alone
    and win): the alarm and the promotion, then nothing for batch 4 (the new champion copes)."""
    monkeypatch.setenv("PIPELINE_NOTIFY_URL", webhook_receiver.url)
    monkeypatch.setenv("PIPELINE_NOTIFY_GRAFANA_URL", "http://127.0.0.1:3000")
    batches = synth(tmp_path / "d", "concept", 3, batches=4, rows=1500)
    invoke("train", "--data", str(tmp_path / "d" / "reference.csv"))
    output = _monitor(tmp_path / "d", batches)
    said = [(body["kind"], body["batch"], body["version"]) for body in webhook_receiver.bodies]
    assert said == [("alarm", 3, 1), ("promotion", 3, 2)], output
    alarm, promotion = webhook_receiver.bodies
    assert alarm["model"] == settings.model_name and alarm["source"].endswith("batch_003.csv")
    assert alarm["causes"] and alarm["scores"]["roc_auc"] is not None
    assert f"{settings.model_name} v1, batch 3" in alarm["text"] and alarm["causes"][0] in alarm["text"]
    assert alarm["links"]["mlflow_run"].startswith(settings.tracking_uri.rstrip("/") + "/#/experiments/")
    assert alarm["links"]["grafana"].endswith(f"/d/model-monitoring?var-model={settings.model_name}")
    assert promotion["summary"].startswith("v2 promoted over v1") and promotion["action"] == "retrained-promoted"
    assert promotion["links"]["mlflow_version"].endswith("/versions/2")
    assert "2 notifications sent, 0 not sent" in output


def test_a_stable_stream_notifies_no_one(settings, tmp_path, webhook_receiver, monkeypatch):
    monkeypatch.setenv("PIPELINE_NOTIFY_URL", webhook_receiver.url)
    batches = synth(tmp_path / "d", "none", None, batches=3)
    invoke("train", "--data", str(tmp_path / "d" / "reference.csv"))
    output = _monitor(tmp_path / "d", batches)
    assert "3 batches: 0 alarms" in output and webhook_receiver.bodies == []
