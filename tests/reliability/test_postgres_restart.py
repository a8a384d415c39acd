"""The metrics database restarts in the middle of a monitor run: writes are retried with backoff, every
batch lands exactly once, and the run goes on. The Postgres here is the test's own (the session one is
shared), stopped and started for real with pg_ctl."""

from __future__ import annotations

import logging
import threading

import pytest
from reliability_rig import Case, monitor_for, reference_of, sources_of

from pipeline.app import stack
from pipeline.app.stack_config import StackConfig

pytestmark = pytest.mark.reliability


def test_postgres_restart_mid_run_is_retried_and_every_batch_is_written_once(
    case: Case, own_postgres: StackConfig, caplog: pytest.LogCaptureFixture
):
    dsn = own_postgres.pg_url("metrics")
    restart = threading.Timer(3.0, stack.start_postgres, args=(own_postgres,))
    said: list[str] = []

    def on_batch(record: dict) -> None:
        if record["batch"] == 1:
            stack.stop_postgres(own_postgres)  # gone between two batches, back three seconds later
            assert not stack.postgres_running(own_postgres)
            restart.start()

    monitor = monitor_for(case, store_dsn=dsn, say=said.append)
    with caplog.at_level(logging.WARNING, logger="pipeline.io.store"):
        result = monitor.run(
            reference_of(case), sources_of(case.data.batches), "pg-restart", threshold=10, on_batch=on_batch
        )
    restart.join()
    assert [r["action"] for r in result.records] == ["none", "none", "none"] and not result.errors
    assert any("metrics database unreachable" in m and "retry" in m for m in caplog.messages)
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT batch_index, count(*) FROM batch_metrics WHERE run_key = 'pg-restart' "
            "GROUP BY batch_index ORDER BY batch_index"
        )
        assert cur.fetchall() == [(1, 1), (2, 1), (3, 1)]
    # and a rerun of the same run counts nothing twice
    again = monitor_for(case, store_dsn=dsn, say=said.append).run(
        reference_of(case), sources_of(case.data.batches), "pg-restart", threshold=10
    )
    assert again.skipped == 3
