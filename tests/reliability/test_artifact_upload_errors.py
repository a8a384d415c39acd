"""The artifact store refuses uploads (a moto bucket policy denying s3:PutObject, so the MLflow server's own
upload fails for real): the run fails cleanly, no version is registered, every registered version still
loads, and the champion is unchanged."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from reliability_rig import BUCKET, Case, invoke

from pipeline.model import flavors

pytestmark = pytest.mark.reliability


def test_refused_artifact_upload_registers_nothing_and_keeps_the_champion(
    case: Case, rig, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")  # the client retries, briefly
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    s3 = rig.s3()
    before = case.aliases()
    s3.put_bucket_policy(
        Bucket=BUCKET,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{BUCKET}/*",
                    }
                ],
            }
        ),
    )
    try:
        result = invoke(
            "monitor",
            "--reference",
            str(case.data.reference),
            "--run-id",
            "refused",
            "--threshold",
            "0.000001",
            "--current",
            *[str(p) for p in case.data.batches[:2]],
            expect=1,
        )
    finally:
        s3.delete_bucket_policy(Bucket=BUCKET)
    assert "failed: batch 1: retrain failed, champion v1 unchanged" in result.output
    assert "Traceback" not in result.output
    assert case.versions() == [1] and case.aliases() == before
    client = MlflowClient(case.settings.tracking_uri)
    for version in client.search_model_versions(f"name = '{case.model_name}'"):
        assert flavors.load_model(f"models:/{case.model_name}/{version.version}").model
    assert case.rows("SELECT batch_index, action FROM batch_metrics ORDER BY 1") == [
        (1, "retrained-rejected"),
        (2, "skipped-cooldown"),
    ]
    assert case.rows("SELECT kind FROM events WHERE batch_index = 1 ORDER BY id") == [
        ("alarm",),
        ("rejection",),
    ]
    retrain_run = client.search_runs(
        [client.get_experiment_by_name(case.settings.experiment_name).experiment_id],
        "tags.step = 'retrain' and tags.model_name = '" + case.model_name + "'",
    )
    assert [r.info.status for r in retrain_run] == ["FAILED"]
