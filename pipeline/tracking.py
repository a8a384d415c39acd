"""MLflow plumbing: connect to the tracking server, log a model with skops, load one back.

Models are saved with skops (never pickle) and loaded with an explicit list of trusted types, the only
types beyond skops' defaults that our pipelines contain. Requirements are pinned to what is installed,
so ``log_model`` never infers them (inference takes seconds per model).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from functools import cache
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

SKOPS_TRUSTED_TYPES = ["numpy.dtype", "xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"]
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


def connect(tracking_uri: str, experiment_name: str) -> str:
    """Point the MLflow client at the server and the experiment; returns the experiment id."""
    import mlflow

    check_server(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.set_experiment(experiment_name)
    return str(experiment.experiment_id)


def log_model(model: Any, sample: pd.DataFrame) -> Any:
    """Log a fitted sklearn pipeline to the active run with a signature; returns MLflow's ModelInfo."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    head = sample.head(50)
    signature = infer_signature(head, np.asarray(model.predict_proba(head)[:, 1]))
    return mlflow.sklearn.log_model(
        model,
        name=MODEL_NAME_IN_RUN,
        signature=signature,
        pip_requirements=pip_requirements(),
        serialization_format="skops",
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
    )


def load_model(model_uri: str) -> Any:
    """Load a sklearn pipeline (skops, explicit trusted types) from any MLflow model URI."""
    import mlflow.sklearn

    return mlflow.sklearn.load_model(model_uri)
