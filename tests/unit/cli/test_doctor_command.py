"""`pipeline doctor` as a new user runs it: MLflow's own MLFLOW_TRACKING_URI at a closed port, no
PIPELINE_TRACKING_URI, nothing listening anywhere: one line per part, each naming the address it tried."""

from __future__ import annotations

import os
import subprocess
import sys


def test_doctor_names_the_mlflow_address_of_mlflow_s_own_variable_and_fails(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIPELINE_", "MLFLOW_"))}
    env.update(
        MLFLOW_TRACKING_URI="http://127.0.0.1:9",  # the discard port: nothing answers there
        PIPELINE_METRICS_DB_URL="postgresql://monitor@127.0.0.1:9/metrics",
        PIPELINE_S3_ENDPOINT_URL="http://127.0.0.1:9",
        COLUMNS="200",
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "doctor"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL ")]
    assert done.returncode == 1, done.stdout + done.stderr
    assert [line.split(":", 1)[0] for line in failed] == ["FAIL MLflow", "FAIL metrics database", "FAIL artifact store"]
    assert "http://127.0.0.1:9 is unreachable" in failed[0]
    assert "127.0.0.1" in failed[1] and "http://127.0.0.1:9" in failed[2]
    assert "Traceback" not in done.stdout + done.stderr
