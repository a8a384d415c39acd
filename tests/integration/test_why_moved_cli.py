"""Why it moved, end to end through the CLI: an adopted user's pipeline, a batch read in chunks, the alarm's drift
attribution in --report-json and in Postgres, `pipeline explain` on demand, and `pipeline status`."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import psycopg2
import pytest
from loans import write_loans
from test_own_model import infer, invoke, register_user_model, user_pipeline

pytestmark = pytest.mark.e2e


def test_an_adopted_model_names_the_feature_it_relies_on_not_the_one_that_drifted_most(
    settings, servers, tmp_path, monkeypatch
):
    files = write_loans(tmp_path / "loans", batches=1, shift_at=None, text_labels=True, seed=7)
    infer(files, tmp_path / "loans.json", "default")
    name = f"{settings.model_name}-why"
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment("my-experiments")
    register_user_model(name, user_pipeline(pd.read_csv(files.reference)))
    schema = ("--schema", str(tmp_path / "loans.json"))
    invoke("adopt", "--model-name", name, "--version", "1", "--holdout", str(files.batches[0]), *schema)
    invoke("configure", "--model-name", name, "--retrain", "off")
    # debt_ratio, which the model weighs heavily, moves a little; age, which it hardly weighs, moves a lot
    batch = pd.read_csv(files.batches[0])
    batch["debt_ratio"] = (batch["debt_ratio"] + 0.1).clip(0, 1)
    batch["age"] = batch["age"] + 25
    moved = tmp_path / "moved.csv"
    batch.to_csv(moved, index=False)
    monkeypatch.setenv("PIPELINE_CHUNK_MB", str(moved.stat().st_size / 1024 / 1024 / 4))  # read in chunks
    report = tmp_path / "report.json"
    said = invoke(
        "monitor", "--model-name", name, "--reference", str(files.reference), "--current", str(moved),
        "--report-json", str(report), "--threshold", "0.05",
    )  # fmt: skip
    assert "read in" in said and "chunks" in said
    (record,) = json.loads(report.read_text())
    assert record["drift_detected"]
    assert record["drifted_features"][0] == "age"  # the drift scores blame age
    assert record["drift_attribution"][0]["feature"] == "debt_ratio"  # the model's predictions moved with debt
    with psycopg2.connect(settings.metrics_db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT feature, share FROM drift_attribution WHERE model_name = %s ORDER BY rank", (name,))
        stored = cur.fetchall()
        cur.execute("SELECT details FROM events WHERE model_name = %s AND kind = 'alarm'", (name,))
        (details,) = cur.fetchone()
    conn.close()
    assert stored[0][0] == "debt_ratio" and len(stored) == 5
    assert details["drift_attribution"] == record["drift_attribution"]

    out = tmp_path / "why.json"
    said = " ".join(invoke("explain", "--model-name", name, "--batch", "1", "--json", str(out), *schema).split())
    assert "debt_ratio" in said and f"{len(batch)} of {len(batch)} rows sampled, 5 features tried" in said
    explained = json.loads(out.read_text())
    assert explained["drift_attribution"][0]["feature"] == "debt_ratio"
    assert explained["drift_attribution_sample"]["of_rows"] == len(batch)
    status = " ".join(invoke("status", "--model-name", name).split())
    assert "why it moved, batch 1" in status and "debt_ratio" in status
