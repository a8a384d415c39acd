"""Performance before the labels arrive, and labels that arrive late, through the CLI on a real MLflow server,
real Postgres and moto S3.

A loans table with an id: the champion scores an unlabelled stream whose relation to default changes from batch 3
(a concept shift: no input moves). Every batch gets an estimated ROC AUC, which cannot see the shift. Labels
delivered later by ``pipeline labels`` fill in the realized ROC AUC, which can: the drop alarms and retrains.
Every realized figure is checked against sklearn's on P(positive) from the served version, loaded here with
MLflow's own loader.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import psycopg2
import pytest
from loans import write_loans
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score
from test_own_model import infer, invoke

from pipeline.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
BUCKET = "test-artifacts"  # the integration servers' bucket (conftest)


def rows(dsn: str, query: str, *params) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def served_proba(model_name: str, version: int, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    model = mlflow.sklearn.load_model(f"models:/{model_name}/{version}")
    return model.predict_proba(frame[list(getattr(model, "feature_names_in_", features))])[:, 1]


@pytest.fixture
def late(settings: Settings, servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PIPELINE_ARTIFACT_BUCKET", BUCKET)  # the prediction log goes to s3://<bucket>/predictions
    files = write_loans(tmp_path / "loans", batches=5, rows=800, shift_at=3, inputs_shift=False)
    infer(files, tmp_path / "drafted.json", "1")
    schema = json.loads((tmp_path / "drafted.json").read_text())
    schema["id"] = "loan_id"
    (tmp_path / "loans.json").write_text(json.dumps(schema))
    truth = {path: pd.read_csv(path) for path in files.batches}
    for path, frame in truth.items():
        frame.drop(columns=["defaulted"]).to_csv(path, index=False)  # the stream arrives unlabelled
    return files, truth, tmp_path / "loans.json"


def test_estimated_then_late_labels_fill_realized_quality_and_retrain(settings, servers, late, tmp_path):
    files, truth, schema_path = late
    name = settings.model_name
    invoke("train", "--data", str(files.reference), "--schema", str(schema_path))
    assert MlflowClient().get_model_version(name, "1").tags["calibration_uri"].endswith("calibration.parquet")

    report = tmp_path / "report.json"
    invoke(
        "monitor", "--reference", str(files.reference), "--current", *map(str, files.batches),
        "--report-json", str(report),
    )  # fmt: skip
    records = json.loads(report.read_text())
    holdout = float(MlflowClient().get_model_version(name, "1").tags["holdout_roc_auc"])

    # Every unlabelled batch has an estimate, and no realized figure; the concept shift does not move it.
    assert all("roc_auc" not in r for r in records)
    estimates = [r["estimated_roc_auc"] for r in records]
    assert all(e is not None and 0.5 < e <= 1 for e in estimates), estimates
    assert max(estimates) - min(estimates) < 0.05, estimates
    assert all(abs(e - holdout) < 0.05 for e in estimates), (estimates, holdout)
    assert not any(r["drift_detected"] or r["estimated_drop"] for r in records)
    assert all(r["action"] == "none" for r in records)

    # The prediction log: one object per batch, the ids of the batch and the served version's P(positive).
    run_key = rows(settings.metrics_db_url, "SELECT DISTINCT run_key FROM batch_metrics WHERE model_name = %s", name)
    (run_key,) = [key for (key,) in run_key]
    s3 = servers.s3()
    keys = sorted(
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"predictions/{name}/")
        for item in page.get("Contents", [])
    )
    assert keys == [f"predictions/{name}/{run_key}/batch-{i:05d}.parquet" for i in range(1, 6)]
    logged = pd.read_parquet(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=keys[1])["Body"].read()))
    frame = truth[files.batches[1]]
    assert logged["id"].tolist() == frame["loan_id"].astype(str).tolist()
    features = [c for c in logged.columns if c.startswith("feature:")]
    expected = served_proba(name, 1, frame, [c.removeprefix("feature:") for c in features])
    np.testing.assert_allclose(logged["p_positive"].to_numpy(), expected, rtol=0, atol=1e-9)
    assert logged["label"].isna().all() and set(logged["champion_version"]) == {1}

    # Delivery A: half of batch 1, all of batches 2-5, and some of everything a labels file gets wrong.
    labels = pd.concat([truth[files.batches[0]].iloc[:400], *(truth[p] for p in files.batches[1:])], ignore_index=True)[
        ["loan_id", "defaulted"]
    ]
    junk = pd.DataFrame(
        {
            "loan_id": [1, 2, 3, None, 5, 6, labels["loan_id"][10], labels["loan_id"][11], labels["loan_id"][11]],
            "defaulted": [1, 0, 1, 1, "maybe", "", labels["defaulted"][10], 0, 1],
        }
    )
    delivery_a = tmp_path / "labels_a.csv"
    pd.concat([labels, junk], ignore_index=True).to_csv(delivery_a, index=False)
    said = invoke("labels", "--labels", str(delivery_a))
    assert "3 ids not in the prediction log" in said
    assert "1 rows without an id" in said
    assert "2 labels other than" in said
    assert "1 ids given more than once with the same label" in said
    assert "1 ids given with both labels" in said
    assert "ALARM" in said and "late-labelled ROC AUC" in said

    stored = {
        index: (labelled, auc, accuracy, error, estimated, drop)
        for index, labelled, auc, accuracy, error, estimated, drop in rows(
            settings.metrics_db_url,
            "SELECT batch_index, labelled_rows, roc_auc, accuracy, estimation_error, estimated_roc_auc, "
            "performance_drop FROM batch_metrics WHERE run_key = %s ORDER BY batch_index",
            run_key,
        )
    }
    conflicted = str(int(labels["loan_id"][11]))
    for index, path in enumerate(files.batches, start=1):
        frame = truth[path] if index > 1 else truth[path].iloc[:400]
        frame = frame[frame["loan_id"].astype(str) != conflicted]
        p = served_proba(name, 1, frame, [c.removeprefix("feature:") for c in features])
        realized = roc_auc_score(frame["defaulted"], p)
        labelled, auc, accuracy, error, estimated, drop = stored[index]
        assert labelled == len(frame), index
        assert auc == pytest.approx(realized, abs=1e-9), index
        assert accuracy == pytest.approx(float(np.mean((p >= 0.5) == frame["defaulted"])), abs=1e-12)
        assert error == pytest.approx(estimated - realized, abs=1e-9)
        # the concept shift: from batch 3 the realized AUC falls far below the holdout, the estimate does not
        assert drop == (index >= 3), (index, realized, holdout)
    assert all(stored[i][3] > 0.1 for i in (3, 4, 5)) and all(abs(stored[i][3]) < 0.08 for i in (1, 2))

    # The drop retrained on the late-labelled rows since the change, and the new version is champion.
    versions = MlflowClient().search_model_versions(f"name = '{name}'")
    made = [v for v in versions if v.tags.get("labels_delivery")]
    assert len(made) == 1 and int(made[0].version) == 2
    assert made[0].tags["window_first_source"] == f"{run_key}#3"
    assert MlflowClient().get_model_version_by_alias(name, "champion").version == "2"
    kinds = [
        kind
        for (kind,) in rows(settings.metrics_db_url, "SELECT kind FROM events WHERE model_name = %s ORDER BY id", name)
    ]
    assert kinds[-4:] == ["labels", "alarm", "retrain", "promotion"]

    # Delivery B, from S3: every label; new are batch 1's other half and the id A gave with both labels (A left it
    # out). Then B again: nothing changes.
    s3.put_object(
        Bucket=BUCKET,
        Key="labels/b.csv",
        Body=pd.concat(truth.values())[["loan_id", "defaulted"]].to_csv(index=False).encode(),
    )
    said = invoke("labels", "--labels", f"s3://{BUCKET}/labels/b.csv")
    assert "401 new labels for 1 batches" in said
    first = rows(
        settings.metrics_db_url,
        "SELECT labelled_rows FROM batch_metrics WHERE run_key = %s AND batch_index = 1",
        run_key,
    )
    assert first == [(800,)]
    before = rows(settings.metrics_db_url, "SELECT * FROM batch_metrics WHERE run_key = %s ORDER BY 2", run_key)
    events = rows(settings.metrics_db_url, "SELECT count(*) FROM events WHERE model_name = %s", name)
    said = invoke("labels", "--labels", f"s3://{BUCKET}/labels/b.csv")
    assert "nothing new" in said
    assert rows(settings.metrics_db_url, "SELECT * FROM batch_metrics WHERE run_key = %s ORDER BY 2", run_key) == before
    assert rows(settings.metrics_db_url, "SELECT count(*) FROM events WHERE model_name = %s", name) == events
    assert len(MlflowClient().search_model_versions(f"name = '{name}'")) == 2


def test_a_timer_run_retrains_on_the_earlier_batches_late_labels_made_usable(settings, servers, late, tmp_path):
    files, truth, schema_path = late
    invoke("train", "--data", str(files.reference), "--schema", str(schema_path))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in files.batches[:2]:
        (inbox / path.name).write_bytes(path.read_bytes())
    invoke("monitor", "--inbox", str(inbox))  # the first timer run: two unlabelled batches
    labels = tmp_path / "labels.csv"
    pd.concat([truth[p] for p in files.batches[:2]])[["loan_id", "defaulted"]].to_csv(labels, index=False)
    invoke("labels", "--labels", str(labels))

    (inbox / files.batches[2].name).write_bytes(files.batches[2].read_bytes())
    said = invoke("monitor", "--inbox", str(inbox))  # the next timer run: one new batch

    assert "1600 labelled rows of 2 earlier batches of the run join the retraining window" in " ".join(said.split())
