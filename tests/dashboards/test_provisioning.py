"""Grafana's provisioning files and the dashboard agree with each other and with the compose file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from stack_files import DOCKER, GRAFANA, ROOT

from pipeline.domain.records import VERDICT_COLUMNS
from pipeline.settings import Settings

DATASOURCE_UID = "pipeline-metrics"
POSTGRES_TYPE = "grafana-postgresql-datasource"
ENV_REFERENCE = re.compile(r"^\$\{?([A-Z][A-Z0-9_]*)\}?$")


def _datasource(config: dict[str, Any]) -> dict[str, Any]:
    (source,) = config["datasources"]
    return source


def _walk(node: Any, path: str = ""):
    """Every (path, dict) in a JSON tree."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def _grafana_mount(compose: dict[str, Any], source: str) -> str:
    for volume in compose["services"]["grafana"]["volumes"]:
        host, target, *_ = volume.split(":")
        if (DOCKER / host).resolve() == (ROOT / source).resolve():
            return target
    raise AssertionError(f"{source} is not mounted into the grafana service")


def test_datasource_has_the_fixed_uid_and_postgres_type(datasource_config: dict[str, Any]) -> None:
    source = _datasource(datasource_config)
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == POSTGRES_TYPE
    assert "database" not in source, "recent Grafana reads the database from jsonData only"


def test_every_datasource_connection_value_comes_from_the_environment(
    datasource_config: dict[str, Any],
) -> None:
    source = _datasource(datasource_config)
    assert source["url"] == "${METRICS_DB_HOST}:${METRICS_DB_PORT}"
    values = {
        "user": source["user"],
        "jsonData.database": source["jsonData"]["database"],
        "jsonData.sslmode": source["jsonData"]["sslmode"],
        "secureJsonData.password": source["secureJsonData"]["password"],
    }
    expected = {
        "user": "METRICS_DB_USER",
        "jsonData.database": "METRICS_DB_NAME",
        "jsonData.sslmode": "METRICS_DB_SSLMODE",
        "secureJsonData.password": "METRICS_DB_PASSWORD",  # pragma: allowlist secret (a variable name)
    }
    assert {key: ENV_REFERENCE.match(value).group(1) for key, value in values.items()} == expected
    assert "password" not in source, "the password belongs in secureJsonData"


def test_grafana_container_receives_every_variable_the_provisioning_reads(compose: dict[str, Any]) -> None:
    used: set[str] = set()
    for path in (GRAFANA / "provisioning").rglob("*.yaml"):
        # Upper-case names only: $__timeFilter and {{ $labels }} belong to Grafana, not to the environment.
        used |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)\}?", path.read_text().replace("$$", "")))
    environment = compose["services"]["grafana"]["environment"]
    assert used, "the provisioning reads no environment variable"
    assert used <= set(environment), sorted(used - set(environment))


def test_dashboard_provider_reads_the_folder_compose_mounts(
    dashboard_providers: dict[str, Any], compose: dict[str, Any]
) -> None:
    (provider,) = dashboard_providers["providers"]
    assert provider["type"] == "file"
    assert provider["folder"]
    assert provider["options"]["path"] == _grafana_mount(compose, "grafana/dashboards")
    assert _grafana_mount(compose, "grafana/provisioning") == "/etc/grafana/provisioning"
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent.as_posix() == provider["options"]["path"]
    assert (GRAFANA / "dashboards" / Path(home).name).is_file()


def test_alert_rules_live_in_the_dashboards_folder(
    dashboard_providers: dict[str, Any], alerting_config: dict[str, Any]
) -> None:
    (provider,) = dashboard_providers["providers"]
    assert {group["folder"] for group in alerting_config["groups"]} == {provider["folder"]}


def test_dashboard_is_file_provisionable(dashboard: dict[str, Any]) -> None:
    text = json.dumps(dashboard)
    assert "__inputs" not in dashboard and "__requires" not in dashboard
    assert "${DS_" not in text
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard["time"]["from"].startswith("now-")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_references_the_datasource_by_uid_everywhere(dashboard: dict[str, Any]) -> None:
    references = [
        (path, node["datasource"])
        for path, node in _walk(dashboard)
        if "datasource" in node and not node.get("builtIn")
    ]
    assert references
    for path, reference in references:
        assert reference == {"type": POSTGRES_TYPE, "uid": DATASOURCE_UID}, path


def test_dashboard_queries_use_grafana_macros_and_the_model_variable(dashboard: dict[str, Any]) -> None:
    queries = [t["rawSql"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [a["target"]["rawSql"] for a in dashboard["annotations"]["list"] if not a.get("builtIn")]
    for sql in queries:
        assert "$__timeFilter(ts)" in sql, sql
        assert "model_name = '$model'" in sql, sql
    assert any("$__timeGroupAlias(ts, $__interval)" in sql for sql in queries)


def test_model_variable_lists_models_from_batch_metrics(dashboard: dict[str, Any]) -> None:
    (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "model"]
    assert variable["type"] == "query"
    assert variable["query"] == "SELECT DISTINCT model_name FROM batch_metrics"
    assert variable["datasource"]["uid"] == DATASOURCE_UID
    assert not variable["multi"] and not variable["includeAll"], "panels compare model_name = '$model'"


def test_dashboard_has_the_issue_panels(dashboard: dict[str, Any]) -> None:
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {
        "Prediction drift",
        "Drifted feature columns",
        "Share of missing values",
        "Rows per batch",
        "Champion quality: realized and estimated",
        "Estimation error",
        "Champion version",
    } <= titles
    kinds = {
        re.search(r"kind = '(\w+)'", a["target"]["rawSql"]).group(1)
        for a in dashboard["annotations"]["list"]
        if not a.get("builtIn")
    }
    assert kinds == {"alarm", "retrain", "promotion", "rejection", "rollback"}


def test_drift_panel_draws_the_threshold(dashboard: dict[str, Any]) -> None:
    (panel,) = [p for p in dashboard["panels"] if p["title"] == "Prediction drift"]
    assert 'drift_threshold AS "threshold"' in panel["targets"][0]["rawSql"]
    styled = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]}
    assert "threshold" in styled


def test_alert_rule_fires_on_the_monitors_verdict(alerting_config: dict[str, Any], dashboard: dict[str, Any]) -> None:
    (group,) = alerting_config["groups"]
    (rule,) = group["rules"]
    queries = {q["refId"]: q for q in rule["data"]}

    assert rule["condition"] in queries
    condition = queries[rule["condition"]]
    assert condition["datasourceUid"] == "__expr__"
    assert condition["model"]["type"] == "threshold"
    source = queries[condition["model"]["expression"]]
    assert source["datasourceUid"] == DATASOURCE_UID
    assert f"FILTER (WHERE {' OR '.join(VERDICT_COLUMNS)})" in source["model"]["rawSql"]
    assert condition["model"]["conditions"][0]["evaluator"] == {"type": "gt", "params": [0]}
    assert rule["noDataState"] == "OK", "an hour without a batch notifies nobody (heartbeat.yaml tells a dead monitor)"
    for query in rule["data"]:
        if query["datasourceUid"] != "__expr__":
            assert query["datasourceUid"] == DATASOURCE_UID
            assert query["relativeTimeRange"]["from"] > query["relativeTimeRange"]["to"]
    # Grafana interpolates environment variables into labels (not annotations or models).
    assert not any("$" in str(value) for value in rule["labels"].values())
    panel_ids = {str(p["id"]): p["title"] for p in dashboard["panels"]}
    assert rule["annotations"]["__dashboardUid__"] == dashboard["uid"]
    assert panel_ids[rule["annotations"]["__panelId__"]] == "Batches and alarms per interval"


def test_alert_message_names_a_count_for_every_cause(alerting_config: dict[str, Any]) -> None:
    (rule,) = alerting_config["groups"][0]["rules"]
    queries = {q["refId"]: q["model"]["rawSql"] for q in rule["data"] if q["datasourceUid"] != "__expr__"}
    message = rule["annotations"]["description"]

    # Grafana reads one number column per table query, so each cause has a query of its own.
    causes = {
        column: [ref for ref, sql in queries.items() if f"FILTER (WHERE {column})" in sql] for column in VERDICT_COLUMNS
    }
    assert all(len(refs) == 1 for refs in causes.values()), causes
    for (ref,) in causes.values():
        assert f"$values.{ref}.Value" in message
    assert "$values.A.Value" in message


def test_the_replaced_alert_rule_is_deleted_where_it_was_provisioned(alerting_config: dict[str, Any]) -> None:
    current = {rule["uid"] for group in alerting_config["groups"] for rule in group["rules"]}
    deleted = {rule["uid"] for rule in alerting_config["deleteRules"]}
    assert deleted == {"prediction-drift-threshold"}
    assert not deleted & current


def test_no_grafana_file_compares_prediction_drift_with_its_threshold() -> None:
    # One rule: the monitor decides, and Grafana reads its verdict columns instead of deciding again in SQL.
    comparison = re.compile(
        r"prediction_drift\s*(?:>=|<=|>|<|=)\s*drift_threshold|drift_threshold\s*(?:>=|<=|>|<|=)\s*prediction_drift"
    )
    files = [path for path in GRAFANA.rglob("*") if path.suffix in {".yaml", ".yml", ".json"}]
    assert files
    offenders = [str(path.relative_to(ROOT)) for path in files if comparison.search(path.read_text())]
    assert offenders == []


def test_panels_do_not_overlap_and_fit_the_grid(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["h"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_feature_panels_read_feature_drift_and_sit_under_the_prediction_drift(dashboard: dict[str, Any]) -> None:
    panels = {p["title"]: p for p in dashboard["panels"]}
    latest, heatmap = panels["Feature drift, latest batch"], panels["Feature drift over batches"]
    assert latest["type"] == "bargauge" and heatmap["type"] == "heatmap"
    assert not heatmap["options"]["calculate"], "each feature is a row of its own, not a bucketed value"
    for panel in (latest, heatmap):
        (target,) = panel["targets"]
        assert "FROM feature_drift" in target["rawSql"]
        assert panel["gridPos"]["y"] == panels["Prediction drift"]["gridPos"]["h"]


def test_latest_feature_panel_turns_red_at_the_column_drift_threshold(dashboard: dict[str, Any]) -> None:
    # The threshold of a column is not stored per row; the panel's step follows the setting's default.
    (panel,) = [p for p in dashboard["panels"] if p["title"] == "Feature drift, latest batch"]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    default = Settings.model_fields["column_drift_threshold"].default
    assert [step["value"] for step in steps] == [None, default]
    assert steps[-1]["color"] == "red"
    assert panel["fieldConfig"]["defaults"]["color"]["mode"] == "thresholds"


def test_quiet_hours_notify_nobody_and_a_dead_monitor_is_the_heartbeats(alerting_config: dict[str, Any]) -> None:
    alerting = GRAFANA / "provisioning" / "alerting"
    heartbeat = yaml.safe_load((alerting / "heartbeat.yaml").read_text())
    (drift,) = alerting_config["groups"][0]["rules"]
    (beat,) = heartbeat["groups"][0]["rules"]
    # Grafana's no-data states that send nothing: OK (Normal) and KeepLast; NoData and Alerting each notify.
    assert drift["noDataState"] in ("OK", "KeepLast")
    assert beat["noDataState"] == "Alerting" and beat["labels"]["project"] == drift["labels"]["project"]
