"""The app layer's unit tests: MLflow on a local file store, nothing else running."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from pipeline.demo.synth import Population, load_sample_frame


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A local MLflow file store: enough to see which artifacts a run logs."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    mlflow.set_experiment("run-artifacts")  # not whichever experiment an earlier test of the session made active
    yield
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="session")
def population(schema):
    """The demo's synthetic population, fitted once."""
    return Population.fit(load_sample_frame(), schema)


@pytest.fixture(scope="session")
def oracle(population):
    """The population's own P(positive): a model that never needs training."""

    def proba(frame):
        return 1 / (1 + np.exp(-population.logit(frame, "base")))

    return proba
