"""The collaborators of every command, built once from the settings and only when used.

The registry connects to MLflow on first use (a command that never touches it never needs the server); the
metrics store creates its tables on first use; an S3 client is made only for ``s3://`` paths.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from pipeline.io.predictions import PredictionLog
from pipeline.io.store import MetricsStore
from pipeline.io.tables import ObjectStore, make_s3_client
from pipeline.model.registry import Registry
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.app.heartbeat import Heartbeat


class Collaborators:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def registry(self) -> Registry:
        from pipeline.model import tracking

        tracking.connect(self.settings.tracking_uri, self.settings.experiment_name)
        from mlflow import MlflowClient

        return Registry(MlflowClient(), self.settings.model_name)

    @cached_property
    def store(self) -> MetricsStore:
        store = MetricsStore(self.settings.metrics_dsn())
        store.create_schema()
        return store

    @cached_property
    def s3(self) -> ObjectStore:
        return make_s3_client(self.settings.s3_endpoint_url, self.settings.aws_region)

    @cached_property
    def prediction_log(self) -> PredictionLog:
        root = self.settings.prediction_log_root()
        return PredictionLog(root, self.s3_for(root))

    @cached_property
    def heartbeat(self) -> Heartbeat | None:
        """The CloudWatch heartbeat when ``PIPELINE_HEARTBEAT_NAMESPACE`` is set, else None."""
        namespace = self.settings.heartbeat_namespace
        if namespace is None:
            return None
        from pipeline.io.heartbeat import make_heartbeat

        return make_heartbeat(namespace, self.settings.s3_endpoint_url, self.settings.aws_region)

    def for_model(self, name: str) -> Collaborators:
        """The collaborators of another model under the same settings: its own registry and prediction log, the
        same metrics store and S3 client (one connection for every model of a run)."""
        other = Collaborators(self.settings.model_copy(update={"model_name": name}))
        other.__dict__["store"] = self.store
        for shared in ("s3", "heartbeat"):
            if shared in self.__dict__:
                other.__dict__[shared] = self.__dict__[shared]
        return other

    def s3_for(self, *paths: str) -> ObjectStore | None:
        """The S3 client when any of ``paths`` is an ``s3://`` path, else None."""
        return self.s3 if any(path.startswith("s3://") for path in paths) else None
