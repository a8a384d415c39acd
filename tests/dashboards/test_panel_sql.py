"""Every query of the dashboard and the alert, expanded as Grafana expands it, runs on a real Postgres.

The database holds a monitor run written through MetricsStore. Each query is its own test case, named
after its panel, annotation, variable or alert, so a broken query names itself.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
import yaml
from grafana_sql import QueryContext, expand
from metrics_seed import (
    COLUMNS_DRIFTED,
    ESTIMATED_DROP,
    LATE_LABELS,
    OTHER_FEATURES,
    OTHER_MODEL,
    PERFORMANCE_DROP,
    PRIOR_SHIFT,
    QUIET,
    THRESHOLD,
    SeededRun,
)
from stack_files import GRAFANA

from pipeline.io.store import MetricsStore

DASHBOARD = json.loads((GRAFANA / "dashboards" / "model_monitoring.json").read_text())

# The columns each panel is drawn from, time first. A new panel needs an entry here.
PANEL_COLUMNS = {
    "Prediction drift": ["time", "prediction drift", "threshold", "noise edge at batch size"],
    "Multivariate drift": ["time", "domain classifier AUC", "noise edge at sample size"],
    "Champion version": ["time", "champion version"],
    "Feature drift, latest batch": ["time", "feature", "drift score"],
    "Feature drift over batches": ["time", "metric", "drift score"],
    "Why it moved, latest attributed batch": ["time", "feature", "share of prediction drift"],
    "Drifted feature columns": ["time", "drifted columns", "share of columns drifted"],
    "Share of missing values": ["time", "share missing", "unseen categories"],
    "Champion quality: realized and estimated": [
        "time",
        "ROC AUC",
        "accuracy",
        "estimated ROC AUC",
        "estimated ROC AUC low",
        "estimated ROC AUC high",
        "estimated accuracy",
    ],
    "Estimation error": ["time", "estimation error"],
    "Calibration on labelled batches": ["time", "observed positive rate", "mean predicted probability"],
    "Rows per batch": ["time", "rows"],
    "Batches and alarms per interval": ["time", "batches", "alarms"],
    "Segments, latest batch with segments": ["time", "segment", "prediction drift", "share of batch", "alarmed"],
    "Events": ["time", "kind", "run", "batch", "model version", "champion version", "message"],
}
ANNOTATION_COLUMNS = ["time", "text", "tags"]
ALERT_COLUMNS = {
    "A": ["model_name", "alarmed_batches"],
    "D": ["model_name", "drift_batches"],
    "P": ["model_name", "performance_drop_batches"],
    "S": ["model_name", "prior_shift_batches"],
    "E": ["model_name", "estimated_drop_batches"],
}


def _load_alert_queries() -> list[tuple[str, dict[str, Any]]]:
    config = yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "drift.yaml").read_text())
    found = []
    for group in config["groups"]:
        for rule in group["rules"]:
            for query in rule["data"]:
                if query["datasourceUid"] != "__expr__":
                    found.append((f"{rule['title']} {query['refId']}", query))
    return found


PANELS = [(p["title"], t) for p in DASHBOARD["panels"] for t in p.get("targets", [])]
ANNOTATIONS = [a for a in DASHBOARD["annotations"]["list"] if not a.get("builtIn")]
ALERT_QUERIES = _load_alert_queries()

pytestmark = pytest.mark.integration


def _run(dsn: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    conn.close()
    return names, rows


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _is_time(value: Any) -> bool:
    # A timestamp, or epoch seconds as $__timeGroup returns them (Grafana reads both as time).
    return isinstance(value, datetime | date) or _is_number(value)


def _dashboard_context(model: str) -> QueryContext:
    return QueryContext.last(timedelta(days=7), interval="5m", model=model)


def test_every_panel_has_expected_columns_declared() -> None:
    assert sorted(PANEL_COLUMNS) == sorted(p["title"] for p in DASHBOARD["panels"])


@pytest.mark.parametrize(("title", "target"), PANELS, ids=[title for title, _ in PANELS])
def test_panel_query_returns_time_first_then_numbers(
    seeded_metrics: SeededRun, title: str, target: dict[str, Any]
) -> None:
    names, rows = _run(seeded_metrics.dsn, expand(target["rawSql"], _dashboard_context(seeded_metrics.model)))

    assert names == PANEL_COLUMNS[title]
    assert rows, f"panel {title!r} shows nothing for a monitor run"
    assert all(_is_time(row[0]) for row in rows)
    if target["format"] == "time_series":
        times = [float(r[0]) if _is_number(r[0]) else r[0].timestamp() for r in rows]
        assert times == sorted(times), "time series rows must come in time order"
        # A column named "metric" names the series (Grafana turns long rows into one series per value).
        values = [i for i, name in enumerate(names) if i > 0 and name != "metric"]
        for row in rows:
            assert all(row[i] is None or _is_number(row[i]) for i in values), row
            assert "metric" not in names or isinstance(row[names.index("metric")], str), row


@pytest.mark.parametrize("annotation", ANNOTATIONS, ids=[a["name"] for a in ANNOTATIONS])
def test_annotation_query_returns_time_text_and_tags(seeded_metrics: SeededRun, annotation: dict[str, Any]) -> None:
    sql = expand(annotation["target"]["rawSql"], _dashboard_context(seeded_metrics.model))
    names, rows = _run(seeded_metrics.dsn, sql)

    assert names == ANNOTATION_COLUMNS
    assert rows, f"annotation {annotation['name']!r} finds none of the seeded events"
    for when, text, tags in rows:
        assert isinstance(when, datetime)
        assert text and tags


def test_model_variable_lists_every_monitored_model(seeded_metrics: SeededRun) -> None:
    (variable,) = [v for v in DASHBOARD["templating"]["list"] if v["name"] == "model"]
    names, rows = _run(seeded_metrics.dsn, expand(variable["query"], _dashboard_context("unused")))

    assert len(names) == 1
    assert {row[0] for row in rows} == {seeded_metrics.model, OTHER_MODEL}


def test_panels_follow_the_model_variable(seeded_metrics: SeededRun) -> None:
    (target,) = [t for title, t in PANELS if title == "Prediction drift"]

    _, mine = _run(seeded_metrics.dsn, expand(target["rawSql"], _dashboard_context(seeded_metrics.model)))
    _, other = _run(seeded_metrics.dsn, expand(target["rawSql"], _dashboard_context(OTHER_MODEL)))

    assert len(mine) == seeded_metrics.n_batches
    assert len(other) == 1
    assert {row[2] for row in mine} == {seeded_metrics.threshold}


def _panel_rows(seeded: SeededRun, title: str, model: str) -> list[tuple[Any, ...]]:
    (target,) = [t for panel_title, t in PANELS if panel_title == title]
    return _run(seeded.dsn, expand(target["rawSql"], _dashboard_context(model)))[1]


def test_latest_feature_panel_shows_the_latest_batch_highest_score_first(seeded_metrics: SeededRun) -> None:
    rows = _panel_rows(seeded_metrics, "Feature drift, latest batch", seeded_metrics.model)

    expected = seeded_metrics.latest_features[:15]
    assert [(feature, score) for _, feature, score in rows] == [(f.feature, f.score) for f in expected]
    assert len({when for when, _, _ in rows}) == 1, "one batch only"
    # The store's answer to the same question agrees with the panel, unscored features last.
    stored = MetricsStore(seeded_metrics.dsn).latest_feature_scores(seeded_metrics.model, 100)
    assert [(r["feature"], r["score"], r["drifted"]) for r in stored] == [
        (f.feature, f.score, f.drifted) for f in seeded_metrics.latest_features
    ]
    assert {(r["run_key"], r["batch_index"]) for r in stored} == {
        (seeded_metrics.run_key, seeded_metrics.n_batches - 1)
    }
    assert stored[-1]["score"] is None


def test_why_it_moved_shows_the_latest_attribution_highest_share_first(seeded_metrics: SeededRun) -> None:
    rows = _panel_rows(seeded_metrics, "Why it moved, latest attributed batch", seeded_metrics.model)

    assert [(feature, share) for _, feature, share in rows] == [
        (feature, share) for feature, share, _shift, _drop in seeded_metrics.attribution if share > 0
    ]
    assert len({when for when, _, _ in rows}) == 1, "one batch only"
    assert not _panel_rows(seeded_metrics, "Why it moved, latest attributed batch", OTHER_MODEL)
    store = MetricsStore(seeded_metrics.dsn)
    stored = store.latest_attribution(seeded_metrics.model)
    assert [(r["feature"], r["share"], r["prediction_shift"], r["drift_drop"]) for r in stored] == list(
        seeded_metrics.attribution
    )
    assert {(r["batch_index"], r["sample_rows"]) for r in stored} == {(seeded_metrics.attributed, 2000)}
    (found,) = store.attribution_of_run(seeded_metrics.run_key).values()
    assert [item["feature"] for item in found] == [feature for feature, *_ in seeded_metrics.attribution]
    # asked again (pipeline explain), the batch's attribution is replaced, not added to
    assert store.record_attribution(
        seeded_metrics.run_key, seeded_metrics.attributed, [("age", 1.0, 0.05, 0.05)], 10, "x"
    )
    assert [r["feature"] for r in store.latest_attribution(seeded_metrics.model)] == ["age"]
    store.record_attribution(
        seeded_metrics.run_key, seeded_metrics.attributed, seeded_metrics.attribution, 2000, "transport"
    )
    assert not store.record_attribution(seeded_metrics.run_key, 999, [("age", 1.0, 0.05, 0.05)], 10, "x")


def test_segments_panel_and_status_show_the_alarmed_segment_first(seeded_metrics: SeededRun) -> None:
    rows = _panel_rows(seeded_metrics, "Segments, latest batch with segments", seeded_metrics.model)
    assert [r[1] for r in rows] == ["arrivalmode=ambulance", "arrivalmode=car"]
    store = MetricsStore(seeded_metrics.dsn)
    worst = store.worst_segments(seeded_metrics.model)
    assert [(w["segment_value"], w["alarmed"]) for w in worst] == [("ambulance", True), ("car", False)]
    assert not store.record_segments(seeded_metrics.run_key, 999, [])


def test_feature_heatmap_shows_only_features_that_drifted(seeded_metrics: SeededRun) -> None:
    rows = _panel_rows(seeded_metrics, "Feature drift over batches", seeded_metrics.model)

    assert {feature for _, feature, _ in rows} == seeded_metrics.drifting_features
    assert len(rows) == seeded_metrics.n_batches * len(seeded_metrics.drifting_features)
    assert len({when for when, _, _ in rows}) == seeded_metrics.n_batches


def test_feature_panels_never_show_another_models_features(seeded_metrics: SeededRun) -> None:
    # The other model's batch is the newest of all, and drifts a feature that never drifts for this model.
    latest = _panel_rows(seeded_metrics, "Feature drift, latest batch", OTHER_MODEL)
    heatmap = _panel_rows(seeded_metrics, "Feature drift over batches", OTHER_MODEL)
    mine = _panel_rows(seeded_metrics, "Feature drift over batches", seeded_metrics.model)

    assert [(feature, score) for _, feature, score in latest] == sorted(
        OTHER_FEATURES.items(), key=lambda item: -item[1]
    )
    assert {feature for _, feature, _ in heatmap} == {f for f, score in OTHER_FEATURES.items() if score >= 0.1}
    drifted_elsewhere_only = {
        f for f, score in OTHER_FEATURES.items() if score >= 0.1
    } - seeded_metrics.drifting_features
    assert drifted_elsewhere_only, "the seed must give the other model a feature of its own to leak"
    assert not drifted_elsewhere_only & {feature for _, feature, _ in mine}
    assert all(score < 0.5 for _, _, score in mine if score is not None), "the other model's 0.55 and 0.91 leaked"


def test_panels_show_nothing_outside_the_time_range(seeded_metrics: SeededRun) -> None:
    past = datetime.now(UTC) - timedelta(days=30)
    ctx = QueryContext(past - timedelta(days=1), past, "5m", {"model": seeded_metrics.model})
    for title, target in PANELS:
        _, rows = _run(seeded_metrics.dsn, expand(target["rawSql"], ctx))
        assert rows == [], title


@pytest.mark.parametrize(("name", "query"), ALERT_QUERIES, ids=[name for name, _ in ALERT_QUERIES])
def test_alert_query_returns_one_number_per_model(seeded_metrics: SeededRun, name: str, query: dict[str, Any]) -> None:
    window = query["relativeTimeRange"]
    now = datetime.now(UTC)
    ctx = QueryContext(now - timedelta(seconds=window["from"]), now - timedelta(seconds=window["to"]))
    names, rows = _run(seeded_metrics.dsn, expand(query["model"]["rawSql"], ctx))

    assert names == ALERT_COLUMNS[query["refId"]]
    assert {row[0] for row in rows} == {seeded_metrics.model, OTHER_MODEL}
    assert all(_is_number(row[1]) for row in rows)


def _alert_counts(dsn: str, ref_id: str) -> dict[str, Any]:
    """One alert query over the last hour, as Grafana runs it: {model: number}."""
    (query,) = [q for _, q in ALERT_QUERIES if q["refId"] == ref_id]
    now = datetime.now(UTC)
    window = query["relativeTimeRange"]
    ctx = QueryContext(now - timedelta(seconds=window["from"]), now - timedelta(seconds=window["to"]))
    return dict(_run(dsn, expand(query["model"]["rawSql"], ctx))[1])


def test_alert_counts_the_batches_the_monitor_alarmed_on(seeded_metrics: SeededRun) -> None:
    # Batches 4 and 8 drifted (8 exactly on the threshold), 6 had a prior shift, 10 dropped in quality: every
    # alarm of the run counts, whatever its cause. The other model is quiet.
    assert seeded_metrics.alarms == (4, 6, 8, 10)
    assert _alert_counts(seeded_metrics.dsn, "A") == {seeded_metrics.model: 4, OTHER_MODEL: 0}


def test_alert_fires_on_each_cause_alone_and_not_on_a_quiet_model(verdicts_dsn: str) -> None:
    (drift,) = {row[0] for row in _run(verdicts_dsn, "SELECT DISTINCT prediction_drift FROM batch_metrics")[1]}
    assert drift < THRESHOLD, "a drift verdict here comes from drifted columns, never from the prediction drift"

    # The quiet model's prior-shift batch is two hours old: outside the hour, not counted. The late-labels model's
    # batch is as old, but its labels arrived within the hour and dropped: counted.
    assert _alert_counts(verdicts_dsn, "A") == {
        COLUMNS_DRIFTED: 2,
        PERFORMANCE_DROP: 1,
        PRIOR_SHIFT: 3,
        ESTIMATED_DROP: 1,
        LATE_LABELS: 1,
        QUIET: 0,
    }


def test_alert_message_counts_each_cause(verdicts_dsn: str) -> None:
    by_cause = {ref_id: _alert_counts(verdicts_dsn, ref_id) for ref_id in ("D", "P", "S", "E")}
    # Only the performance drop counts late labels: the late batch itself was recorded two hours ago.
    quiet = dict.fromkeys((COLUMNS_DRIFTED, PERFORMANCE_DROP, PRIOR_SHIFT, ESTIMATED_DROP, QUIET), 0)

    assert by_cause == {
        "D": {**quiet, COLUMNS_DRIFTED: 2},
        "P": {**quiet, PERFORMANCE_DROP: 1, LATE_LABELS: 1},
        "S": {**quiet, PRIOR_SHIFT: 3},
        "E": {**quiet, ESTIMATED_DROP: 1},
    }


def test_alarm_panel_counts_what_the_alert_counts(verdicts_dsn: str) -> None:
    (target,) = [t for title, t in PANELS if title == "Batches and alarms per interval"]
    alert = _alert_counts(verdicts_dsn, "A")
    assert alert.pop(LATE_LABELS) == 1  # the panel counts batches when recorded, the alert also when labels came
    for model, alarmed in alert.items():
        _, rows = _run(verdicts_dsn, expand(target["rawSql"], QueryContext.last(timedelta(hours=1), "1h", model=model)))
        assert sum(alarms for _, _, alarms in rows) == alarmed, model


def test_calibration_panel_shows_each_labelled_batch_observed_and_predicted(seeded_metrics: SeededRun) -> None:
    rows = _panel_rows(seeded_metrics, "Calibration on labelled batches", seeded_metrics.model)
    stored = {b["batch_index"]: b for b in MetricsStore(seeded_metrics.dsn).batches_of_run(seeded_metrics.run_key)}

    expected = [(stored[i]["positive_rate"], stored[i]["mean_prediction"]) for i in seeded_metrics.labelled]
    assert [(observed, predicted) for _, observed, predicted in rows] == expected
    # The prior-shift batch is the one whose two lines part.
    gaps = {i: abs(stored[i]["positive_rate"] - stored[i]["mean_prediction"]) for i in seeded_metrics.labelled}
    assert max(gaps, key=gaps.__getitem__) == 6 and stored[6]["prior_shift"]
    assert _panel_rows(seeded_metrics, "Calibration on labelled batches", OTHER_MODEL) == [], "no labels, no points"


def test_quality_panel_draws_the_estimate_on_every_batch_and_the_realized_on_labelled_ones(
    seeded_metrics: SeededRun,
) -> None:
    rows = _panel_rows(seeded_metrics, "Champion quality: realized and estimated", seeded_metrics.model)
    stored = {b["batch_index"]: b for b in MetricsStore(seeded_metrics.dsn).batches_of_run(seeded_metrics.run_key)}

    assert len(rows) == seeded_metrics.n_batches
    assert [row[3] for row in rows] == [stored[i]["estimated_roc_auc"] for i in sorted(stored)]
    assert [row[4:6] for row in rows] == [
        (stored[i]["estimated_roc_auc_low"], stored[i]["estimated_roc_auc_high"]) for i in sorted(stored)
    ]
    realized = [i for i, row in enumerate(rows) if row[1] is not None]
    assert tuple(realized) == seeded_metrics.labelled


def test_estimation_error_panel_shows_labelled_batches_and_the_concept_shift_stands_out(
    seeded_metrics: SeededRun,
) -> None:
    rows = _panel_rows(seeded_metrics, "Estimation error", seeded_metrics.model)
    stored = {b["batch_index"]: b for b in MetricsStore(seeded_metrics.dsn).batches_of_run(seeded_metrics.run_key)}

    assert len(rows) == len(seeded_metrics.labelled)
    errors = dict(zip(seeded_metrics.labelled, (error for _, error in rows), strict=True))
    assert errors == {i: pytest.approx(stored[i]["estimated_roc_auc"] - stored[i]["roc_auc"]) for i in errors}
    assert max(errors, key=lambda i: abs(errors[i])) == 10 and stored[10]["performance_drop"]
