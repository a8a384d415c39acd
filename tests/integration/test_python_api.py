"""The Python API (``pipeline.api``, re-exported as ``pipeline.train`` ...) on a real MLflow server, real Postgres
and moto S3: train, monitor a batch, read the status, typed results and no exit."""

from __future__ import annotations

import pytest
from loans import write_loans
from typer.testing import CliRunner

import pipeline
from pipeline.app.monitor_result import MonitorResult
from pipeline.cli.main import app
from pipeline.model.retrain import RetrainOutcome

pytestmark = pytest.mark.integration


def test_train_monitor_and_status_through_the_python_api(settings, tmp_path):
    files = write_loans(tmp_path / "loans", reference_rows=800, batches=2, rows=300, shift_at=None)
    schema = tmp_path / "loans.json"
    infer = ["schema", "infer", "--data", str(files.reference), "--target", "defaulted", "--positive", "1"]
    inferred = CliRunner().invoke(app, [*infer, "--categorical", "region", "--out", str(schema)])
    assert inferred.exit_code == 0, inferred.output
    said: list[str] = []

    trained = pipeline.train(files.reference, schema=schema, say=said.append)
    assert isinstance(trained, RetrainOutcome) and trained.promoted and trained.version == 1

    result = pipeline.monitor(files.batches, reference=files.reference, say=said.append)
    assert isinstance(result, MonitorResult)
    assert [record["batch"] for record in result.records] == [1, 2]
    assert all(record["rows"] == 300 and 0.5 < record["roc_auc"] <= 1 for record in result.records)
    assert not result.errors and not result.failures

    status = pipeline.status()
    assert status.model_name == settings.model_name
    assert status.champion_version == 1 and status.aliases["champion"] == 1
    assert sorted(b["batch_index"] for b in status.last_batches) == [1, 2]
    assert any("training on" in line for line in said)  # progress went to ``say``, not to the console


def test_a_call_without_batches_is_a_value_error_not_an_exit(settings):
    with pytest.raises(ValueError, match="give batches or an inbox"):
        pipeline.monitor([])
