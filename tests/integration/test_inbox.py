"""The unattended monitor: an S3 inbox (and a local folder), each file once, the reference from the champion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loans import write_loans
from test_own_model import infer, invoke, rows

from pipeline.app.monitor_result import EXIT_REJECTED
from pipeline.io.store import MetricsStore

pytestmark = pytest.mark.integration

BUCKET = "inbox-bucket"


@pytest.fixture
def champion(settings, tmp_path):
    """A champion trained on the loans reference, and the loans batches."""
    files = write_loans(tmp_path / "loans", batches=3, shift_at=None, text_labels=True, seed=8)
    infer(files, tmp_path / "loans.json", "default")
    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))
    return files


def recorded(dsn: str, model: str) -> list[tuple]:
    return rows(dsn, "SELECT batch_index, source FROM batch_metrics WHERE model_name = %s ORDER BY batch_index", model)


def test_an_s3_inbox_is_monitored_file_by_file_exactly_once(settings, servers, champion, tmp_path):
    s3 = servers.s3()
    s3.create_bucket(Bucket=BUCKET)
    inbox = f"s3://{BUCKET}/inbox/{settings.model_name}/"
    prefix = f"inbox/{settings.model_name}/"
    out = invoke("monitor", "--inbox", inbox)  # no --reference: the champion's stored sample
    assert "nothing new (0 batches recorded)" in " ".join(out.split())

    s3.upload_file(str(champion.batches[1]), BUCKET, prefix + "2026-11-02.csv")
    s3.upload_file(str(champion.batches[0]), BUCKET, prefix + "2026-11-01.csv")
    s3.put_object(Bucket=BUCKET, Key=prefix + "notes.txt", Body=b"not a batch")
    report = tmp_path / "first.json"
    invoke("monitor", "--inbox", inbox, "--report-json", str(report))
    first = recorded(settings.metrics_db_url, settings.model_name)
    assert [index for index, _ in first] == [1, 2]
    assert first[0][1].startswith(f"{inbox}2026-11-01.csv#") and first[1][1].startswith(f"{inbox}2026-11-02.csv#")
    assert [r["roc_auc"] > 0.7 for r in json.loads(report.read_text())] == [True, True]

    out = invoke("monitor", "--inbox", inbox)
    assert "nothing new (2 batches recorded)" in " ".join(out.split())
    assert recorded(settings.metrics_db_url, settings.model_name) == first

    s3.upload_file(str(champion.batches[2]), BUCKET, prefix + "2026-11-03.csv")
    s3.upload_file(str(champion.batches[2]), BUCKET, prefix + "2026-11-01.csv")  # written again, new content
    invoke("monitor", "--inbox", inbox)
    after = recorded(settings.metrics_db_url, settings.model_name)
    assert [index for index, _ in after] == [1, 2, 3, 4]
    assert after[2][1].startswith(f"{inbox}2026-11-01.csv#") and after[2][1] != first[0][1]
    assert after[3][1].startswith(f"{inbox}2026-11-03.csv#")
    (runs,) = rows(settings.metrics_db_url, "SELECT count(DISTINCT run_key) FROM batch_metrics")[0]
    assert runs == 1  # one monitor run per model and inbox, resumed by every timer run


def test_a_second_monitor_finds_the_inbox_held_and_does_nothing(settings, champion, tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a.csv").write_bytes(Path(champion.batches[0]).read_bytes())
    store = MetricsStore(settings.metrics_db_url)
    with store.inbox_lock(settings.model_name) as held:
        assert held
        out = invoke("monitor", "--inbox", str(folder))
    assert "another monitor is processing the inbox" in " ".join(out.split())
    assert recorded(settings.metrics_db_url, settings.model_name) == []
    invoke("monitor", "--inbox", str(folder))  # the lock released: the file is monitored
    assert len(recorded(settings.metrics_db_url, settings.model_name)) == 1


def test_inbox_and_current_together_is_one_line(settings, champion, tmp_path):
    out = invoke("monitor", "--inbox", str(tmp_path), "--current", str(champion.batches[0]), code=2)
    assert "either --inbox or --current" in out


def rejected(dsn: str, model: str) -> dict[str, str]:
    found = rows(dsn, "SELECT uri, reason FROM rejected_batches WHERE model_name = %s ORDER BY uri", model)
    return {uri.rsplit("/", 1)[1]: reason for uri, reason in found}


def parquet_bytes(table) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def adversarial_inbox(s3, folder: str, champion, one_line_bytes: int, rows_file) -> str:
    """The inbox ``s3://BUCKET/<folder>/``, its files in this order: a struct-valued Parquet file, a 100,000-column
    CSV, a one-line CSV of ``one_line_bytes``, ``rows_file`` (its name, and a function of the good batch's frame
    giving a Parquet file over the row cap), then a good batch."""
    import pandas as pd
    import pyarrow as pa

    s3.create_bucket(Bucket=BUCKET)
    good = pd.read_csv(champion.batches[0])

    def put(name: str, body: bytes) -> None:
        s3.put_object(Bucket=BUCKET, Key=f"{folder}/{name}", Body=body)

    nested = pa.Table.from_pandas(good, preserve_index=False)
    structs = pa.array([{"code": int(value)} if value == value else None for value in good["region"]])
    put("a-nested.parquet", parquet_bytes(nested.set_column(nested.column_names.index("region"), "region", structs)))
    put("b-wide.csv", (",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join(["1"] * 100_000) + "\n").encode())
    put("c-one-line.csv", b"x" * one_line_bytes)
    name, make = rows_file
    put(name, make(good))
    put("e-good.csv", Path(champion.batches[1]).read_bytes())
    return f"s3://{BUCKET}/{folder}/"


def test_an_adversarial_inbox_sets_each_bad_file_aside_once_and_retry_reads_one_again(
    settings, servers, champion, tmp_path, monkeypatch
):
    """Caps in this test: the header line's default (1 MiB) against an 8 MiB one-line CSV; the column cap's default
    (10,000) against 100,000 columns; PIPELINE_MAX_ROWS=2000 against a Parquet file of 20,000 rows."""
    import pandas as pd
    import pyarrow as pa

    monkeypatch.setenv("PIPELINE_MAX_ROWS", "2000")

    def many_rows(good: pd.DataFrame) -> bytes:  # 20,000 rows, the metadata says so
        return parquet_bytes(pa.Table.from_pandas(pd.concat([good] * 25, ignore_index=True), preserve_index=False))

    inbox = adversarial_inbox(servers.s3(), "adversarial", champion, 8 << 20, ("d-many-rows.parquet", many_rows))

    out = " ".join(invoke("monitor", "--inbox", inbox, "--fail-on-alarm", code=4).split())
    dsn, model = settings.metrics_db_url, settings.model_name
    assert [(index, source.split("#")[0]) for index, source in recorded(dsn, model)] == [(5, f"{inbox}e-good.csv")]
    reasons = rejected(dsn, model)
    assert reasons == {
        "a-nested.parquet": f"{inbox}a-nested.parquet: column 'region' holds nested values (dict); "
        "expected one value per cell",
        "b-wide.csv": f"{inbox}b-wide.csv: 100,000 columns, over the limit of 10,000 (PIPELINE_MAX_COLUMNS)",
        "c-one-line.csv": f"{inbox}c-one-line.csv: the header line is over 1,048,576 bytes (PIPELINE_MAX_HEADER_BYTES)",
        "d-many-rows.parquet": f"{inbox}d-many-rows.parquet: 20,000 rows, over the limit of 2,000 (PIPELINE_MAX_ROWS)",
    }
    for reason in reasons.values():
        assert reason in out
    assert "4 batch(es) failed validation; nothing was written for them (4 inbox file(s) set aside" in out

    out = " ".join(invoke("monitor", "--inbox", inbox, "--fail-on-alarm").split())
    assert f"{inbox}: nothing new (1 batches recorded); 4 set aside as rejected" in out
    assert "rejected" not in out.split("set aside as rejected", 1)[1] and "[batch" not in out  # none read again
    assert rejected(dsn, model) == reasons and len(recorded(dsn, model)) == 1
    status = " ".join(invoke("status").split())
    assert "rejected batches: 4 set aside" in status and "c-one-line.csv" in status

    monkeypatch.setenv("PIPELINE_MAX_ROWS", "50000")  # the cap raised for this file, then retried
    said = " ".join(invoke("inbox", "retry", "adversarial/d-many-rows.parquet").split())
    assert f"{inbox}d-many-rows.parquet (ETag " in said and "rejection cleared" in said
    invoke("inbox", "retry", "adversarial/nowhere.csv", code=2)
    invoke("monitor", "--inbox", inbox)
    after = recorded(dsn, model)
    assert [(index, source.split("#")[0]) for index, source in after] == [
        (5, f"{inbox}e-good.csv"),
        (6, f"{inbox}d-many-rows.parquet"),
    ]
    assert rows(dsn, "SELECT n_rows FROM batch_metrics WHERE batch_index = 6 AND model_name = %s", model) == [(20_000,)]
    assert set(rejected(dsn, model)) == {"a-nested.parquet", "b-wide.csv", "c-one-line.csv"}


def monitor_process(*args: str) -> tuple[int, str, int]:
    """``pipeline monitor`` as its own process: (exit code, output, peak resident set in bytes, from its rusage).
    The resident set is what the host's unit bounds (``MemoryMax``, a cgroup); an address-space limit
    (``prlimit --as=2G``) is no stand-in: the process's threads reserve more virtual memory than that, and it
    fails with "can't start new thread" at a resident peak under 1 GiB."""
    import os
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "monitor", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert child.stdout is not None
    output = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, output, usage.ru_maxrss * 1024  # Linux: kilobytes


def test_the_adversarial_inbox_at_full_size_in_under_2_gib(settings, servers, champion, tmp_path, record_property):
    """The acceptance inbox at its real sizes and the default caps, ``pipeline monitor --inbox`` run as a process:
    a struct-valued Parquet file, a 100,000-column CSV, a one-line 200 MB CSV (refused from a ranged read of its
    first MiB), a Parquet file whose metadata claims 50 million rows (96 KB: one all-null column), a good file."""
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    def claims_50m_rows(_good) -> bytes:
        claims = parquet_bytes(pa.table({"x": pa.nulls(50_000_000, pa.int8())}))
        assert len(claims) < 1 << 20 and pq.ParquetFile(pa.BufferReader(claims)).metadata.num_rows == 50_000_000
        return claims

    rows_file = ("d-claims-50m-rows.parquet", claims_50m_rows)
    inbox = adversarial_inbox(servers.s3(), "full-size", champion, 200_000_000, rows_file)

    started = time.monotonic()
    # --fail-on-alarm as the host's timer passes it: a file set aside is EXIT_REJECTED, which its unit counts as
    # success (the monitor notifies the rejection itself), not a failed run for the OnFailure= hook.
    code, out, peak = monitor_process("--inbox", inbox, "--fail-on-alarm")
    record_property("first_run_seconds", round(time.monotonic() - started, 1))  # reported (--junitxml), not asserted
    record_property("first_run_peak_rss_mib", round(peak / 2**20))
    out = " ".join(out.split())
    assert code == EXIT_REJECTED, out
    assert "4 batch(es) failed validation; nothing was written for them (4 inbox file(s)" in out, out
    assert peak < 2 << 30, f"peak resident set {peak / 2**20:.0f} MiB"
    dsn, model = settings.metrics_db_url, settings.model_name
    assert [source.split("#")[0] for _, source in recorded(dsn, model)] == [f"{inbox}e-good.csv"]
    reasons = rejected(dsn, model)
    assert reasons == {
        "a-nested.parquet": f"{inbox}a-nested.parquet: column 'region' holds nested values (dict); "
        "expected one value per cell",
        "b-wide.csv": f"{inbox}b-wide.csv: 100,000 columns, over the limit of 10,000 (PIPELINE_MAX_COLUMNS)",
        "c-one-line.csv": f"{inbox}c-one-line.csv: the header line is over 1,048,576 bytes (PIPELINE_MAX_HEADER_BYTES)",
        "d-claims-50m-rows.parquet": f"{inbox}d-claims-50m-rows.parquet: 50,000,000 rows, over the limit of "
        "5,000,000 (PIPELINE_MAX_ROWS)",
    }
    for reason in reasons.values():
        assert out.count(reason) == 1

    code, out, _ = monitor_process("--inbox", inbox, "--fail-on-alarm")
    out = " ".join(out.split())
    assert code == 0 and f"{inbox}: nothing new (1 batches recorded); 4 set aside as rejected" in out
    assert "[batch" not in out and rejected(dsn, model) == reasons and len(recorded(dsn, model)) == 1
