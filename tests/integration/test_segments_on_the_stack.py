"""Segments end to end through the CLI, for an adopted model and a trained one: a shift confined to one segment of
five is found in that segment only, at the batch where it starts (read in chunks for the adopted model); a batch
whose segments' mix alone moved says mix, with no segment alarmed; the segments are in --report-json, in
segment_metrics and in `pipeline status`; the segment alarm is notified when it opens."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import psycopg2
import pytest
from loans import write_loans
from test_own_model import infer, invoke, register_user_model, user_pipeline

pytestmark = pytest.mark.e2e

AGE = {"column": "age", "bins": [30, 42, 54, 66]}  # five segments of about a fifth of the applicants each
OLDEST = "age=>=66"


def batches(tmp_path: Path, seed: int) -> tuple[Path, Path, list[Path]]:
    """The schema (with segments), the reference, and three batches: stable; the oldest applicants' debt up (only
    theirs); the oldest three times as common, each segment as before."""
    files = write_loans(tmp_path / "loans", batches=6, rows=1200, shift_at=None, text_labels=True, seed=seed)
    schema = tmp_path / "loans.json"
    infer(files, schema, "default")
    raw = json.loads(schema.read_text())
    schema.write_text(json.dumps({**raw, "segments": ["product", AGE]}))
    stable = pd.read_csv(files.batches[0])
    shifted = pd.read_csv(files.batches[1])
    old = shifted["age"] >= 66
    shifted.loc[old, "debt_ratio"] = (shifted.loc[old, "debt_ratio"] + 0.3).clip(0, 1)
    pool = pd.concat([pd.read_csv(path) for path in files.batches[2:]], ignore_index=True)
    weight = np.where(pool["age"] >= 66, 3.0, 1.0)
    mixed = pool.sample(1200, weights=weight, random_state=seed)
    paths = [tmp_path / f"{name}.csv" for name in ("stable", "shifted", "mixed")]
    for frame, path in zip((stable, shifted, mixed), paths, strict=True):
        frame.to_csv(path, index=False)
    return schema, files.reference, paths


def check(report: Path, dsn: str, model: str) -> None:
    stable, shifted, mixed = json.loads(report.read_text())
    assert stable["segments"]["alarmed"] == []
    # the batch where it starts, that age segment only (the products all hold old applicants: theirs may move too)
    assert [name for name in shifted["segments"]["alarmed"] if name.startswith("age=")] == [OLDEST]
    by_column = {d["column"]: d for d in mixed["segments"]["decomposition"]}
    # no age segment changed; a product's own mix of ages did (more old applicants in each): it may move
    assert [name for name in mixed["segments"]["alarmed"] if name.startswith("age=")] == []
    assert by_column["age"]["moved"] == "mix" and by_column["age"]["mix"] > 0
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT batch_index, segment_column || '=' || segment_value FROM segment_metrics "
            "WHERE model_name = %s AND alarmed AND segment_column = 'age' ORDER BY batch_index",
            (model,),
        )
        alarmed = cur.fetchall()
    conn.close()
    assert alarmed == [(2, OLDEST)]
    status = " ".join(invoke("status", "--model-name", model).split())
    assert "worst segments, batch 3" in status


def monitor(model: str, reference: Path, paths: list[Path], report: Path) -> str:
    return invoke(
        "monitor", "--model-name", model, "--reference", str(reference), "--current", *map(str, paths),
        "--report-json", str(report),
    )  # fmt: skip


def test_segments_of_an_adopted_model_read_in_chunks(settings, servers, tmp_path, monkeypatch):
    schema, reference, paths = batches(tmp_path, seed=21)
    name = f"{settings.model_name}-segments"
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment("my-experiments")
    register_user_model(name, user_pipeline(pd.read_csv(reference)))
    invoke("adopt", "--model-name", name, "--version", "1", "--holdout", str(paths[0]), "--schema", str(schema))
    invoke("configure", "--model-name", name, "--retrain", "off")
    monkeypatch.setenv("PIPELINE_CHUNK_MB", str(paths[1].stat().st_size / 1024 / 1024 / 3))  # read in chunks
    said = monitor(name, reference, paths, tmp_path / "report.json")
    assert "read in" in said and "segments of a batch read in chunks" in said
    check(tmp_path / "report.json", settings.metrics_db_url, name)


def test_segments_of_a_trained_model(settings, servers, tmp_path, webhook_receiver, monkeypatch):
    schema, reference, paths = batches(tmp_path, seed=22)
    name = f"{settings.model_name}-segments-trained"
    invoke("train", "--model-name", name, "--data", str(reference), "--schema", str(schema))
    invoke("configure", "--model-name", name, "--retrain", "off")
    monkeypatch.setenv("PIPELINE_NOTIFY_URL", webhook_receiver.url)
    monitor(name, reference, paths, tmp_path / "report.json")
    check(tmp_path / "report.json", settings.metrics_db_url, name)
    # a person hears of the segment alarm when it opens, at the batch where it starts, naming the segment
    told = [body for body in webhook_receiver.bodies if body["kind"].startswith("segment-")]
    assert told and told[0]["kind"] == "segment-alarm" and told[0]["batch"] == 2, told
    assert OLDEST in [item["segment"] for item in told[0]["details"]["segments"]]
    assert f"SEGMENT ALARM: {name} v1, batch 2" in told[0]["text"]
