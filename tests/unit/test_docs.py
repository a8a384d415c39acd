"""The README is the contract: it must name every setting, every report field and every action."""

import re
from pathlib import Path
from typing import Any

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


def test_every_command_and_option_of_the_cli_is_in_the_command_line_section():
    import typer.main

    from pipeline.cli.app import app

    section = README.split("## The command line")[1].split("\n## ")[0]
    missing: list[str] = []

    def walk(command: Any, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():  # a group: its commands
            walk(sub, [*path, name])
        if hasattr(command, "commands"):
            return
        lines = [line for line in section.splitlines() if line.startswith(f"pipeline {path[0]}")]
        if not any(all(part in line for part in path) for line in lines):  # e.g. `pipeline stack up|down`
            missing.append(" ".join(path))
        options = [o for p in command.params for o in p.opts if o.startswith("--") and o != "--help"]
        missing.extend(f"{' '.join(path)} {o}" for o in options if o not in section)

    walk(typer.main.get_command(app), [])
    assert not missing
