"""A monitor process SIGKILLed during a retrain or right after its promotion, then rerun: the champion is a
valid, loadable version, every batch is counted exactly once, no version is trained twice, and the events
tell the story. Promotion itself is one alias switch, with `previous` set before it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient
from reliability_rig import VENV_BIN, Case, invoke, running_descendants, subprocess_env

from pipeline.model import flavors
from pipeline.model.registry import Registry

pytestmark = pytest.mark.reliability


def start_monitor(case: Case, run_key: str, report: Path, **env: str) -> subprocess.Popen:
    args = [
        str(VENV_BIN / "pipeline"),
        "monitor",
        "--reference",
        str(case.data.reference),
        "--run-id",
        run_key,
        "--threshold",
        "0.000001",
        "--report-json",
        str(report),
        "--current",
        *[str(p) for p in case.data.batches[:2]],
    ]
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,  # noqa: S603
        env=subprocess_env(case, **env),
        start_new_session=True,
    )


@pytest.mark.parametrize("kill_on", ["candidate", "PROMOTED"], ids=["during-retrain", "after-promotion"])
def test_sigkill_then_rerun_leaves_a_valid_champion_and_counts_every_batch_once(
    weak_case: Case, kill_on: str, tmp_path: Path
):
    case = weak_case  # v1 the base model, v2 the poor champion: the retrain (v3) is always promoted
    proc = start_monitor(case, "killed", tmp_path / "first.json")
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if kill_on in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    aliases = case.aliases()
    if kill_on == "PROMOTED":  # killed between the alias switch and the write of the batch
        assert aliases["champion"] == "3" and aliases["previous"] == "2"
    else:
        assert aliases["champion"] == "2"
    written_before = case.rows("SELECT count(*) FROM batch_metrics")[0][0]
    given = [str(p) for p in case.data.batches[:2]]
    if kill_on == "PROMOTED":
        # a file that sorts before the interrupted one arrives before the rerun: it must not be credited with the
        # interrupted attempt's version, nor make the interrupted batch retrain again
        early = tmp_path / "batch_000_early.csv"
        early.write_bytes(Path(case.data.batches[2]).read_bytes())
        given = [str(early), given[0]]  # the cooldown then covers both

    rerun = invoke(
        "monitor",
        "--reference",
        str(case.data.reference),
        "--run-id",
        "killed",
        "--threshold",
        "0.000001",
        "--report-json",
        str(tmp_path / "rerun.json"),
        "--current",
        *given,
    )
    records = json.loads((tmp_path / "rerun.json").read_text())
    actions = [r["action"] for r in records]
    assert actions == ["retrained-promoted"] + ["skipped-cooldown"] * (len(given) - 1), rerun.output
    assert records[0]["champion_version"] == 2 and records[1]["champion_version"] == 3
    assert written_before == 0 or kill_on == "PROMOTED"
    counted = case.rows("SELECT batch_index, count(*), source FROM batch_metrics GROUP BY 1, 3 ORDER BY 1")
    assert [(index, count) for index, count, _source in counted] == [(i, 1) for i in range(1, len(given) + 1)]
    assert counted[0][2].split("#")[0] == str(case.data.batches[0])  # the promotion credited to its own batch
    story = case.rows("SELECT kind, model_version, champion_version FROM events WHERE batch_index = 1 ORDER BY id")
    assert story == [("alarm", None, 2), ("retrain", 3, 2), ("promotion", 3, 2)]
    assert case.versions() == [1, 2, 3]  # the interrupted work was finished or redone, never doubled
    assert case.aliases() == {"champion": "3", "previous": "2", "challenger": "3"}
    # what lets a rerun finish instead of retrain: the version is born with its decision and origin
    tags = MlflowClient(case.settings.tracking_uri).get_model_version(case.model_name, "3").tags
    assert tags["decision"] == "promoted" and tags["compared_with"] == "2"
    assert tags["monitor_run_key"] == "killed" and tags["monitor_batch"] == "1"
    assert tags["monitor_source"].split("#")[0] == str(case.data.batches[0])
    model = flavors.load_model(f"models:/{case.model_name}@champion").model
    from pipeline.domain.schema import load_schema
    from pipeline.io.data import load_batch
    from pipeline.model.train import predict_proba

    schema = load_schema()
    proba = predict_proba(model, load_batch(str(case.data.batches[2]), schema).frame, schema)
    assert ((proba >= 0) & (proba <= 1)).all()
    run_id = case.rows("SELECT mlflow_run_id FROM monitor_runs WHERE run_key = 'killed'")[0][0]
    assert running_descendants(case.settings.tracking_uri, run_id) == []


class RecordingClient:
    """A registry client that records alias writes (the order is the property under test)."""

    def __init__(self, champion: int | None) -> None:
        self.aliases = {} if champion is None else {"champion": str(champion)}
        self.writes: list[tuple[str, str]] = []

    def get_model_version_by_alias(self, name, alias):
        from mlflow.exceptions import MlflowException

        if alias not in self.aliases:
            raise MlflowException(f"no alias {alias}")
        return type("MV", (), {"version": self.aliases[alias], "run_id": None, "tags": {}})()

    def set_registered_model_alias(self, name, alias, version):
        self.writes.append((alias, version))
        self.aliases[alias] = version


def test_promotion_is_previous_first_then_one_champion_switch():
    client = RecordingClient(champion=4)
    assert Registry(client, "m").promote(7) == 4
    assert client.writes == [("previous", "4"), ("champion", "7")]
    first = RecordingClient(champion=None)
    assert Registry(first, "m").promote(1) is None
    assert first.writes == [("champion", "1")]
