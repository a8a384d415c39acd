"""The Python API: what the ``pipeline`` commands do, as functions returning typed results.

Each function calls the same ``pipeline.app`` function as its command (``monitor``, ``train``, ``adopt``,
``status``), with the settings from the environment (``PIPELINE_*``, ``.env``) unless ``settings`` is given, and
lines of progress sent to ``say`` (default: printed). An error is raised, never an exit::

    from pipeline import api

    api.train("reference.csv", model_name="loans", schema="loans.json")
    result = api.monitor(["day-01.csv", "day-02.csv"], model_name="loans")
    print(result.alarms, [record["roc_auc"] for record in result.records])
    print(api.status(model_name="loans").champion_version)

Nothing heavy is imported until a function is called.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.app.adopt import Adopted
    from pipeline.app.collaborators import Collaborators
    from pipeline.app.monitor_result import MonitorResult
    from pipeline.domain.schema import FeatureSchema
    from pipeline.model.retrain import RetrainOutcome
    from pipeline.settings import Settings

Say = Callable[[str], None]
Path = str | PathLike[str]


@dataclass(frozen=True)
class Status:
    """A model's state: its aliases (``champion`` among them), its champion, and its newest batches' records."""

    model_name: str
    aliases: dict[str, int]
    champion_version: int | None
    last_batches: list[dict[str, Any]] = field(default_factory=list)


def _settings(settings: Settings | None, model_name: str | None) -> Settings:
    from pipeline.settings import load_settings

    if settings is None:
        return load_settings(model_name=model_name)
    return settings if model_name is None else settings.model_copy(update={"model_name": model_name})


def _schema(schema: Path | None, settings: Settings, parts: Collaborators) -> tuple[FeatureSchema | None, str]:
    """The schema file given (a local path or ``s3://``), else ``PIPELINE_SCHEMA_PATH``, else none."""
    from pipeline.io.schema_file import read_schema_at

    for given, name in ((schema, "schema"), (settings.schema_path, "PIPELINE_SCHEMA_PATH")):
        if given is not None:
            return read_schema_at(str(given), parts.s3_for(str(given))), f"{name} {given}"
    return None, ""


def monitor(
    batches: Sequence[Path] = (),
    *,
    inbox: str | None = None,
    model_name: str | None = None,
    reference: Path | None = None,
    schema: Path | None = None,
    run_id: str | None = None,
    threshold: float | None = None,
    engine: str = "local",
    settings: Settings | None = None,
    say: Say = print,
) -> MonitorResult:
    """Monitor ``batches`` (files in time order, local or ``s3://``) or the new files of ``inbox`` with the
    champion, as ``pipeline monitor`` does. Returns the run's ``MonitorResult`` (its records, refused batches,
    failures); an empty one when there was nothing to do."""
    from pipeline.app.collaborators import Collaborators
    from pipeline.app.monitor_result import MonitorResult
    from pipeline.app.monitor_run import MonitorRequest, monitor_run

    if bool(batches) == bool(inbox):
        raise ValueError("monitor: give batches or an inbox (one of them)")
    chosen = _settings(settings, model_name)
    parts = Collaborators(chosen)
    given, given_source = _schema(schema, chosen, parts)
    request = MonitorRequest(
        paths=tuple(str(path) for path in batches),
        inbox=inbox,
        reference=None if reference is None else str(reference),
        run_key=run_id,
        threshold=threshold,
        given_schema=given,
        given_source=given_source,
        engine=engine,
    )
    run = monitor_run(request, chosen, parts, say=say)
    if run.result is None:
        say(run.nothing)
        return MonitorResult(run_key=run.run_key)
    return run.result


def train(
    data: Path,
    *,
    model_name: str | None = None,
    schema: Path | None = None,
    settings: Settings | None = None,
    say: Say = print,
) -> RetrainOutcome:
    """Train on ``data`` (labelled rows, local or ``s3://``) and register the winner, as ``pipeline train`` does:
    champion when the model has none, else compared with the champion on the newest rows."""
    from pipeline.app.bootstrap import train_on
    from pipeline.app.collaborators import Collaborators

    chosen = _settings(settings, model_name)
    parts = Collaborators(chosen)
    given, given_source = _schema(schema, chosen, parts)
    return train_on(
        str(data),
        settings=chosen,
        registry=parts.registry,
        store=parts.store,
        champion=parts.registry.champion(),
        given=given,
        given_source=given_source,
        s3_client=parts.s3_for(str(data)),
        say=say,
    )


def adopt(
    version: int,
    holdout: Path,
    *,
    model_name: str | None = None,
    schema: Path | None = None,
    mode: str | None = None,
    settings: Settings | None = None,
    say: Say = print,
) -> Adopted:
    """Check ``version`` (a model you registered) on ``holdout`` and make it champion, as ``pipeline adopt`` does;
    ``mode``: its retraining mode (``challenger`` by default for a model you built)."""
    from pipeline.app.adopt import adopt as adopt_version
    from pipeline.app.adopt import find_version
    from pipeline.app.collaborators import Collaborators
    from pipeline.domain.records import Event
    from pipeline.domain.retrain_mode import parse_mode
    from pipeline.io.data import load_batch
    from pipeline.model.serving import schema_for

    chosen = _settings(settings, model_name)
    parts = Collaborators(chosen)
    given, given_source = _schema(schema, chosen, parts)
    schema_used = schema_for(parts.registry, find_version(parts.registry, version), given, given_source)
    batch = load_batch(str(holdout), schema_used, parts.s3_for(str(holdout)))
    retrain_mode = None if mode is None else parse_mode(mode, "mode")
    adopted = adopt_version(parts.registry, version, batch, schema_used, chosen, retrain_mode)
    message = f"v{version} ({adopted.flavor}) adopted as champion: holdout ROC AUC {adopted.metrics['roc_auc']:.4f}"
    details = {"mlflow_run_id": adopted.run_id, "holdout": str(holdout), "metrics": adopted.metrics}
    event = Event(f"adopt-{uuid.uuid4().hex[:12]}", chosen.model_name, "adoption", message, model_version=version,
                  champion_version=adopted.previous, details=details)  # fmt: skip
    parts.store.record_event(event)
    say(f"{chosen.model_name}: {message}")
    return adopted


def status(*, model_name: str | None = None, last: int = 10, settings: Settings | None = None) -> Status:
    """The model's aliases, champion and ``last`` newest batch records, as ``pipeline status`` reads them."""
    from pipeline.app.collaborators import Collaborators

    chosen = _settings(settings, model_name)
    parts = Collaborators(chosen)
    champion = parts.registry.champion()
    aliases = parts.registry.aliases() if champion is not None else {}
    return Status(
        model_name=chosen.model_name,
        aliases=dict(aliases),
        champion_version=None if champion is None else champion.version,
        last_batches=list(parts.store.last_batches(chosen.model_name, last)),
    )
