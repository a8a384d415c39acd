"""`pipeline doctor` without servers: secrets never shown, each part that does not answer said in one line."""

from __future__ import annotations

from typer.testing import CliRunner

from pipeline.app.doctor import masked_url, run_checks, settings_in_effect
from pipeline.cli.main import app
from pipeline.settings import Settings

NOWHERE = {
    "tracking_uri": "http://127.0.0.1:9",
    "metrics_db_url": "postgresql://monitor:hunter2pw@127.0.0.1:9/metrics",  # pragma: allowlist secret
    "s3_endpoint_url": "http://127.0.0.1:9",
}


def test_secrets_are_masked_and_each_value_says_whether_it_was_set():
    settings = Settings(_env_file=None, metrics_db_password="s3cr3t-value", **NOWHERE)  # type: ignore[arg-type]
    shown = {name: (value, source) for name, value, source in settings_in_effect(settings)}
    assert shown["PIPELINE_METRICS_DB_URL"] == ("postgresql://monitor:****@127.0.0.1:9/metrics", "set")
    assert shown["PIPELINE_METRICS_DB_PASSWORD"] == ("****", "set")
    assert shown["PIPELINE_DRIFT_THRESHOLD"][1] in {"default", "set"}
    assert "hunter2pw" not in str(shown) and "s3cr3t-value" not in str(shown)
    with_login = "https://alice:pw@mlflow.example.org:8443/"  # pragma: allowlist secret
    assert masked_url(with_login) == "https://alice:****@mlflow.example.org:8443/"
    assert masked_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_every_part_that_does_not_answer_is_one_failed_line():
    settings = Settings(_env_file=None, **NOWHERE)  # type: ignore[arg-type]
    checks = run_checks(settings)
    assert [(check.part, check.ok) for check in checks] == [
        ("MLflow", False),
        ("metrics database", False),
        ("artifact store", False),
    ]
    assert all("\n" not in check.detail for check in checks)
    assert "unreachable" in checks[0].detail and "127.0.0.1:9" in checks[2].detail
    assert "hunter2pw" not in checks[1].detail


def test_the_command_exits_1_when_a_check_fails_and_never_prints_a_password(monkeypatch):
    for name, value in NOWHERE.items():
        monkeypatch.setenv(f"PIPELINE_{name.upper()}", value)
    result = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "FAIL MLflow:" in result.output and "FAIL artifact store:" in result.output
    assert "hunter2pw" not in result.output
