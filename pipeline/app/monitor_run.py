"""One monitor run as the ``monitor`` command asks for it: which batches, against which reference, under which key.

The batches are files given in time order, else the new files of an inbox, else a simulated stream that a layer
above builds (the demo's). One monitor at a time reads a model's inbox (another finds its lock held and does
nothing), and one at a time goes on with a run given files (another is refused: its scheduler runs it again;
runs under other keys go on side by side, and the retrain lock decides which retrains). The reference is a
given file, else the sample stored with the champion. The run key is given, else the model's (files), the model's
and the inbox's (an inbox), or derived from the stream's parameters (simulated): every run under one key goes on
from the batches it recorded before, so the policy's state (cooldown, episode, retraining window) carries from one
scheduled run to the next, and a batch recorded before (by its identity) is never counted twice.

Only light modules are imported here: the monitoring loop and its libraries load once the champion is known to be
there, so a command that cannot work fails at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.app.heartbeat import send_heartbeat
from pipeline.model.registry import require_champion
from pipeline.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.app.collaborators import Collaborators
    from pipeline.app.monitor_result import MonitorResult
    from pipeline.app.sources import BatchSource
    from pipeline.domain.model_policy import ModelPolicy
    from pipeline.domain.schema import FeatureSchema
    from pipeline.engine.local import Engine
    from pipeline.io.data import Batch
    from pipeline.io.store import MetricsStore
    from pipeline.io.tables import InputLimits, ObjectStore
    from pipeline.model.registry import Registry, VersionInfo

Say = Callable[[str], None]
OnBatch = Callable[[dict[str, Any]], None]


class MonitorRefused(RuntimeError):
    """A monitor run that cannot be done as asked (the command prints it in one line)."""


@dataclass(frozen=True)
class SimulatedStream:
    """A stream built from the reference frame and the schema by a layer above this one, for the built-in schema
    only; ``key`` names its parameters in the run key."""

    build: Callable[[pd.DataFrame, FeatureSchema], Sequence[BatchSource]]
    key: str


@dataclass(frozen=True)
class MonitorRequest:
    """What to monitor: ``paths`` (in time order), else the new files of ``inbox``, else ``simulated``. At most
    one of ``paths`` and ``inbox`` (the command refuses both)."""

    paths: tuple[str, ...] = ()
    inbox: str | None = None
    simulated: SimulatedStream | None = None
    reference: str | None = None  # default: the sample stored with the champion
    run_key: str | None = None  # default: the model's run (files), the model's and inbox's (inbox), the stream's
    threshold: float | None = None  # default: the settings' drift threshold
    max_batch_mb: float | None = None
    given_schema: FeatureSchema | None = None  # --schema or PIPELINE_SCHEMA_PATH, checked against the champion's
    given_source: str = ""
    engine: str = "local"  # local | spark


@dataclass(frozen=True)
class MonitorRun:
    """A run's result, or ``result`` None and ``nothing`` saying why there was nothing to do."""

    run_key: str
    result: MonitorResult | None = None
    nothing: str = ""


@dataclass(frozen=True)
class _Batches:
    sources: Sequence[BatchSource]
    run_key: str


def monitor_run(
    request: MonitorRequest,
    settings: Settings,
    parts: Collaborators,
    *,
    say: Say,
    on_start: Callable[[int], None] | None = None,
    on_batch: OnBatch | None = None,
) -> MonitorRun:
    """Choose the batches, the reference and the run key, and monitor the batches with the champion.
    ``on_start`` gets the number of batches just before the first, ``on_batch`` each batch's record. The
    notifications go to the configured sinks (a refused webhook URL fails here, before any work)."""
    from pipeline.app.notify import notifier_of

    notifier = notifier_of(settings.notify, say)
    registry = parts.registry
    champion = require_champion(registry)
    policy = _model_policy(settings, registry, say)
    settings = policy.settings
    # Imported once the server and the champion are known to be there: a command that fails fails at once.
    from pipeline.app.monitor import Monitor
    from pipeline.io.tables import InputLimits
    from pipeline.model.serving import schema_for

    schema = schema_for(registry, champion, request.given_schema, request.given_source, say)
    _check_something_to_monitor(request, schema)
    store = parts.store
    limits = InputLimits.of(settings.engine)
    reference, inbox = request.reference, request.inbox
    s3 = parts.s3_for(*([reference] if reference else []), *request.paths, *([inbox] if inbox else []))
    with contextlib.ExitStack() as held:
        chosen = _choose_batches(request, settings.model_name, parts, champion, schema, s3, held, limits)
        if isinstance(chosen, MonitorRun):  # an inbox with nothing new, or held by another monitor
            return chosen
        batches, ref, fitted = chosen
        # The prediction log (and its S3 client) only for a schema with an id column: the only one it is written for.
        monitor = Monitor(
            settings,
            schema,
            store,
            registry,
            say=say,
            prediction_log=parts.prediction_log if schema.id is not None else None,
            engine=_engine(request.engine, settings),
            notifier=notifier,
            mode=(policy.mode, policy.mode_source),
        )
        if on_start is not None:
            on_start(len(batches.sources))
        result = monitor.run(
            ref,
            batches.sources,
            batches.run_key,
            threshold=request.threshold,
            on_batch=on_batch,
            reference_fitted=fitted,
        )
    send_heartbeat(parts.heartbeat, settings.model_name, len(result.records), say)
    return MonitorRun(batches.run_key, result)


def _choose_batches(
    request: MonitorRequest,
    model: str,
    parts: Collaborators,
    champion: VersionInfo,
    schema: FeatureSchema,
    s3: ObjectStore | None,
    held: contextlib.ExitStack,
    limits: InputLimits,
) -> tuple[_Batches, Batch, bool] | MonitorRun:
    """The run's batches (an inbox's new files under its lock, or the files given under the run's lock), its
    reference and whether the champion may have been fitted on it; a ``MonitorRun`` when there is nothing to do."""
    batches: _Batches | None = None
    if request.inbox:
        found = _inbox_batches(request, request.inbox, model, parts.store, schema, s3, held, limits)
        if isinstance(found, MonitorRun):
            return found
        batches = found
    ref, ref_name, fitted = _reference(request, parts.registry, champion, schema, s3, limits)
    if batches is None:
        batches = _given_batches(request, model, ref, ref_name, schema, s3, limits)
        if request.paths and not held.enter_context(parts.store.run_lock(batches.run_key)):
            raise MonitorRefused(
                f"another monitor is going on with run {batches.run_key} of {model}; run this one again later"
            )
    return batches, ref, fitted


def _model_policy(settings: Settings, registry: Registry, say: Say) -> ModelPolicy:
    """The model's own policy values over the settings, and its retraining mode
    (``pipeline.domain.model_policy``); the values it sets for itself said once."""
    from pipeline.domain.model_policy import resolve_policy

    own = resolve_policy(settings, registry.model_tags())
    if overridden := own.overridden():
        values = ", ".join(f"{name}={value}" for name, value in overridden.items())
        say(f"{registry.name}: the model's own policy (its tags): {values}")
    return own


def _check_something_to_monitor(request: MonitorRequest, schema: FeatureSchema) -> None:
    """Refuse a run with no batches given: only the demo's simulated stream can stand in for them."""
    from pipeline.domain.schema import is_builtin

    if not request.paths and not request.inbox:
        if request.simulated is None:
            raise MonitorRefused("nothing to monitor: pass the batches with --current or --inbox")
        if not is_builtin(schema):
            raise MonitorRefused(
                "the simulated stream is the demo's; with another schema pass the batches with --current"
            )


def _inbox_batches(
    request: MonitorRequest,
    inbox: str,
    model_name: str,
    store: MetricsStore,
    schema: FeatureSchema,
    s3: ObjectStore | None,
    held: contextlib.ExitStack,
    limits: InputLimits,
) -> _Batches | MonitorRun:
    """The inbox's files not recorded yet, under the inbox's lock (held until ``held`` closes); or nothing to do."""
    from pipeline.app.sources import inbox_run_key, inbox_sources
    from pipeline.io.inbox import InboxObject

    key = request.run_key or inbox_run_key(model_name, inbox)
    if not held.enter_context(store.inbox_lock(model_name)):
        return MonitorRun(key, nothing=f"another monitor is processing the inbox of {model_name}; nothing to do")
    recorded = store.recorded_batches(key)
    rejected = {InboxObject(row["uri"], row["etag"]).identity for row in store.rejected_batches(key)}
    done = {row["source"] for row in recorded.values()} | rejected
    sources = inbox_sources(inbox, done, schema, s3, request.max_batch_mb, limits)
    if not sources:
        aside = f"; {len(rejected)} set aside as rejected (`pipeline status` lists them)" if rejected else ""
        return MonitorRun(key, nothing=f"{inbox}: nothing new ({len(recorded)} batches recorded){aside}")
    return _Batches(sources, key)


def _reference(
    request: MonitorRequest,
    registry: Registry,
    champion: VersionInfo,
    schema: FeatureSchema,
    s3: ObjectStore | None,
    limits: InputLimits,
) -> tuple[Batch, str, bool]:
    """The reference batch, what names it in the run key, and whether the champion may have been fitted on its
    rows: the given file (it may be the training data), else the champion's stored sample (its training window's,
    unless the monitor made a batch it never learned from the reference: ``reference_fitted`` = false)."""
    from pipeline.io.data import load_batch
    from pipeline.model.serving import TAG_REFERENCE, TAG_REFERENCE_FITTED, stored_reference

    if request.reference:
        return load_batch(request.reference, schema, s3, request.max_batch_mb, limits), request.reference, True
    fitted = champion.tags.get(TAG_REFERENCE_FITTED) != "false"
    return stored_reference(champion, schema, registry.name), champion.tags[TAG_REFERENCE], fitted


def _given_batches(
    request: MonitorRequest,
    model_name: str,
    ref: Batch,
    ref_name: str,
    schema: FeatureSchema,
    s3: ObjectStore | None,
    limits: InputLimits,
) -> _Batches:
    """The files given, under the given key or else the model's run; else the simulated stream, keyed by its
    parameters unless a key is given."""
    from pipeline.app.sources import file_sources, model_run_key, run_key_for

    if request.paths:
        key = request.run_key or model_run_key(model_name)
        return _Batches(file_sources(request.paths, schema, s3, request.max_batch_mb, limits), key)
    assert request.simulated is not None  # checked by monitor_run
    key = request.run_key or run_key_for(model_name, ref_name, [], request.simulated.key)
    return _Batches(request.simulated.build(ref.frame, schema), key)


def _engine(name: str, settings: Settings) -> Engine:
    """The local engine, or Spark's, imported only when asked for (the ``spark`` extra)."""
    if name == "spark":
        from pipeline.engine.spark import spark_engine

        return spark_engine(settings)
    from pipeline.engine.local import local_engine

    return local_engine
