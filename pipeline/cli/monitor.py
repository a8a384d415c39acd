"""``pipeline monitor`` (parse, run ``pipeline.app.monitor_run``, print the summary) and ``pipeline spark-job-args``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.cli.app import app
from pipeline.cli.common import (
    THRESHOLD_HELP,
    ModelName,
    SchemaPath,
    clean_errors,
    cli_settings,
    collaborators,
    console,
    err_console,
    fail,
    given_schema,
    say,
    ui_links,
)
from pipeline.cli.notify import notify_run_failed
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.app.collaborators import Collaborators
    from pipeline.app.monitor_result import MonitorResult
    from pipeline.app.monitor_run import MonitorRequest, MonitorRun, SimulatedStream
    from pipeline.io.store import MetricsStore

# The monitor's options, named here so that its signature reads as a list.
Reference = Annotated[
    str | None,
    typer.Option(help="Reference data (default: the reference sample stored with the champion)."),
]
Inbox = Annotated[
    str | None,
    typer.Option(
        help="Monitor every CSV/Parquet file under this s3:// prefix or folder not yet recorded, in key order, "
        "each once (key + ETag); exits 0 when nothing is new. A file that fails for a reason of its own is set "
        "aside as rejected, not read again until `pipeline inbox retry KEY`. With --all-models, a root inbox: "
        "one folder a model."
    ),
]
AllModels = Annotated[
    bool,
    typer.Option(
        "--all-models",
        help="--inbox is a root inbox: each folder under it, ROOT/NAME/, is the inbox of the model NAME. Every "
        "model is monitored in turn with its own champion, schema, policy and run (as --inbox ROOT/NAME/ "
        "--model-name NAME would); a model that cannot be monitored (no champion, say) is one line and the "
        "others go on. The exit code is the most serious of the models' (a model not monitored: 1).",
    ),
]
Current = Annotated[
    list[str] | None,
    typer.Option(help="Batches to monitor, in time order: --current a.csv b.csv ... (local or s3://)."),
]
Threshold = Annotated[float | None, typer.Option(min=0.0, help=THRESHOLD_HELP)]
ReportJson = Annotated[Path | None, typer.Option(help="Write one JSON record per batch here.")]
RunId = Annotated[
    str | None,
    typer.Option(
        help="Monitor run key (default: the model's run with --current, the model's and inbox's with --inbox). "
        "Every call goes on from the run's recorded batches (cooldown, episode, window carry over); a file "
        "recorded before (by its path and content, or key and ETag) is skipped, a new one is monitored."
    ),
]
SimBatches = Annotated[int | None, typer.Option(min=1, help="Simulated batches when --current is omitted.")]
SimRows = Annotated[int | None, typer.Option(min=50, help="Rows per simulated batch.")]
SimDriftKind = Annotated[str, typer.Option(help="Simulated drift: none | covariate | concept | prior | label.")]
SimDriftAt = Annotated[int | None, typer.Option(min=1, help="First simulated drifted batch (default: middle).")]
MaxBatchMb = Annotated[
    float | None,
    typer.Option(
        min=0.001,
        help="Refuse (skip) a batch file bigger than this many MB (default: no limit; a file over "
        "PIPELINE_CHUNK_MB is read in chunks, in bounded memory).",
    ),
]
FailOnAlarm = Annotated[
    bool,
    typer.Option(
        "--fail-on-alarm",
        help="For a scheduler: exit 3 when a batch of the run alarmed, 4 when a batch failed validation "
        "(else 1, as without it), 1 when the run failed; 0 otherwise.",
    ),
]
EngineName = Annotated[
    str,
    typer.Option(
        help="local: files over PIPELINE_CHUNK_MB are read in chunks in this process; spark: every batch file "
        "is read, scored and profiled by Spark (the spark extra and Java; PIPELINE_SPARK_MASTER)."
    ),
]


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def monitor(
    ctx: typer.Context,
    reference: Reference = None,
    inbox: Inbox = None,
    current: Current = None,
    threshold: Threshold = None,
    report_json: ReportJson = None,
    model_name: ModelName = None,
    run_id: RunId = None,
    batches: SimBatches = None,
    batch_rows: SimRows = None,
    drift_kind: SimDriftKind = "covariate",
    drift_at: SimDriftAt = None,
    max_batch_mb: MaxBatchMb = None,
    schema_path: SchemaPath = None,
    engine: EngineName = "local",
    fail_on_alarm: FailOnAlarm = False,
    all_models: AllModels = False,
) -> None:
    """Score batches with the champion, measure drift, and retrain/tune/register/promote past the threshold.

    With --inbox, the batches are the inbox's new files (what a timer runs on the host); with --inbox ROOT
    --all-models, those of every model with a folder under ROOT, one model after the other. Without --current or
    --inbox, a stream is simulated from a population fitted to the reference data set, with a drift injected in
    the middle (the demo's built-in schema only).
    """
    from pipeline.app.monitor_run import MonitorRequest

    paths = _batch_paths(ctx, current, inbox, engine)
    if all_models:
        _check_all_models(inbox, model_name, report_json)
    settings = cli_settings(model_name)
    simulated = None if paths or inbox else _simulated_stream(settings, batches, batch_rows, drift_kind, drift_at)
    with clean_errors():
        given, given_source = given_schema(schema_path, settings)
        request = MonitorRequest(
            paths=tuple(paths),
            inbox=inbox,
            simulated=simulated,
            reference=reference,
            run_key=run_id,
            threshold=threshold,
            max_batch_mb=max_batch_mb,
            given_schema=given,
            given_source=given_source,
            engine=engine,
        )
        parts = collaborators(settings)
        if all_models:
            _monitor_all_models(request, parts, fail_on_alarm)
            return
        run = _run_with_bar(request, settings, parts)
        if run.result is None:
            say(run.nothing)
            return
        _report(run.result, report_json, settings, parts.store)
    _exit_on_failures(run.result, fail_on_alarm)


def _report(result: MonitorResult, report_json: Path | None, settings: Settings, store: MetricsStore) -> None:
    """The run's ``--report-json`` when asked, and its summary."""
    if report_json:
        from pipeline.app.mirror import write_report_json

        write_report_json(result.records, report_json)
    _summary(result, settings, store)


def _run_with_bar(request: MonitorRequest, settings: Settings, parts: Any) -> MonitorRun:
    """One model's run (``pipeline.app.monitor_run``) under the progress bar; a run that fails is notified as
    failed (a refused notification setting is not: it is the command's error)."""
    from pipeline.app.monitor_run import monitor_run

    bar = _ProgressBar()
    try:
        return monitor_run(request, settings, parts, say=say, on_start=bar.start, on_batch=bar.advance)
    except Exception as err:
        if not _is_notify_error(err):
            notify_run_failed(settings, err, request.run_key)
        raise
    finally:
        bar.stop()


def _is_notify_error(err: BaseException) -> bool:
    """A refused notification setting: said as the command's error, not sent anywhere."""
    loaded = sys.modules.get("pipeline.io.notify")
    return loaded is not None and isinstance(err, loaded.NotifyError)


def _batch_paths(ctx: typer.Context, current: list[str] | None, inbox: str | None, engine: str) -> list[str]:
    """The batch files: --current's, and the words after it (``--current a.csv b.csv``); checked against the
    other options before anything connects anywhere."""
    extra = [arg for arg in ctx.args]
    if any(arg.startswith("-") for arg in extra):
        fail(f"unknown option {next(a for a in extra if a.startswith('-'))}")
    paths = [*(current or []), *extra]
    if inbox and paths:
        fail("pass either --inbox or --current, not both")
    if engine not in ("local", "spark"):
        fail(f"--engine must be local or spark, not {engine!r}")
    if engine == "spark" and not (paths or inbox):
        fail("--engine spark reads batch files: pass them with --current or --inbox")
    return paths


def _simulated_stream(
    settings: Settings, batches: int | None, batch_rows: int | None, drift_kind: str, drift_at: int | None
) -> SimulatedStream:
    """The demo's simulated stream: ``batches`` batches of ``batch_rows`` rows, drifting from ``drift_at`` on."""
    from pipeline.app.monitor_run import SimulatedStream
    from pipeline.demo.synth import DriftKind, simulated_sources

    try:
        kind = DriftKind(drift_kind)
    except ValueError:
        fail(f"--drift-kind must be one of: {', '.join(k.value for k in DriftKind)}")
    n = batches or settings.sim_batches
    at = drift_at or (n // 2 + 1)
    rows = batch_rows or settings.sim_batch_rows
    return SimulatedStream(
        build=lambda frame, schema: simulated_sources(
            frame, schema, batches=n, rows=rows, drift_at=at, kind=kind, seed=settings.seed
        ),
        key=f"sim:{n}:{batch_rows}:{kind}:{at}:{settings.seed}",
    )


class _ProgressBar:
    """The monitor's bar, shown from its first batch until the run ends (then cleared)."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]monitor"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("batches", total=total)

    def advance(self, _record: dict[str, Any]) -> None:
        if self.task is not None:
            self.progress.advance(self.task)

    def stop(self) -> None:
        if self.task is not None:  # a bar never started prints nothing, not even the newline of a stopped one
            self.progress.stop()


def _check_all_models(inbox: str | None, model_name: str | None, report_json: Path | None) -> None:
    """--all-models' own refusals, before anything connects anywhere."""
    if not inbox:
        fail("--all-models monitors a root inbox: pass it with --inbox ROOT")
    if model_name:
        fail("--all-models monitors every model with a folder under the root: drop --model-name")
    if report_json:
        fail("--report-json writes one run's records: monitor one model's inbox with --model-name for it")


def _monitor_all_models(request: MonitorRequest, parts: Collaborators, fail_on_alarm: bool) -> None:
    """Every model of the root inbox in turn (``pipeline.app.monitor_models``), each summed up as a run of its
    own; then one line for them all, and the exit code, the most serious of theirs."""
    from pipeline.app import monitor_models

    def run_one(one: MonitorRequest, settings: Settings, model_parts: Any) -> MonitorRun:
        run = _run_with_bar(one, settings, model_parts)
        if run.result is None:
            say(run.nothing)
        else:
            _summary(run.result, settings, model_parts.store)
            _print_failures(run.result)
        return run

    outcomes = monitor_models.monitor_models(request, parts, run_one=run_one, say=say)
    say(monitor_models.summary(outcomes))
    if code := monitor_models.exit_code(outcomes, fail_on_alarm=fail_on_alarm):
        raise typer.Exit(code)


def _exit_on_failures(result: MonitorResult, fail_on_alarm: bool) -> None:
    """Batches that failed validation, and other failures of the run: printed; the exit code
    (``MonitorResult.exit_code``)."""
    _print_failures(result)
    code = result.exit_code(fail_on_alarm=fail_on_alarm)
    if code:
        raise typer.Exit(code)


def _print_failures(result: MonitorResult) -> None:
    if result.errors:
        aside = (
            f" ({len(result.rejected)} inbox file(s) set aside as rejected: not read again until "
            "`pipeline inbox retry KEY`)"
            if result.rejected
            else ""
        )
        err_console.print(
            f"[bold red]{len(result.errors)} batch(es) failed validation; nothing was written for them[/]{aside}",
            highlight=False,
            markup=True,
        )
    for failure in result.failures:
        err_console.print(f"failed: {failure}", highlight=False, soft_wrap=True, markup=False)


def _summary(result: MonitorResult, settings: Settings, store: MetricsStore) -> None:
    from pipeline.domain.records import VERDICT_COLUMNS

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
    say(
        f"{len(result.records)} batches: {result.alarms} alarms, {result.retrains} retrains, "
        f"{result.skipped} already recorded (skipped)"
        + (
            f"; {result.notified} notifications sent, {len(result.notify_failures)} not sent"
            if result.notified or result.notify_failures
            else ""
        )
    )
    ui_links(settings, result.mlflow_run_id, versions)


@app.command("spark-job-args")
def spark_job_args(
    batch: Annotated[str, typer.Option(help="The batch the job profiles (s3:// on EMR).")],
    out: Annotated[str, typer.Option(help="Where the job writes its result (the results prefix, one folder a job).")],
    model_name: ModelName = None,
) -> None:
    """Print, as JSON, the arguments of a Spark job (``pipeline.engine.spark_job``) that profiles a batch with the
    champion: every file the job needs as the S3 location its role may read. Then monitor OUT/result.json."""
    from pipeline.engine.spark_job import job_arguments
    from pipeline.model.registry import require_champion

    settings = cli_settings(model_name)
    with clean_errors():
        registry = collaborators(settings).registry
        champion = require_champion(registry)
        print(json.dumps(job_arguments(registry, champion, settings, batch, out)))
