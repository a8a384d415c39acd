"""``pipeline explain``: why a recorded batch's predictions moved (docs/why-it-moved.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pipeline.cli.app import app
from pipeline.cli.common import (
    ModelName,
    SchemaPath,
    clean_errors,
    cli_settings,
    collaborators,
    console,
    fail,
    given_schema,
    say,
)

if TYPE_CHECKING:
    from pipeline.app.explain import Explained
    from pipeline.stats.attribution import FeatureShare


@app.command()
def explain(
    batch: Annotated[int, typer.Option("--batch", min=1, metavar="BATCH", help="The recorded batch to explain.")],
    run_key: Annotated[str | None, typer.Option(help="Monitor run key (default: the model's latest run).")] = None,
    reference: Annotated[
        str | None, typer.Option(help="The reference (default: the sample stored with the version that served it).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the attribution as JSON to this file.")
    ] = None,
    model_name: ModelName = None,
    schema_path: SchemaPath = None,
) -> None:
    """The share of a recorded batch's prediction drift each feature explains, for the version that served it: its
    file read again in chunks into a seeded reservoir of 20,000 rows (2,000 of them scored), each feature in turn
    carried back to the reference and the prediction drift it alone causes measured through the model's
    predict_proba. Stored for the batch (drift_attribution), shown by `pipeline status` and the dashboard."""
    from pipeline.app.explain import explain_batch
    from pipeline.app.report import batch_file, run_batches
    from pipeline.io.data import load_batch
    from pipeline.model.serving import TAG_REFERENCE, schema_for, stored_reference

    settings = cli_settings(model_name)
    with clean_errors():
        parts = collaborators(settings)
        registry = parts.registry
        try:
            key, batches = run_batches(parts.store, run_key, settings.model_name)
            found = [b for b in batches if int(b["batch_index"]) == batch]
            if not found:
                raise LookupError(f"run {key!r} has no recorded batch {batch}")
            row = found[0]
            info = registry.version(int(row["champion_version"]))
            given, given_source = given_schema(schema_path, settings)
            schema = schema_for(registry, info, given, given_source)
            s3 = parts.s3_for(batch_file(str(row["source"])), *([reference] if reference else []))
            if reference:
                ref = load_batch(reference, schema, s3)
            else:
                ref = stored_reference(info, schema, registry.name)
                say(f"reference: the sample stored with v{info.version} ({info.tags[TAG_REFERENCE]})")
            explained = explain_batch(
                batch=row,
                registry=registry,
                settings=settings,
                schema=schema,
                reference=ref,
                s3_client=s3,
                store=parts.store,
            )
        except LookupError as err:
            fail(str(err))
    _show(explained, json_out)


def _show(explained: Explained, json_out: Path | None) -> None:
    """The explained batch in one line, its table, and its JSON when asked."""
    result = explained.found
    say(
        f"run {explained.run_key}, batch {explained.batch_index} ({explained.source}), v{explained.version}: "
        f"prediction drift {explained.recorded_prediction_drift:.3f} (on the sample: {result.prediction_drift:.3f}); "
        f"{result.rows} of {result.batch_rows} rows sampled, {result.features_tried} features tried"
    )
    console.print(attribution_table(result.top(10, 0.01), "why it moved: share of the prediction drift"))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(explained.record(), indent=2))
        say(f"wrote {json_out}")


def attribution_table(shares: Sequence[FeatureShare], title: str) -> Table:
    """Features with their share of the prediction drift and the drop when each is carried back."""
    table = Table(title=title)
    for column in ("feature", "share", "prediction shift", "drift drop"):
        table.add_column(column)
    for s in shares:
        table.add_row(s.feature, f"{s.share:.0%}", f"{s.prediction_shift:.4f}", f"{s.drift_drop:.4f}")
    return table
