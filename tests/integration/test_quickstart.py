"""The README's quickstart, run as written: its bash blocks between the quickstart markers, in order, with bash,
in an empty folder, against a real PostgreSQL, MLflow server and moto S3 (the settings fixture's environment)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
MODEL = "cancer"  # the quickstart's --model-name


def quickstart_blocks(text: str) -> list[str]:
    """The fenced bash blocks between ``<!-- quickstart:start -->`` and ``<!-- quickstart:end -->``."""
    part = text.split("<!-- quickstart:start -->", 1)[1].split("<!-- quickstart:end -->", 1)[0]
    return re.findall(r"^```bash\n(.*?)^```$", part, flags=re.MULTILINE | re.DOTALL)


def test_the_quickstart_blocks_are_found_and_name_the_commands_a_newcomer_runs():
    script = "\n".join(quickstart_blocks(README.read_text()))
    for command in ("schema infer", "train", "monitor", "status", "explain"):
        command = f"pipeline {command}"
        assert command in script, command


@pytest.mark.e2e  # about a minute: a training and a monitor run
def test_the_readme_quickstart_runs_as_written(settings, tmp_path):
    env = dict(os.environ)  # the fixture's PIPELINE_* settings point at the test's servers
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python`, `pipeline` of this venv
    outputs = []
    for block in quickstart_blocks(README.read_text()):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"{block}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout + done.stderr)
    said = "\n".join(outputs)
    (tmp_path / "quickstart.log").write_text(said)  # kept with the test's folder, to read after a failure

    assert json.loads((tmp_path / "cancer.json").read_text())["target"] == {
        "column": "diagnosis",
        "positive": "malignant",
        "negative": "benign",
    }
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == "1"  # trained by the quickstart; a rejected challenger never replaces it

    records = json.loads((tmp_path / "report.json").read_text())
    assert [r["batch"] for r in records] == [1, 2]
    assert [r["rows"] for r in records] == [130, 139]
    assert all(r["model_name"] == MODEL and r["champion_version"] == 1 for r in records)
    assert all(r["roc_auc"] is not None and r["roc_auc"] > 0.9 for r in records)  # the batches carry labels
    # a random split: nothing drifted, and at this size nothing alarms from noise alone (what the README shows)
    assert [(r["drift_detected"], r["action"]) for r in records] == [(False, "none"), (False, "none")]
    with psycopg2.connect(settings.metrics_db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT batch_index, n_rows FROM batch_metrics WHERE model_name = %s ORDER BY 1", (MODEL,))
        assert cur.fetchall() == [(1, 130), (2, 139)]

    assert "wrote cancer.json: 30 numerical, 0 categorical" in said, said
    assert "cancer v1 (logreg) is champion" in said or "cancer v1 (xgboost) is champion" in said, said
    assert "top drifted features" in said, said  # pipeline status
    assert "why it moved" in said, said  # pipeline explain
