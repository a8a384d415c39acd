"""The embedded host stack itself: up, idempotent, down and up again with the registry's models still loadable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline.app import stack
from pipeline.app.stack_config import StackConfig
from pipeline.demo.synth import Population, load_sample_frame
from pipeline.domain.schema import load_schema
from pipeline.model import flavors, tracking
from pipeline.model.train import ZOO, features_of, fit, predict_proba

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def host_stack():
    state = stack.new_state_dir("pipeline-test-stack-")
    cfg = StackConfig(
        state_dir=state,
        pg_port=stack.free_port(),
        s3_port=stack.free_port(),
        mlflow_port=stack.free_port(),
        bucket="stack-test-bucket",
    )
    yield cfg
    stack.stop_mlflow(cfg)
    stack.stop_moto(cfg)
    stack.stop_postgres(cfg)
    shutil.rmtree(state, ignore_errors=True)


def test_model_registered_before_down_still_loads_after_up(host_stack, monkeypatch):
    cfg = host_stack
    said: list[str] = []
    stack.up(cfg, say=said.append)
    assert len(said) == 3 and all(" started " in line for line in said)
    said.clear()
    stack.up(cfg, say=said.append)  # a second `up` finds everything running
    assert len(said) == 3 and all(" already up " in line for line in said)

    schema = load_schema()
    frame = Population.fit(load_sample_frame(), schema).sample_batch(600, np.random.default_rng(1))
    model = fit(ZOO["logreg"], {}, frame, schema)
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    tracking.connect(cfg.tracking_uri, "stack-test")
    with mlflow.start_run():
        info = tracking.log_model(model, features_of(frame, schema), predict_proba(model, frame, schema))
    version = mlflow.register_model(info.model_uri, "stack-test-model").version

    said.clear()
    stack.down(cfg, say=said.append)
    assert any("snapshot" in line for line in said)
    assert stack.status(cfg) == {"postgres": False, "s3": False, "mlflow": False}
    assert (cfg.snapshot_dir / "objects").is_dir()

    stack.up(cfg, say=lambda _m: None)  # moto starts empty; the bucket is restored from the snapshot
    loaded = flavors.load_model(f"models:/stack-test-model/{version}").model
    np.testing.assert_allclose(predict_proba(loaded, frame, schema), predict_proba(model, frame, schema))
    assert MlflowClient(cfg.tracking_uri).get_registered_model("stack-test-model").name == "stack-test-model"


def test_port_taken_by_a_stranger_is_reported(host_stack):
    cfg = host_stack
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", cfg.s3_port))
        blocker.listen()
        stack.start_postgres(cfg)
        with pytest.raises(stack.StackError, match=f"port {cfg.s3_port} is taken"):
            stack.start_moto(cfg)


def test_cli_stack_status_exits_non_zero_when_down(host_stack, monkeypatch):
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(host_stack.state_dir))
    monkeypatch.setenv("PIPELINE_PG_PORT", str(host_stack.pg_port))
    monkeypatch.setenv("PIPELINE_S3_PORT", str(host_stack.s3_port))
    monkeypatch.setenv("PIPELINE_MLFLOW_PORT", str(host_stack.mlflow_port))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("pipeline")), "stack", "status"], capture_output=True, text=True
    )
    assert result.returncode == 1 and "postgres  down" in result.stdout
