"""The README is the contract: it must name every setting, every report field and every action."""

import re
from pathlib import Path

from pipeline.domain.policy_types import Action
from pipeline.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table():
    missing = [
        f"PIPELINE_{name.upper()}" for name in Settings.model_fields if f"`PIPELINE_{name.upper()}`" not in README
    ]
    assert not missing


def test_every_action_and_report_field_is_documented():
    section = README.split("## The `--report-json` record")[1].split("\n## ")[0]
    for action in Action:
        assert f"`{action}`" in section
    for field in (
        "batch",
        "source",
        "rows",
        "prediction_drift",
        "drifted_columns",
        "share_missing",
        "drift_detected",
        "action",
        "model_name",
        "champion_version",
        "roc_auc",
        "accuracy",
        "drifted_features",
        "prior_shift",
        "mean_prediction",
        "positive_rate",
        "drift_attribution",
    ):
        assert re.search(rf"`{field}`", section), field


def test_drift_direction_is_stated_in_the_cli_help():
    from typer.testing import CliRunner

    from pipeline.cli.main import app

    result = CliRunner().invoke(app, ["monitor", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.replace("│", " ").split())  # the help's table borders cut wrapped lines
    assert "HIGHER = MORE drift" in text and "score >= threshold" in text
