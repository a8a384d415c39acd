"""``pipeline labels``: late labels joined to the prediction log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.app import app
from pipeline.cli.common import ModelName, SchemaPath, clean_errors, cli_settings, collaborators, given_schema, say

if TYPE_CHECKING:
    from pipeline.app.labels import Delivery, LabelsResult
    from pipeline.domain.schema import FeatureSchema


@app.command()
def labels(
    labels_path: Annotated[
        str,
        typer.Option(
            "--labels",
            help="Labels that arrived after the predictions: CSV/Parquet (local or s3://) with the schema's id and "
            "target columns.",
        ),
    ],
    model_name: ModelName = None,
    schema_path: SchemaPath = None,
) -> None:
    """Join late labels to the prediction log: realized performance and the estimation error of every batch they
    complete, the performance alarm on them, and a retrain when the champion's labels dropped.

    The same file twice changes nothing. Needs a schema naming the id column ("id" in the schema file).
    """
    from pipeline.app.labels import LateLabels, read_delivery
    from pipeline.domain.model_policy import resolve_policy
    from pipeline.io.tables import InputLimits
    from pipeline.model.registry import require_champion
    from pipeline.model.serving import schema_for

    settings = cli_settings(model_name)
    with clean_errors():
        given, given_source = given_schema(schema_path, settings)
        parts = collaborators(settings)
        registry = parts.registry
        champion = require_champion(registry)
        settings = resolve_policy(settings, registry.model_tags()).settings  # the model's own policy values
        schema = schema_for(registry, champion, given, given_source)
        delivery = read_delivery(labels_path, schema, parts.s3_for(labels_path), InputLimits.of(settings.engine))
        late = LateLabels(settings, schema, parts.store, registry, parts.prediction_log, say=say)
        result = late.ingest(delivery)
    _say_delivery(labels_path, delivery, result, schema)
    _say_batches(result)


def _say_delivery(labels_path: str, delivery: Delivery, result: LabelsResult, schema: FeatureSchema) -> None:
    """How many of the file's rows were usable, and why the others were left out."""
    say(f"{labels_path}: {delivery.rows} rows, {len(delivery.labels)} usable labels")
    for count, what in (
        (delivery.missing_ids, "rows without an id (left out)"),
        (delivery.bad_labels, f"labels other than {schema.positive!r} or {schema.negative!r} (left out)"),
        (delivery.duplicate_ids, "ids given more than once with the same label (kept once)"),
        (delivery.conflicting_ids, "ids given with both labels (left out)"),
        (result.unknown_ids, "ids not in the prediction log (left out)"),
        (result.already_labelled, "ids labelled before (unchanged)"),
        (result.relabelled, "of those with the other label before (the first label kept)"),
    ):
        if count:
            say(f"  {count} {what}")


def _say_batches(result: LabelsResult) -> None:
    """The batches the new labels completed: realized and estimated performance, alarms, a retrain."""
    if not result.new_labels:
        say("nothing new: no batch changed")
        return
    say(f"{result.new_labels} new labels for {len(result.batches)} batches:")
    for batch in result.batches:
        key = (batch.run_key, batch.batch_index)
        estimated = result.estimated.get(key)
        realized = "-" if batch.roc_auc is None else f"{batch.roc_auc:.3f}"
        error = "" if batch.estimation_error is None else f", error {batch.estimation_error:+.3f}"
        est = "" if estimated is None else f" (estimated {estimated:.3f}{error})"
        flag = " ALARM" if batch.performance_drop else ""
        say(
            f"  run {batch.run_key} batch {batch.batch_index}: {batch.labelled_rows} labelled "
            f"({result.shares[key]:.0%}), ROC AUC {realized}{est}, accuracy {batch.accuracy:.3f}{flag}"
        )
    for alarm in result.alarms:
        say(f"alarm: {alarm}")
    if result.retrained:
        say(result.retrained)
