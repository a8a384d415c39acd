"""Real data as it comes, through the CLI on a real MLflow server, real Postgres and moto S3: a batch with a
quarter of its labels empty is monitored, its ROC AUC measured on its labelled rows, the empty ones said once."""

from __future__ import annotations

import json

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from loans import write_loans
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.domain.schema import read_schema

pytestmark = pytest.mark.integration


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"pipeline {' '.join(args)} exited {result.exit_code}:\n{result.output}"
    return result.output


def test_a_batch_with_a_quarter_of_its_labels_empty_is_monitored_on_its_labelled_rows(settings, tmp_path):
    files = write_loans(tmp_path / "loans", reference_rows=800, batches=1, rows=400, shift_at=None)
    batch = pd.read_csv(files.batches[0])
    empty = np.zeros(len(batch), dtype=bool)
    empty[np.random.default_rng(4).choice(len(batch), len(batch) // 4, replace=False)] = True
    batch.loc[empty, "defaulted"] = None
    batch.to_csv(files.batches[0], index=False)
    invoke("schema", "infer", "--data", str(files.reference), "--target", "defaulted", "--positive", "1",
           "--categorical", "region", "--out", str(tmp_path / "loans.json"))  # fmt: skip
    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))

    report = tmp_path / "report.json"
    said = invoke("monitor", "--reference", str(files.reference), "--current", str(files.batches[0]),
                  "--report-json", str(report))  # fmt: skip

    (record,) = json.loads(report.read_text())
    assert record["rows"] == 400 and record["labelled_rows"] == 300
    lines = [line for line in said.splitlines() if "have an empty 'defaulted'" in line]
    assert lines == ["[batch 1] 100 of 400 rows have an empty 'defaulted': unlabelled rows, scored and "
                     "drift-measured; quality and training use the 300 labelled"]  # fmt: skip
    # the AUC of the served version on the labelled rows, computed here with MLflow's own loader
    version = MlflowClient().get_model_version(settings.model_name, str(record["champion_version"]))
    schema = read_schema(mlflow.artifacts.download_artifacts(version.tags["schema_uri"]))
    model = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{record['champion_version']}")
    labelled = pd.read_csv(files.batches[0])[~empty]
    features = labelled[list(getattr(model, "feature_names_in_", schema.features))]
    proba = model.predict_proba(features)[:, list(model.classes_).index(1)]
    assert record["roc_auc"] == pytest.approx(roc_auc_score(labelled["defaulted"] == 1, proba), abs=1e-9)
