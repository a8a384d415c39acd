"""MLflow plumbing: connect to the tracking server, log a model with skops.

Models are saved with skops (never pickle), listing the project's trusted types; ``pipeline.model.flavors`` loads
them back (and models users bring) with the trusted types of the project, not of the artifact.
Requirements are pinned to what is installed, so ``log_model`` never infers them (inference takes seconds
per model).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from functools import cache
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from pipeline.model.flavors import PROJECT_TRUSTED_TYPES

MODEL_NAME_IN_RUN = "model"


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking server does not answer."""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


@cache
def pip_requirements() -> list[str]:
    """What a serving environment needs to load our models, pinned to the versions trained with."""
    xgboost_version = _version("xgboost") or _version("xgboost-cpu")
    pins = {
        "scikit-learn": _version("scikit-learn"),
        "xgboost": xgboost_version,
        "skops": _version("skops"),
        "pandas": _version("pandas"),
        "numpy": _version("numpy"),
        "mlflow": _version("mlflow"),
    }
    return [f"{name}=={version}" if version else name for name, version in pins.items()]


def check_server(tracking_uri: str) -> None:
    """Fail fast, before any work, when an HTTP tracking server does not answer its health check."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - configured server
            if response.status == 200:
                return
    except (urllib.error.URLError, OSError) as err:
        raise TrackingUnavailable(f"MLflow tracking server {tracking_uri} is unreachable ({err})") from err
    raise TrackingUnavailable(f"MLflow tracking server {tracking_uri} is unhealthy")


def server_up(tracking_uri: str) -> bool:
    try:
        check_server(tracking_uri)
    except TrackingUnavailable:
        return False
    return True


def wait_for_server(tracking_uri: str, timeout: float) -> None:
    """Wait (with backoff, up to ``timeout`` seconds) until the tracking server answers again."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while not server_up(tracking_uri):
        if time.monotonic() + delay > deadline:
            raise TrackingUnavailable(f"MLflow tracking server {tracking_uri} did not come back within {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 10)


def is_tracking_failure(err: BaseException) -> bool:
    """An error of the tracking side (server gone, artifact store refusing a write), not a bug of ours."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        from botocore.exceptions import BotoCoreError, ClientError

        boto_errors: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)
    except ImportError:  # pragma: no cover - boto3 is a dependency
        boto_errors = ()
    return isinstance(err, (MlflowException, requests.RequestException, ConnectionError, *boto_errors))


def end_running_children(run_id: str, status: str) -> list[str]:
    """Mark every run still RUNNING below ``run_id`` (nested retrain, candidates, trials) as ``status``.

    Runs left RUNNING by a process that died, or by a server that went away mid-run, end up FAILED or
    KILLED instead of running forever in the UI. Returns the ids it ended.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_run(run_id).info.experiment_id
    ended, parents = [], [run_id]
    while parents:
        parent = parents.pop()
        for run in client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'"):
            parents.append(run.info.run_id)
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, status)
                ended.append(run.info.run_id)
    return ended


def connect(tracking_uri: str, experiment_name: str) -> str:
    """Point the MLflow client at the server and the experiment; returns the experiment id. An HTTP server that
    does not answer fails before MLflow is even imported."""
    check_server(tracking_uri)
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.set_experiment(experiment_name)
    return str(experiment.experiment_id)


def log_model(model: Any, sample: pd.DataFrame, proba: np.ndarray) -> Any:
    """Log a fitted sklearn pipeline to the active run with a signature (``sample`` its input, ``proba`` its
    P(positive) on those rows); returns MLflow's ModelInfo."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(sample.head(50), np.asarray(proba[:50], dtype="float64"))
    return mlflow.sklearn.log_model(
        model,
        name=MODEL_NAME_IN_RUN,
        signature=signature,
        pip_requirements=pip_requirements(),
        serialization_format="skops",
        skops_trusted_types=list(PROJECT_TRUSTED_TYPES),
    )
