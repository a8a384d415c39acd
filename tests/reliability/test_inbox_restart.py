"""Two `pipeline monitor --inbox` processes on the same S3 inbox while the metrics database is stopped and started
(pg_ctl) under them: every file is recorded exactly once, none is lost, and a rerun records nothing new."""

from __future__ import annotations

import subprocess
import time

import psycopg2
import pytest
from reliability_rig import VENV_BIN, Case, Rig, subprocess_env

from pipeline.app import stack
from pipeline.app.stack_config import StackConfig

pytestmark = pytest.mark.reliability

FILES = 6


def _recorded(dsn: str, model: str) -> list[tuple[str, int]]:
    """(file, times recorded) of every batch the model's runs recorded; none while the database is down."""
    try:
        with psycopg2.connect(dsn, connect_timeout=2) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT split_part(source, '#', 1), count(*) FROM batch_metrics WHERE model_name = %s GROUP BY 1",
                (model,),
            )
            return sorted(cur.fetchall())
    except psycopg2.Error:
        return []


def test_two_inbox_monitors_across_a_postgres_restart_record_every_file_once(
    case: Case, rig: Rig, own_postgres: StackConfig
):
    s3 = rig.s3()
    bucket = f"inbox-{case.model_name}"
    s3.create_bucket(Bucket=bucket)
    for i in range(FILES):  # each key a file of its own, whatever its content
        s3.upload_file(str(case.data.batches[i % len(case.data.batches)]), bucket, f"inbox/{i:02d}.csv")
    inbox = f"s3://{bucket}/inbox/"
    dsn = own_postgres.pg_url("metrics")
    env = subprocess_env(case, PIPELINE_METRICS_DB_URL=dsn)
    reference = str(case.data.reference)  # the rig's champion has no stored reference
    command = [str(VENV_BIN / "pipeline"), "monitor", "--inbox", inbox, "--reference", reference, "--threshold", "10"]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)  # noqa: S603
        for _ in range(2)
    ]
    deadline = time.monotonic() + 300
    while not _recorded(dsn, case.model_name) and time.monotonic() < deadline:
        if all(proc.poll() is not None for proc in procs):
            break
        time.sleep(0.2)
    before = len(_recorded(dsn, case.model_name))
    if not 0 < before < FILES:  # the restart is to come in the middle of the inbox
        raise AssertionError(f"{before} file(s) recorded before the restart: {[p.communicate()[0] for p in procs]}")
    stack.stop_postgres(own_postgres)  # gone in the middle of the inbox, back three seconds later
    time.sleep(3)
    stack.start_postgres(own_postgres)
    outputs = [proc.communicate(timeout=400)[0] for proc in procs]

    expected = [(f"{inbox}{i:02d}.csv", 1) for i in range(FILES)]
    assert _recorded(dsn, case.model_name) == expected, outputs
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)  # noqa: S603
    assert f"{inbox}: nothing new ({FILES} batches recorded)" in " ".join(again.stdout.split()), again.stdout
    assert _recorded(dsn, case.model_name) == expected
