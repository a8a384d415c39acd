"""The retraining mode in effect: the model's own tag wins over the setting; a bad value is one line."""

from __future__ import annotations

import pytest

from pipeline.domain.retrain_mode import MODE_TAG, ModeError, RetrainMode, parse_mode, resolve_mode


@pytest.mark.parametrize(
    ("tags", "setting", "mode", "source"),
    [
        ({}, "auto", RetrainMode.auto, "setting PIPELINE_RETRAIN"),
        ({}, "off", RetrainMode.off, "setting PIPELINE_RETRAIN"),
        ({MODE_TAG: "challenger"}, "auto", RetrainMode.challenger, f"model tag {MODE_TAG}"),
        ({MODE_TAG: " Off "}, "auto", RetrainMode.off, f"model tag {MODE_TAG}"),
        ({MODE_TAG: ""}, "challenger", RetrainMode.challenger, "setting PIPELINE_RETRAIN"),
        ({"other": "off"}, "auto", RetrainMode.auto, "setting PIPELINE_RETRAIN"),
    ],
)
def test_the_models_own_tag_wins_over_the_setting(tags, setting, mode, source):
    assert resolve_mode(tags, setting) == (mode, source)


def test_a_mode_that_does_not_exist_is_refused_in_one_line_naming_where_it_came_from():
    with pytest.raises(ModeError) as refused:
        resolve_mode({MODE_TAG: "sometimes"}, "auto")
    assert (
        str(refused.value)
        == f"the model's tag {MODE_TAG}: retraining mode 'sometimes' is not one of off | challenger | auto"
    )
    with pytest.raises(ModeError):
        parse_mode("manual", "--retrain")
