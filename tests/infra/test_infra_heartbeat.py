"""The heartbeat's alarms (tracking_host): one per model on the metric the package puts, missing data breaching,
notifying the topic when they open and when they clear."""

from tfconfig import ENVS, MODULES, locals_of, named_blocks, resources

from pipeline.io.heartbeat import DIMENSION, METRIC

HOST = MODULES / "tracking_host"


def test_one_alarm_per_model_on_the_package_s_metric_and_missing_data_is_no_batch():
    alarm = resources(HOST, "aws_cloudwatch_metric_alarm")["heartbeat"]
    assert alarm["for_each"] == '${local.heartbeat_namespace == "" ? toset([]) : toset(keys(var.models))}'
    assert (alarm["namespace"], alarm["metric_name"]) == ("${local.heartbeat_namespace}", METRIC)
    assert alarm["dimensions"] == {DIMENSION: "${each.key}"}
    assert (alarm["statistic"], alarm["period"], alarm["threshold"]) == ("Sum", 3600, 1)
    assert alarm["comparison_operator"] == "LessThanThreshold"
    assert alarm["evaluation_periods"] == alarm["datapoints_to_alarm"] == "${var.heartbeat_hours}"
    assert alarm["treat_missing_data"] == "breaching", "an hour with no data point is an hour with no batch"
    topic = "${var.notify_sns_topic_arn == null ? [] : [var.notify_sns_topic_arn]}"
    assert alarm["alarm_actions"] == alarm["ok_actions"] == topic, "notified when it opens and when it clears"


def test_the_host_s_monitor_puts_in_the_namespace_the_alarms_read():
    namespace = locals_of(HOST)["heartbeat_namespace"]
    assert namespace == '${var.heartbeat_hours == null ? "" : "driftloop/${var.name}"}'
    template = (HOST / "templates" / "cloud-init.yaml.tftpl").read_text()
    assert 'PIPELINE_HEARTBEAT_NAMESPACE="${heartbeat_namespace}"' in template
    (call,) = [c for c in named_blocks(ENVS / "aws", "module").values() if c["source"].endswith("tracking_host")]
    assert call["heartbeat_hours"] == "${var.heartbeat_hours}"
