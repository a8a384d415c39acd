"""The unattended monitor: an S3 inbox (and a local folder), each file once, the reference from the champion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loans import write_loans
from test_own_model import infer, invoke, rows

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
