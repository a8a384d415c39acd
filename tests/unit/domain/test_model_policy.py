"""A model's own policy values: its tags over the settings, each value's source, and one-line refusals."""

from __future__ import annotations

import pytest

from pipeline.domain.model_policy import (
    OVERRIDABLE,
    PolicyError,
    check_name,
    parse_assignment,
    policy_tag,
    resolve_policy,
)
from pipeline.domain.retrain_mode import RetrainMode
from pipeline.settings import Settings


def _settings(**given: object) -> Settings:
    return Settings(_env_file=None, **given)  # type: ignore[call-arg]


def test_a_model_s_tag_wins_over_the_setting_and_each_value_says_where_it_came_from(monkeypatch):
    monkeypatch.delenv("PIPELINE_AUC_TOLERANCE", raising=False)
    settings = _settings(cooldown_batches=4, drift_threshold=0.15)
    policy = resolve_policy(settings, {"policy.drift_threshold": "0.3", "retrain_mode": "off", "owner": "team-a"})
    assert policy.settings.drift_threshold == 0.3
    assert policy.settings.policy.drift_threshold == 0.3  # the groups see it too
    assert policy.settings.cooldown_batches == 4
    assert policy.sources["drift_threshold"] == "model tag policy.drift_threshold"
    assert policy.sources["cooldown_batches"] == "setting PIPELINE_COOLDOWN_BATCHES"
    assert policy.sources["auc_tolerance"] == "default"
    assert policy.overridden() == {"drift_threshold": 0.3}
    assert (policy.mode, policy.mode_source) == (RetrainMode.off, "model tag retrain_mode")
    assert settings.drift_threshold == 0.15  # the settings themselves are untouched


def test_values_are_typed_as_the_setting_types_them():
    policy = resolve_policy(_settings(), {"policy.window_rows": "5000", "policy.promotion_min_gain": "0.01"})
    assert policy.settings.window_rows == 5000 and isinstance(policy.settings.window_rows, int)
    assert policy.settings.promotion_min_gain == 0.01


@pytest.mark.parametrize(
    ("tags", "says"),
    [
        ({"policy.drift_treshold": "0.2"}, "'drift_treshold' is not a policy value a model may set"),
        ({"policy.drift_threshold": "high"}, "policy.drift_threshold: drift_threshold='high'"),
        ({"policy.cooldown_batches": "-1"}, "greater than or equal to 0"),
        ({"policy.retrain": "off"}, "'retrain' is not a policy value"),  # the mode has its own tag
        ({"policy.tracking_uri": "http://x"}, "'tracking_uri' is not a policy value"),
    ],
)
def test_a_bad_tag_is_a_one_line_refusal_naming_it(tags, says):
    with pytest.raises(PolicyError, match="the model's tag policy.") as raised:
        resolve_policy(_settings(), tags)
    assert says in str(raised.value) and "\n" not in str(raised.value)


def test_an_assignment_is_checked_like_a_tag():
    assert parse_assignment(" cooldown_batches = 3") == ("cooldown_batches", 3)
    with pytest.raises(PolicyError, match="expected NAME=VALUE"):
        parse_assignment("cooldown_batches")
    with pytest.raises(PolicyError, match="--set: drift_threshold='x'"):
        parse_assignment("drift_threshold=x")
    with pytest.raises(PolicyError, match="--unset: 'model_name' is not"):
        check_name("model_name", "--unset")


def test_every_overridable_value_is_a_setting_and_none_is_the_mode():
    fields = Settings.model_fields
    assert all(name in fields for name in OVERRIDABLE) and "retrain" not in OVERRIDABLE
    assert policy_tag("drift_threshold") == "policy.drift_threshold"
