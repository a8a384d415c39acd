"""``pipeline status`` and ``pipeline report``: what the store and the registry say, as tables, pictures, files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    policy_table,
    say,
)
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.app.collaborators import Collaborators
    from pipeline.domain.model_policy import ModelPolicy
    from pipeline.io.store import MetricsStore
    from pipeline.model.registry import Registry, VersionInfo


@app.command()
def status(model_name: ModelName = None) -> None:
    """Champion version and aliases, its schema, the last batches, the top drifted features, why the latest
    attributed batch moved (each feature's share of its prediction drift), the worst segments of the latest batch
    with segments (alarmed first, then least likely by chance), the last events, and
    the inbox files set aside as rejected (`pipeline inbox retry KEY` reads one again)."""
    from pipeline.domain.model_policy import resolve_policy

    settings = cli_settings(model_name)
    with clean_errors():
        parts = collaborators(settings)
        registry = parts.registry
        champion = registry.champion()
        aliases = registry.aliases() if champion is not None else {}
        say(
            f"model {settings.model_name}: "
            + (", ".join(f"{a}=v{v}" for a, v in sorted(aliases.items())) or "no versions yet")
        )
        policy = resolve_policy(settings, registry.model_tags())
        if champion is not None:
            _say_champion(registry, champion, policy)
        console.print(policy_table(policy))
        store = parts.store
        console.print(_batches_table(store, settings.model_name))
        features = _features_table(store, settings.model_name)
        if features is not None:
            console.print(features)
        why = _attribution_table(store, settings.model_name)
        if why is not None:
            console.print(why)
        segments = _segments_table(store, settings.model_name)
        if segments is not None:
            console.print(segments)
        console.print(_events_table(store, settings.model_name))
        rejected = _rejected_table(store, settings.model_name)
        if rejected is not None:
            console.print(rejected)


def _say_champion(registry: Registry, champion: VersionInfo, policy: ModelPolicy) -> None:
    """The champion's schema, whether the performance alarm has a baseline, and the retraining mode."""
    from pipeline.domain.retrain_mode import RetrainMode
    from pipeline.model.serving import recorded_schema

    schema = recorded_schema(champion, registry.name)
    if schema is None:
        say(f"schema: none recorded with v{champion.version} (monitor uses --schema or the built-in one)")
    else:
        say(
            f"schema: target {schema.target!r} (positive {schema.positive!r}, negative {schema.negative!r}), "
            f"{len(schema.numerical)} numerical and {len(schema.categorical)} categorical features"
        )
    auc = champion.metric("holdout_roc_auc")
    if auc is None:
        say(
            f"performance alarm: off, v{champion.version} has no recorded holdout metrics "
            f"(`pipeline adopt --version {champion.version} --holdout PATH` records them)"
        )
    else:
        say(f"performance alarm: on, holdout ROC AUC {auc:.4f} minus {policy.settings.auc_tolerance}")
    mode, source = policy.mode, policy.mode_source
    held = registry.aliases().get("challenger")
    waiting = ""
    if mode is RetrainMode.challenger and held and held > champion.version:
        waiting = f"; challenger v{held} waits for `pipeline promote --version {held}`"
    say(f"retraining mode: {mode.value} ({source}){waiting}")


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


def _multivariate_text(b: dict[str, Any]) -> str:
    """The domain classifier's AUC with its edge at the false-alarm rate, and DRIFT when its rule fired."""
    if b.get("multivariate_auc") is None:
        return "-"
    text = f"{b['multivariate_auc']:.3f}" + _bracket(b.get("multivariate_edge"), "edge {:.3f}")
    return text + (" DRIFT" if b.get("multivariate_drift") else "")


def _batches_table(store: MetricsStore, model_name: str) -> Table:
    batches = Table(title="last batches")
    columns = ("time", "run", "batch", "champion", "rows", "pred drift (p)", "noise edge", "drifted", "multivariate")
    for column in (*columns, "ROC AUC (s.e.)", "estimated ROC AUC", "action"):
        batches.add_column(column)
    for b in store.last_batches(model_name, 10):
        batches.add_row(
            f"{b['ts']:%Y-%m-%d %H:%M:%S}",
            b["run_key"],
            str(b["batch_index"]),
            f"v{b['champion_version']}",
            str(b["n_rows"]),
            f"{b['prediction_drift']:.3f}" + _bracket(b["prediction_drift_p"], "p={:.2g}"),
            "-" if b["drift_noise_edge"] is None else f"{b['drift_noise_edge']:.3f}",
            str(b["drifted_columns"]),
            _multivariate_text(b),
            "-" if b["roc_auc"] is None else f"{b['roc_auc']:.3f}" + _bracket(b["roc_auc_stderr"], "±{:.3f}"),
            _estimate_text(b),
            b["action"],
        )
    return batches


def _features_table(store: MetricsStore, model_name: str) -> Table | None:
    scores = store.latest_feature_scores(model_name, 10)
    if not scores:
        return None
    features = Table(title=f"top drifted features, batch {scores[0]['batch_index']} of run {scores[0]['run_key']}")
    for column in ("feature", "drift score", "drifted"):
        features.add_column(column)
    for f in scores:
        score = "-" if f["score"] is None else f"{f['score']:.3f}"
        features.add_row(f["feature"], score, "yes" if f["drifted"] else "no")
    return features


def _attribution_table(store: MetricsStore, model_name: str) -> Table | None:
    """Why the latest attributed batch moved (``pipeline explain``; the monitor attributes every alarm)."""
    shares = [s for s in store.latest_attribution(model_name, 10) if s["share"] > 0.01]
    if not shares:
        return None
    first = shares[0]
    title = (
        f"why it moved, batch {first['batch_index']} of run {first['run_key']} ({first['sample_rows']} rows sampled)"
    )
    table = Table(title=title)
    for column in ("feature", "share of the prediction drift", "prediction shift"):
        table.add_column(column)
    for s in shares:
        shift = s["prediction_shift"]
        table.add_row(s["feature"], f"{s['share']:.0%}", "-" if shift is None else f"{shift:.4f}")
    return table


def _segments_table(store: MetricsStore, model_name: str) -> Table | None:
    """The worst segments of the latest batch with segments (``segment_metrics``), alarmed first."""
    worst = store.worst_segments(model_name, 5)
    if not worst:
        return None
    table = Table(title=f"worst segments, batch {worst[0]['batch_index']} of run {worst[0]['run_key']}")
    for column in ("segment", "rows", "share", "prediction drift", "p", "ROC AUC", "est. AUC", "alarm"):
        table.add_column(column)
    for s in worst:
        table.add_row(
            f"{s['segment_column']}={s['segment_value']}",
            str(s["rows"]),
            f"{s['share']:.0%}",
            _number(s["prediction_drift"], ".3f"),
            _number(s["prediction_drift_p"], ".2g"),
            _number(s["roc_auc"], ".3f"),
            _number(s["estimated_roc_auc"], ".3f"),
            s["reason"] or "-",
        )
    return table


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def _events_table(store: MetricsStore, model_name: str) -> Table:
    events = Table(title="last events")
    for column in ("time", "kind", "version", "message"):
        events.add_column(column)
    for e in store.last_events(model_name, 10):
        events.add_row(
            f"{e['ts']:%Y-%m-%d %H:%M:%S}",
            e["kind"],
            "-" if e["model_version"] is None else f"v{e['model_version']}",
            e["message"],
        )
    return events


REJECTED_SHOWN = 20


def _rejected_table(store: MetricsStore, model_name: str) -> Table | None:
    """The inbox files set aside, newest first, with their one-line reasons; None when there is none."""
    rows = store.rejections_of_model(model_name)
    if not rows:
        return None
    more = f", the newest {REJECTED_SHOWN} shown" if len(rows) > REJECTED_SHOWN else ""
    table = Table(
        title=f"rejected batches: {len(rows)} set aside, not read again until `pipeline inbox retry KEY`{more}"
    )
    for column in ("time", "file", "ETag", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows[:REJECTED_SHOWN]:
        table.add_row(f"{r['ts']:%Y-%m-%d %H:%M:%S}", r["uri"], r["etag"], r["reason"])
    return table


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

    settings = cli_settings(model_name)
    with clean_errors():
        parts = collaborators(settings)
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
            fail(str(err))
        for path in paths:
            say(f"wrote {path}")


def _report_period(
    parts: Collaborators, settings: Settings, out: Path, since: datetime, until: datetime | None, reference: str | None
) -> None:
    from pipeline.app.report import period_drift
    from pipeline.io.data import load_batch
    from pipeline.model.registry import require_champion
    from pipeline.model.serving import load_version, recorded_reference, schema_for
    from pipeline.stats.binned_reference import BinnedReference
    from pipeline.stats.drift import ReferenceProfile

    registry = parts.registry
    champion = require_champion(registry)
    schema = schema_for(registry, champion, None, "")
    ref = load_batch(reference, schema, parts.s3_for(reference)) if reference else None
    ref = ref or recorded_reference(champion, schema, registry.name)
    if ref is None:
        fail(f"v{champion.version} has no stored reference; pass --reference PATH")
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
        fail(str(err))
    out.mkdir(parents=True, exist_ok=True)
    (out / "period_drift.json").write_text(json.dumps(found, indent=2, default=str))
    say(
        f"{found['batches']} batches, {found['rows']} rows from {found['first']} to {found['last']} "
        f"({found['other_bins']} on other references' bins left out): prediction drift "
        f"{found['prediction_drift']:.3f}, {found['drifted_columns']} drifted columns "
        f"{', '.join(found['drifted_features'][:5])}"
    )
    say(f"wrote {out / 'period_drift.json'}")


def _batch_html(
    parts: Collaborators,
    settings: Settings,
    run_key: str,
    batches: list[dict[str, Any]],
    index: int,
    reference: str | None,
    schema_path: str | None,
    out: Path,
) -> Path:
    from pipeline.app.report import batch_file, write_batch_html
    from pipeline.io.data import load_batch
    from pipeline.model.serving import TAG_REFERENCE, schema_for, stored_reference

    found = [b for b in batches if int(b["batch_index"]) == index]
    if not found:
        raise LookupError(f"run {run_key!r} has no recorded batch {index}")
    batch = found[0]
    registry = parts.registry
    info = registry.version(int(batch["champion_version"]))
    given, given_source = given_schema(schema_path, settings)
    schema = schema_for(registry, info, given, given_source)
    source = batch_file(str(batch["source"]))
    s3 = parts.s3_for(source, *([reference] if reference else []))
    if reference:
        ref = load_batch(reference, schema, s3)
    else:
        ref = stored_reference(info, schema, registry.name)
        say(f"reference: the sample stored with v{info.version} ({info.tags[TAG_REFERENCE]})")
    return write_batch_html(
        batch=batch, registry=registry, settings=settings, schema=schema, reference=ref, s3_client=s3, out_dir=out
    )
