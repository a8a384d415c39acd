"""The settings: one typed object built from the environment (prefix ``PIPELINE_``) and an optional ``.env``, and
its groups (``pipeline.settings.groups``), each a typed model of the fields one part of the package reads.

The environment names stay flat (``PIPELINE_DRIFT_THRESHOLD``, not ``PIPELINE_POLICY__...``): a group is a view
on the same values (``settings.policy``, ``settings.training``...), with no defaults of its own, so every default
is written once, on ``Settings``. A unit that needs one group takes that group only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.settings.groups import (
    GROUPS,
    EngineSettings,
    NotifySettings,
    PolicySettings,
    ServingSettings,
    SimulationSettings,
    StackSettings,
    TrainingSettings,
    _Group,
)

__all__ = [
    "DEFAULT_BUCKET",
    "GROUPS",
    "EngineSettings",
    "NotifySettings",
    "PolicySettings",
    "ServingSettings",
    "Settings",
    "SettingsError",
    "SimulationSettings",
    "StackSettings",
    "TrainingSettings",
    "load_settings",
    "unknown_variables",
]

DEFAULT_BUCKET = "driftloop-artifacts"
# CloudWatch's rule for a namespace, less the AWS/ prefix it keeps for its own services
HEARTBEAT_NAMESPACE = re.compile(r"^(?!AWS/)[A-Za-z0-9.\-_/#: ]{1,255}$")
_G = TypeVar("_G", bound=_Group)


class Settings(BaseSettings):
    """Every knob of the pipeline. Defaults point at the local stack started by ``make local-up``."""

    model_config = SettingsConfigDict(env_prefix="PIPELINE_", env_file=".env", extra="ignore")

    tracking_uri: str = Field("http://127.0.0.1:5000", description="MLflow tracking server URI.")
    experiment_name: str = Field("driftloop", description="MLflow experiment for all runs.")
    s3_endpoint_url: str | None = Field(
        "http://127.0.0.1:4566",
        description="S3 endpoint for s3:// data paths (moto/LocalStack); empty means AWS itself.",
    )
    aws_region: str = Field("us-east-1", description="Region for the S3 client.")
    artifact_bucket: str = Field(DEFAULT_BUCKET, description="Bucket holding MLflow artifacts.")
    metrics_db_url: str = Field(
        "postgresql://pipeline@127.0.0.1:15432/metrics", description="Postgres URL of the metrics database."
    )
    metrics_db_password: SecretStr | None = Field(
        None, description="Password for the metrics database, when not in the URL (e.g. read from a secret)."
    )
    model_name: str = Field("driftloop-model", description="The one registered model name.")
    schema_path: str | None = Field(
        None,
        description="Feature schema file, local or s3:// (features.json format); the champion's own schema wins once "
        "it has one. "
        "Empty means the built-in demo schema.",
    )
    trusted_types: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra skops types to trust when loading a model (comma-separated), beyond the project's list.",
    )
    prediction_log_uri: str | None = Field(
        None,
        description="Where the prediction log goes (s3://bucket/prefix or a folder), written when the schema names "
        "an id column. Empty means s3://<artifact_bucket>/predictions.",
    )
    allow_pickled_models: bool = Field(
        False,
        description="Load models whose loading runs code from the artifact store (pickle, cloudpickle, custom pyfunc).",
    )

    drift_threshold: float = Field(
        0.1,
        gt=0,
        description="Alarm when the prediction drift score (normed Wasserstein distance) is >= this.",
    )
    false_alarm_rate: float = Field(
        0.01,
        gt=0,
        le=1,
        description="Chance that a rule alarms on a batch that did not drift, at the batch's size: drift scores are "
        "compared with the reference's noise at that size, drifted columns are counted with Benjamini-Hochberg at "
        "this rate, and an AUC drop must exceed its standard error by the matching one-sided z (1: the thresholds "
        "alone decide).",
    )
    column_drift_threshold: float = Field(
        0.1, gt=0, description="Per-feature drift score at or above which a column counts as drifted."
    )
    drifted_share_threshold: float = Field(
        0.5, gt=0, le=1, description="Alarm when this share of feature columns drifted (dataset drift)."
    )
    auc_tolerance: float = Field(
        0.05, ge=0, description="Alarm when a labelled batch's ROC AUC falls this far below the holdout AUC."
    )
    min_rows_for_auc: int = Field(200, ge=10, description="Smallest labelled batch whose AUC is trusted.")
    prior_tolerance: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="Alarm when a labelled batch's positive rate differs from the mean predicted probability by this "
        "much (and by prior_z standard errors).",
    )
    prior_z: float = Field(3.0, ge=0, description="Standard errors the positive-rate gap must also exceed.")
    cooldown_batches: int = Field(
        3, ge=0, description="Batches after a promotion (or a retrain that could not run) during which no retrain runs."
    )
    label_retries: int = Field(
        2, ge=1, description="Rejected challengers in a row on label alarms before the cooldown holds the next retrain."
    )
    retrain: Literal["off", "challenger", "auto"] = Field(
        "auto",
        description="Retraining mode of a model without its own (the registered model's retrain_mode tag): off "
        "(alarm only), challenger (register a challenger, a person promotes), auto (promote a winner).",
    )
    refresh_fraction: float = Field(
        1.0,
        ge=0,
        description="Retrain without an alarm once the labelled rows since the champion's last retrain reach this "
        "fraction of the rows it was trained on (0: never); the comparison still decides on promotion.",
    )
    min_change_rows: int = Field(
        1000, ge=100, description="Labelled rows since a label alarm's change needed to retrain on those rows alone."
    )
    multivariate_drift: bool = Field(
        True,
        description="Measure multivariate drift: a domain classifier's held-out ROC AUC, reference rows against the "
        "batch's, on a bounded sample (off: not measured, no alarm).",
    )
    multivariate_threshold: float = Field(
        0.55,
        ge=0.5,
        lt=1,
        description="Alarm on multivariate drift when the domain classifier's AUC reaches this and is beyond chance "
        "at the false-alarm rate (its Mann-Whitney noise at the sample's size).",
    )
    multivariate_sample_rows: int = Field(
        2_000,
        ge=100,
        le=100_000,
        description="Rows of the reference, and at most as many of a batch (a uniform sample of one read in chunks), "
        "the multivariate drift score sees.",
    )

    window_rows: int = Field(20_000, ge=500, description="Rows in the sliding retraining window.")
    reference_rows: int = Field(
        20_000, ge=100, description="Rows of the reference sample stored with every registered version (newest)."
    )
    holdout_fraction: float = Field(0.2, gt=0, lt=0.5, description="Newest share of the window held out.")
    validation_fraction: float = Field(
        0.2, gt=0, lt=0.5, description="Share of the rest (newest first) used to select and tune."
    )
    tuning_trials: int = Field(5, ge=1, description="Hyperopt TPE trials per retrain.")
    promotion_min_gain: float = Field(
        0.002, ge=0, description="Least log-loss improvement (nats/row) a challenger needs to be promoted."
    )
    promotion_z: float = Field(
        2.0, ge=0, description="The improvement must also exceed this many paired standard errors."
    )

    chunk_mb: float = Field(
        64.0, gt=0, description="Batch files bigger than this (MB) are read, scored and profiled in chunks."
    )
    chunk_rows: int = Field(100_000, ge=100, description="Rows per chunk of a batch read in chunks.")
    spark_master: str = Field(
        "local[2]", description="Spark master of `pipeline monitor --engine spark` (local[N], yarn, spark://...)."
    )
    profile_whole_batches: bool = Field(
        False,
        description="Also store the mergeable profile of batches read whole (those read in chunks always have "
        "theirs), so `pipeline report --since` covers them; costs about 0.1 s per 100,000 rows of 81 features.",
    )
    max_header_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="A batch CSV whose header line is longer than this many bytes is rejected before it is parsed.",
    )
    max_columns: int = Field(
        10_000,
        ge=1,
        description="A batch file with more columns than this (a CSV's header, a Parquet file's metadata) is rejected "
        "before its rows are read.",
    )
    max_rows: int = Field(
        5_000_000,
        ge=1,
        description="A batch file with more rows than this is rejected: a Parquet file from its metadata, before "
        "any data is read; a CSV as it is read.",
    )

    notify_url: SecretStr | None = Field(
        None,
        description="Webhook that receives a JSON POST per notification (Slack, Teams or your own); https only, "
        "plain http to localhost/127.0.0.1 alone. Empty: no webhook.",
    )
    notify_sns_topic: str | None = Field(
        None,
        description="SNS topic ARN that receives each notification (with PIPELINE_S3_ENDPOINT_URL and "
        "PIPELINE_AWS_REGION, as the S3 client). Empty: no topic.",
    )
    notify_grafana_url: str | None = Field(
        None, description="Grafana's base URL, for a link to the model's dashboard in notifications. Empty: no link."
    )
    heartbeat_namespace: str | None = Field(
        None,
        description="CloudWatch namespace that gets, after each monitor run that recorded batches, their number as "
        "the metric BatchesRecorded with the dimension Model (with PIPELINE_S3_ENDPOINT_URL and PIPELINE_AWS_REGION, "
        "as the S3 client). Empty: no heartbeat.",
    )

    sim_batches: int = Field(12, ge=1, description="Batches simulated when no --current is given.")
    sim_batch_rows: int = Field(2000, ge=50, description="Rows per simulated batch.")
    seed: int = Field(42, description="Random seed for simulation, splits and tuning.")
    state_dir: Path = Field(Path(".stack"), description="Folder of the local stack's state and logs.")
    pg_port: int = Field(15432, description="Port of the local stack's PostgreSQL.")
    s3_port: int = Field(4566, description="Port of the local stack's moto S3 (LocalStack's edge port).")
    mlflow_port: int = Field(5000, description="Port of the local stack's MLflow server.")

    @field_validator(
        "s3_endpoint_url",
        "schema_path",
        "prediction_log_uri",
        "notify_url",
        "notify_sns_topic",
        "notify_grafana_url",
        "heartbeat_namespace",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("heartbeat_namespace")
    @classmethod
    def _cloudwatch_namespace(cls, value: str | None) -> str | None:
        if value is not None and not HEARTBEAT_NAMESPACE.match(value):
            raise ValueError("1 to 255 letters, digits, spaces or . - _ / # :, not starting with AWS/")
        return value

    @field_validator("trusted_types", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def _group(self, group: type[_G]) -> _G:
        return group.model_validate({name: getattr(self, name) for name in group.model_fields})

    @property
    def stack(self) -> StackSettings:
        return self._group(StackSettings)

    @property
    def serving(self) -> ServingSettings:
        return self._group(ServingSettings)

    @property
    def policy(self) -> PolicySettings:
        return self._group(PolicySettings)

    @property
    def training(self) -> TrainingSettings:
        return self._group(TrainingSettings)

    @property
    def engine(self) -> EngineSettings:
        return self._group(EngineSettings)

    @property
    def simulation(self) -> SimulationSettings:
        return self._group(SimulationSettings)

    @property
    def notify(self) -> NotifySettings:
        return self._group(NotifySettings)

    def prediction_log_root(self) -> str:
        return self.prediction_log_uri or f"s3://{self.artifact_bucket}/predictions"

    def metrics_dsn(self) -> str:
        """The metrics database URL with the password injected when it is given separately."""
        if self.metrics_db_password is None:
            return self.metrics_db_url
        parts = urlsplit(self.metrics_db_url)
        if parts.password:
            return self.metrics_db_url
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        secret = quote(self.metrics_db_password.get_secret_value(), safe="")
        netloc = f"{user}:{secret}@{host}{port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class SettingsError(ValueError):
    """A setting whose value is not what it takes (one line naming the environment variable)."""


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides (CLI options) on top.

    Without ``PIPELINE_TRACKING_URI`` (in the environment or ``.env``), MLflow's own ``MLFLOW_TRACKING_URI`` is
    honoured, so a machine already set up for MLflow needs nothing more. A bad value is a one-line
    ``SettingsError`` naming its variable.
    """
    import os

    from pydantic import ValidationError

    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = Settings(**clean)  # type: ignore[arg-type]
    except ValidationError as err:
        first = err.errors()[0]
        name = f"PIPELINE_{str(first['loc'][0]).upper()}" if first["loc"] else "a setting"
        raise SettingsError(f"{name}={first.get('input')!r}: {first['msg']}") from None
    mlflow_uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if mlflow_uri and "tracking_uri" not in settings.model_fields_set:
        settings = settings.model_copy(update={"tracking_uri": mlflow_uri})
    return settings


def unknown_variables(environ: dict[str, str]) -> list[str]:
    """The ``PIPELINE_*`` variables that name no setting (a typo is otherwise ignored in silence)."""
    known = {f"PIPELINE_{name.upper()}" for name in Settings.model_fields}
    return sorted(key for key in environ if key.startswith("PIPELINE_") and key not in known)
