"""The heartbeat in CloudWatch (moto in process): the data point a run puts, read back as a user's alarm reads it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.io.heartbeat import DIMENSION, METRIC, make_heartbeat


def test_a_beat_is_the_model_s_batch_count_in_the_namespace(monkeypatch):
    import boto3
    from moto import mock_aws

    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        # in-process moto intercepts clients without an endpoint: an empty endpoint means AWS itself
        heartbeat = make_heartbeat("driftloop/prod", None, "eu-west-1")
        heartbeat.beat("churn", 3)
        heartbeat.beat("churn", 2)
        heartbeat.beat("loans", 1)
        cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
        now = datetime.now(UTC)
        stats = cloudwatch.get_metric_statistics(
            Namespace="driftloop/prod",
            MetricName=METRIC,
            Dimensions=[{"Name": DIMENSION, "Value": "churn"}],
            StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(minutes=5),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        other = cloudwatch.list_metrics(Namespace="driftloop/other")["Metrics"]
    assert sum(point["Sum"] for point in stats) == 5.0
    assert all(point["Unit"] == "Count" for point in stats)
    assert other == []
