"""The heartbeat rule (grafana/provisioning/alerting/heartbeat.yaml), expanded as Grafana expands it, on a real
Postgres: it fires for a model whose last batch is older than its threshold, not for one that recorded recently,
and a result with no row is Alerting, never Normal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg2
import pytest
import yaml
from grafana_sql import QueryContext, expand
from metrics_seed import FRESH, RETIRED, STALLED, seed_heartbeats
from stack_files import GRAFANA

from pipeline.io.store import MetricsStore

CONFIG = yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "heartbeat.yaml").read_text())
((RULE,),) = [group["rules"] for group in CONFIG["groups"]]
QUERIES = {query["refId"]: query for query in RULE["data"]}
CONDITION = QUERIES[RULE["condition"]]["model"]
SOURCE = QUERIES[CONDITION["expression"]]


def _fired(dsn: str) -> dict[str, bool]:
    """{model: firing} as the rule's threshold reads the query's one number per model."""
    window = SOURCE["relativeTimeRange"]
    ctx = QueryContext.last(timedelta(seconds=window["from"] - window["to"]), "1m")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(expand(SOURCE["model"]["rawSql"], ctx))
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    conn.close()
    assert names == ["model_name", "hours_since_last_batch"]
    (evaluator,) = [c["evaluator"] for c in CONDITION["conditions"]]
    assert evaluator["type"] == "gt"
    (hours,) = evaluator["params"]
    return {model: float(age) > hours for model, age in rows}


def test_the_rule_is_a_threshold_on_the_hours_since_the_last_batch() -> None:
    assert SOURCE["datasourceUid"] == "pipeline-metrics"
    assert CONDITION["type"] == "threshold"
    assert "$__timeFilter" not in SOURCE["model"]["rawSql"], "a silent model must stay in the result"
    assert RULE["noDataState"] == "Alerting", "no row at all is a dead monitor, not a quiet one"
    assert RULE["labels"]["project"] == "driftloop", "routed by the notification policy"


@pytest.mark.integration
def test_fires_for_a_stalled_model_and_not_for_a_recent_one(pg_dsn: str) -> None:
    assert _fired(seed_heartbeats(pg_dsn)) == {FRESH: False, STALLED: True}, f"{RETIRED} is retired: left out"


@pytest.mark.integration
def test_an_empty_table_gives_no_row_so_the_no_data_state_applies(pg_dsn: str) -> None:
    MetricsStore(pg_dsn).create_schema()
    assert _fired(pg_dsn) == {}


def test_the_project_rules_are_routed_to_the_contact_point() -> None:
    alerting = GRAFANA / "provisioning" / "alerting"
    contact: dict[str, Any] = yaml.safe_load((alerting / "contact_points.yaml").read_text())
    policies: dict[str, Any] = yaml.safe_load((alerting / "policies.yaml").read_text())
    (point,) = contact["contactPoints"]
    assert {r["type"] for r in point["receivers"]} == {"email", "webhook"}
    (tree,) = policies["policies"]
    assert tree["receiver"] == point["name"]
    (route,) = tree["routes"]
    assert route["receiver"] == point["name"] and route["object_matchers"] == [["project", "=", "driftloop"]]
    drift = yaml.safe_load((alerting / "drift.yaml").read_text())
    rules = [rule for group in drift["groups"] for rule in group["rules"]] + [RULE]
    assert all(rule["labels"]["project"] == "driftloop" for rule in rules)
