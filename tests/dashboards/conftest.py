"""Fixtures of the dashboard and stack checks: the repository's files and a database holding a monitor run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# Let the test modules import the helpers next to them (grafana_sql, metrics_seed).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics_seed import SeededRun, seed_monitor_run, seed_verdicts  # noqa: E402
from stack_files import DOCKER, GRAFANA  # noqa: E402


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "dashboards" / "model_monitoring.json").read_text())


@pytest.fixture(scope="session")
def datasource_config() -> dict[str, Any]:
    return yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "metrics.yaml").read_text())


@pytest.fixture(scope="session")
def dashboard_providers() -> dict[str, Any]:
    return yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml").read_text())


@pytest.fixture(scope="session")
def alerting_config() -> dict[str, Any]:
    return yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "drift.yaml").read_text())


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture
def seeded_metrics(pg_dsn: str) -> SeededRun:
    """A fresh metrics database holding one monitor run (see metrics_seed)."""
    return seed_monitor_run(pg_dsn)


@pytest.fixture
def verdicts_dsn(pg_dsn: str) -> str:
    """A fresh metrics database holding one model per cause of alarm, each alone, and a quiet model."""
    return seed_verdicts(pg_dsn)
