"""Helpers of the fault-injection suite: what a test sees of the rig, its case, the CLI and the databases."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import boto3
import mlflow
import psycopg2
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipeline.app import stack
from pipeline.app.stack_config import StackConfig
from pipeline.cli.main import app
from pipeline.model.registry import Registry, VersionInfo
from pipeline.settings import Settings

BUCKET = "reliability-artifacts"
EXPERIMENT = "reliability-tests"
VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


@dataclass(frozen=True)
class Rig:
    cfg: StackConfig
    s3_endpoint: str

    @property
    def tracking_uri(self) -> str:
        return self.cfg.tracking_uri

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",  # pragma: allowlist secret
        )


@dataclass(frozen=True)
class Data:
    folder: Path
    reference: Path
    batches: list[Path]


@dataclass(frozen=True)
class Case:
    """One test's world: its settings, environment, metrics database and registered model."""

    settings: Settings
    env: dict[str, str]
    dsn: str
    model_name: str
    data: Data

    def registry(self) -> Registry:
        return Registry(MlflowClient(self.settings.tracking_uri), self.model_name)

    def rows(self, query: str, *params: object) -> list[tuple]:
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def aliases(self) -> dict[str, str]:
        return dict(MlflowClient(self.settings.tracking_uri).get_registered_model(self.model_name).aliases)

    def versions(self) -> list[int]:
        client = MlflowClient(self.settings.tracking_uri)
        return sorted(int(v.version) for v in client.search_model_versions(f"name = '{self.model_name}'"))


def invoke(*args: str, expect: int | None = 0):
    result = CliRunner().invoke(app, list(args))
    if expect is not None and result.exit_code != expect:
        raise AssertionError(
            f"pipeline {' '.join(args)} exited {result.exit_code}, expected {expect}:\n"
            f"{result.output}\n{result.exception!r}"
        )
    return result


state_dir = stack.new_state_dir
create_database = stack.create_database


def env_for(rig: Rig, dsn: str, model_name: str, **extra: str) -> dict[str, str]:
    return {
        "PIPELINE_TRACKING_URI": rig.tracking_uri,
        "PIPELINE_S3_ENDPOINT_URL": rig.s3_endpoint,
        "PIPELINE_METRICS_DB_URL": dsn,
        "PIPELINE_MODEL_NAME": model_name,
        "PIPELINE_EXPERIMENT_NAME": EXPERIMENT,
        "PIPELINE_TUNING_TRIALS": "1",
        "PIPELINE_COOLDOWN_BATCHES": "1",
        # alarms come from the prediction drift threshold only, which each test sets (--threshold): no noise
        # band (a false-alarm rate of 1) and no refresh without an alarm
        "PIPELINE_FALSE_ALARM_RATE": "1",
        "PIPELINE_REFRESH_FRACTION": "0",
        "PIPELINE_DRIFTED_SHARE_THRESHOLD": "1",
        "PIPELINE_AUC_TOLERANCE": "1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",  # pragma: allowlist secret
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        **extra,
    }


def copy_champion(tracking_uri: str, source_name: str, source: VersionInfo, name: str) -> int:
    """Register ``source``'s logged model as the champion of a fresh model ``name`` (no training)."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    uri = client.get_model_version(source_name, str(source.version)).source
    registry = Registry(client, name)
    version = registry.register(uri, source.run_id or "", dict(source.tags), "champion copied for a test")
    registry.promote(version)
    return version


def subprocess_env(case: Case, **extra: str) -> dict[str, str]:
    return {**os.environ, **case.env, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **extra}


def monitor_for(case: Case, tracking_uri: str | None = None, store_dsn: str | None = None, **kwargs):
    """The monitor the CLI would build, in-process, so a test can hook its `say` and `on_batch`."""
    from pipeline.app.monitor import Monitor
    from pipeline.domain.schema import load_schema
    from pipeline.io.store import MetricsStore
    from pipeline.model import tracking

    settings = (
        case.settings if tracking_uri is None else case.settings.model_copy(update={"tracking_uri": tracking_uri})
    )
    tracking.connect(settings.tracking_uri, settings.experiment_name)
    registry = Registry(MlflowClient(settings.tracking_uri), case.model_name)
    return Monitor(settings, load_schema(), MetricsStore(store_dsn or case.dsn), registry, **kwargs)


def sources_of(paths: list[Path]):
    from pipeline.app.sources import file_sources
    from pipeline.domain.schema import load_schema

    return file_sources([str(p) for p in paths], load_schema(), None)


def reference_of(case: Case):
    from pipeline.domain.schema import load_schema
    from pipeline.io.data import load_batch

    return load_batch(str(case.data.reference), load_schema())


def running_descendants(tracking_uri: str, run_id: str) -> list[str]:
    """Runs below ``run_id`` (retrain, candidates, trials) still marked RUNNING."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_run(run_id).info.experiment_id
    running, parents = [], [run_id]
    while parents:
        parent = parents.pop()
        for run in client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent}'"):
            parents.append(run.info.run_id)
            if run.info.status == "RUNNING":
                running.append(run.info.run_id)
    return running
