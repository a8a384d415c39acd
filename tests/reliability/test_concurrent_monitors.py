"""Two monitors started together on the same model: exactly one retrains (Postgres advisory lock); the other
records `skipped-busy`, says so, holds off for the cooldown and goes on monitoring."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from reliability_rig import VENV_BIN, Case, subprocess_env

pytestmark = pytest.mark.reliability


def test_two_monitors_on_one_model_exactly_one_retrains(weak_case: Case, tmp_path: Path):
    case = weak_case
    procs = []
    for name in ("left", "right"):
        args = [
            str(VENV_BIN / "pipeline"),
            "monitor",
            "--reference",
            str(case.data.reference),
            "--run-id",
            name,
            "--threshold",
            "0.000001",
            "--report-json",
            str(tmp_path / f"{name}.json"),
            "--current",
            *[str(p) for p in case.data.batches[:2]],
        ]
        procs.append(
            subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,  # noqa: S603
                env=subprocess_env(case, PIPELINE_TUNING_TRIALS="2"),
            )
        )
    outputs = [proc.communicate(timeout=400)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    reports = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ("left", "right")}
    first = sorted(r[0]["action"] for r in reports.values())
    assert first == ["retrained-promoted", "skipped-busy"], outputs
    assert all(r[1]["action"] == "skipped-cooldown" for r in reports.values())
    busy = next(i for i, r in enumerate(reports.values()) if r[0]["action"] == "skipped-busy")
    assert "another monitor is retraining" in outputs[busy] and "skipped-busy" in outputs[busy]
    assert case.rows("SELECT count(*) FROM events WHERE kind = 'retrain'") == [(1,)]
    assert case.versions() == [1, 2, 3]
    assert case.rows("SELECT run_key, batch_index, action FROM batch_metrics WHERE action = 'skipped-busy'")[0][1] == 1
    assert case.rows("SELECT count(*), count(DISTINCT (run_key, batch_index)) FROM batch_metrics") == [(4, 4)]
