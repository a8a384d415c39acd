"""What serves: a registered version with the schema it was made for, its scorer and its recorded holdout metrics.

The schema travels with the model. Every version the project registers (and every version ``adopt`` takes
in) carries version tags that say how to serve it:

- ``schema_uri``: where its ``schema.json`` is (an artifact of the run that trained or adopted it);
- ``model_labels``: ``1=positive`` for the project's own models (fitted on the target encoded 1 = the
  schema's positive label, 0 = negative: XGBoost takes no other labels), ``schema`` for a user's model (its
  classes are the schema's own labels);
- ``reference_uri``: a bounded sample of the rows the version is judged against (the newest rows it was
  trained or adopted on; moved on by the monitor when a batch becomes the reference), so a monitor needs no
  ``--reference``;
- ``calibration_uri``: P(positive) and the 0/1 labels on its holdout (rows it was not trained on), from which
  the monitor fits its performance estimator (``pipeline.stats.estimate``); for the project's own versions, which are
  refitted on the whole window, holdout included, the scores of the same candidate fitted before the holdout;
- ``holdout_roc_auc``, ``holdout_log_loss``, ``holdout_accuracy``: quality on the newest labelled rows when
  it was registered or adopted (for the project's own versions, measured before the refit, as above). The
  performance alarm compares a batch's ROC AUC with ``holdout_roc_auc``: a champion without it (set by hand in
  the MLflow UI) serves, with the performance alarm off.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema, SchemaError, parse_schema
from pipeline.io.data import Batch, validate_frame
from pipeline.model.flavors import load_model
from pipeline.model.registry import NoChampion, Registry, VersionInfo
from pipeline.model.scoring import Scorer
from pipeline.settings import Settings

SCHEMA_ARTIFACT = "schema.json"
TAG_SCHEMA = "schema_uri"
REFERENCE_ARTIFACT = "reference.parquet"
TAG_REFERENCE = "reference_uri"
TAG_REFERENCE_FITTED = "reference_fitted"  # "false": the reference is a batch the version was never fitted on
TAG_LABELS = "model_labels"
CALIBRATION_ARTIFACT = "calibration.parquet"
TAG_CALIBRATION = "calibration_uri"
LABELS_ENCODED = "1=positive"
LABELS_SCHEMA = "schema"
HOLDOUT_METRICS = ("roc_auc", "log_loss", "accuracy")  # tagged as holdout_<metric> on every registered version


def holdout_tags(metrics: dict[str, float]) -> dict[str, str]:
    """A version's quality on its holdout rows, as the version tags ``holdout_roc_auc`` ... say it."""
    return {f"holdout_{name}": f"{metrics[name]:.6f}" for name in HOLDOUT_METRICS}


def log_schema(schema: FeatureSchema) -> str:
    """Log the schema to the active MLflow run; returns the URI a version's ``schema_uri`` tag holds."""
    import mlflow

    mlflow.log_text(schema.to_json(), SCHEMA_ARTIFACT)
    run = mlflow.active_run()
    assert run is not None, "log_schema needs an active run"
    return f"runs:/{run.info.run_id}/{SCHEMA_ARTIFACT}"


def log_reference(frame: pd.DataFrame, schema: FeatureSchema, rows: int, name: str = REFERENCE_ARTIFACT) -> str:
    """Log the newest ``rows`` rows of a validated frame (schema columns and target) as Parquet to the active
    run; returns the URI a version's ``reference_uri`` tag holds."""
    import mlflow

    columns = [*schema.features, *([schema.target] if schema.target in frame.columns else [])]
    sample = frame[columns].iloc[max(0, len(frame) - rows) :].reset_index(drop=True)
    run = mlflow.active_run()
    assert run is not None, "log_reference needs an active run"
    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        path = Path(tmp) / name
        sample.to_parquet(path, index=False)
        mlflow.log_artifact(str(path))
    return f"runs:/{run.info.run_id}/{name}"


def log_calibration(proba: np.ndarray, y: np.ndarray) -> str:
    """Log a holdout's P(positive) and 0/1 labels to the active run; returns the URI ``calibration_uri`` holds.

    The scores must be out of sample: a retrain passes those of its candidate fitted before the holdout, not of
    the version it registers, which is refitted on the holdout too."""
    import mlflow

    run = mlflow.active_run()
    assert run is not None, "log_calibration needs an active run"
    frame = pd.DataFrame({"p_positive": np.asarray(proba, dtype="float64"), "label": np.asarray(y, dtype="int8")})
    with tempfile.TemporaryDirectory(prefix="calibration-") as tmp:
        path = Path(tmp) / CALIBRATION_ARTIFACT
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path))
    return f"runs:/{run.info.run_id}/{CALIBRATION_ARTIFACT}"


class UntrustedUri(ValueError):
    """A version tag that should name one of the registry's own artifacts names something else (one line)."""


# What a stored-artifact tag may hold: an artifact of one of the tracking server's runs (what the project writes),
# or of a registered version. Anything else (an http(s):// address, another bucket, a local path) is refused before
# any request is made: whoever may tag a version must not make the host fetch an address of their choice.
_RUN_ARTIFACT = re.compile(r"runs:/[0-9a-f]{32}/(?!/)[A-Za-z0-9_.\-/]+")
_MODEL_ARTIFACT = re.compile(r"models:/[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+|@[A-Za-z0-9_.\-]+)(/[A-Za-z0-9_.\-/]+)?")


def stored_uri(info: VersionInfo, tag: str) -> str | None:
    """The URI a version's tag ``tag`` holds (None when absent), refused in one line (``UntrustedUri``) unless it
    names an artifact of one of the registry's own runs or versions, with no ``..`` segment."""
    uri = info.tags.get(tag)
    if not uri:
        return None
    trusted = _RUN_ARTIFACT.fullmatch(uri) or _MODEL_ARTIFACT.fullmatch(uri)
    if not trusted or ".." in uri.split("/"):
        shown = uri if len(uri) <= 80 else uri[:77] + "..."
        raise UntrustedUri(
            f"v{info.version}'s tag {tag}={shown!r} is refused: only runs:/<run id>/<path> and models:/ artifact "
            "URIs of this registry are read"
        )
    return uri


def recorded_calibration(info: VersionInfo) -> tuple[np.ndarray, np.ndarray] | None:
    """The holdout P(positive) and 0/1 labels recorded with a version, or None when it has none."""
    import mlflow.artifacts

    uri = stored_uri(info, TAG_CALIBRATION)
    if not uri:
        return None
    with tempfile.TemporaryDirectory(prefix="calibration-") as tmp:
        frame = pd.read_parquet(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
    return frame["p_positive"].to_numpy(dtype="float64"), frame["label"].to_numpy(dtype="int64")


def recorded_reference(info: VersionInfo, schema: FeatureSchema, model_name: str) -> Batch | None:
    """The reference sample recorded with a version, validated against the schema, or None."""
    import mlflow.artifacts

    uri = stored_uri(info, TAG_REFERENCE)
    if not uri:
        return None
    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        return validate_frame(pd.read_parquet(path), schema, f"{model_name} v{info.version} reference ({uri})")


def stored_reference(info: VersionInfo, schema: FeatureSchema, model_name: str) -> Batch:
    """The reference sample recorded with a version; a one-line error asking for ``--reference`` when it has none."""
    stored = recorded_reference(info, schema, model_name)
    if stored is None:
        raise NoChampion(f"v{info.version} of {model_name!r} has no stored reference; pass --reference PATH")
    return stored


def recorded_schema(info: VersionInfo, model_name: str) -> FeatureSchema | None:
    """The schema recorded with a version, or None when it has none (versions made before schemas travelled,
    or a user's version not adopted)."""
    import mlflow.artifacts

    uri = stored_uri(info, TAG_SCHEMA)
    if not uri:
        return None
    source = f"{model_name} v{info.version} schema ({uri})"
    with tempfile.TemporaryDirectory(prefix="schema-") as tmp:
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SchemaError(f"{source}: not a readable schema file") from err
    return parse_schema(raw, source)


def choose_schema(
    recorded: FeatureSchema | None, given: FeatureSchema | None, given_source: str, owner: str
) -> FeatureSchema | None:
    """The recorded schema wins; a given one must be the same for the model (one-line error naming what
    differs), and may name the id column the recorded one lacks or names differently."""
    if recorded is not None and given is not None:
        differences = recorded.differences(given)
        if differences:
            raise SchemaError(f"{given_source} differs from {owner}'s schema: {'; '.join(differences)}")
        if given.id is not None:
            return dataclasses.replace(recorded, id=given.id)
    return recorded if recorded is not None else given


def is_project_trained(info: VersionInfo) -> bool:
    """Versions the project trained say so; versions from before that tag existed carry ``candidate``."""
    value = info.tags.get(TAG_LABELS)
    if value:
        return value == LABELS_ENCODED
    return "candidate" in info.tags


@dataclass(frozen=True)
class ServingModel:
    """A registered version ready to score: its tags, schema and scorer."""

    info: VersionInfo
    schema: FeatureSchema
    scorer: Scorer

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def holdout_roc_auc(self) -> float | None:
        return self.info.metric("holdout_roc_auc")


def load_version(
    registry: Registry,
    info: VersionInfo,
    schema: FeatureSchema,
    settings: Settings,
    *,
    project_trained: bool | None = None,
) -> ServingModel:
    """Load a version with the project's loader (trusted types from the settings) and match its classes."""
    loaded = load_model(
        registry.version_uri(info.version),
        trusted_types=settings.trusted_types,
        allow_pickled=settings.allow_pickled_models,
    )
    ours = is_project_trained(info) if project_trained is None else project_trained
    return ServingModel(info, schema, Scorer.of(loaded, schema, project_trained=ours))


def schema_for(
    registry: Registry,
    info: VersionInfo | None,
    given: FeatureSchema | None,
    given_source: str,
    say: Callable[[str], None] | None = None,
) -> FeatureSchema:
    """The schema to serve ``info`` with: its recorded one (a differing ``given`` one is an error), else the
    given one, else the built-in demo schema, said through ``say`` when given (a user's table is then refused
    with the demo's columns, which the line explains)."""
    from pipeline.domain.schema import builtin_schema

    recorded = recorded_schema(info, registry.name) if info is not None else None
    owner = f"{registry.name} v{info.version}" if info is not None else registry.name
    chosen = choose_schema(recorded, given, given_source, owner)
    if chosen is not None:
        return chosen
    if say is not None:
        say(
            f"schema: none given (--schema, PIPELINE_SCHEMA_PATH) and none recorded with {owner}: the built-in demo "
            "schema (emergency-department triage) is used; pass --schema for your own table"
        )
    return builtin_schema()
