"""A batch profiled by Spark, in the monitor (``--engine spark``) or by a job away from the host handed back
through S3: the job gets the champion's files from `pipeline spark-job-args` (S3 locations in the artifact bucket,
as the job's role may read them), talks to neither MLflow nor Postgres, and the host's monitor reads its result
back. Both record what the local engine records for the same file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from loans import write_loans
from test_late_labels import BUCKET, rows
from test_own_model import infer, invoke

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.spark]


def test_a_spark_job_profiles_a_batch_and_the_host_monitors_its_result(settings, servers, tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_ARTIFACT_BUCKET", BUCKET)
    files = write_loans(tmp_path / "loans", batches=1, rows=4000, shift_at=1)
    infer(files, tmp_path / "loans.json", "1")
    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))
    out = f"s3://{BUCKET}/results/{settings.model_name}/job-1/"

    arguments = json.loads(invoke("spark-job-args", "--batch", str(files.batches[0]), "--out", out))
    assert all(arguments[arguments.index(flag) + 1].startswith(f"s3://{BUCKET}/mlflow/")
               for flag in ("--model", "--schema", "--reference", "--calibration"))  # fmt: skip
    job_env = {  # the job's world: S3 and nothing else (no tracking server, no database)
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "MLFLOW_"))},
        "PIPELINE_S3_ENDPOINT_URL": servers.s3_endpoint,
        "PIPELINE_TRACKING_URI": "http://127.0.0.1:9/unreachable",
        "PIPELINE_METRICS_DB_URL": "postgresql://nobody@127.0.0.1:9/none",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.engine.spark_job", *arguments, "--master", "local[2]"],
        env=job_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4000 rows" in done.stdout

    # no alarm: one champion throughout
    for name in ("AUC_TOLERANCE", "PRIOR_TOLERANCE", "DRIFTED_SHARE_THRESHOLD", "MULTIVARIATE_THRESHOLD"):
        monkeypatch.setenv(f"PIPELINE_{name}", "0.99")
    monkeypatch.setenv("PIPELINE_CHUNK_MB", "0.01")
    records = {}
    for run, batch, engine in (
        ("job", out + "result.json", "local"),  # the job's result, read back on the host
        ("local", str(files.batches[0]), "local"),  # the batch read in chunks on the host
        ("spark", str(files.batches[0]), "spark"),  # the batch read by Spark in this process (--engine spark)
    ):
        report = tmp_path / f"{run}.json"
        invoke(
            "monitor", "--current", batch, "--run-id", run, "--threshold", "10", "--report-json", str(report),
            "--engine", engine,
        )  # fmt: skip
        (records[run],) = json.loads(report.read_text())

    a = records["local"]
    assert a["rows"] == 4000 and a["drifted_columns"] >= 2  # the shifted applicants
    for run in ("job", "spark"):
        b = records[run]
        assert b["source"] == str(files.batches[0])  # the batch the job read
        same = ("rows", "drifted_columns", "drift_detected", "estimated_drop", "action", "champion_version")
        assert {k: b[k] for k in same} == {k: a[k] for k in same}, run
        for key in ("prediction_drift", "mean_prediction", "roc_auc", "accuracy", "estimated_roc_auc", "share_missing"):
            assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), (run, key)
    stored = rows(
        settings.metrics_db_url,
        "SELECT run_key, drifted_columns, drift_detected, action, n_rows FROM batch_metrics WHERE model_name = %s",
        settings.model_name,
    )
    assert len(stored) == 3 and len({tuple(row[1:]) for row in stored}) == 1  # the same Postgres row, three ways

    # A result profiled on other bins (another champion or reference) is refused in one line.
    s3 = servers.s3()
    key = f"results/{settings.model_name}/job-1/result.json"
    result = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({**result, "binning": "another"}).encode())
    said = invoke("monitor", "--current", out + "result.json", "--run-id", "stale", code=1)
    assert "profiled against another reference or champion" in " ".join(said.split())
