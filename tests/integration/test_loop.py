"""The whole loop through the CLI, on a real MLflow server, real Postgres and moto S3."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg2
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.domain.policy_types import Action
from pipeline.domain.records import VERDICT_COLUMNS
from pipeline.model.flavors import load_model

pytestmark = pytest.mark.integration

REPORT_FIELDS = {
    "batch",
    "source",
    "rows",
    "prediction_drift",
    "drifted_columns",
    "share_missing",
    "drift_detected",
    "action",
    "model_name",
    "champion_version",
}
ACTIONS = {action.value for action in Action} - {"skipped-busy"}


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    if result.exit_code != code:
        raise AssertionError(
            f"pipeline {' '.join(args)} exited {result.exit_code}:\n{result.output}\n{result.exception!r}"
        )
    return result.output


def synth(out: Path, kind: str, drift_at: int | None, batches: int = 6, rows: int = 800) -> list[str]:
    args = [
        "data",
        "synth",
        "--out",
        str(out),
        "--rows",
        str(rows),
        "--batches",
        str(batches),
        "--reference-rows",
        "3000",
        "--drift-kind",
        kind,
        "--seed",
        "7",
    ]
    if drift_at:
        args += ["--drift-at", str(drift_at)]
    invoke(*args)
    return [str(out / f"batch_{i:03d}.csv") for i in range(1, batches + 1)]


def rows(dsn: str, query: str, *params) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


@pytest.fixture
def bootstrapped(settings, tmp_path):
    """A champion trained on a synthetic reference."""
    batches = synth(tmp_path / "data", "none", None)
    invoke("train", "--data", str(tmp_path / "data" / "reference.csv"))
    return tmp_path / "data", batches


def monitor(settings, data: Path, batches: list[str], report: Path, *extra: str, code: int = 0) -> list[dict]:
    invoke(
        "monitor",
        "--reference",
        str(data / "reference.csv"),
        "--current",
        *batches,
        "--report-json",
        str(report),
        *extra,
        code=code,
    )
    return json.loads(report.read_text())


def test_bootstrap_registers_one_champion_with_artifacts_in_s3(settings, bootstrapped, servers):
    client = MlflowClient(settings.tracking_uri)
    model = client.get_registered_model(settings.model_name)
    assert model.aliases == {"champion": "1", "challenger": "1"}
    version = client.get_model_version(settings.model_name, "1")
    assert version.tags["reason"] == "bootstrap" and "rows" in version.tags["window"]
    assert version.source.startswith("models:/") or "mlflow-artifacts" in version.source
    loaded = load_model(f"models:/{settings.model_name}@champion").model
    assert hasattr(loaded, "predict_proba")
    keys = servers.artifact_keys()
    assert any(key.startswith("mlflow/") and key.endswith("model.skops") for key in keys), keys[:10]
    # candidates and nested tuning trials are tracked under the retrain run
    runs = client.search_runs(
        [client.get_experiment_by_name("integration-tests").experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{version.run_id}'",
    )
    steps = sorted(run.data.tags.get("step") for run in runs)
    assert steps.count("candidate") == 2 and steps.count("tuning-trial") == 2


def test_the_champion_is_refitted_on_the_whole_window_and_judged_before(settings, bootstrapped, servers):
    """The version is fitted on all 3,000 rows; its holdout metrics and calibration scores are the train-slice
    model's on the newest 600 (out of sample), which the registered model's own scores there are not."""
    import mlflow.artifacts
    import pandas as pd

    from pipeline.domain.schema import load_schema
    from pipeline.io.data import labels_of, load_batch
    from pipeline.model.train import predict_proba
    from pipeline.stats.metrics import quality

    data, _batches = bootstrapped
    client = MlflowClient(settings.tracking_uri)
    version = client.get_model_version(settings.model_name, "1")
    assert version.tags["fit_rows"] == "3000" == version.tags["window_rows"]
    assert client.get_run(version.run_id).data.params["fit_rows"] == "3000"
    schema = load_schema()
    holdout = load_batch(str(data / "reference.csv"), schema).frame.iloc[-600:].reset_index(drop=True)
    calibration = pd.read_parquet(mlflow.artifacts.download_artifacts(artifact_uri=version.tags["calibration_uri"]))
    assert calibration["label"].tolist() == labels_of(holdout, schema).tolist()
    judged = quality(calibration["label"].to_numpy(), calibration["p_positive"].to_numpy())
    assert float(version.tags["holdout_log_loss"]) == pytest.approx(judged["log_loss"], abs=1e-6)
    registered = predict_proba(load_model(f"models:/{settings.model_name}@champion").model, holdout, schema)
    assert abs(registered - calibration["p_positive"].to_numpy()).max() > 1e-3


def test_stable_stream_raises_no_alarm_retrains_nothing_and_notifies_no_one(
    settings, bootstrapped, tmp_path, webhook_receiver, monkeypatch
):
    monkeypatch.setenv("PIPELINE_NOTIFY_URL", webhook_receiver.url)
    data, batches = bootstrapped
    records = monitor(settings, data, batches, tmp_path / "stable.json", "--fail-on-alarm")  # no alarm: exit 0
    assert [r["batch"] for r in records] == list(range(1, len(batches) + 1))
    for record in records:
        assert record.keys() >= REPORT_FIELDS
        assert record["action"] == "none" and not record["drift_detected"]
        assert record["prediction_drift"] < settings.drift_threshold
        assert record["champion_version"] == 1 and record["model_name"] == settings.model_name
        assert 0.5 < record["roc_auc"] <= 1 and 0 < record["accuracy"] <= 1
        assert record["rows"] == 800
        # beside each score its noise at 800 rows: a p-value, the edge chance reaches, the AUC's error
        assert 0 < record["prediction_drift_p"] <= 1 and 0 < record["drift_noise_edge"] < 1
        assert 0 < record["roc_auc_stderr"] < 0.1
    assert rows(settings.metrics_db_url, "SELECT count(*) FROM events WHERE kind <> 'bootstrap'") == [(0,)]
    assert webhook_receiver.bodies == []
    # a run without alarm draws nothing: the timeline's data is logged, no PNG and no Evidently HTML
    client = MlflowClient(settings.tracking_uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("integration-tests").experiment_id],
        filter_string=f"tags.step = 'monitor' and tags.model_name = '{settings.model_name}'",
    )
    assert {a.path for a in client.list_artifacts(run.info.run_id, "reports")} == {"reports/drift_timeline.json"}


@pytest.mark.e2e
def test_a_stable_stream_is_refreshed_once_its_new_labelled_rows_match_the_champions(
    settings, bootstrapped, tmp_path, monkeypatch
):
    """The champion learned from 3,000 rows: the fourth 800-row batch brings 3,200 new labelled rows, a refresh
    retrains without any alarm, and the count starts again."""
    monkeypatch.setenv("PIPELINE_REFRESH_FRACTION", "1.0")
    data, batches = bootstrapped
    records = monitor(settings, data, batches, tmp_path / "refresh.json")
    assert not any(r["drift_detected"] or r["performance_drop"] or r["prior_shift"] for r in records)
    assert [r["action"].startswith("retrained") for r in records] == [False, False, False, True, False, False]
    (reason,) = rows(settings.metrics_db_url, "SELECT message FROM events WHERE kind = 'retrain'")
    assert rows(settings.metrics_db_url, "SELECT count(*) FROM events WHERE kind = 'alarm'") == [(0,)]
    assert "trained v2" in reason[0]


@pytest.mark.e2e
def test_covariate_drift_alarms_retrains_and_promotes(settings, tmp_path):
    batches = synth(tmp_path / "d", "covariate", 4)
    invoke("train", "--data", str(tmp_path / "d" / "reference.csv"))
    records = monitor(settings, tmp_path / "d", batches, tmp_path / "r.json", "--fail-on-alarm", code=3)
    assert all(not r["drift_detected"] for r in records[:3])
    assert records[3]["drift_detected"] and records[3]["prediction_drift"] >= settings.drift_threshold
    assert records[3]["action"] in {"retrained-promoted", "retrained-rejected"}
    assert records[3]["champion_version"] == 1
    assert all(r["action"] in ACTIONS for r in records)
    client = MlflowClient(settings.tracking_uri)
    aliases = client.get_registered_model(settings.model_name).aliases
    assert aliases["challenger"] == "2"
    if records[3]["action"] == "retrained-promoted":
        assert aliases["champion"] == "2" and aliases["previous"] == "1"
        assert records[4]["champion_version"] == 2
        kinds = [
            k for (k,) in rows(settings.metrics_db_url, "SELECT kind FROM events WHERE batch_index = 4 ORDER BY id")
        ]
        assert kinds == ["alarm", "retrain", "promotion"]
    v2 = client.get_model_version(settings.model_name, "2")
    assert v2.tags["reason"].startswith("batch 4: prediction drift")
    assert v2.tags["window_last_source"].split("#")[0].endswith("batch_004.csv")  # the path, then its MD5
    assert rows(settings.metrics_db_url, "SELECT count(*) FROM batch_metrics") == [(len(batches),)]

    # the pictures without Grafana, logged to the monitor run (so to S3): the Evidently HTML of the
    # drifted batch and the timeline PNG, whose plotted data marks the alarm and the decision
    import mlflow

    (monitor_run,) = client.search_runs(
        [client.get_experiment_by_name("integration-tests").experiment_id],
        filter_string=f"tags.step = 'monitor' and tags.model_name = '{settings.model_name}'",
    )
    artifacts = {a.path for a in client.list_artifacts(monitor_run.info.run_id, "reports")}
    last_alarmed = max(r["batch"] for r in records if any(r.get(name) for name in VERDICT_COLUMNS))
    html = f"evidently_batch_{last_alarmed:03d}.html"
    assert {"reports/drift_timeline.png", "reports/drift_timeline.json", f"reports/{html}"} == artifacts
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=monitor_run.info.run_id, artifact_path="reports", dst_path=str(tmp_path / "dl")
        )
    )
    assert (local / "drift_timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plotted = json.loads((local / "drift_timeline.json").read_text())
    assert plotted["alarms"] == [r["batch"] for r in records if r["drift_detected"] or r["performance_drop"]]
    decided = plotted["promotions"] if records[3]["action"] == "retrained-promoted" else plotted["rejections"]
    assert 4 in decided
    page = (local / html).read_text()
    assert page.lstrip().lower().startswith("<!doctype html>") and "Drifted Columns" in page and "prediction" in page

    # `pipeline report` writes the same from Postgres for the run
    output = invoke("report", "--out", str(tmp_path / "report"))
    assert (tmp_path / "report" / "drift_timeline.png").exists() and "batches.csv" in output
    # and, on demand, the Evidently HTML of any recorded batch, rebuilt from its file and the stored reference
    output = invoke("report", "--out", str(tmp_path / "report"), "--html", "2")
    page = (tmp_path / "report" / "evidently_batch_002.html").read_text()
    assert "evidently_batch_002.html" in output and "Drifted Columns" in page

    # every Grafana query runs on this real run's metrics and events
    check_dashboard_queries(settings.metrics_db_url, settings.model_name)


@pytest.mark.e2e
def test_a_rejected_challenger_on_a_label_alarm_is_retried_then_the_cooldown_holds(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_PROMOTION_MIN_GAIN", "10")  # no challenger can gain 10 nats per row
    batches = synth(tmp_path / "d", "prior", 3)
    invoke("train", "--data", str(tmp_path / "d" / "reference.csv"))
    records = monitor(settings, tmp_path / "d", batches, tmp_path / "r.json")
    assert records[2]["prior_shift"] and records[2]["action"] == "retrained-rejected"
    # the labels say the champion is worse: retried at once; two rejections in a row, then the cooldown (2)
    assert [r["action"] for r in records[3:6]] == ["retrained-rejected", "skipped-cooldown", "skipped-cooldown"]
    aliases = MlflowClient(settings.tracking_uri).get_registered_model(settings.model_name).aliases
    assert aliases["champion"] == "1" and aliases["challenger"] == "3" and "previous" not in aliases
    assert all(r["champion_version"] == 1 for r in records)
    kinds = rows(
        settings.metrics_db_url,
        "SELECT kind, count(*) FROM events WHERE kind <> 'bootstrap' GROUP BY kind ORDER BY kind",
    )
    assert dict(kinds)["rejection"] == 2 and "promotion" not in dict(kinds)


@pytest.mark.e2e
def test_concept_shift_is_caught_by_the_label_aware_trigger_only_and_told_twice(
    settings, tmp_path, webhook_receiver, monkeypatch
):
    """The demo's concept change at batch 3 (1,500 rows, enough for the challenger to learn the new concept alone
    and win), with PIPELINE_NOTIFY_URL at a local receiver: a person is told of the alarm and of the promotion,
    then of nothing for batch 4 (the new champion copes). The same two reach an SNS topic of the stack's moto server,
    through a queue subscribed to it. (A rejected challenger's and a persisting alarm's notifications:
    tests/unit/app/test_notifications.py.)"""
    import boto3

    aws = {"endpoint_url": settings.s3_endpoint_url, "region_name": settings.aws_region}
    sns, sqs = boto3.client("sns", **aws), boto3.client("sqs", **aws)
    topic = sns.create_topic(Name=f"alerts-{settings.model_name}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"alerts-{settings.model_name}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("PIPELINE_NOTIFY_SNS_TOPIC", topic)
    monkeypatch.setenv("PIPELINE_NOTIFY_URL", webhook_receiver.url)
    monkeypatch.setenv("PIPELINE_NOTIFY_GRAFANA_URL", "http://127.0.0.1:3000")
    data = tmp_path / "d"
    batches = synth(data, "concept", 3, batches=4, rows=1500)
    invoke("train", "--data", str(data / "reference.csv"))
    report = tmp_path / "r.json"
    output = invoke(
        "monitor", "--reference", str(data / "reference.csv"), "--current", *batches, "--report-json", str(report)
    )
    records = json.loads(report.read_text())
    assert "2 notifications sent, 0 not sent" in output  # each reached both sinks
    drifted = records[2]
    assert drifted["prediction_drift"] < settings.drift_threshold  # the inputs did not move
    assert drifted["performance_drop"] and drifted["roc_auc"] < 0.7
    assert drifted["action"] == "retrained-promoted"

    said = [(body["kind"], body["batch"], body["version"]) for body in webhook_receiver.bodies]
    assert said == [("alarm", 3, 1), ("promotion", 3, 2)]
    alarm, promotion = webhook_receiver.bodies
    assert alarm["model"] == settings.model_name and alarm["source"].split("#")[0].endswith("batch_003.csv")
    assert alarm["causes"] and alarm["scores"]["roc_auc"] is not None
    assert f"{settings.model_name} v1, batch 3" in alarm["text"] and alarm["causes"][0] in alarm["text"]
    assert alarm["links"]["mlflow_run"].startswith(settings.tracking_uri.rstrip("/") + "/#/experiments/")
    assert alarm["links"]["grafana"].endswith(f"/d/model-monitoring?var-model={settings.model_name}")
    assert promotion["summary"].startswith("v2 promoted over v1") and promotion["action"] == "retrained-promoted"
    assert promotion["links"]["mlflow_version"].endswith("/versions/2")

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    published = [json.loads(json.loads(message["Body"])["Message"]) for message in messages]
    assert sorted((r["kind"], r["batch"], r["version"]) for r in published) == [("alarm", 3, 1), ("promotion", 3, 2)]


@pytest.mark.e2e
def test_a_label_prior_shift_with_unchanged_inputs_alarms_at_once(settings, tmp_path):
    batches = synth(tmp_path / "d", "label", 3, batches=4)
    invoke("train", "--data", str(tmp_path / "d" / "reference.csv"))
    records = monitor(settings, tmp_path / "d", batches, tmp_path / "r.json")
    assert not any(r["drift_detected"] or r["performance_drop"] or r["prior_shift"] for r in records[:2])
    shifted = records[2]
    assert shifted["prediction_drift"] < settings.drift_threshold and not shifted["drift_detected"]  # inputs still
    assert not shifted["performance_drop"]  # the ranking holds
    assert shifted["prior_shift"] and shifted["positive_rate"] - shifted["mean_prediction"] > 0.1
    assert shifted["action"].startswith("retrained")
    (why,) = rows(settings.metrics_db_url, "SELECT message FROM events WHERE kind = 'alarm' AND batch_index = 3")[0]
    assert why.startswith("positive rate")


def test_rerun_never_double_counts(settings, bootstrapped, tmp_path):
    data, batches = bootstrapped
    first = monitor(settings, data, batches[:3], tmp_path / "a.json")
    second = monitor(settings, data, batches[:3], tmp_path / "b.json")
    assert [r["batch"] for r in second] == [1, 2, 3]
    assert [r["prediction_drift"] for r in second] == pytest.approx([r["prediction_drift"] for r in first])
    assert rows(settings.metrics_db_url, "SELECT count(*), count(DISTINCT run_key) FROM batch_metrics") == [(3, 1)]


def test_bad_batch_is_reported_skipped_and_the_rest_recorded(settings, bootstrapped, tmp_path):
    data, batches = bootstrapped
    bad = tmp_path / "bad.csv"
    bad.write_text("age,esi\n40,3\n")
    result = CliRunner().invoke(
        app,
        [
            "monitor",
            "--reference",
            str(data / "reference.csv"),
            "--current",
            batches[0],
            str(bad),
            batches[1],
            "--report-json",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 1
    assert f"{bad}: missing feature columns" in result.output
    flagged = CliRunner().invoke(app, ["monitor", "--reference", str(data / "reference.csv"), "--current", str(bad)])
    assert flagged.exit_code == 1  # without --fail-on-alarm a rejected batch is a failure, as before
    flagged = CliRunner().invoke(
        app, ["monitor", "--reference", str(data / "reference.csv"), "--current", str(bad), "--fail-on-alarm"]
    )
    assert flagged.exit_code == 4, flagged.output
    records = json.loads((tmp_path / "r.json").read_text())
    assert records[1]["error"].startswith(str(bad)) and records[2]["action"] == "none"
    assert sorted(b for (b,) in rows(settings.metrics_db_url, "SELECT batch_index FROM batch_metrics")) == [1, 3]


def test_unreadable_reference_fails_before_any_work(settings, bootstrapped, tmp_path):
    result = CliRunner().invoke(app, ["monitor", "--reference", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2
    assert "missing.csv: no such file" in result.output


def test_rollback_moves_champion_back_to_previous(settings, bootstrapped, tmp_path):
    data, _ = bootstrapped
    invoke("train", "--data", str(data / "batch_001.csv"))  # a second version, compared with the champion
    client = MlflowClient(settings.tracking_uri)
    client.set_registered_model_alias(settings.model_name, "previous", "1")
    client.set_registered_model_alias(settings.model_name, "champion", "2")
    output = invoke("rollback")
    assert "champion is now v1 (was v2)" in output
    aliases = client.get_registered_model(settings.model_name).aliases
    assert aliases["champion"] == "1" and "previous" not in aliases
    assert rows(settings.metrics_db_url, "SELECT kind, model_version FROM events WHERE kind = 'rollback'") == [
        ("rollback", 1)
    ]
    again = CliRunner().invoke(app, ["rollback"])
    assert again.exit_code == 2 and "no previous champion" in again.output


def test_status_shows_champion_batches_and_events(settings, bootstrapped, tmp_path):
    data, batches = bootstrapped
    monitor(settings, data, batches[:2], tmp_path / "r.json")
    output = invoke("status")
    assert "champion=v1" in output and "bootstrap" in output


TEXT_COLUMNS = {"feature", "metric"}  # the series name of the per-feature panels
NEEDS_SEGMENTS = {"Segments, latest batch with segments"}  # a panel with rows only when the schema names segments


def check_dashboard_queries(dsn: str, model: str) -> None:
    """Every panel, annotation and alert query of the Grafana provisioning, on this real run's data."""
    import sys

    here = Path(__file__).resolve().parents[1] / "dashboards"
    sys.path.insert(0, str(here))
    from test_panel_sql import (  # noqa: PLC0415 - the dashboard tests' own helpers
        ALERT_QUERIES,
        ANNOTATIONS,
        PANEL_COLUMNS,
        PANELS,
        _dashboard_context,
        _is_number,
        _is_time,
        _run,
        expand,
    )

    context = _dashboard_context(model)
    for title, target in PANELS:
        names, result = _run(dsn, expand(target["rawSql"], context))
        assert names == PANEL_COLUMNS[title], f"panel {title!r}: columns {names}"
        if title in NEEDS_SEGMENTS:  # the demo's schema names no segments (tests/dashboards seeds some)
            assert not result, f"panel {title!r} shows segments of a schema that names none"
            continue
        assert result, f"panel {title!r} shows nothing for a real monitor run"
        if title != "Events":
            for row in result:
                values = [v for name, v in zip(names[1:], row[1:], strict=True) if name not in TEXT_COLUMNS]
                assert _is_time(row[0]) and all(v is None or _is_number(v) for v in values), f"panel {title!r}: {row}"
    for annotation in ANNOTATIONS:
        names, _ = _run(dsn, expand(annotation["target"]["rawSql"], context))
        assert names[0] == "time", f"annotation {annotation['name']!r}"
    for name, query in ALERT_QUERIES:
        names, result = _run(dsn, expand(query["model"]["rawSql"] if "model" in query else query["rawSql"], context))
        assert result, f"alert query {name!r} returns nothing"


@pytest.mark.e2e
def test_without_current_a_stream_is_simulated_from_the_reference(settings, bootstrapped, tmp_path):
    data, _ = bootstrapped
    invoke(
        "monitor",
        "--reference",
        str(data / "reference.csv"),
        "--batches",
        "3",
        "--batch-rows",
        "600",
        "--drift-kind",
        "prior",
        "--drift-at",
        "3",
        "--report-json",
        str(tmp_path / "sim.json"),
    )
    records = json.loads((tmp_path / "sim.json").read_text())
    assert [r["source"].split(":")[0] for r in records] == ["simulated"] * 3
    assert [r["drift_detected"] for r in records] == [False, False, True]
    assert records[2]["action"].startswith("retrained")


@pytest.mark.e2e
def test_in_challenger_mode_a_winner_waits_for_a_person_who_promotes_it(settings, tmp_path):
    # 1,500 rows of the new concept reach PIPELINE_MIN_CHANGE_ROWS: the challenger learns from them alone and wins
    batches = synth(tmp_path / "d", "concept", 3, batches=4, rows=1500)
    invoke("train", "--data", str(tmp_path / "d" / "reference.csv"))
    invoke("configure", "--retrain", "challenger")
    records = monitor(settings, tmp_path / "d", batches, tmp_path / "r.json", "--fail-on-alarm", code=3)
    assert records[2]["performance_drop"] and records[2]["action"] == "retrained-challenger"
    assert all(r["champion_version"] == 1 for r in records)
    client = MlflowClient(settings.tracking_uri)
    model = client.get_registered_model(settings.model_name)
    assert model.aliases["champion"] == "1" and model.aliases["challenger"] == "2"
    v2 = client.get_model_version(settings.model_name, "2")
    assert v2.tags["decision"] == "held" and float(v2.tags["gain_log_loss"]) > 0
    kinds = [k for (k,) in rows(settings.metrics_db_url, "SELECT kind FROM events WHERE batch_index = 3 ORDER BY id")]
    assert kinds == ["alarm", "retrain", "challenger"]
    said = " ".join(invoke("status").split())
    assert "retraining mode: challenger (model tag retrain_mode); challenger v2 waits for" in said
    invoke("promote", "--version", "2")
    assert client.get_registered_model(settings.model_name).aliases["champion"] == "2"


@pytest.mark.e2e
def test_in_off_mode_nothing_is_trained(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_RETRAIN", "off")
    batches = synth(tmp_path / "d", "concept", 3, batches=4)
    invoke("train", "--data", str(tmp_path / "d" / "reference.csv"))
    records = monitor(settings, tmp_path / "d", batches, tmp_path / "r.json")
    assert records[2]["performance_drop"] and all(r["action"] == "none" for r in records)
    versions = MlflowClient(settings.tracking_uri).search_model_versions(f"name = '{settings.model_name}'")
    assert [v.version for v in versions] == ["1"]
