"""``pipeline train`` and ``pipeline adopt``: a champion the project trains, or one you registered yourself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.app import app
from pipeline.cli.common import (
    ModelName,
    SchemaPath,
    clean_errors,
    cli_settings,
    collaborators,
    given_schema,
    say,
    ui_links,
)
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.app.adopt import Adopted
    from pipeline.app.collaborators import Collaborators


@app.command()
def train(
    data: Annotated[str, typer.Option(help="Labelled training data: CSV/Parquet path or s3://bucket/key.")],
    model_name: ModelName = None,
    schema_path: SchemaPath = None,
    if_no_champion: Annotated[
        bool, typer.Option("--if-no-champion", help="Do nothing when the model already has a champion.")
    ] = False,
) -> None:
    """Train the candidates, tune the best, register it (with its schema) and make it champion, or compare it
    with the champion on the newest rows. With a champion, its recorded schema is used."""
    from pipeline.app.bootstrap import train_on

    settings = cli_settings(model_name)
    with clean_errors():
        given, given_source = given_schema(schema_path, settings)
        parts = collaborators(settings)
        champion = parts.registry.champion()
        if champion is not None and if_no_champion:
            say(f"{settings.model_name}: champion is v{champion.version}; nothing to bootstrap")
            return
        outcome = train_on(
            data,
            settings=settings,
            registry=parts.registry,
            store=parts.store,
            champion=champion,
            given=given,
            given_source=given_source,
            s3_client=parts.s3_for(data),
            say=say,
        )
        state = "champion" if outcome.promoted else "challenger (not promoted)"
        say(f"{settings.model_name} v{outcome.version} ({outcome.candidate}) is {state}: {outcome.decision.reason}")
        ui_links(settings, outcome.run_id, [outcome.version])


def adopt_and_record(
    parts: Collaborators,
    settings: Settings,
    version: int,
    holdout: str,
    schema_path: str | None,
    mode: str | None = None,
) -> Adopted:
    """adopt's checks and records, shared by `adopt` and `promote` (for a version without recorded metrics)."""
    import uuid

    from pipeline.app.adopt import adopt as adopt_version
    from pipeline.app.adopt import find_version
    from pipeline.domain.records import Event
    from pipeline.domain.retrain_mode import parse_mode
    from pipeline.io.data import load_batch
    from pipeline.model.serving import schema_for

    registry = parts.registry
    given, given_source = given_schema(schema_path, settings)
    info = find_version(registry, version)
    schema = schema_for(registry, info, given, given_source)
    batch = load_batch(holdout, schema, parts.s3_for(holdout))
    store = parts.store
    chosen = None if mode is None else parse_mode(mode, "--retrain")
    adopted = adopt_version(registry, version, batch, schema, settings, chosen)
    m = adopted.metrics
    message = (
        f"v{version} ({adopted.flavor}) adopted as champion"
        + (f" over v{adopted.previous}" if adopted.previous is not None else "")
        + f": holdout ROC AUC {m['roc_auc']:.4f}, log loss {m['log_loss']:.4f} on {batch.rows} rows"
    )
    store.record_event(
        Event(
            f"adopt-{uuid.uuid4().hex[:12]}",
            settings.model_name,
            "adoption",
            message,
            model_version=version,
            champion_version=adopted.previous,
            details={"mlflow_run_id": adopted.run_id, "holdout": holdout, "metrics": m},
        )
    )
    say(f"{settings.model_name}: {message}")
    return adopted


@app.command()
def adopt(
    version: Annotated[int, typer.Option("--version", min=1, help="The registered version to adopt.")],
    holdout: Annotated[
        str,
        typer.Option(help="Your most recent labelled rows (CSV/Parquet, local or s3://): the performance baseline."),
    ],
    model_name: ModelName = None,
    schema_path: SchemaPath = None,
    retrain: Annotated[
        str | None,
        typer.Option(
            help="The model's retraining mode: off | challenger | auto (default: challenger, or the mode the "
            "model already has). See `pipeline configure`."
        ),
    ] = None,
) -> None:
    """Make a model you registered yourself the champion, after checking it serves the schema.

    The version (any scikit-learn model or pipeline saved by MLflow's defaults, a native xgboost classifier,
    or a pyfunc whose predict returns P(positive)) is loaded, scored on the holdout, and gets the holdout
    metrics (the performance alarm's baseline) and the schema recorded on it. The old champion becomes
    `previous`. Then `pipeline monitor` works on it as on a model the project trained.
    """
    settings = cli_settings(model_name)
    with clean_errors():
        parts = collaborators(settings)
        adopt_and_record(parts, settings, version, holdout, schema_path, retrain)
