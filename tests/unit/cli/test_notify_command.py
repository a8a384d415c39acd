"""`pipeline notify`: a message (text or a JSON record) through the configured sinks, for a systemd OnFailure hook."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app


@pytest.fixture
def env(monkeypatch):
    for name in ("PIPELINE_NOTIFY_URL", "PIPELINE_NOTIFY_SNS_TOPIC", "PIPELINE_NOTIFY_GRAFANA_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIPELINE_MODEL_NAME", "ed-triage-admission")
    return monkeypatch


def test_a_text_reaches_the_webhook(env, webhook_receiver):
    env.setenv("PIPELINE_NOTIFY_URL", webhook_receiver.url)
    result = CliRunner().invoke(app, ["notify", "--kind", "run-failed", "pipeline-monitor.service failed on host-1"])
    assert result.exit_code == 0, result.output
    (body,) = webhook_receiver.bodies
    assert body["kind"] == "run-failed" and body["model"] == "ed-triage-admission"
    assert body["summary"] == "pipeline-monitor.service failed on host-1"
    assert body["text"].startswith("Run FAILED: ed-triage-admission") and "host-1" in body["text"]
    assert "run-failed notification sent to webhook" in result.output


def test_a_json_record_from_stdin_keeps_its_fields(env, webhook_receiver):
    env.setenv("PIPELINE_NOTIFY_URL", webhook_receiver.url)
    record = {"text": "look at batch 9", "batch": 9, "version": 4, "links": {"runbook": "https://wiki/x"}}
    result = CliRunner().invoke(app, ["notify", "--json", "-"], input=json.dumps(record))
    assert result.exit_code == 0, result.output
    (body,) = webhook_receiver.bodies
    assert (body["kind"], body["batch"], body["version"]) == ("message", 9, 4)
    assert body["links"]["runbook"] == "https://wiki/x" and "batch 9" in body["text"]


def test_a_receiver_that_fails_exits_1(env, webhook_receiver):
    env.setenv("PIPELINE_NOTIFY_URL", webhook_receiver.url)
    webhook_receiver.status = 503
    result = CliRunner().invoke(app, ["notify", "hello"])
    assert result.exit_code == 1 and "not sent to webhook: HTTP Error 503" in result.output


def test_no_sink_configured_exits_2(env):
    result = CliRunner().invoke(app, ["notify", "hello"])
    assert result.exit_code == 2 and "no notification sink configured" in result.output


def test_a_plain_http_url_to_another_host_is_refused_without_printing_it(env):
    env.setenv("PIPELINE_NOTIFY_URL", "http://hooks.example.com/services/secret-part")
    result = CliRunner().invoke(app, ["notify", "hello"])
    assert result.exit_code == 2 and "must be an https:// URL" in result.output
    assert "secret-part" not in result.output


def test_text_or_json_but_not_both_nor_neither(env, webhook_receiver):
    env.setenv("PIPELINE_NOTIFY_URL", webhook_receiver.url)
    assert CliRunner().invoke(app, ["notify"]).exit_code == 2
    assert CliRunner().invoke(app, ["notify", "x", "--json", "-"], input="{}").exit_code == 2
    assert CliRunner().invoke(app, ["notify", "--json", "-"], input="[1]").exit_code == 2
    assert webhook_receiver.bodies == []


def test_a_rollback_event_is_told_with_its_new_champion(env, webhook_receiver):
    from pipeline.cli.notify import event_notifier
    from pipeline.domain.incidents import Notice
    from pipeline.domain.records import Event
    from pipeline.settings import Settings

    env.setenv("PIPELINE_NOTIFY_URL", webhook_receiver.url)
    send = event_notifier(Settings(_env_file=None))  # type: ignore[call-arg]
    message = "champion rolled back from v3 to v2"
    send(
        Notice.rollback,
        Event("rollback-1", "ed-triage-admission", "rollback", message, model_version=2, champion_version=3),
    )
    (body,) = webhook_receiver.bodies
    assert (body["kind"], body["version"], body["summary"]) == ("rollback", 2, message)
    assert body["details"]["previous_champion"] == 3 and body["text"].startswith("Rolled back: ed-triage-admission v2")


def test_a_refused_url_stops_a_rollback_before_it_moves_anything(env):
    env.setenv("PIPELINE_NOTIFY_URL", "http://hooks.example.com/x")
    env.setenv("PIPELINE_TRACKING_URI", "http://127.0.0.1:9")  # never reached: the setting is refused first
    result = CliRunner().invoke(app, ["rollback"])
    assert result.exit_code == 2 and "must be an https:// URL" in result.output
