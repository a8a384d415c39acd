"""The MLflow server is down when the monitor starts (clear error before any work), and is killed in the
middle of a retrain (no alias moves; once it is back a rejection is recorded; the champion is unchanged)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from mlflow import MlflowClient
from reliability_rig import (
    Case,
    invoke,
    monitor_for,
    reference_of,
    running_descendants,
    sources_of,
    state_dir,
)

from pipeline.app import stack
from pipeline.app.stack_config import StackConfig

pytestmark = pytest.mark.reliability


def test_mlflow_down_at_start_is_a_clear_error_before_any_work(case: Case, monkeypatch: pytest.MonkeyPatch):
    dead = f"http://127.0.0.1:{stack.free_port()}"
    monkeypatch.setenv("PIPELINE_TRACKING_URI", dead)
    result = invoke(
        "monitor", "--reference", str(case.data.reference), "--current", str(case.data.batches[0]), expect=2
    )
    assert f"error: MLflow tracking server {dead} is unreachable" in result.output
    assert "Traceback" not in result.output
    # before any work: not even the tables were created, nothing read, nothing scored
    assert case.rows("SELECT to_regclass('batch_metrics'), to_regclass('monitor_runs')") == [(None, None)]


@pytest.fixture
def killable_mlflow(rig):
    """An MLflow server of the test's own on the rig's backend store and bucket, to kill and restart."""
    cfg = replace(rig.cfg, state_dir=state_dir("pipeline-rel-mlflow-"), mlflow_port=stack.free_port())
    stack.start_mlflow(cfg)
    yield cfg
    stack.stop_mlflow(cfg)
    shutil.rmtree(cfg.state_dir, ignore_errors=True)


def kill_server(cfg: StackConfig) -> None:
    pid = int((cfg.state_dir / "mlflow.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while stack.port_open(cfg.host, cfg.mlflow_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not stack.mlflow_healthy(cfg)


def test_mlflow_killed_mid_retrain_moves_no_alias_and_records_a_rejection_once_back(
    case: Case, killable_mlflow: StackConfig, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast instead of riding out the outage
    before = case.aliases()
    back_at: list[datetime] = []
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        if line.strip().startswith("candidate") and not back_at and "killed" not in said:
            kill_server(killable_mlflow)  # after the first candidate was logged: mid-retrain
            said.append("killed")
        elif "is down; waiting" in line:
            stack.start_mlflow(killable_mlflow)
            back_at.append(datetime.now(UTC))

    monitor = monitor_for(case, tracking_uri=killable_mlflow.tracking_uri, say=say, tracking_wait=120)
    result = monitor.run(reference_of(case), sources_of(case.data.batches[:2]), "mlflow-kill", threshold=1e-6)
    assert "killed" in said and back_at, said
    assert [r["action"] for r in result.records] == ["retrained-rejected", "skipped-cooldown"]
    assert case.aliases() == before and case.versions() == [1]
    events = case.rows(
        "SELECT kind, model_version, message, ts FROM events "
        "WHERE run_key = 'mlflow-kill' AND batch_index = 1 "
        "ORDER BY id"
    )
    assert [e[0] for e in events] == ["alarm", "rejection"]
    kind, version, message, ts = events[1]
    assert version is None and message.startswith("retrain failed, champion v1 unchanged")
    assert ts >= back_at[0]
    assert result.failures and "retrain failed" in result.failures[0]
    assert case.rows("SELECT batch_index, count(*) FROM batch_metrics GROUP BY 1 ORDER BY 1") == [
        (1, 1),
        (2, 1),
    ]
    assert running_descendants(killable_mlflow.tracking_uri, result.mlflow_run_id) == []
    retrain_runs = MlflowClient(killable_mlflow.tracking_uri).search_runs(
        [MlflowClient(killable_mlflow.tracking_uri).get_run(result.mlflow_run_id).info.experiment_id],
        f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'",
    )
    assert [r.info.status for r in retrain_runs] == ["FAILED"]
