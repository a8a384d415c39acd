"""``--config FILE.toml``: a ``[pipeline]`` table of settings by name, under the environment."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.io.config_file import apply_config, config_values
from pipeline.settings import SettingsError, load_settings


def write(tmp_path, text: str) -> str:
    path = tmp_path / "driftloop.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_table_becomes_the_settings_variables(tmp_path):
    path = write(tmp_path, '[pipeline]\nmodel_name = "loans"\ndrift_threshold = 0.2\nwindow_rows = 9000\n')
    assert config_values(path) == {
        "PIPELINE_MODEL_NAME": "loans",
        "PIPELINE_DRIFT_THRESHOLD": "0.2",
        "PIPELINE_WINDOW_ROWS": "9000",
    }


def test_the_environment_overrides_the_file(tmp_path, monkeypatch):
    environ = {"PIPELINE_MODEL_NAME": "from-env"}
    monkeypatch.setattr(os, "environ", environ)
    path = write(tmp_path, '[pipeline]\nmodel_name = "loans"\ndrift_threshold = 0.2\n')
    assert apply_config(path, environ) == {"PIPELINE_DRIFT_THRESHOLD": "0.2"}
    settings = load_settings()
    assert (settings.model_name, settings.drift_threshold) == ("from-env", 0.2)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[pipeline]\nmodel_nam = "x"\n', "model_nam is not a setting"),
        ('model_name = "x"\n', "the settings go under a [pipeline] table; found model_name"),
        ("[pipeline\n", "not a TOML file"),
    ],
)
def test_a_bad_file_is_one_line(tmp_path, text, said):
    with pytest.raises(SettingsError, match=said.replace("[", r"\[").replace("]", r"\]")):
        config_values(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[pipeline]\nmodel_nam = "x"\n', "model_nam is not a setting"),
        ('[pipeline]\ndrift_threshold = "high"\n', "PIPELINE_DRIFT_THRESHOLD='high'"),
    ],
)
def test_the_command_refuses_a_bad_config_with_exit_2(tmp_path, monkeypatch, text, said):
    monkeypatch.setattr(os, "environ", {})
    path = write(tmp_path, text)
    result = CliRunner().invoke(app, ["--config", path, "status"])
    assert result.exit_code == 2
    assert said in " ".join(result.output.split()) and path in " ".join(result.output.split())
