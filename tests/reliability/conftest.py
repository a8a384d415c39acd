"""The fault-injection rig: its own moto S3 and MLflow server (tests kill and refuse them), small synthetic
data, and a champion registered in seconds by copying one trained model under a fresh name per test."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from moto.server import ThreadedMotoServer
from reliability_rig import (
    BUCKET,
    EXPERIMENT,
    Case,
    Data,
    Rig,
    copy_champion,
    env_for,
    invoke,
    state_dir,
)

from pipeline.app import stack
from pipeline.app.stack_config import StackConfig
from pipeline.model.registry import Registry, VersionInfo
from pipeline.settings import Settings


@pytest.fixture(scope="session")
def rig(pg_stack: StackConfig) -> Iterator[Rig]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    own = state_dir("pipeline-reliability-")
    cfg = replace(pg_stack, state_dir=own, s3_port=port, mlflow_port=stack.free_port(), bucket=BUCKET)
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # pragma: allowlist secret
    ).create_bucket(Bucket=BUCKET)
    stack.start_mlflow(cfg)
    yield Rig(cfg, endpoint)
    stack.stop_mlflow(cfg)
    moto.stop()
    shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="session")
def data() -> Data:
    folder = state_dir("pipeline-reliability-data-")
    invoke(
        "data",
        "synth",
        "--out",
        str(folder),
        "--rows",
        "400",
        "--batches",
        "3",
        "--reference-rows",
        "1500",
        "--drift-kind",
        "none",
        "--seed",
        "11",
    )
    return Data(folder, folder / "reference.csv", [folder / f"batch_{i:03d}.csv" for i in (1, 2, 3)])


def log_and_register(tracking_uri: str, name: str, frame, flip_labels: bool = False) -> VersionInfo:
    """Fit the logistic candidate on ``frame`` (labels flipped: a deliberately poor model), log it with skops
    and make it the champion of ``name``, tagged like a trained version."""
    from pipeline.domain.schema import load_schema
    from pipeline.model import tracking
    from pipeline.model.train import ZOO, evaluate, features_of, fit, predict_proba

    schema = load_schema()
    if flip_labels:
        frame = frame.copy()
        admit = frame[schema.target] == schema.positive
        frame[schema.target] = np.where(admit, schema.negative, schema.positive)
    model = fit(ZOO["logreg"], {}, frame, schema)
    auc = evaluate(model, frame, schema)["roc_auc"]
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=f"test champion {name}") as run:
        info = tracking.log_model(model, features_of(frame, schema), predict_proba(model, frame, schema))
    registry = Registry(MlflowClient(tracking_uri), name)
    tags = {
        "holdout_roc_auc": "0.9" if flip_labels else f"{auc:.6f}",
        "candidate": "logreg",
        "reason": "test",
    }
    version = registry.register(info.model_uri, run.info.run_id, tags, "a champion made by the test rig")
    registry.promote(version)
    return registry.version(version)


@pytest.fixture(scope="session")
def base_champion(rig: Rig, data: Data) -> tuple[str, VersionInfo]:
    """One model logged for real, whose artifacts every test's champion reuses (registered under its name)."""
    from pipeline.domain.schema import load_schema
    from pipeline.io.data import load_batch

    name = f"reliability-base-{uuid.uuid4().hex[:6]}"
    frame = load_batch(str(data.reference), load_schema()).frame
    return name, log_and_register(rig.tracking_uri, name, frame)


@pytest.fixture
def case(
    rig: Rig,
    data: Data,
    pg_dsn: str,
    base_champion: tuple[str, VersionInfo],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Case:
    """A fresh model name whose v1 (champion) is the base model, and a fresh metrics database."""
    name = f"rel-{uuid.uuid4().hex[:8]}"
    copy_champion(rig.tracking_uri, *base_champion, name)
    env = env_for(rig, pg_dsn, name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return Case(Settings(_env_file=None), env, pg_dsn, name, data)


@pytest.fixture
def weak_case(case: Case) -> Case:
    """The same world, but the champion (v2) was trained on flipped labels: any retrain beats it, so every
    retrain is promoted (and every labelled batch alarms on performance)."""
    from pipeline.domain.schema import load_schema
    from pipeline.io.data import load_batch

    frame = load_batch(str(case.data.reference), load_schema()).frame
    log_and_register(case.settings.tracking_uri, case.model_name, frame, flip_labels=True)
    return case


@pytest.fixture
def own_postgres() -> Iterator[StackConfig]:
    """A Postgres of the test's own (the session one is shared), for a test that stops and starts it with pg_ctl."""
    cfg = StackConfig(state_dir=state_dir("pipeline-rel-pg-"), pg_port=stack.free_port())
    stack.start_postgres(cfg)
    yield cfg
    stack.stop_postgres(cfg)
    shutil.rmtree(cfg.state_dir, ignore_errors=True)
