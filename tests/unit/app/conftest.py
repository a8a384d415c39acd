"""The app layer's unit tests: MLflow on a local file store, nothing else running."""

from __future__ import annotations

import mlflow
import pytest


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A local MLflow file store: enough to see which artifacts a run logs."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    mlflow.set_experiment("run-artifacts")  # not whichever experiment an earlier test of the session made active
    yield
    mlflow.set_tracking_uri(None)
