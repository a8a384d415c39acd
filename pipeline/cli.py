"""The ``pipeline`` command line: data synthesis, training, monitoring, rollback, status, the local stack."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.settings import Settings, load_settings

app = typer.Typer(
    help="Monitor drift of the triage admission model, retrain, tune, register and promote, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Data utilities.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack: embedded PostgreSQL, moto S3, MLflow server.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(stack_app, name="stack")

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

THRESHOLD_HELP = (
    "Prediction drift threshold. The score is the normed Wasserstein distance (Evidently 'wasserstein') "
    "between the champion's predicted admission probabilities on the reference and on the batch: 0 = same "
    "distribution, HIGHER = MORE drift; an alarm fires when score >= threshold (default 0.1)."
)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _clean_errors() -> Any:
    """Known failures print one line and exit non-zero; nothing else is caught."""
    from pipeline.data import DataError
    from pipeline.flavors import UntrustedModel
    from pipeline.monitor import NoChampion
    from pipeline.registry import RegistryError
    from pipeline.stack import StackError
    from pipeline.store import StoreUnavailable
    from pipeline.tracking import TrackingUnavailable

    try:
        yield
    except (
        DataError,
        NoChampion,
        RegistryError,
        StackError,
        StoreUnavailable,
        TrackingUnavailable,
        UntrustedModel,
    ) as err:
        _fail(str(err))


def _settings(model_name: str | None = None, **overrides: Any) -> Settings:
    return load_settings(model_name=model_name, **overrides)


def _s3(settings: Settings) -> Any:
    from pipeline.data import make_s3_client

    return make_s3_client(settings.s3_endpoint_url, settings.aws_region)


def _registry(settings: Settings) -> Any:
    from mlflow import MlflowClient

    from pipeline import tracking
    from pipeline.registry import Registry

    tracking.connect(settings.tracking_uri, settings.experiment_name)
    return Registry(MlflowClient(), settings.model_name)


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
    drift_kind: Annotated[str, typer.Option(help="none | covariate | concept | prior.")] = "covariate",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Write synthetic triage visits (realistic marginals, ~1/3 admitted), with drift from --drift-at on."""
    import numpy as np

    from pipeline.data import write_table
    from pipeline.schema import load_schema
    from pipeline.synth import DriftKind, Population, generate_stream, load_sample_frame

    try:
        kind = DriftKind(drift_kind)
    except ValueError:
        _fail(f"--drift-kind must be one of: {', '.join(k.value for k in DriftKind)}")
    if fmt not in ("csv", "parquet"):
        _fail("--format must be csv or parquet")
    if drift_at is not None and drift_at > batches:
        _fail(f"--drift-at {drift_at} is after the last batch ({batches})")
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


# ------------------------------------------------------------------ train


@app.command()
def train(
    data: Annotated[str, typer.Option(help="Labelled training data: CSV/Parquet path or s3://bucket/key.")],
    model_name: ModelName = None,
    if_no_champion: Annotated[
        bool, typer.Option("--if-no-champion", help="Do nothing when the model already has a champion.")
    ] = False,
) -> None:
    """Bootstrap: train the candidates, tune the best, register it and make it champion (or compare)."""
    from pipeline.monitor import MetricsStore
    from pipeline.retrain import WindowInfo, retrain
    from pipeline.schema import load_schema
    from pipeline.store import Event

    settings = _settings(model_name)
    with _clean_errors():
        registry = _registry(settings)
        champion = registry.champion()
        if champion is not None and if_no_champion:
            _say(f"{settings.model_name}: champion is v{champion.version}; nothing to bootstrap")
            return
        schema = load_schema()
        from pipeline.data import load_batch

        batch = load_batch(data, schema, _s3(settings) if data.startswith("s3://") else None)
        if not batch.has_labels:
            _fail(f"{data}: training data needs the target column {schema.target!r}")
        store = MetricsStore(settings.metrics_dsn())
        store.create_schema()
        champion_model = None
        if champion is not None:
            from pipeline import flavors

            champion_model = flavors.load_model(f"models:/{settings.model_name}/{champion.version}").model
        _say(f"training on {batch.rows} rows from {data}")
        outcome = retrain(
            batch.frame,
            WindowInfo(batch.rows, [data], "bootstrap" if champion is None else f"manual train on {data}"),
            settings=settings,
            schema=schema,
            registry=registry,
            champion_model=champion_model,
            say=_say,
        )
        import uuid

        kind = "bootstrap" if champion is None else ("promotion" if outcome.promoted else "rejection")
        store.record_event(
            Event(
                f"train-{uuid.uuid4().hex[:12]}",
                settings.model_name,
                kind,
                f"v{outcome.version}: {outcome.decision.reason}",
                model_version=outcome.version,
                champion_version=champion.version if champion else None,
                details={"mlflow_run_id": outcome.run_id, "data": data},
            )
        )
        state = "champion" if outcome.promoted else "challenger (not promoted)"
        _say(f"{settings.model_name} v{outcome.version} ({outcome.candidate}) is {state}: {outcome.decision.reason}")
        _ui_links(settings, outcome.run_id, [outcome.version])


# ------------------------------------------------------------------ monitor


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def monitor(
    ctx: typer.Context,
    reference: Annotated[str, typer.Option(help="Reference data (what the champion was trained on).")],
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
    drift_kind: Annotated[str, typer.Option(help="Simulated drift: none | covariate | concept | prior.")] = "covariate",
    drift_at: Annotated[
        int | None, typer.Option(min=1, help="First simulated drifted batch (default: middle).")
    ] = None,
    max_batch_mb: Annotated[
        float, typer.Option(min=0.001, help="Refuse (skip) a batch file bigger than this many MB; it is read whole.")
    ] = 256.0,
) -> None:
    """Score batches with the champion, measure drift, and retrain/tune/register/promote past the threshold.

    Without --current, a stream is simulated from a population fitted to the reference data set, with a
    drift injected in the middle (as the original monitoring script sampled its data over time points).
    """
    from pipeline.data import load_batch
    from pipeline.monitor import Monitor, file_sources, run_key_for, simulated_sources, write_report_json
    from pipeline.schema import load_schema
    from pipeline.store import MetricsStore
    from pipeline.synth import DriftKind

    extra = [arg for arg in ctx.args]
    if any(arg.startswith("-") for arg in extra):
        _fail(f"unknown option {next(a for a in extra if a.startswith('-'))}")
    paths = [*(current or []), *extra]
    settings = _settings(model_name)
    schema = load_schema()
    with _clean_errors():
        registry = _registry(settings)
        store = MetricsStore(settings.metrics_dsn())
        s3 = _s3(settings) if any(p.startswith("s3://") for p in [reference, *paths]) else None
        ref = load_batch(reference, schema, s3, max_batch_mb)
        if paths:
            sources = file_sources(paths, schema, s3, max_batch_mb)
            key = run_id or run_key_for(settings.model_name, reference, paths)
        else:
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
        monitor_ = Monitor(settings, schema, store, registry, say=_say)
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
                ref, sources, key, threshold=threshold, on_batch=lambda _record: progress.advance(task)
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


def _summary(result: Any, settings: Settings, store: Any) -> None:
    table = Table(title=f"monitor run {result.run_key} — {settings.model_name}")
    for column in ("batch", "rows", "drift", "drifted", "missing", "AUC", "version", "action"):
        if column == "action":
            table.add_column(column, no_wrap=True, min_width=18)
        else:
            table.add_column(column, justify="right")
    for r in result.records:
        if "error" in r:
            table.add_row(str(r["batch"]), "-", "-", "-", "-", "-", "-", "[red]error[/]")
            continue
        alarm = r.get("drift_detected") or r.get("performance_drop")
        auc = r.get("roc_auc")
        table.add_row(
            str(r["batch"]),
            str(r["rows"]),
            f"{'[bold red]' if r['drift_detected'] else ''}{r['prediction_drift']:.3f}",
            str(r["drifted_columns"]),
            f"{r['share_missing']:.1%}",
            "-" if auc is None else f"{'[bold red]' if r.get('performance_drop') else ''}{auc:.3f}",
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


@app.command()
def rollback(model_name: ModelName = None) -> None:
    """Move the `champion` alias back to `previous` (the champion it replaced)."""
    import uuid

    from pipeline.store import Event, MetricsStore

    settings = _settings(model_name)
    with _clean_errors():
        registry = _registry(settings)
        store = MetricsStore(settings.metrics_dsn())
        store.create_schema()
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


@app.command()
def status(model_name: ModelName = None) -> None:
    """Champion version and aliases, the last batches and the last events."""
    from pipeline.store import MetricsStore

    settings = _settings(model_name)
    with _clean_errors():
        registry = _registry(settings)
        champion = registry.champion()
        aliases = registry.aliases() if champion is not None else {}
        _say(
            f"model {settings.model_name}: "
            + (", ".join(f"{a}=v{v}" for a, v in sorted(aliases.items())) or "no versions yet")
        )
        store = MetricsStore(settings.metrics_dsn())
        store.create_schema()
        batches = Table(title="last batches")
        for column in ("time", "run", "batch", "champion", "pred drift", "drifted", "ROC AUC", "action"):
            batches.add_column(column)
        for b in store.last_batches(settings.model_name, 10):
            batches.add_row(
                f"{b['ts']:%Y-%m-%d %H:%M:%S}",
                b["run_key"],
                str(b["batch_index"]),
                f"v{b['champion_version']}",
                f"{b['prediction_drift']:.3f}",
                str(b["drifted_columns"]),
                "-" if b["roc_auc"] is None else f"{b['roc_auc']:.3f}",
                b["action"],
            )
        console.print(batches)
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
    model_name: ModelName = None,
) -> None:
    """Write the drift timeline PNG (threshold, alarms, promotions marked) and the batch table of a past run."""
    from pipeline.report import write_run_report
    from pipeline.store import MetricsStore

    settings = _settings(model_name)
    with _clean_errors():
        store = MetricsStore(settings.metrics_dsn())
        store.create_schema()
        try:
            paths = write_run_report(store, run_key, settings.model_name, out)
        except LookupError as err:
            _fail(str(err))
        for path in paths:
            _say(f"wrote {path}")


# ------------------------------------------------------------------ local stack


def _stack_config(settings: Settings) -> Any:
    from pipeline.stack import StackConfig

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
    from pipeline import stack

    with _clean_errors():
        stack.up(_stack_config(_settings()), say=_say)


@stack_app.command("down")
def stack_down() -> None:
    """Snapshot the bucket to disk and stop the stack (data stays under the state folder)."""
    from pipeline import stack

    with _clean_errors():
        stack.down(_stack_config(_settings()), say=_say)


@stack_app.command("snapshot")
def stack_snapshot() -> None:
    """Copy the artifact bucket to disk now (moto keeps objects in memory only)."""
    from pipeline import stack

    with _clean_errors():
        cfg = _stack_config(_settings())
        _say(f"{stack.snapshot_bucket(cfg)} objects -> {cfg.snapshot_dir}")


@stack_app.command("status")
def stack_status() -> None:
    """Which parts of the local stack answer."""
    from pipeline import stack

    cfg = _stack_config(_settings())
    states = stack.status(cfg)
    for name, ok in states.items():
        _say(f"{name:<9} {'up' if ok else 'down'}")
    if not all(states.values()):
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
