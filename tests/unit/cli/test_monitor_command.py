"""`pipeline monitor --all-models`: what it refuses before anything connects anywhere (exit 2, one line)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--all-models"], "pass it with --inbox ROOT"),
        (["--all-models", "--inbox", "ROOT", "--model-name", "loans"], "drop --model-name"),
        (["--all-models", "--inbox", "ROOT", "--report-json", "r.json"], "--report-json writes one run's records"),
        (["--all-models", "--inbox", "ROOT", "--current", "a.csv"], "either --inbox or --current"),
    ],
)
def test_all_models_refuses_what_names_one_model_before_connecting(args, said, monkeypatch):
    monkeypatch.setenv("PIPELINE_TRACKING_URI", "http://127.0.0.1:9")  # nothing there: never asked
    result = CliRunner().invoke(app, ["monitor", *args])
    assert result.exit_code == 2
    assert said in " ".join(result.output.split())


def test_the_help_says_what_a_root_inbox_is():
    shown = " ".join(CliRunner().invoke(app, ["monitor", "--help"], terminal_width=200).output.split())
    assert "--all-models" in shown and "ROOT/NAME/" in shown
