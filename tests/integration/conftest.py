"""A real MLflow server (Postgres backend, artifacts proxied to a moto S3 server) for integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from pipeline.app import stack
from pipeline.app.stack_config import StackConfig
from pipeline.settings import Settings

BUCKET = "test-artifacts"


@dataclass(frozen=True)
class Servers:
    cfg: StackConfig
    s3_endpoint: str

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def artifact_keys(self) -> list[str]:
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="session")
def servers(pg_stack: StackConfig) -> Iterator[Servers]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    cfg = replace(pg_stack, s3_port=port, mlflow_port=stack.free_port(), bucket=BUCKET)
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    ).create_bucket(Bucket=BUCKET)
    stack.start_mlflow(cfg)
    yield Servers(cfg, endpoint)
    stack.stop_mlflow(cfg)
    moto.stop()


@pytest.fixture
def settings(servers: Servers, pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for one test: its own model name and metrics database, small and fast training."""
    values = {
        "PIPELINE_TRACKING_URI": servers.cfg.tracking_uri,
        "PIPELINE_S3_ENDPOINT_URL": servers.s3_endpoint,
        "PIPELINE_METRICS_DB_URL": pg_dsn,
        "PIPELINE_MODEL_NAME": f"test-model-{uuid.uuid4().hex[:8]}",
        "PIPELINE_EXPERIMENT_NAME": "integration-tests",
        "PIPELINE_TUNING_TRIALS": "2",
        "PIPELINE_WINDOW_ROWS": "6000",
        "PIPELINE_COOLDOWN_BATCHES": "2",
        # no refresh without an alarm, so that each test's retrains are its alarms' (one test turns it on)
        "PIPELINE_REFRESH_FRACTION": "0",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return Settings(_env_file=None)
