"""A batch several times larger than a chunk, through the CLI on a real MLflow server, Postgres and moto: read in
chunks (the mechanism is asserted, not a duration), and recorded as the same batch read whole is, within the
profile's bound."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from loans import write_loans
from test_late_labels import BUCKET, rows
from test_own_model import infer, invoke

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def logged(servers, name: str, run_key: str, index: int) -> pd.DataFrame:
    key = f"predictions/{name}/{run_key}/batch-{index:05d}.parquet"
    return pd.read_parquet(io.BytesIO(servers.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()))


def test_a_batch_larger_than_a_chunk_is_read_in_chunks_and_agrees_with_the_whole_read(
    settings, servers, tmp_path, monkeypatch
):
    monkeypatch.setenv("PIPELINE_ARTIFACT_BUCKET", BUCKET)
    files = write_loans(tmp_path / "loans", batches=2, rows=6000, shift_at=2)
    infer(files, tmp_path / "drafted.json", "1")
    schema = {**json.loads((tmp_path / "drafted.json").read_text()), "id": "loan_id"}
    (tmp_path / "loans.json").write_text(json.dumps(schema))
    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))
    size_mb = files.batches[0].stat().st_size / 1024 / 1024
    # no alarm: one champion throughout
    for name in ("AUC_TOLERANCE", "PRIOR_TOLERANCE", "DRIFTED_SHARE_THRESHOLD", "MULTIVARIATE_THRESHOLD"):
        monkeypatch.setenv(f"PIPELINE_{name}", "0.99")

    def monitor(run_id: str, chunk_mb: float) -> tuple[str, list[dict]]:
        monkeypatch.setenv("PIPELINE_CHUNK_MB", str(chunk_mb))
        monkeypatch.setenv("PIPELINE_CHUNK_ROWS", "1000")
        report = tmp_path / f"{run_id}.json"
        said = invoke(
            "monitor", "--reference", str(files.reference), "--current", *map(str, files.batches),
            "--run-id", run_id, "--report-json", str(report), "--threshold", "10",
        )  # fmt: skip
        return said, json.loads(report.read_text())

    said_whole, whole = monitor("whole", chunk_mb=size_mb * 10)
    said_chunked, chunked = monitor("chunked", chunk_mb=size_mb / 10)

    assert "chunks" not in said_whole
    found = re.findall(r"read in (\d+) chunks \((\d+) rows", said_chunked)
    assert [rows for _chunks, rows in found] == ["6000", "6000"]
    assert all(3 <= int(chunks) <= 6 for chunks, _rows in found), found  # chunks of about 1,000 rows or more
    assert {r["champion_version"] for r in whole + chunked} == {1}
    for a, b in zip(whole, chunked, strict=True):
        assert (a["rows"], a["drifted_columns"], a["drift_detected"]) == (b["rows"], b["drifted_columns"],
                                                                            b["drift_detected"])  # fmt: skip
        assert b["prediction_drift"] == pytest.approx(a["prediction_drift"], rel=0.01, abs=1e-3)
        assert b["roc_auc"] == pytest.approx(a["roc_auc"], abs=1e-3)
        assert b["accuracy"] == pytest.approx(a["accuracy"], abs=1e-12)
        assert b["estimated_roc_auc"] == pytest.approx(a["estimated_roc_auc"], abs=1e-3)
        assert b["estimated_accuracy"] == pytest.approx(a["estimated_accuracy"], abs=1e-9)
        assert b["mean_prediction"] == pytest.approx(a["mean_prediction"], abs=1e-12)
        assert b["share_missing"] == pytest.approx(a["share_missing"], abs=1e-12)
        # multivariate drift: measured on a sample of the whole batch, and on the uniform sample kept over the chunks
        assert a["multivariate_auc"] is not None and b["multivariate_auc"] is not None
        assert b["multivariate_auc"] == pytest.approx(a["multivariate_auc"], abs=0.06)  # two samples of 2,000 rows
        assert b["multivariate_drift"] == a["multivariate_drift"]
    stored = {
        key: (drifted, share)
        for key, drifted, share in rows(
            settings.metrics_db_url,
            "SELECT run_key, sum(drifted_columns), sum(share_missing) FROM batch_metrics "
            "WHERE model_name = %s GROUP BY run_key",
            settings.model_name,
        )
    }
    assert stored["whole"][0] == stored["chunked"][0]

    # The prediction log of the chunked read: every row once, in order, the same probabilities.
    for index in (1, 2):
        a, b = (
            logged(servers, settings.model_name, "whole", index),
            logged(servers, settings.model_name, "chunked", index),
        )
        assert b["row"].tolist() == list(range(6000))
        assert b["id"].tolist() == a["id"].tolist()
        np.testing.assert_allclose(b["p_positive"].to_numpy(), a["p_positive"].to_numpy(), rtol=0, atol=1e-12)
        assert b["label"].tolist() == a["label"].tolist()


def test_a_bad_value_in_a_later_chunk_skips_the_batch_in_one_line_and_writes_nothing(
    settings, servers, tmp_path, monkeypatch
):
    monkeypatch.setenv("PIPELINE_ARTIFACT_BUCKET", BUCKET)
    files = write_loans(tmp_path / "loans", batches=1, rows=5000, shift_at=None)
    infer(files, tmp_path / "drafted.json", "1")
    schema = {**json.loads((tmp_path / "drafted.json").read_text()), "id": "loan_id"}
    (tmp_path / "loans.json").write_text(json.dumps(schema))
    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))
    frame = pd.read_csv(files.batches[0])
    frame["age"] = frame["age"].astype(object)
    frame.loc[4321, "age"] = "forty"
    frame.to_csv(files.batches[0], index=False)
    monkeypatch.setenv("PIPELINE_CHUNK_MB", "0.05")
    monkeypatch.setenv("PIPELINE_CHUNK_ROWS", "1000")

    said = invoke("monitor", "--reference", str(files.reference), "--current", str(files.batches[0]), code=1)

    assert f"{files.batches[0]}: column 'age' holds non-numeric value 'forty'" in " ".join(said.split())
    assert rows(settings.metrics_db_url, "SELECT count(*) FROM batch_metrics WHERE model_name = %s",
                settings.model_name) == [(0,)]  # fmt: skip
    listed = servers.s3().list_objects_v2(Bucket=BUCKET, Prefix=f"predictions/{settings.model_name}/")
    assert listed.get("KeyCount", 0) == 0  # the chunks before the bad one left no log behind


def test_drift_over_a_period_is_the_merge_of_the_stored_profiles(settings, servers, tmp_path, monkeypatch):
    import mlflow.sklearn

    from pipeline.domain.schema import read_schema
    from pipeline.io.data import load_batch
    from pipeline.stats.drift import ReferenceProfile

    monkeypatch.setenv("PIPELINE_ARTIFACT_BUCKET", BUCKET)
    files = write_loans(tmp_path / "loans", batches=2, rows=4000, shift_at=2)
    infer(files, tmp_path / "loans.json", "1")
    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))
    for name in ("AUC_TOLERANCE", "PRIOR_TOLERANCE", "DRIFTED_SHARE_THRESHOLD", "MULTIVARIATE_THRESHOLD"):
        monkeypatch.setenv(f"PIPELINE_{name}", "0.99")
    monkeypatch.setenv("PIPELINE_CHUNK_MB", "0.05")
    monkeypatch.setenv("PIPELINE_CHUNK_ROWS", "1500")
    invoke("monitor", "--reference", str(files.reference), "--current", *map(str, files.batches), "--threshold", "10")

    said = invoke("report", "--out", str(tmp_path / "period"), "--since", "2000-01-01", "--reference",
                  str(files.reference))  # fmt: skip
    found = json.loads((tmp_path / "period" / "period_drift.json").read_text())

    assert "2 batches, 8000 rows" in said and (found["batches"], found["rows"]) == (2, 8000)
    # The oracle: the exact drift of both batches read whole, together, scored by the served version.
    schema = read_schema(tmp_path / "loans.json")
    model = mlflow.sklearn.load_model(f"models:/{settings.model_name}/1")
    reference = load_batch(str(files.reference), schema).frame
    both = pd.concat([load_batch(str(path), schema).frame for path in files.batches], ignore_index=True)
    features = list(getattr(model, "feature_names_in_", schema.features))
    exact = ReferenceProfile(
        reference, model.predict_proba(reference[features])[:, 1], schema, prediction_threshold=10,
        column_threshold=0.1,
    ).measure(both, model.predict_proba(both[features])[:, 1])  # fmt: skip
    assert found["prediction_drift"] == pytest.approx(exact.prediction_drift, rel=0.01, abs=1e-3)
    assert found["drifted_columns"] == exact.drifted_columns
    assert found["share_missing"] == pytest.approx(exact.share_missing, abs=1e-12)

    missing = invoke("report", "--out", str(tmp_path / "none"), "--since", "2999-01-01", code=2)
    assert "no stored batch profile" in missing
