"""`pipeline doctor` on the real stack (Postgres, MLflow, moto): every part answers; a wrong database is refused."""

from __future__ import annotations

import pytest
from test_loop import invoke  # the loop tests' own helper

pytestmark = pytest.mark.integration

BUCKET = "test-artifacts"  # the bucket the integration servers make (tests/integration/conftest.py)


def test_the_real_stack_passes_every_check(settings, monkeypatch):
    monkeypatch.setenv("PIPELINE_ARTIFACT_BUCKET", "other-bucket")
    said = invoke("doctor", code=1)
    assert "FAIL artifact store: s3://other-bucket at http://127.0.0.1:" in said and "no such bucket" in said
    monkeypatch.setenv("PIPELINE_ARTIFACT_BUCKET", BUCKET)
    said = invoke("doctor")
    assert "ok   MLflow:" in said and "lets this login in" in said
    assert "ok   metrics database:" in said and "PostgreSQL" in said
    assert "ok   artifact store:" in said and "FAIL" not in said


def test_a_database_that_refuses_the_login_is_said_as_such(settings, monkeypatch):
    monkeypatch.setenv("PIPELINE_ARTIFACT_BUCKET", BUCKET)
    monkeypatch.setenv("PIPELINE_METRICS_DB_URL", settings.metrics_db_url.rsplit("/", 1)[0] + "/no_such_database")
    said = invoke("doctor", code=1)
    assert "FAIL metrics database:" in said and "refused the login" in said
    assert "ok   MLflow:" in said and "ok   artifact store:" in said
