"""Bring your own model: take a version the user registered with MLflow's ordinary API in as the champion.

``adopt`` loads the version with the project's loader (flavors, trusted types), checks that it takes the
schema's columns and yields P(positive) for the schema's labels, scores the labelled holdout (the user's most
recent labelled rows), records on the version the holdout metrics the performance alarm compares against and
the schema, then makes it the champion (the old champion becomes ``previous``). From then on ``monitor`` and a
retrain treat it exactly like a model the project trained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.domain.retrain_mode import ADOPTED_DEFAULT, MODE_TAG, RetrainMode
from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import Batch, labels_of, only_labelled
from pipeline.io.tables import DataError
from pipeline.model.registry import Registry, RegistryError, VersionInfo
from pipeline.model.scoring import ModelMismatch
from pipeline.model.serving import (
    LABELS_ENCODED,
    LABELS_SCHEMA,
    TAG_CALIBRATION,
    TAG_LABELS,
    TAG_REFERENCE,
    TAG_SCHEMA,
    ServingModel,
    holdout_tags,
    is_project_trained,
    load_version,
    log_calibration,
    log_reference,
    log_schema,
)
from pipeline.settings import Settings
from pipeline.stats.metrics import quality

MIN_HOLDOUT_ROWS = 20


@dataclass(frozen=True)
class Adopted:
    version: int
    previous: int | None
    metrics: dict[str, float]
    run_id: str
    flavor: str


def find_version(registry: Registry, version: int) -> VersionInfo:
    from mlflow.exceptions import MlflowException

    try:
        return registry.version(version)
    except MlflowException as err:
        raise RegistryError(f"model {registry.name!r} has no version {version}") from err


def check_serving(serving: ServingModel, holdout: Batch) -> np.ndarray:
    """Score the holdout; a model that cannot, or that does not return probabilities, is refused (one line)."""
    version = serving.version
    try:
        proba = serving.scorer.proba(holdout.frame)
    except ModelMismatch as err:
        raise ModelMismatch(f"v{version}: {err}") from err
    if not np.all(np.isfinite(proba)) or proba.min() < 0 or proba.max() > 1:
        raise ModelMismatch(f"v{version} did not return one probability in [0, 1] per row")
    return proba


def adopt(
    registry: Registry,
    version: int,
    holdout: Batch,
    schema: FeatureSchema,
    settings: Settings,
    mode: RetrainMode | None = None,
    *,
    load: Callable[..., ServingModel] = load_version,
) -> Adopted:
    """Check, score, record and promote ``version``. Nothing is tagged or promoted if any check fails. The model's
    retraining mode becomes ``mode``; without it, a model with no mode of its own gets ``challenger`` (a model its
    owners built is never replaced without asking), and one that has a mode keeps it."""
    import mlflow

    info = find_version(registry, version)
    if not holdout.has_labels:
        raise DataError(f"{holdout.source}: the holdout needs the target column {schema.target!r}")
    holdout = only_labelled(holdout, schema)  # its rows with an empty target are left out
    y = labels_of(holdout.frame, schema)
    if len(y) < MIN_HOLDOUT_ROWS or not 0 < y.sum() < len(y):
        raise DataError(
            f"{holdout.source}: a holdout needs at least {MIN_HOLDOUT_ROWS} rows and both labels "
            f"({int(y.sum())} {schema.positive!r}, {int(len(y) - y.sum())} {schema.negative!r})"
        )
    ours = is_project_trained(info)
    serving = load(registry, info, schema, settings, project_trained=ours)
    proba = check_serving(serving, holdout)
    metrics = quality(y, proba)
    with mlflow.start_run(run_name=f"adopt {registry.name} v{version}") as run:
        mlflow.set_tags({"step": "adopt", "model_name": registry.name, "adopted_version": str(version)})
        mlflow.log_params({"holdout": holdout.source, "holdout_rows": len(y), "flavor": serving.scorer.model.flavor})
        mlflow.log_metrics({f"holdout_{key}": value for key, value in metrics.items() if np.isfinite(value)})
        schema_uri = log_schema(schema)
        reference_uri = log_reference(holdout.frame, schema, settings.reference_rows)
        calibration_uri = log_calibration(proba, y)
    tags = {
        TAG_CALIBRATION: calibration_uri,
        TAG_SCHEMA: schema_uri,
        TAG_REFERENCE: reference_uri,
        TAG_LABELS: LABELS_ENCODED if ours else LABELS_SCHEMA,
        **holdout_tags(metrics),
        "holdout_source": holdout.source,
        "adopted_by_run": run.info.run_id,
    }
    for key, value in tags.items():
        registry.tag_version(version, key, value)
    previous = registry.promote(version)
    if mode is not None or not registry.model_tags().get(MODE_TAG):
        registry.tag_model(MODE_TAG, (mode or ADOPTED_DEFAULT).value)
    return Adopted(version, previous, metrics, run.info.run_id, serving.scorer.model.flavor)
