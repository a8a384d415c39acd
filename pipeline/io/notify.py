"""Where notifications go: an HTTPS webhook (a JSON POST: ``text`` for a chat, the record's fields for a program)
and an SNS topic (the text for e-mail and SMS subscribers, the JSON record for queues and functions). A sink
raises on failure; what to do about it is the caller's (``pipeline.app.notify``: logged and counted, never fatal).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Protocol
from urllib.parse import urlsplit

from pipeline.domain.notices import Notification
from pipeline.io.aws import make_aws_client
from pipeline.settings import NotifySettings

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
TIMEOUT_SECONDS = 10.0
# SNS protocols that get the JSON record; the others (email, sms, ...) get the text ("default")
RECORD_PROTOCOLS = ("sqs", "lambda", "http", "https", "firehose")


class NotifyError(ValueError):
    """A sink that cannot be used as configured (the message is one line, never the webhook's URL)."""


class Sink(Protocol):
    name: str

    def send(self, notification: Notification) -> None: ...


class SnsClient(Protocol):  # boto3's SNS client, the call the project makes
    def publish(self, **kwargs: Any) -> Any: ...


def webhook_url_problem(url: str) -> str | None:
    """Why a webhook URL is refused, or None: notifications leave over HTTPS only, except to this host (a local
    receiver, as in tests). The reason never names the URL, which may hold a token (Slack's, Teams')."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS:
        return None
    return f"PIPELINE_NOTIFY_URL must be an https:// URL (plain http only to {', '.join(LOCAL_HOSTS)})"


class WebhookSink:
    """POSTs the notification's record as JSON; any answer but 2xx, a timeout or a refused connection raises."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        problem = webhook_url_problem(url)
        if problem:
            raise NotifyError(problem)
        self._url = url
        self.timeout = timeout

    def __repr__(self) -> str:  # the URL may hold a token
        return "WebhookSink(<url hidden>)"

    def send(self, notification: Notification) -> None:
        body = json.dumps(notification.record(), default=str).encode()
        request = urllib.request.Request(
            self._url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "driftloop-notify"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 - the scheme is checked
            if not 200 <= answer.status < 300:
                raise NotifyError(f"webhook answered HTTP {answer.status}")


class SnsSink:
    """Publishes to one topic: subject the headline, the text for people, the JSON record for programs."""

    name = "sns"

    def __init__(self, topic_arn: str, client: SnsClient) -> None:
        self.topic_arn = topic_arn
        self.client = client

    def send(self, notification: Notification) -> None:
        record = json.dumps(notification.record(), default=str)
        message = {"default": notification.text(), **{protocol: record for protocol in RECORD_PROTOCOLS}}
        self.client.publish(
            TopicArn=self.topic_arn,
            Subject=notification.subject,
            Message=json.dumps(message),
            MessageStructure="json",
        )


def make_sns_client(endpoint_url: str | None, region: str) -> SnsClient:
    """An SNS client with the S3 client's endpoint and region (moto, LocalStack or AWS: one setting)."""
    client: SnsClient = make_aws_client("sns", endpoint_url, region)
    return client


def sinks_of(settings: NotifySettings, sns_client: Any = make_sns_client) -> list[Sink]:
    """The configured sinks, webhook first; none when neither is set. ``sns_client(endpoint, region)`` makes the
    SNS client (a test passes its own)."""
    sinks: list[Sink] = []
    if settings.notify_url is not None:
        sinks.append(WebhookSink(settings.notify_url.get_secret_value()))
    if settings.notify_sns_topic:
        sinks.append(SnsSink(settings.notify_sns_topic, sns_client(settings.s3_endpoint_url, settings.aws_region)))
    return sinks
