"""The README and docs/ are the contract: they must name every setting (with its default), every command and
option, every report field and every action, and name nothing the code does not have; their links resolve."""

import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.domain.policy_types import Action
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
SETTINGS_DOC = (DOCS / "settings.md").read_text()
CLI_DOC = (DOCS / "cli.md").read_text()
MARKDOWN = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
NOT_A_SETTING = {"PIPELINE_DRIFT_TRESHOLD"}  # the misspelt variable the docs show being warned of


def section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n")[1].split("\n## ")[0]


def test_the_readme_reads_in_ten_minutes():
    assert len(README.splitlines()) <= 320, "move the detail into docs/"


def test_every_setting_is_in_the_configuration_table_with_its_default():
    table = section(SETTINGS_DOC, "Configuration")
    rows = dict(re.findall(r"^\| `PIPELINE_([A-Z0-9_]+)` \| `([^`]*)` \|", table, flags=re.MULTILINE))
    assert sorted(rows) == sorted(name.upper() for name in Settings.model_fields)
    wrong = {}
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        default = default.get_secret_value() if hasattr(default, "get_secret_value") else default
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        shown = "" if default in (None, "", (), []) else shown
        if rows[name.upper()] != shown:
            wrong[name] = (rows[name.upper()], shown)
    assert not wrong


def test_every_setting_the_docs_name_exists():
    named = {m for path in MARKDOWN for m in re.findall(r"\bPIPELINE_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text())}
    assert named - NOT_A_SETTING <= {f"PIPELINE_{name.upper()}" for name in Settings.model_fields}


def test_every_action_and_report_field_is_documented():
    records = section(CLI_DOC, "The `--report-json` record")
    for action in Action:
        assert f"`{action}`" in records
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
        assert re.search(rf"`{field}`", records), field


def test_drift_direction_is_stated_in_the_cli_help():
    from typer.testing import CliRunner

    from pipeline.cli.main import app

    result = CliRunner().invoke(app, ["monitor", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.replace("│", " ").split())  # the help's table borders cut wrapped lines
    assert "HIGHER = MORE drift" in text and "score >= threshold" in text


def cli_commands() -> dict[tuple[str, ...], set[str]]:
    """Every command's path and its long options."""
    import typer.main

    from pipeline.cli.app import app

    found: dict[tuple[str, ...], set[str]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():  # a group: its commands
            walk(sub, (*path, name))
        if not hasattr(command, "commands"):
            found[path] = {o for p in command.params for o in p.opts if o.startswith("--") and o != "--help"}

    walk(typer.main.get_command(app), ())
    return found


def test_every_command_and_option_of_the_cli_is_in_the_command_line_section():
    lines_section = section(CLI_DOC, "The command line")
    missing: list[str] = []
    for path, options in cli_commands().items():
        lines = [line for line in lines_section.splitlines() if line.startswith(f"pipeline {path[0]}")]
        if not any(all(part in line for part in path) for line in lines):  # e.g. `pipeline stack up|down`
            missing.append(" ".join(path))
        missing.extend(f"{' '.join(path)} {o}" for o in sorted(options) if o not in lines_section)
    assert not missing


def test_every_option_in_the_command_lines_synopsis_is_an_option_of_its_command():
    commands = cli_commands()
    block = section(CLI_DOC, "The command line").split("```")[1]
    synopsis: list[tuple[tuple[str, ...], str]] = []
    for line in block.splitlines():
        code = line.split("#", 1)[0]
        if code.startswith("pipeline "):
            words = code.split()[1:]
            path = max((p for p in commands if tuple(w.split("|")[0] for w in words[: len(p)]) == p), key=len)
        synopsis.extend((path, option) for option in re.findall(r"--[a-z][a-z-]*", code))
    wrong = [f"pipeline {' '.join(path)} {option}" for path, option in synopsis if option not in commands[path]]
    assert synopsis and not wrong


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (outside code fences)."""
    found, fenced = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            heading = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return found


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(path: Path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            broken.append(target)
    assert not broken


def test_every_make_target_the_docs_name_exists():
    makefiles = "\n".join(p.read_text() for p in [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))])
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefiles, flags=re.MULTILINE))
    named = {t for path in MARKDOWN for t in re.findall(r"`make ([a-z][a-z0-9-]*)", path.read_text())}
    assert named and not named - targets


def test_every_module_of_the_package_is_in_the_architecture_table():
    table = (ROOT / "docs" / "architecture.md").read_text()
    modules = [
        path.relative_to(ROOT / "pipeline").with_suffix("").as_posix()
        for path in sorted((ROOT / "pipeline").rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py")
    ]
    missing = [name for name in modules if f"`{name}`" not in table]
    assert modules and not missing, missing
