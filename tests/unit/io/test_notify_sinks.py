"""The sinks: the webhook (a local receiver on 127.0.0.1) and the SNS topic (moto in process, read back through an
SQS queue subscribed to it)."""

from __future__ import annotations

import json

import pytest

from pipeline.domain.incidents import Notice
from pipeline.domain.notices import Notification
from pipeline.io.notify import NotifyError, SnsSink, WebhookSink, sinks_of, webhook_url_problem
from pipeline.settings import Settings

NOTE = Notification(
    kind=Notice.alarm,
    model="m",
    summary="the monitor alarmed on input drift",
    version=2,
    batch=5,
    causes=("prediction drift 0.3 >= 0.1",),
    scores={"prediction_drift": 0.3},
)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://hooks.example.com/services/T0/B0/token", False),
        ("http://127.0.0.1:8080/hook", False),
        ("http://localhost/hook", False),
        ("http://hooks.example.com/services/T0/B0/token", True),
        ("ftp://hooks.example.com/x", True),
        ("https:///no-host", True),
        ("hooks.example.com/x", True),
    ],
)
def test_only_https_or_this_host_is_accepted(url, refused):
    problem = webhook_url_problem(url)
    assert (problem is not None) is refused
    if refused:
        assert "token" not in problem and "example" not in problem  # the URL is never repeated
        with pytest.raises(NotifyError):
            WebhookSink(url)


def test_the_webhook_posts_the_record_as_json(webhook_receiver):
    WebhookSink(webhook_receiver.url).send(NOTE)
    (body,) = webhook_receiver.bodies
    assert body["text"] == NOTE.text() and body["kind"] == "alarm"
    assert (body["model"], body["version"], body["batch"]) == ("m", 2, 5)


def test_a_webhook_that_answers_an_error_raises(webhook_receiver):
    webhook_receiver.status = 500
    with pytest.raises(Exception, match="500"):
        WebhookSink(webhook_receiver.url).send(NOTE)


def test_the_url_is_a_secret_and_not_in_the_sinks_repr(webhook_receiver):
    settings = Settings(_env_file=None, notify_url=webhook_receiver.url)  # type: ignore[call-arg]
    (sink,) = sinks_of(settings.notify)
    assert webhook_receiver.url not in repr(sink) and webhook_receiver.url not in repr(settings)


def test_no_setting_no_sink():
    assert sinks_of(Settings(_env_file=None).notify) == []  # type: ignore[call-arg]


def test_the_sns_topic_gets_the_text_for_people_and_the_record_for_a_queue(monkeypatch):
    import boto3
    from moto import mock_aws

    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        sns = boto3.client("sns", region_name="eu-west-1")
        sqs = boto3.client("sqs", region_name="eu-west-1")
        topic = sns.create_topic(Name="driftloop-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        # in-process moto intercepts clients without an endpoint: the settings' empty endpoint means AWS itself
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            notify_sns_topic=topic,
            s3_endpoint_url="",
            aws_region="eu-west-1",
        )
        (sink,) = sinks_of(settings.notify)
        assert isinstance(sink, SnsSink)
        sink.send(NOTE)
        (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["TopicArn"] == topic and envelope["Subject"] == NOTE.subject
    record = json.loads(envelope["Message"])
    assert record["text"] == NOTE.text() and (record["kind"], record["model"], record["batch"]) == ("alarm", "m", 5)
