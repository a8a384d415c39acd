"""The settings' groups: each a typed, frozen view of the fields one part of the package reads, built from
``pipeline.settings.Settings`` (their fields have no defaults of their own: every default is written once, there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr


class _Group(BaseModel):
    """A group of settings: frozen, built from ``Settings`` (its fields have no defaults of their own)."""

    model_config = ConfigDict(frozen=True)


class StackSettings(_Group):
    """Where the servers are: MLflow, S3, the metrics database, and the local stack's own ports and state."""

    tracking_uri: str
    experiment_name: str
    s3_endpoint_url: str | None
    aws_region: str
    artifact_bucket: str
    metrics_db_url: str
    metrics_db_password: SecretStr | None
    prediction_log_uri: str | None
    state_dir: Path
    pg_port: int
    s3_port: int
    mlflow_port: int


class ServingSettings(_Group):
    """Which model is served, with which schema, and which model files may be loaded."""

    model_name: str
    schema_path: str | None
    trusted_types: list[str]
    allow_pickled_models: bool


class PolicySettings(_Group):
    """The decision rules' thresholds (``pipeline.domain.policy_types.Rules``) and the retraining mode."""

    drift_threshold: float
    false_alarm_rate: float
    column_drift_threshold: float
    drifted_share_threshold: float
    auc_tolerance: float
    min_rows_for_auc: int
    prior_tolerance: float
    prior_z: float
    cooldown_batches: int
    label_retries: int
    retrain: Literal["off", "challenger", "auto"]
    refresh_fraction: float
    min_change_rows: int
    window_rows: int
    multivariate_drift: bool
    multivariate_threshold: float
    multivariate_sample_rows: int


class TrainingSettings(_Group):
    """A retrain's split, tuning, promotion test and the reference sample it stores."""

    reference_rows: int
    holdout_fraction: float
    validation_fraction: float
    tuning_trials: int
    promotion_min_gain: float
    promotion_z: float
    seed: int


class EngineSettings(_Group):
    """How a batch is read: in chunks in this process, or by Spark; and the caps on what one batch file may hold."""

    chunk_mb: float
    chunk_rows: int
    spark_master: str
    profile_whole_batches: bool
    max_header_bytes: int
    max_columns: int
    max_rows: int


class SimulationSettings(_Group):
    """The demo's simulated stream."""

    sim_batches: int
    sim_batch_rows: int
    seed: int


class NotifySettings(_Group):
    """Where notifications go (a webhook, an SNS topic, either or both), the links they carry, and where the
    monitor's heartbeat goes (a CloudWatch namespace)."""

    notify_url: SecretStr | None
    notify_sns_topic: str | None
    notify_grafana_url: str | None
    heartbeat_namespace: str | None
    tracking_uri: str
    s3_endpoint_url: str | None
    aws_region: str


GROUPS: dict[str, type[_Group]] = {
    "stack": StackSettings,
    "serving": ServingSettings,
    "policy": PolicySettings,
    "training": TrainingSettings,
    "engine": EngineSettings,
    "simulation": SimulationSettings,
    "notify": NotifySettings,
}
