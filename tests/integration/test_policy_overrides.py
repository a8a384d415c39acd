"""A model's own policy through the CLI on the real stack: `pipeline configure --set` keeps a value with the model
(a registered-model tag), the monitor and `status` use it, `--unset` hands the value back to the setting, and a bad
value is refused before anything is written."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from test_loop import bootstrapped, invoke, monitor, rows  # noqa: F401  (the loop tests' own helpers and fixture)

pytestmark = pytest.mark.integration


def _thresholds(settings) -> list[float]:
    found = rows(settings.metrics_db_url, "SELECT drift_threshold FROM batch_metrics ORDER BY ts")
    return [value for (value,) in found]


def test_a_model_s_own_threshold_is_used_by_the_monitor_shown_by_status_and_dropped_by_unset(
    settings,
    bootstrapped,  # noqa: F811
    tmp_path,
):
    data, batches = bootstrapped
    said = " ".join(invoke("configure", "--set", "drift_threshold=0.42", "--set", "cooldown_batches=5").split())
    assert "drift_threshold │ 0.42 │ model tag policy.drift_threshold" in said
    tags = MlflowClient(settings.tracking_uri).get_registered_model(settings.model_name).tags
    assert tags["policy.drift_threshold"] == "0.42" and tags["policy.cooldown_batches"] == "5"

    monitor(settings, data, batches[:1], tmp_path / "a.json")
    status = " ".join(invoke("status").split())
    assert "cooldown_batches │ 5 │ model tag policy.cooldown_batches" in status
    assert "auc_tolerance │" in status and "│ default" in status

    invoke("configure", "--unset", "drift_threshold")
    monitor(settings, data, batches[1:2], tmp_path / "b.json")
    assert _thresholds(settings) == [0.42, settings.drift_threshold]


def test_a_bad_value_is_refused_in_one_line_and_nothing_is_written(settings, bootstrapped):  # noqa: F811
    refused = invoke("configure", "--set", "cooldown_batches=3", "--set", "drift_threshold=high", code=2)
    assert "drift_threshold='high'" in refused and len(refused.strip().splitlines()) == 1
    refused = invoke("configure", "--unset", "model_name", code=2)
    assert "'model_name' is not a policy value a model may set" in refused
    tags = MlflowClient(settings.tracking_uri).get_registered_model(settings.model_name).tags
    assert not any(key.startswith("policy.") for key in tags)
