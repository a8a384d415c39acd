"""The monitor's heartbeat in CloudWatch: after a run that recorded batches, the number it recorded, as the metric
``BatchesRecorded`` of the namespace ``PIPELINE_HEARTBEAT_NAMESPACE`` with the dimension ``Model``. An alarm on
that metric that treats missing data as breaching (Terraform's, on AWS) fires when no batch was recorded for a
model in its window, whatever stopped it: the host, the timer, the monitor, the data upstream."""

from __future__ import annotations

from typing import Any, Protocol

from pipeline.io.aws import make_aws_client

METRIC = "BatchesRecorded"
DIMENSION = "Model"


class CloudWatchClient(Protocol):  # boto3's CloudWatch client, the call the project makes
    def put_metric_data(self, **kwargs: Any) -> Any: ...


class CloudWatchHeartbeat:
    """Puts one data point per beat; a failure raises (the caller says it in one line, never fails the run). The
    namespace is checked by the settings (``PIPELINE_HEARTBEAT_NAMESPACE``)."""

    def __init__(self, namespace: str, client: CloudWatchClient) -> None:
        self.namespace = namespace
        self.client = client

    def beat(self, model: str, batches: int) -> None:
        self.client.put_metric_data(
            Namespace=self.namespace,
            MetricData=[
                {
                    "MetricName": METRIC,
                    "Dimensions": [{"Name": DIMENSION, "Value": model}],
                    "Value": float(batches),
                    "Unit": "Count",
                }
            ],
        )


def make_heartbeat(namespace: str, endpoint_url: str | None, region: str) -> CloudWatchHeartbeat:
    """The heartbeat with a CloudWatch client of the S3 client's endpoint and region (moto or AWS: one setting)."""
    return CloudWatchHeartbeat(namespace, make_aws_client("cloudwatch", endpoint_url, region))
