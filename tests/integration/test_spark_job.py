"""A batch profiled by a Spark job away from the host, handed back through S3: the job gets the champion's files
from `pipeline spark-job-args` (S3 locations in the artifact bucket, as the job's role may read them), talks to
neither MLflow nor Postgres, and the host's monitor reads its result back as it would have profiled the batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from loans import write_loans
from test_late_labels import BUCKET
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
        [sys.executable, "-m", "pipeline.spark_job", *arguments, "--master", "local[2]"],
        env=job_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4000 rows" in done.stdout

    for name in ("AUC_TOLERANCE", "PRIOR_TOLERANCE", "DRIFTED_SHARE_THRESHOLD"):  # no alarm: one champion
        monkeypatch.setenv(f"PIPELINE_{name}", "0.99")
    monkeypatch.setenv("PIPELINE_CHUNK_MB", "0.01")
    records = {}
    for run, batch in (("job", out + "result.json"), ("local", str(files.batches[0]))):
        report = tmp_path / f"{run}.json"
        invoke("monitor", "--current", batch, "--run-id", run, "--threshold", "10", "--report-json", str(report))
        (records[run],) = json.loads(report.read_text())

    a, b = records["local"], records["job"]
    assert b["source"] == str(files.batches[0]) and b["rows"] == a["rows"] == 4000  # the batch the job read
    assert b["drifted_columns"] == a["drifted_columns"] >= 2  # the shifted applicants
    for key in ("prediction_drift", "mean_prediction", "roc_auc", "accuracy", "estimated_roc_auc", "share_missing"):
        assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12), key

    # A result profiled on other bins (another champion or reference) is refused in one line.
    s3 = servers.s3()
    key = f"results/{settings.model_name}/job-1/result.json"
    result = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({**result, "binning": "another"}).encode())
    said = invoke("monitor", "--current", out + "result.json", "--run-id", "stale", code=1)
    assert "profiled against another reference or champion" in " ".join(said.split())
