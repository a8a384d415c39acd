"""A user's own data and model, through the CLI, on a real MLflow server, real Postgres and moto S3.

The data is a table the project has never seen (``loans.py``): an id to ignore, a timestamp, an int-coded
category, a 0/1 or text target. Every reported ROC AUC is checked against the AUC of P(positive) computed
here, independently, from the version that served the batch, loaded with MLflow's own loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import psycopg2
import pytest
import skops.io
from loans import write_loans
from mlflow import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.domain.schema import read_schema

pytestmark = pytest.mark.integration


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    if result.exit_code != code:
        raise AssertionError(
            f"pipeline {' '.join(args)} exited {result.exit_code} (expected {code}):\n{result.output}\n"
            f"{result.exception!r}"
        )
    return result.output


def rows(dsn: str, query: str, *params) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def served_auc(model_name: str, version: int, batch: Path, positive_class) -> float:
    """ROC AUC of P(positive) from the served version, loaded by MLflow, on the batch as pandas reads it."""
    client = MlflowClient()
    mv = client.get_model_version(model_name, str(version))
    model = mlflow.sklearn.load_model(f"models:/{model_name}/{version}")
    schema_path = mlflow.artifacts.download_artifacts(mv.tags["schema_uri"])
    schema = read_schema(schema_path)
    frame = pd.read_csv(batch)
    features = frame[list(getattr(model, "feature_names_in_", schema.features))]
    column = list(model.classes_).index(positive_class)
    truth = frame[schema.target].astype(str).str.strip() == str(schema.positive)
    return float(roc_auc_score(truth, model.predict_proba(features)[:, column]))


def monitor_files(files, report: Path) -> list[dict]:
    invoke(
        "monitor",
        "--reference",
        str(files.reference),
        "--current",
        *map(str, files.batches),
        "--report-json",
        str(report),
    )
    return json.loads(report.read_text())


def infer(files, out: Path, positive: str) -> str:
    return invoke(
        "schema",
        "infer",
        "--data",
        str(files.reference),
        "--target",
        "defaulted",
        "--positive",
        positive,
        "--categorical",
        "region",
        "--out",
        str(out),
    )


@pytest.mark.e2e
def test_a_foreign_table_end_to_end_infer_train_monitor_retrain_promote(settings, tmp_path):
    files = write_loans(tmp_path / "loans", batches=7, shift_at=3)
    said = infer(files, tmp_path / "loans.json", "1")
    schema = read_schema(tmp_path / "loans.json")
    assert "loan_id" in said and "applied_at" in said  # left out, with a message saying so
    assert schema.numerical == ("age", "income", "debt_ratio") and schema.categorical == ("region", "product")
    assert (schema.target, schema.positive, schema.negative) == ("defaulted", 1, 0)

    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))
    records = monitor_files(files, tmp_path / "report.json")  # no --schema: it comes from the champion
    assert [r["batch"] for r in records] == list(range(1, 8))
    assert not any(r["drift_detected"] for r in records[:2])
    assert records[2]["drift_detected"] and records[2]["drifted_features"]
    assert set(records[2]["drifted_features"]) <= set(schema.features)
    promoted = [r for r in records if r["action"] == "retrained-promoted"]
    assert promoted, [r["action"] for r in records]
    assert records[-1]["champion_version"] >= 2
    for record, batch in zip(records, files.batches, strict=True):
        expected = served_auc(settings.model_name, record["champion_version"], batch, 1)
        assert record["roc_auc"] == pytest.approx(expected, abs=1e-9)

    stored = rows(
        settings.metrics_db_url,
        "SELECT batch_index, feature, drifted FROM feature_drift WHERE model_name = %s "
        "ORDER BY batch_index, score DESC NULLS LAST",
        settings.model_name,
    )
    assert len(stored) == len(records) * len(schema.features)
    for record in records:
        drifted = [feature for index, feature, flag in stored if index == record["batch"] and flag]
        assert drifted == record["drifted_features"]
    status = invoke("status")
    top_of_last = next(feature for index, feature, _flag in stored if index == records[-1]["batch"])
    assert "top drifted features" in status and top_of_last in status

    client = MlflowClient()
    for version in client.search_model_versions(f"name = '{settings.model_name}'"):
        recorded = read_schema(mlflow.artifacts.download_artifacts(version.tags["schema_uri"]))
        assert recorded == schema  # a retrain keeps the champion's schema


def test_text_labels_whose_positive_sorts_first_are_not_read_inverted_when_trained(settings, tmp_path):
    files = write_loans(tmp_path / "loans", batches=2, shift_at=None, text_labels=True)
    infer(files, tmp_path / "loans.json", "default")
    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))
    records = monitor_files(files, tmp_path / "report.json")
    for record, batch in zip(records, files.batches, strict=True):
        assert record["roc_auc"] > 0.7  # inverted, it would read below 0.3
        # the project's own models are fitted on 1 = the schema's positive label
        assert record["roc_auc"] == pytest.approx(served_auc(settings.model_name, 1, batch, 1), abs=1e-9)


def user_pipeline(frame: pd.DataFrame, unknown: str = "ignore"):
    """What a user would fit: a scikit-learn pipeline on the columns as pandas reads them, text labels."""
    numeric = ["age", "income", "debt_ratio"]
    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), numeric),
            ("region", OneHotEncoder(handle_unknown="ignore"), ["region"]),
            ("product", OneHotEncoder(handle_unknown=unknown), ["product"]),
        ]
    )
    features = frame[[*numeric, "region", "product"]]
    return make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(features, frame["defaulted"])


def register_user_model(name: str, model) -> None:
    """MLflow's defaults (skops), with the types MLflow itself asks the user to trust at log time."""
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    with mlflow.start_run(run_name="my own training"):
        mlflow.sklearn.log_model(model, name="model", registered_model_name=name, skops_trusted_types=untrusted)


def test_an_adopted_pipeline_with_text_labels_serves_and_monitors(settings, servers, tmp_path):
    files = write_loans(tmp_path / "loans", batches=2, shift_at=None, text_labels=True, seed=5)
    infer(files, tmp_path / "loans.json", "default")
    training = pd.read_csv(files.reference)
    model = user_pipeline(training)
    assert list(model.classes_) == ["default", "repaid"]  # the positive label is column 0
    name = f"{settings.model_name}-own"
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment("my-experiments")
    register_user_model(name, model)

    said = invoke(
        "adopt",
        "--model-name",
        name,
        "--version",
        "1",
        "--holdout",
        str(files.batches[0]),
        "--schema",
        str(tmp_path / "loans.json"),
    )
    assert "adopted as champion" in said
    client = MlflowClient()
    tags = client.get_model_version(name, "1").tags
    holdout = pd.read_csv(files.batches[0])
    own_auc = roc_auc_score(
        holdout["defaulted"] == "default", model.predict_proba(holdout[model.feature_names_in_])[:, 0]
    )
    assert float(tags["holdout_roc_auc"]) == pytest.approx(own_auc, abs=1e-6)
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    kinds = rows(settings.metrics_db_url, "SELECT kind, model_version FROM events WHERE model_name = %s", name)
    assert kinds == [("adoption", 1)]
    # an adopted model is never replaced without asking: its own mode is challenger, whatever PIPELINE_RETRAIN says
    assert client.get_registered_model(name).tags["retrain_mode"] == "challenger"
    said = " ".join(invoke("configure", "--model-name", name).split())
    assert f"{name}: retraining mode challenger (model tag retrain_mode)" in said
    said = " ".join(invoke("configure", "--model-name", name, "--retrain", "OFF").split())
    assert "retraining mode off (model tag retrain_mode)" in said
    refused = " ".join(invoke("configure", "--model-name", name, "--retrain", "sometimes", code=2).split())
    assert "--retrain: retraining mode 'sometimes' is not one of off | challenger | auto" in refused
    assert client.get_registered_model(name).tags["retrain_mode"] == "off"

    report = tmp_path / "report.json"
    invoke(
        "monitor",
        "--model-name",
        name,
        "--reference",
        str(files.reference),
        "--current",
        str(files.batches[1]),
        "--report-json",
        str(report),
    )
    record = json.loads(report.read_text())[0]
    batch = pd.read_csv(files.batches[1])
    expected = roc_auc_score(batch["defaulted"] == "default", model.predict_proba(batch[model.feature_names_in_])[:, 0])
    assert record["roc_auc"] == pytest.approx(expected, abs=1e-9) and record["roc_auc"] > 0.7
    assert record["champion_version"] == 1 and not record["performance_drop"]


def test_a_users_model_that_fails_on_a_batch_skips_that_batch_in_one_line(settings, tmp_path):
    files = write_loans(tmp_path / "loans", batches=2, shift_at=None, text_labels=True, seed=6)
    infer(files, tmp_path / "loans.json", "default")
    strict = user_pipeline(pd.read_csv(files.reference), unknown="error")  # refuses a category it never saw
    name = f"{settings.model_name}-strict"
    mlflow.set_tracking_uri(settings.tracking_uri)
    register_user_model(name, strict)
    invoke(
        "adopt",
        "--model-name",
        name,
        "--version",
        "1",
        "--holdout",
        str(files.batches[0]),
        "--schema",
        str(tmp_path / "loans.json"),
    )
    odd = pd.read_csv(files.batches[1])
    odd.loc[0, "product"] = "boat"  # a level the model's encoder never saw
    odd.to_csv(tmp_path / "odd.csv", index=False)
    report = tmp_path / "report.json"
    out = invoke(
        "monitor",
        "--model-name",
        name,
        "--reference",
        str(files.reference),
        "--current",
        str(files.batches[0]),
        str(tmp_path / "odd.csv"),
        "--report-json",
        str(report),
        code=1,
    )
    records = json.loads(report.read_text())
    assert "error" not in records[0] and records[0]["roc_auc"] > 0.7
    assert "could not score" in records[1]["error"] and "\n" not in records[1]["error"]
    assert "odd.csv" in " ".join(out.split())
    assert rows(settings.metrics_db_url, "SELECT count(*) FROM batch_metrics WHERE model_name = %s", name) == [(1,)]


def test_a_schema_that_differs_from_the_champions_is_one_line_naming_the_columns(settings, tmp_path):
    files = write_loans(tmp_path / "loans", batches=1, shift_at=None)
    infer(files, tmp_path / "loans.json", "1")
    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))
    other = json.loads((tmp_path / "loans.json").read_text())
    other["numerical"].remove("income")
    other["categorical"].append("income")
    (tmp_path / "other.json").write_text(json.dumps(other))
    out = invoke(
        "monitor",
        "--reference",
        str(files.reference),
        "--current",
        str(files.batches[0]),
        "--schema",
        str(tmp_path / "other.json"),
        code=2,
    )
    line = " ".join(out.split())
    assert "differs from" in line and "income" in line
    assert rows(settings.metrics_db_url, "SELECT count(*) FROM batch_metrics")[0][0] == 0


def test_a_champion_without_holdout_metrics_serves_with_the_performance_alarm_off(settings, tmp_path):
    files = write_loans(tmp_path / "loans", batches=1, shift_at=None, text_labels=True, seed=3)
    infer(files, tmp_path / "loans.json", "default")
    name = f"{settings.model_name}-byhand"
    mlflow.set_tracking_uri(settings.tracking_uri)
    register_user_model(name, user_pipeline(pd.read_csv(files.reference)))
    MlflowClient().set_registered_model_alias(name, "champion", "1")  # as set by hand in the UI
    out = invoke(
        "monitor",
        "--model-name",
        name,
        "--reference",
        str(files.reference),
        "--current",
        str(files.batches[0]),
        "--schema",
        str(tmp_path / "loans.json"),
    )
    assert out.count("performance alarm is off") == 1
    status = invoke("status", "--model-name", name)
    assert "performance alarm: off" in status


def test_refused_models_leave_the_champion_unchanged(settings, tmp_path):
    files = write_loans(tmp_path / "loans", batches=1, shift_at=None, text_labels=True, seed=4)
    infer(files, tmp_path / "loans.json", "default")
    name = f"{settings.model_name}-refused"
    mlflow.set_tracking_uri(settings.tracking_uri)
    training = pd.read_csv(files.reference)
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            user_pipeline(training), name="model", registered_model_name=name, serialization_format="cloudpickle"
        )
    relabelled = training.assign(defaulted=np.where(training["defaulted"] == "default", "bad", "good"))
    register_user_model(name, user_pipeline(relabelled))
    holdout = ["--holdout", str(files.batches[0]), "--schema", str(tmp_path / "loans.json"), "--model-name", name]

    pickled = " ".join(invoke("adopt", "--version", "1", *holdout, code=2).split())
    assert "PIPELINE_ALLOW_PICKLED_MODELS" in pickled
    labels = " ".join(invoke("adopt", "--version", "2", *holdout, code=2).split())
    assert "'bad', 'good'" in labels and "'default'" in labels
    missing = " ".join(invoke("adopt", "--version", "9", *holdout, code=2).split())
    assert "no version 9" in missing
    assert MlflowClient().get_registered_model(name).aliases == {}


def test_promote_undoes_a_rollback(settings, tmp_path):
    files = write_loans(tmp_path / "loans", batches=1, shift_at=None)
    infer(files, tmp_path / "loans.json", "1")
    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))
    invoke("train", "--data", str(files.batches[0]))  # v2, the champion's schema
    client = MlflowClient()
    aliases = client.get_registered_model(settings.model_name).aliases
    if aliases["champion"] != "2":
        invoke("promote", "--version", "2")
    invoke("rollback")
    assert client.get_registered_model(settings.model_name).aliases["champion"] == "1"
    out = invoke("promote", "--version", "2")
    assert "champion is now v2 (was v1)" in " ".join(out.split())
    aliases = client.get_registered_model(settings.model_name).aliases
    assert aliases["champion"] == "2" and aliases["previous"] == "1"
