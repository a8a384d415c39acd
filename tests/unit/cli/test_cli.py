"""What the command line pays before it works: `pipeline --help` and a command that fails at once import none of
the heavy libraries (MLflow, Evidently, scikit-learn, xgboost, matplotlib, SciPy)."""

from __future__ import annotations

import os
import subprocess
import sys

HEAVY = ("mlflow", "evidently", "sklearn", "xgboost", "matplotlib", "scipy", "hyperopt")

# Runs the CLI in a fresh interpreter, then prints which heavy libraries got imported and the exit code.
PROBE = """
import sys
from pipeline.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as done:
    code = done.code
heavy = [name for name in {heavy!r} if name in sys.modules]
print("IMPORTED", ",".join(heavy), "EXIT", code)
"""


def _probe(*args: str, heavy: tuple[str, ...] = HEAVY, **env: str) -> tuple[list[str], int, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINE_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=False,
        timeout=120,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("IMPORTED"))
    _, imported, _, code = line.split(" ")
    return [name for name in imported.split(",") if name], int(code), done.stderr


def test_help_imports_no_heavy_library():
    imported, code, _ = _probe("--help")
    assert code == 0 and imported == []


def test_a_monitor_without_tracking_server_fails_in_one_line_before_importing_mlflow(tmp_path):
    batch = tmp_path / "b.csv"
    batch.write_text("age\n1\n")
    imported, code, stderr = _probe(
        "monitor", "--current", str(batch), PIPELINE_TRACKING_URI="http://127.0.0.1:9", PIPELINE_SCHEMA_PATH=""
    )
    assert code == 2 and imported == []
    assert "MLflow tracking server http://127.0.0.1:9 is unreachable" in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_notify_imports_no_table_library():
    """The failed-run hook runs on a host short of memory: sending a message reads no table (no pandas)."""
    imported, code, stderr = _probe(
        "notify",
        "run failed",
        heavy=(*HEAVY, "pandas", "pyarrow"),
        PIPELINE_NOTIFY_SNS_TOPIC="arn:aws:sns:us-east-1:123456789012:alerts",
        PIPELINE_S3_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_MAX_ATTEMPTS="1",
    )
    assert code == 1, stderr  # the topic's endpoint refuses: not sent
    assert imported == []


def test_help_lists_the_commands_in_their_order_whichever_module_registers_them():
    from typer.main import get_command

    from pipeline.cli.main import app

    names = list(get_command(app).commands)  # type: ignore[attr-defined]
    assert names == [
        "train",
        "monitor",
        "adopt",
        "labels",
        "spark-job-args",
        "promote",
        "rollback",
        "configure",
        "status",
        "report",
        "explain",
        "notify",
        "doctor",
        "data",
        "stack",
        "schema",
        "inbox",
    ]


def test_version_and_short_help():
    from typer.testing import CliRunner

    from pipeline.cli.main import app

    version = CliRunner().invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("driftloop ")
    for args in (["-h"], ["monitor", "-h"], ["stack", "-h"]):
        shown = CliRunner().invoke(app, args)
        assert shown.exit_code == 0 and "Usage:" in shown.output, args


def test_help_keeps_square_brackets_the_help_renderer_would_read_as_markup():
    from typer.testing import CliRunner

    from pipeline.cli.main import app

    shown = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert "whose [pipeline] table" in shown.output


def test_a_bad_setting_is_one_line_with_exit_2_and_a_misspelled_one_is_warned_of():
    imported, code, stderr = _probe("status", PIPELINE_COOLDOWN_BATCHES="often", PIPELINE_DRIFT_TRESHOLD="0.2")
    assert code == 2 and imported == []
    lines = stderr.strip().splitlines()
    assert lines[0] == "warning: PIPELINE_DRIFT_TRESHOLD is not a setting and is ignored (docs/settings.md)"
    assert lines[1].startswith("error: PIPELINE_COOLDOWN_BATCHES='often': ") and len(lines) == 2


def test_library_chatter_is_hidden_but_a_model_saved_by_another_library_version_is_said():
    import warnings

    from pipeline.cli.app import _quiet_libraries

    mismatch = "Trying to unpickle estimator LogisticRegression from version 1.3.0 when using version 1.5.2."
    with warnings.catch_warnings(record=True) as seen:
        _quiet_libraries(False)
        warnings.warn("a library's chatter", UserWarning, stacklevel=1)
        warnings.warn(mismatch, UserWarning, stacklevel=1)
        warnings.warn("a deprecation", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == [mismatch]
