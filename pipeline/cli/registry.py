"""``pipeline promote``, ``pipeline rollback`` and ``pipeline configure``: moving the champion alias by hand, and
who may move it (the model's retraining mode)."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.app import app
from pipeline.cli.common import (
    ModelName,
    SchemaPath,
    clean_errors,
    cli_settings,
    collaborators,
    console,
    given_schema,
    policy_table,
    say,
)
from pipeline.cli.notify import event_notifier
from pipeline.cli.train import adopt_and_record


@app.command()
def promote(
    version: Annotated[int, typer.Option("--version", min=1, help="The registered version to make champion.")],
    holdout: Annotated[
        str | None,
        typer.Option(help="Labelled rows for adopt's checks; needed only when the version has no recorded metrics."),
    ] = None,
    model_name: ModelName = None,
    schema_path: SchemaPath = None,
) -> None:
    """Make any registered version the champion (undo a rollback); the old champion becomes `previous`.

    A version without recorded holdout metrics and schema goes through `adopt`'s checks (pass --holdout).
    """
    import uuid

    from pipeline.app.adopt import find_version
    from pipeline.domain.incidents import Notice
    from pipeline.domain.records import Event
    from pipeline.model.registry import RegistryError
    from pipeline.model.serving import TAG_SCHEMA, load_version, schema_for

    settings = cli_settings(model_name)
    with clean_errors():
        send = event_notifier(settings)
        parts = collaborators(settings)
        registry = parts.registry
        info = find_version(registry, version)
        recorded = info.metric("holdout_roc_auc") is not None and bool(info.tags.get(TAG_SCHEMA))
        if not recorded:
            if holdout is None:
                raise RegistryError(
                    f"v{version} has no recorded holdout metrics and schema; pass --holdout PATH to run "
                    "adopt's checks on it"
                )
            adopt_and_record(parts, settings, version, holdout, schema_path)
            return
        given, given_source = given_schema(schema_path, settings)
        load_version(registry, info, schema_for(registry, info, given, given_source), settings)  # it must load
        current = registry.champion()
        if current is not None and current.version == version:
            say(f"{settings.model_name}: v{version} is already the champion")
            return
        previous = registry.promote(version)
        store = parts.store
        message = f"v{version} promoted by hand" + (f" over v{previous}" if previous is not None else "")
        event = Event(
            f"promote-{uuid.uuid4().hex[:12]}",
            settings.model_name,
            "promotion",
            message,
            model_version=version,
            champion_version=previous,
        )
        store.record_event(event)
        say(f"{settings.model_name}: champion is now v{version}" + (f" (was v{previous})" if previous else ""))
        send(Notice.promotion, event)


@app.command()
def rollback(model_name: ModelName = None) -> None:
    """Move the `champion` alias back to `previous` (the champion it replaced)."""
    import uuid

    from pipeline.domain.incidents import Notice
    from pipeline.domain.records import Event

    settings = cli_settings(model_name)
    with clean_errors():
        send = event_notifier(settings)
        parts = collaborators(settings)
        registry = parts.registry
        store = parts.store
        rolled_from, rolled_to = registry.rollback()
        event = Event(
            f"rollback-{uuid.uuid4().hex[:12]}",
            settings.model_name,
            "rollback",
            f"champion rolled back from v{rolled_from} to v{rolled_to}",
            model_version=rolled_to,
            champion_version=rolled_from,
        )
        store.record_event(event)
        say(f"{settings.model_name}: champion is now v{rolled_to} (was v{rolled_from})")
        send(Notice.rollback, event)


@app.command()
def configure(
    model_name: ModelName = None,
    retrain: Annotated[
        str | None,
        typer.Option(
            help="Set the model's retraining mode: off (alarm only), challenger (register a challenger, a person "
            "promotes), auto (the monitor promotes a winner). Kept as the registered model's tag retrain_mode."
        ),
    ] = None,
    set_values: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="NAME=VALUE",
            help="Set one of the model's own policy values (e.g. drift_threshold=0.2, cooldown_batches=3), over the "
            "setting PIPELINE_<NAME>; kept as the registered model's tag policy.<name>. Repeatable.",
        ),
    ] = None,
    unset: Annotated[
        list[str] | None,
        typer.Option("--unset", metavar="NAME", help="Drop the model's own value: the setting decides again."),
    ] = None,
) -> None:
    """Show the model's retraining mode and policy in effect, each value with where it comes from; with --retrain,
    --set or --unset, change them first (every value is checked before any is written)."""
    from pipeline.domain.model_policy import check_name, parse_assignment, policy_tag, resolve_policy
    from pipeline.domain.retrain_mode import MODE_TAG, parse_mode

    settings = cli_settings(model_name)
    with clean_errors():
        mode = parse_mode(retrain, "--retrain") if retrain is not None else None
        assignments = [parse_assignment(text) for text in set_values or []]
        dropped = [check_name(name.strip(), "--unset") for name in unset or []]
        registry = collaborators(settings).registry
        if mode is not None:
            registry.tag_model(MODE_TAG, mode.value)
        for name, value in assignments:
            registry.tag_model(policy_tag(name), str(value))
        for name in dropped:
            registry.untag_model(policy_tag(name))
        policy = resolve_policy(settings, registry.model_tags())
        say(f"{settings.model_name}: retraining mode {policy.mode.value} ({policy.mode_source})")
        console.print(policy_table(policy))
