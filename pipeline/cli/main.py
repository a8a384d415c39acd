"""The ``pipeline`` command line: data synthesis, training, monitoring, rollback, status, the local stack."""

from __future__ import annotations

import contextlib
import json
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.settings import Settings, load_settings

if TYPE_CHECKING:
    from pipeline.app.adopt import Adopted
    from pipeline.app.collaborators import Collaborators
    from pipeline.app.monitor import MonitorResult
    from pipeline.app.stack import StackConfig
    from pipeline.domain.schema import FeatureSchema
    from pipeline.engine.local import Engine
    from pipeline.io.store import MetricsStore

app = typer.Typer(
    help="Monitor a tabular binary classifier for drift; retrain, tune, register and promote it, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Data utilities.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack: embedded PostgreSQL, moto S3, MLflow server.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(stack_app, name="stack")
schema_app = typer.Typer(help="The feature schema: infer one from data.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")

# Piped or logged output (a timer, CI) gets room for the tables instead of the 80-column fallback.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


@app.callback()
def _quiet_libraries() -> None:
    """Keep the output ours: MLflow's URL prints, INFO logs and download bars are switched off."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    for name in ("mlflow", "alembic", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


ModelName = Annotated[
    str | None, typer.Option("--model-name", help="Registered model name (default: PIPELINE_MODEL_NAME).")
]
SchemaPath = Annotated[
    Path | None,
    typer.Option(
        "--schema",
        help="Feature schema file (features.json format; see `pipeline schema infer`). Default: "
        "PIPELINE_SCHEMA_PATH, else the champion's recorded schema, else the built-in triage schema.",
    ),
]

THRESHOLD_HELP = (
    "Prediction drift threshold. The score is the normed Wasserstein distance (Evidently 'wasserstein') "
    "between the champion's predicted admission probabilities on the reference and on the batch: 0 = same "
    "distribution, HIGHER = MORE drift; an alarm fires when score >= threshold (default 0.1)."
)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# The failures that print one line: (module, class). Looked up among the modules already imported, since an error
# of a module never imported cannot have been raised: catching them costs a command no import.
KNOWN_ERRORS = (
    ("pipeline.io.data", "DataError"),
    ("pipeline.model.flavors", "UntrustedModel"),
    ("pipeline.model.registry", "NoChampion"),
    ("pipeline.model.registry", "RegistryError"),
    ("pipeline.domain.schema", "SchemaError"),
    ("pipeline.model.scoring", "ModelMismatch"),
    ("pipeline.app.stack", "StackError"),
    ("pipeline.io.store", "StoreUnavailable"),
    ("pipeline.model.tracking", "TrackingUnavailable"),
)


def _known_error(err: BaseException) -> bool:
    for module, name in KNOWN_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(err, getattr(loaded, name)):
            return True
    return False


@contextmanager
def _clean_errors() -> Any:
    """Known failures (``KNOWN_ERRORS``) print one line and exit non-zero; nothing else is caught."""
    try:
        yield
    except Exception as err:
        if not _known_error(err):
            raise
        _fail(str(err))


def _settings(model_name: str | None = None, **overrides: Any) -> Settings:
    return load_settings(model_name=model_name, **overrides)


def _collaborators(settings: Settings) -> Collaborators:
    from pipeline.app.collaborators import Collaborators

    return Collaborators(settings)


def _given_schema(path: Path | None, settings: Settings) -> tuple[FeatureSchema | None, str]:
    """The schema the user passed (--schema, else PIPELINE_SCHEMA_PATH), or None; and how to name it."""
    from pipeline.domain.schema import read_schema

    if path is not None:
        return read_schema(path), f"--schema {path}"
    if settings.schema_path is not None:
        return read_schema(settings.schema_path), f"PIPELINE_SCHEMA_PATH {settings.schema_path}"
    return None, ""


def _say(message: str) -> None:
    console.print(message, highlight=False, soft_wrap=True, markup=False)


def _ui_links(settings: Settings, run_id: str | None, versions: list[int]) -> None:
    base = settings.tracking_uri.rstrip("/")
    if not base.startswith("http"):
        return
    if run_id:
        import mlflow

        experiment = mlflow.get_run(run_id).info.experiment_id
        _say(f"MLflow run:      {base}/#/experiments/{experiment}/runs/{run_id}")
    _say(f"Registered model: {base}/#/models/{settings.model_name}")
    for version in versions:
        _say(f"  version {version}:     {base}/#/models/{settings.model_name}/versions/{version}")


# ------------------------------------------------------------------ data


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Folder for reference.csv and batch_NNN.csv.")] = Path("data/synth"),
    rows: Annotated[int, typer.Option(min=50, help="Rows per batch.")] = 2000,
    batches: Annotated[int, typer.Option(min=1, help="Number of batches.")] = 12,
    reference_rows: Annotated[int, typer.Option(min=100, help="Rows in reference.csv.")] = 6000,
    drift_at: Annotated[int | None, typer.Option(min=1, help="First drifted batch (1-based).")] = None,
    drift_kind: Annotated[str, typer.Option(help="none | covariate | concept | prior | label.")] = "covariate",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Write synthetic triage visits (realistic marginals, ~1/3 admitted), with drift from --drift-at on."""
    import numpy as np

    from pipeline.demo.synth import DriftKind, Population, generate_stream, load_sample_frame
    from pipeline.domain.schema import load_schema
    from pipeline.io.data import write_table

    try:
        kind = DriftKind(drift_kind)
    except ValueError:
        _fail(f"--drift-kind must be one of: {', '.join(k.value for k in DriftKind)}")
    if fmt not in ("csv", "parquet"):
        _fail("--format must be csv or parquet")
    if drift_at is not None and drift_at > batches:
        _fail(f"--drift-at {drift_at} is after the last batch ({batches})")
    from pipeline.domain.schema import is_builtin

    with _clean_errors():
        configured = _settings().schema_path
        if configured is not None and not is_builtin(load_schema(configured)):
            _fail(f"data synth makes triage visits only; PIPELINE_SCHEMA_PATH names another schema ({configured})")
    schema = load_schema()
    population = Population.fit(load_sample_frame(), schema)
    reference = population.sample_batch(reference_rows, np.random.default_rng(seed + 1))
    stream = generate_stream(population, rows=rows, batches=batches, drift_at=drift_at, kind=kind, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    write_table(reference, str(out / f"reference.{fmt}"))
    for index, frame in enumerate(stream, start=1):
        write_table(frame, str(out / f"batch_{index:03d}.{fmt}"))
    manifest = {
        "rows": rows,
        "batches": batches,
        "reference_rows": reference_rows,
        "drift_at": drift_at,
        "drift_kind": kind.value,
        "seed": seed,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    _say(
        f"wrote reference ({reference_rows} rows) and {batches} batches of {rows} rows to {out} "
        f"(drift: {kind.value if drift_at else 'none'}{f' from batch {drift_at}' if drift_at else ''})"
    )


# ------------------------------------------------------------------ schema


SCHEMA_INFER_HELP = (
    "Infer a feature schema from labelled data and write it as a first draft: the file is meant to be read and "
    "edited before it is used.\n\n"
    "Numbers become numerical features; text and booleans categorical. Integer-coded categories (census codes, "
    "ICD groups, region numbers) are numeric in the file and cannot be told apart from amounts: mark them with "
    "--categorical. Ids (non-float columns unique on every row), timestamps and empty columns are left out, each "
    "with a note saying how to keep it. Nothing is written when there is an error."
)


@schema_app.command("infer", help=SCHEMA_INFER_HELP)
def schema_infer(
    data: Annotated[str, typer.Option(help="Labelled data to infer from: CSV/Parquet path or s3://bucket/key.")],
    target: Annotated[str, typer.Option(help="The binary target column.")],
    positive: Annotated[
        str, typer.Option(help="The target value of the positive class, as in the data (e.g. 1, true, '>50K').")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the schema JSON (folders are created).")],
    categorical: Annotated[
        list[str] | None,
        typer.Option(metavar="A,B", help="Numeric columns that are codes, not amounts (comma-separated or repeated)."),
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option(metavar="A,B", help="Columns to leave out (comma-separated or repeated).")
    ] = None,
) -> None:
    """A draft schema is quicker to check than to write, and the notes say why each column was left out."""
    from pipeline.domain.schema_infer import infer_schema, label_text, split_names
    from pipeline.io.data import read_table

    settings = _settings()
    with _clean_errors():
        frame = read_table(data, _collaborators(settings).s3_for(data))
        columns = [str(name) for name in frame.columns]
        schema, notes = infer_schema(
            frame,
            target=target,
            positive=positive,
            categorical=split_names(categorical or [], columns),
            ignore=split_names(ignore or [], columns),
            source=data,
        )
    if out.is_dir():
        _fail(f"{out}: is a directory; --out needs a file path")
    for note in notes:
        _say(f"note: {note}")
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(schema.to_json(), encoding="utf-8")
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        _fail(f"{out}: cannot write the schema ({err.strerror or err})")
    _say(
        f"wrote {out}: {len(schema.numerical)} numerical, {len(schema.categorical)} categorical, "
        f"target {schema.target}: positive {label_text(schema.positive)}, negative {label_text(schema.negative)}"
    )


# ------------------------------------------------------------------ train


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

    settings = _settings(model_name)
    with _clean_errors():
        given, given_source = _given_schema(schema_path, settings)
        parts = _collaborators(settings)
        champion = parts.registry.champion()
        if champion is not None and if_no_champion:
            _say(f"{settings.model_name}: champion is v{champion.version}; nothing to bootstrap")
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
            say=_say,
        )
        state = "champion" if outcome.promoted else "challenger (not promoted)"
        _say(f"{settings.model_name} v{outcome.version} ({outcome.candidate}) is {state}: {outcome.decision.reason}")
        _ui_links(settings, outcome.run_id, [outcome.version])


# ------------------------------------------------------------------ monitor


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def monitor(
    ctx: typer.Context,
    reference: Annotated[
        str | None,
        typer.Option(help="Reference data (default: the reference sample stored with the champion)."),
    ] = None,
    inbox: Annotated[
        str | None,
        typer.Option(
            help="Monitor every CSV/Parquet file under this s3:// prefix or folder not yet recorded, in key order, "
            "each once (key + ETag); exits 0 when nothing is new."
        ),
    ] = None,
    current: Annotated[
        list[str] | None,
        typer.Option(help="Batches to monitor, in time order: --current a.csv b.csv ... (local or s3://)."),
    ] = None,
    threshold: Annotated[float | None, typer.Option(min=0.0, help=THRESHOLD_HELP)] = None,
    report_json: Annotated[Path | None, typer.Option(help="Write one JSON record per batch here.")] = None,
    model_name: ModelName = None,
    run_id: Annotated[
        str | None, typer.Option(help="Monitor run key; default derived from the inputs so reruns never double-count.")
    ] = None,
    batches: Annotated[int | None, typer.Option(min=1, help="Simulated batches when --current is omitted.")] = None,
    batch_rows: Annotated[int | None, typer.Option(min=50, help="Rows per simulated batch.")] = None,
    drift_kind: Annotated[
        str, typer.Option(help="Simulated drift: none | covariate | concept | prior | label.")
    ] = "covariate",
    drift_at: Annotated[
        int | None, typer.Option(min=1, help="First simulated drifted batch (default: middle).")
    ] = None,
    max_batch_mb: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Refuse (skip) a batch file bigger than this many MB (default: no limit; a file over "
            "PIPELINE_CHUNK_MB is read in chunks, in bounded memory).",
        ),
    ] = None,
    schema_path: SchemaPath = None,
    engine: Annotated[
        str,
        typer.Option(
            help="local: files over PIPELINE_CHUNK_MB are read in chunks in this process; spark: every batch file "
            "is read, scored and profiled by Spark (the spark extra and Java; PIPELINE_SPARK_MASTER)."
        ),
    ] = "local",
) -> None:
    """Score batches with the champion, measure drift, and retrain/tune/register/promote past the threshold.

    With --inbox, the batches are the inbox's new files (what a timer runs on the host). Without --current or
    --inbox, a stream is simulated from a population fitted to the reference data set, with a drift injected in
    the middle (the triage demo only).
    """
    from pipeline.model.registry import NoChampion

    extra = [arg for arg in ctx.args]
    if any(arg.startswith("-") for arg in extra):
        _fail(f"unknown option {next(a for a in extra if a.startswith('-'))}")
    paths = [*(current or []), *extra]
    if inbox and paths:
        _fail("pass either --inbox or --current, not both")
    if engine not in ("local", "spark"):
        _fail(f"--engine must be local or spark, not {engine!r}")
    if engine == "spark" and not (current or extra or inbox):
        _fail("--engine spark reads batch files: pass them with --current or --inbox")
    settings = _settings(model_name)
    with _clean_errors(), contextlib.ExitStack() as held:
        given, given_source = _given_schema(schema_path, settings)
        parts = _collaborators(settings)
        registry = parts.registry
        champion = registry.champion()
        if champion is None:
            raise NoChampion(
                f"model {registry.name!r} has no champion: run `pipeline train --data PATH` or `pipeline adopt` first"
            )
        # Imported once the server and the champion are known to be there: a command that fails fails at once.
        from pipeline.app.mirror import write_report_json
        from pipeline.app.monitor import Monitor
        from pipeline.app.sources import file_sources, inbox_run_key, inbox_sources, run_key_for
        from pipeline.demo.synth import DriftKind, simulated_sources
        from pipeline.domain.schema import is_builtin
        from pipeline.io.data import load_batch
        from pipeline.model.serving import TAG_REFERENCE, recorded_reference, schema_for

        schema = schema_for(registry, champion, given, given_source)
        if not paths and not inbox and not is_builtin(schema):
            _fail("the simulated stream is the triage demo's; with another schema pass the batches with --current")
        store = parts.store
        s3 = parts.s3_for(*([reference] if reference else []), *paths, *([inbox] if inbox else []))
        start = 1
        if inbox:
            key = run_id or inbox_run_key(settings.model_name, inbox)
            if not held.enter_context(store.inbox_lock(settings.model_name)):
                _say(f"another monitor is processing the inbox of {settings.model_name}; nothing to do")
                return
            recorded = store.recorded_batches(key)
            sources = inbox_sources(inbox, {row["source"] for row in recorded.values()}, schema, s3, max_batch_mb)
            if not sources:
                _say(f"{inbox}: nothing new ({len(recorded)} batches recorded)")
                return
            start = max(recorded, default=0) + 1
        if reference:
            ref = load_batch(reference, schema, s3, max_batch_mb)
        else:
            stored = recorded_reference(champion, schema, registry.name)
            if stored is None:
                raise NoChampion(
                    f"v{champion.version} of {registry.name!r} has no stored reference; pass --reference PATH"
                )
            ref, reference = stored, champion.tags[TAG_REFERENCE]
        if paths:
            sources = file_sources(paths, schema, s3, max_batch_mb)
            key = run_id or run_key_for(settings.model_name, reference, paths)
        elif not inbox:  # an inbox's sources and key are set above
            try:
                kind = DriftKind(drift_kind)
            except ValueError:
                _fail(f"--drift-kind must be one of: {', '.join(k.value for k in DriftKind)}")
            n = batches or settings.sim_batches
            at = drift_at or (n // 2 + 1)
            sources = simulated_sources(
                ref.frame,
                schema,
                batches=n,
                rows=batch_rows or settings.sim_batch_rows,
                drift_at=at,
                kind=kind,
                seed=settings.seed,
            )
            key = run_id or run_key_for(
                settings.model_name, reference, [], f"sim:{n}:{batch_rows}:{kind}:{at}:{settings.seed}"
            )
        from pipeline.engine.local import local_engine

        # The prediction log (and its S3 client) only for a schema with an id column: the only one it is written for.
        monitor_ = Monitor(
            settings,
            schema,
            store,
            registry,
            say=_say,
            prediction_log=parts.prediction_log if schema.id is not None else None,
            engine=_spark_engine(settings) if engine == "spark" else local_engine,
        )
        with Progress(
            TextColumn("[bold]monitor"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("batches", total=len(sources))
            result = monitor_.run(
                ref, sources, key, threshold=threshold, on_batch=lambda _record: progress.advance(task), start=start
            )
        if report_json:
            write_report_json(result.records, report_json)
        _summary(result, settings, store)
    if result.errors:
        err_console.print(
            f"[bold red]{len(result.errors)} batch(es) failed validation; nothing was written for them[/]"
        )
    for failure in result.failures:
        err_console.print(f"failed: {failure}", highlight=False, soft_wrap=True, markup=False)
    if result.errors or result.failures:
        raise typer.Exit(1)


def _summary(result: MonitorResult, settings: Settings, store: MetricsStore) -> None:
    from pipeline.io.store import VERDICT_COLUMNS

    table = Table(title=f"monitor run {result.run_key} — {settings.model_name}")
    for column in ("batch", "rows", "drift", "drifted", "missing", "AUC", "est. AUC", "version", "action"):
        if column == "action":
            table.add_column(column, no_wrap=True, min_width=18)
        else:
            table.add_column(column, justify="right")
    for r in result.records:
        if "error" in r:
            table.add_row(str(r["batch"]), "-", "-", "-", "-", "-", "-", "-", "[red]error[/]")
            continue
        alarm = any(r.get(name) for name in VERDICT_COLUMNS)
        auc, estimated = r.get("roc_auc"), r.get("estimated_roc_auc")
        table.add_row(
            str(r["batch"]),
            str(r["rows"]),
            f"{'[bold red]' if r['drift_detected'] else ''}{r['prediction_drift']:.3f}",
            str(r["drifted_columns"]),
            f"{r['share_missing']:.1%}",
            "-" if auc is None else f"{'[bold red]' if r.get('performance_drop') else ''}{auc:.3f}",
            "-" if estimated is None else f"{'[bold red]' if r.get('estimated_drop') else ''}{estimated:.3f}",
            f"v{r['champion_version']}",
            ("[bold]" if alarm else "") + r["action"],
        )
    console.print(table)
    versions = sorted(
        {
            e["model_version"]
            for e in store.last_events(settings.model_name, 100, result.run_key)
            if e["model_version"] is not None
        }
    )
    _say(
        f"{len(result.records)} batches: {result.alarms} alarms, {result.retrains} retrains, "
        f"{result.skipped} already recorded (skipped)"
    )
    _ui_links(settings, result.mlflow_run_id, versions)


# ------------------------------------------------------------------ registry


def _adopt_and_record(
    parts: Collaborators, settings: Settings, version: int, holdout: str, schema_path: Path | None
) -> Adopted:
    """adopt's checks and records, shared by `adopt` and `promote` (for a version without recorded metrics)."""
    import uuid

    from pipeline.app.adopt import adopt as adopt_version
    from pipeline.app.adopt import find_version
    from pipeline.io.data import load_batch
    from pipeline.io.store import Event
    from pipeline.model.serving import schema_for

    registry = parts.registry
    given, given_source = _given_schema(schema_path, settings)
    info = find_version(registry, version)
    schema = schema_for(registry, info, given, given_source)
    batch = load_batch(holdout, schema, parts.s3_for(holdout))
    store = parts.store
    adopted = adopt_version(registry, version, batch, schema, settings)
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
    _say(f"{settings.model_name}: {message}")
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
) -> None:
    """Make a model you registered yourself the champion, after checking it serves the schema.

    The version (any scikit-learn model or pipeline saved by MLflow's defaults, a native xgboost classifier,
    or a pyfunc whose predict returns P(positive)) is loaded, scored on the holdout, and gets the holdout
    metrics (the performance alarm's baseline) and the schema recorded on it. The old champion becomes
    `previous`. Then `pipeline monitor` works on it as on a model the project trained.
    """
    settings = _settings(model_name)
    with _clean_errors():
        parts = _collaborators(settings)
        _adopt_and_record(parts, settings, version, holdout, schema_path)


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
    from pipeline.model.registry import NoChampion
    from pipeline.model.serving import schema_for

    settings = _settings(model_name)
    with _clean_errors():
        given, given_source = _given_schema(schema_path, settings)
        parts = _collaborators(settings)
        registry = parts.registry
        champion = registry.champion()
        if champion is None:
            raise NoChampion(f"model {registry.name!r} has no champion: nothing was monitored, no label can join")
        schema = schema_for(registry, champion, given, given_source)
        delivery = read_delivery(labels_path, schema, parts.s3_for(labels_path))
        late = LateLabels(settings, schema, parts.store, registry, parts.prediction_log, say=_say)
        result = late.ingest(delivery)
    _say(f"{labels_path}: {delivery.rows} rows, {len(delivery.labels)} usable labels")
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
            _say(f"  {count} {what}")
    if not result.new_labels:
        _say("nothing new: no batch changed")
        return
    _say(f"{result.new_labels} new labels for {len(result.batches)} batches:")
    for batch in result.batches:
        key = (batch.run_key, batch.batch_index)
        estimated = result.estimated.get(key)
        realized = "-" if batch.roc_auc is None else f"{batch.roc_auc:.3f}"
        error = "" if batch.estimation_error is None else f", error {batch.estimation_error:+.3f}"
        est = "" if estimated is None else f" (estimated {estimated:.3f}{error})"
        flag = " ALARM" if batch.performance_drop else ""
        _say(
            f"  run {batch.run_key} batch {batch.batch_index}: {batch.labelled_rows} labelled "
            f"({result.shares[key]:.0%}), ROC AUC {realized}{est}, accuracy {batch.accuracy:.3f}{flag}"
        )
    for alarm in result.alarms:
        _say(f"alarm: {alarm}")
    if result.retrained:
        _say(result.retrained)


@app.command("spark-job-args")
def spark_job_args(
    batch: Annotated[str, typer.Option(help="The batch the job profiles (s3:// on EMR).")],
    out: Annotated[str, typer.Option(help="Where the job writes its result (the results prefix, one folder a job).")],
    model_name: ModelName = None,
) -> None:
    """Print, as JSON, the arguments of a Spark job (``pipeline.engine.spark_job``) that profiles a batch with the
    champion: every file the job needs as the S3 location its role may read. Then monitor OUT/result.json."""
    import json

    from pipeline.engine.spark_job import job_arguments
    from pipeline.model.registry import NoChampion

    settings = _settings(model_name)
    with _clean_errors():
        registry = _collaborators(settings).registry
        champion = registry.champion()
        if champion is None:
            raise NoChampion(f"model {registry.name!r} has no champion")
        print(json.dumps(job_arguments(registry, champion, settings, batch, out)))


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
    from pipeline.io.store import Event
    from pipeline.model.registry import RegistryError
    from pipeline.model.serving import TAG_SCHEMA, load_version, schema_for

    settings = _settings(model_name)
    with _clean_errors():
        parts = _collaborators(settings)
        registry = parts.registry
        info = find_version(registry, version)
        recorded = info.metric("holdout_roc_auc") is not None and bool(info.tags.get(TAG_SCHEMA))
        if not recorded:
            if holdout is None:
                raise RegistryError(
                    f"v{version} has no recorded holdout metrics and schema; pass --holdout PATH to run "
                    "adopt's checks on it"
                )
            _adopt_and_record(parts, settings, version, holdout, schema_path)
            return
        given, given_source = _given_schema(schema_path, settings)
        load_version(registry, info, schema_for(registry, info, given, given_source), settings)  # it must load
        current = registry.champion()
        if current is not None and current.version == version:
            _say(f"{settings.model_name}: v{version} is already the champion")
            return
        previous = registry.promote(version)
        store = parts.store
        message = f"v{version} promoted by hand" + (f" over v{previous}" if previous is not None else "")
        store.record_event(
            Event(
                f"promote-{uuid.uuid4().hex[:12]}",
                settings.model_name,
                "promotion",
                message,
                model_version=version,
                champion_version=previous,
            )
        )
        _say(f"{settings.model_name}: champion is now v{version}" + (f" (was v{previous})" if previous else ""))


@app.command()
def rollback(model_name: ModelName = None) -> None:
    """Move the `champion` alias back to `previous` (the champion it replaced)."""
    import uuid

    from pipeline.io.store import Event

    settings = _settings(model_name)
    with _clean_errors():
        parts = _collaborators(settings)
        registry = parts.registry
        store = parts.store
        rolled_from, rolled_to = registry.rollback()
        store.record_event(
            Event(
                f"rollback-{uuid.uuid4().hex[:12]}",
                settings.model_name,
                "rollback",
                f"champion rolled back from v{rolled_from} to v{rolled_to}",
                model_version=rolled_to,
                champion_version=rolled_from,
            )
        )
        _say(f"{settings.model_name}: champion is now v{rolled_to} (was v{rolled_from})")



def _bracket(value: float | None, form: str) -> str:
    return "" if value is None else f" ({form.format(value)})"


def _estimate_text(b: dict[str, Any]) -> str:
    """The estimated AUC with its interval, and a warning when recent labels fell outside such intervals."""
    if b.get("estimated_roc_auc") is None:
        return "-"
    text = f"{b['estimated_roc_auc']:.3f}"
    if b.get("estimated_roc_auc_low") is not None and b.get("estimated_roc_auc_high") is not None:
        text += f" [{b['estimated_roc_auc_low']:.3f}, {b['estimated_roc_auc_high']:.3f}]"
    if b.get("estimate_trusted") is False:
        text += " untrusted"
    return text

@app.command()
def status(model_name: ModelName = None) -> None:
    """Champion version and aliases, its schema, the last batches, the top drifted features, the last events."""
    from pipeline.model.serving import recorded_schema

    settings = _settings(model_name)
    with _clean_errors():
        parts = _collaborators(settings)
        registry = parts.registry
        champion = registry.champion()
        aliases = registry.aliases() if champion is not None else {}
        _say(
            f"model {settings.model_name}: "
            + (", ".join(f"{a}=v{v}" for a, v in sorted(aliases.items())) or "no versions yet")
        )
        if champion is not None:
            schema = recorded_schema(champion, registry.name)
            if schema is None:
                _say(f"schema: none recorded with v{champion.version} (monitor uses --schema or the built-in one)")
            else:
                _say(
                    f"schema: target {schema.target!r} (positive {schema.positive!r}, negative {schema.negative!r}), "
                    f"{len(schema.numerical)} numerical and {len(schema.categorical)} categorical features"
                )
            auc = champion.metric("holdout_roc_auc")
            if auc is None:
                _say(
                    f"performance alarm: off, v{champion.version} has no recorded holdout metrics "
                    f"(`pipeline adopt --version {champion.version} --holdout PATH` records them)"
                )
            else:
                _say(f"performance alarm: on, holdout ROC AUC {auc:.4f} minus {settings.auc_tolerance}")
        store = parts.store
        batches = Table(title="last batches")
        columns = ("time", "run", "batch", "champion", "rows", "pred drift (p)", "noise edge", "drifted")
        for column in (*columns, "ROC AUC (s.e.)", "estimated ROC AUC", "action"):
            batches.add_column(column)
        for b in store.last_batches(settings.model_name, 10):
            batches.add_row(
                f"{b['ts']:%Y-%m-%d %H:%M:%S}",
                b["run_key"],
                str(b["batch_index"]),
                f"v{b['champion_version']}",
                str(b["n_rows"]),
                f"{b['prediction_drift']:.3f}" + _bracket(b["prediction_drift_p"], "p={:.2g}"),
                "-" if b["drift_noise_edge"] is None else f"{b['drift_noise_edge']:.3f}",
                str(b["drifted_columns"]),
                "-" if b["roc_auc"] is None else f"{b['roc_auc']:.3f}" + _bracket(b["roc_auc_stderr"], "±{:.3f}"),
                _estimate_text(b),
                b["action"],
            )
        console.print(batches)
        scores = store.latest_feature_scores(settings.model_name, 10)
        if scores:
            features = Table(
                title=f"top drifted features, batch {scores[0]['batch_index']} of run {scores[0]['run_key']}"
            )
            for column in ("feature", "drift score", "drifted"):
                features.add_column(column)
            for f in scores:
                score = "-" if f["score"] is None else f"{f['score']:.3f}"
                features.add_row(f["feature"], score, "yes" if f["drifted"] else "no")
            console.print(features)
        events = Table(title="last events")
        for column in ("time", "kind", "version", "message"):
            events.add_column(column)
        for e in store.last_events(settings.model_name, 10):
            events.add_row(
                f"{e['ts']:%Y-%m-%d %H:%M:%S}",
                e["kind"],
                "-" if e["model_version"] is None else f"v{e['model_version']}",
                e["message"],
            )
        console.print(events)


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Folder for drift_timeline.png and batches.csv.")],
    run_key: Annotated[str | None, typer.Option(help="Monitor run key (default: the model's latest run).")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(help="Drift over a period instead: merge the batch profiles stored from this time on."),
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="End of the period (default: now).")] = None,
    html: Annotated[
        int | None,
        typer.Option(
            "--html",
            min=1,
            metavar="BATCH",
            help="Also write the Evidently HTML report of this batch of the run, rebuilt from its file (the recorded "
            "source), the version that scored it and that version's stored reference, on at most 5,000 rows of each.",
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="With --html or --since: the reference (default: the version's or champion's stored one)."),
    ] = None,
    model_name: ModelName = None,
    schema_path: SchemaPath = None,
) -> None:
    """Write the drift timeline PNG (threshold, alarms, promotions marked) and the batch table of a past run; with
    --html, the Evidently report of one of its batches (a monitor run renders one only for its latest alarm); with
    --since, the drift of a whole period (a week, a month) from the stored batch profiles, merged."""
    from pipeline.app.report import run_batches, write_run_report

    settings = _settings(model_name)
    with _clean_errors():
        parts = _collaborators(settings)
        if since is not None:
            _report_period(parts, settings, out, since, until, reference)
            return
        store = parts.store
        try:
            key, batches = run_batches(store, run_key, settings.model_name)
            paths = write_run_report(store, key, settings.model_name, out)
            if html is not None:
                paths.append(_batch_html(parts, settings, key, batches, html, reference, schema_path, out))
        except LookupError as err:
            _fail(str(err))
        for path in paths:
            _say(f"wrote {path}")


def _report_period(
    parts: Collaborators, settings: Settings, out: Path, since: datetime, until: datetime | None, reference: str | None
) -> None:
    import json

    from pipeline.app.report import period_drift
    from pipeline.io.data import load_batch
    from pipeline.model.registry import NoChampion
    from pipeline.model.serving import load_version, recorded_reference, schema_for
    from pipeline.stats.drift import ReferenceProfile
    from pipeline.stats.profile import BinnedReference

    registry = parts.registry
    champion = registry.champion()
    if champion is None:
        raise NoChampion(f"model {registry.name!r} has no champion")
    schema = schema_for(registry, champion, None, "")
    ref = load_batch(reference, schema, parts.s3_for(reference)) if reference else None
    ref = ref or recorded_reference(champion, schema, registry.name)
    if ref is None:
        _fail(f"v{champion.version} has no stored reference; pass --reference PATH")
    assert ref is not None
    serving = load_version(registry, champion, schema, settings)
    profile = ReferenceProfile.scored(
        ref.frame,
        serving.scorer,
        schema,
        prediction_threshold=settings.drift_threshold,
        column_threshold=settings.column_drift_threshold,
    )
    try:
        found = period_drift(parts.store, registry.name, BinnedReference(profile), since, until)
    except LookupError as err:
        _fail(str(err))
    out.mkdir(parents=True, exist_ok=True)
    (out / "period_drift.json").write_text(json.dumps(found, indent=2, default=str))
    _say(
        f"{found['batches']} batches, {found['rows']} rows from {found['first']} to {found['last']} "
        f"({found['other_bins']} on other references' bins left out): prediction drift "
        f"{found['prediction_drift']:.3f}, {found['drifted_columns']} drifted columns "
        f"{', '.join(found['drifted_features'][:5])}"
    )
    _say(f"wrote {out / 'period_drift.json'}")


def _batch_html(
    parts: Collaborators,
    settings: Settings,
    run_key: str,
    batches: list[dict[str, Any]],
    index: int,
    reference: str | None,
    schema_path: Path | None,
    out: Path,
) -> Path:
    from pipeline.app.report import batch_file, write_batch_html
    from pipeline.io.data import load_batch
    from pipeline.model.registry import NoChampion
    from pipeline.model.serving import TAG_REFERENCE, recorded_reference, schema_for

    found = [b for b in batches if int(b["batch_index"]) == index]
    if not found:
        raise LookupError(f"run {run_key!r} has no recorded batch {index}")
    batch = found[0]
    registry = parts.registry
    info = registry.version(int(batch["champion_version"]))
    given, given_source = _given_schema(schema_path, settings)
    schema = schema_for(registry, info, given, given_source)
    source = batch_file(str(batch["source"]))
    s3 = parts.s3_for(source, *([reference] if reference else []))
    if reference:
        ref = load_batch(reference, schema, s3)
    else:
        stored = recorded_reference(info, schema, registry.name)
        if stored is None:
            raise NoChampion(f"v{info.version} of {registry.name!r} has no stored reference; pass --reference PATH")
        ref = stored
        _say(f"reference: the sample stored with v{info.version} ({info.tags[TAG_REFERENCE]})")
    return write_batch_html(
        batch=batch, registry=registry, settings=settings, schema=schema, reference=ref, s3_client=s3, out_dir=out
    )


# ------------------------------------------------------------------ local stack


def _stack_config(settings: Settings) -> StackConfig:
    from pipeline.app.stack import StackConfig

    return StackConfig(
        state_dir=settings.state_dir.resolve(),
        pg_port=settings.pg_port,
        s3_port=settings.s3_port,
        mlflow_port=settings.mlflow_port,
        bucket=settings.artifact_bucket,
    )


@stack_app.command("up")
def stack_up() -> None:
    """Start (or find running) PostgreSQL, moto S3 with the artifact bucket, and the MLflow server."""
    from pipeline.app import stack

    with _clean_errors():
        stack.up(_stack_config(_settings()), say=_say)


@stack_app.command("down")
def stack_down() -> None:
    """Snapshot the bucket to disk and stop the stack (data stays under the state folder)."""
    from pipeline.app import stack

    with _clean_errors():
        stack.down(_stack_config(_settings()), say=_say)


@stack_app.command("snapshot")
def stack_snapshot() -> None:
    """Copy the artifact bucket to disk now (moto keeps objects in memory only)."""
    from pipeline.app import stack

    with _clean_errors():
        cfg = _stack_config(_settings())
        _say(f"{stack.snapshot_bucket(cfg)} objects -> {cfg.snapshot_dir}")


@stack_app.command("status")
def stack_status() -> None:
    """Which parts of the local stack answer."""
    from pipeline.app import stack

    cfg = _stack_config(_settings())
    states = stack.status(cfg)
    for name, ok in states.items():
        _say(f"{name:<9} {'up' if ok else 'down'}")
    if not all(states.values()):
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()


def _spark_engine(settings: Settings) -> Engine:
    """The Spark engine, imported only when asked for (the ``spark`` extra)."""
    from pipeline.engine.spark import spark_engine

    return spark_engine(settings)
