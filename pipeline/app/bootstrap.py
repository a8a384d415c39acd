"""Training on demand (``pipeline train``): the first champion, or a challenger trained on given data.

The champion's recorded schema wins over a given one (a difference is an error); with no champion, the given
schema or the built-in one. The retrain cycle is the monitor's (``pipeline.model.retrain``); the event says whether
the new version bootstrapped the model, was promoted or was rejected.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from pipeline.domain.records import Event
from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import load_batch, only_labelled
from pipeline.io.store import MetricsStore
from pipeline.io.tables import DataError, ObjectStore
from pipeline.model.registry import Registry, VersionInfo
from pipeline.model.retrain import RetrainOutcome, WindowInfo, retrain
from pipeline.model.serving import load_version, schema_for
from pipeline.settings import Settings

Say = Callable[[str], None]


def train_on(
    data: str,
    *,
    settings: Settings,
    registry: Registry,
    store: MetricsStore,
    champion: VersionInfo | None,
    given: FeatureSchema | None,
    given_source: str,
    s3_client: ObjectStore | None,
    say: Say,
) -> RetrainOutcome:
    schema = schema_for(registry, champion, given, given_source, say)
    batch = load_batch(data, schema, s3_client)
    if not batch.has_labels:
        raise DataError(f"{data}: training data needs the target column {schema.target!r}")
    if batch.partly_labelled:
        say(f"{data}: {batch.unlabelled_rows} of {batch.rows} rows have an empty {schema.target!r}: not trained on")
        batch = only_labelled(batch, schema)
    champion_model = load_version(registry, champion, schema, settings).scorer if champion is not None else None
    say(f"training on {batch.rows} rows from {data} (target {schema.target!r}, {len(schema.features)} features)")
    outcome = retrain(
        batch.frame,
        WindowInfo(batch.rows, [data], "bootstrap" if champion is None else f"manual train on {data}"),
        training=settings.training,
        schema=schema,
        registry=registry,
        champion_model=champion_model,
        say=say,
    )
    kind = "bootstrap" if champion is None else ("promotion" if outcome.promoted else "rejection")
    store.record_event(
        Event(
            f"train-{uuid.uuid4().hex[:12]}",
            registry.name,
            kind,
            f"v{outcome.version}: {outcome.decision.reason}",
            model_version=outcome.version,
            champion_version=champion.version if champion else None,
            details={"mlflow_run_id": outcome.run_id, "data": data},
        )
    )
    return outcome
