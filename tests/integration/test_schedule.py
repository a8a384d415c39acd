"""Scheduled runs: each `monitor --current FILE` of a model goes on from the ones before it (the policy's state
is the model's), and a batch is known by its file's identity, never by its place in a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from loans import write_loans
from test_own_model import infer, invoke, rows

pytestmark = pytest.mark.integration

BUCKET = "test-artifacts"  # the integration servers' bucket (conftest): the prediction log goes there


@pytest.fixture
def champion(settings, servers, tmp_path, monkeypatch):
    """A champion trained on 600 loans with an id column (so the prediction log is written), and three labelled
    batches of 400 rows."""
    monkeypatch.setenv("PIPELINE_ARTIFACT_BUCKET", BUCKET)
    files = write_loans(tmp_path / "loans", reference_rows=600, batches=3, rows=400, shift_at=None, seed=5)
    infer(files, tmp_path / "drafted.json", "1")
    schema = json.loads((tmp_path / "drafted.json").read_text())
    schema["id"] = "loan_id"
    (tmp_path / "loans.json").write_text(json.dumps(schema))
    invoke("train", "--data", str(files.reference), "--schema", str(tmp_path / "loans.json"))
    return files


def recorded(dsn: str, model: str) -> list[tuple]:
    return rows(
        dsn, "SELECT run_key, batch_index, source FROM batch_metrics WHERE model_name = %s ORDER BY batch_index", model
    )


def said(output: str) -> str:
    return " ".join(output.split())


def test_two_scheduled_runs_carry_the_policy_s_state_and_the_window_across(settings, champion, tmp_path, monkeypatch):
    """A refresh is due once the labelled rows since the champion was trained reach as many as it learned from
    (more than 400: the first run says no): one batch of 400 is not enough, two are. Each run is given one file
    and no run key: only a state that carries from the first run to the second counts the first batch's rows.
    Retraining is off, so the refresh is said and nothing is trained (the test stays fast)."""
    monkeypatch.setenv("PIPELINE_REFRESH_FRACTION", "1.0")
    monkeypatch.setenv("PIPELINE_RETRAIN", "off")
    first, second = (str(path) for path in champion.batches[:2])
    invoke("monitor", "--current", first, "--report-json", str(tmp_path / "1.json"))
    (one,) = json.loads((tmp_path / "1.json").read_text())
    assert (one["batch"], one["action"]) == (1, "none")

    out = said(invoke("monitor", "--current", second, "--report-json", str(tmp_path / "2.json")))
    (two,) = json.loads((tmp_path / "2.json").read_text())
    assert two["batch"] == 2 and not (two["drift_detected"] or two["performance_drop"] or two["prior_shift"])
    assert "[batch 2] refresh due (refresh: 800 labelled rows since the last retrain" in out
    # the first run's labelled rows, read back from the prediction log, are in this run's retraining window
    assert "400 labelled rows of 1 earlier batches of the run join the retraining window" in out
    runs = recorded(settings.metrics_db_url, settings.model_name)
    assert [(index, source.split("#")[0]) for _key, index, source in runs] == [(1, first), (2, second)]
    assert len({key for key, _index, _source in runs}) == 1  # the model's run, continued


def test_a_new_file_under_an_old_run_id_is_monitored_and_a_recorded_one_is_skipped(settings, champion, tmp_path):
    first, second, third = (str(path) for path in champion.batches)
    invoke("monitor", "--current", first, "--run-id", "daily")
    out = invoke("monitor", "--current", second, first, "--run-id", "daily", "--report-json", str(tmp_path / "r.json"))
    assert f"[batch 1] {first}: already recorded in run daily, skipped" in said(out)
    assert [(r["batch"], r["source"].split("#")[0]) for r in json.loads((tmp_path / "r.json").read_text())] == [
        (2, second),
        (1, first),
    ]
    shutil.copyfile(third, first)  # the same name, new content: a new batch
    invoke("monitor", "--current", first, "--run-id", "daily")
    runs = recorded(settings.metrics_db_url, settings.model_name)
    assert [(key, index, source.split("#")[0]) for key, index, source in runs] == [
        ("daily", 1, first),
        ("daily", 2, second),
        ("daily", 3, first),
    ]
    assert runs[0][2] != runs[2][2]
    assert Path(first).read_bytes() == Path(third).read_bytes()
