"""Pictures of a monitor run without Grafana: a drift timeline PNG, the batch table as CSV, and on demand the
Evidently HTML report of one recorded batch.

``plot_drift_timeline`` draws what it is given and returns the data it drew, so callers (and tests) can
check what the picture shows without reading pixels. ``write_run_report`` reads one run back from the
metrics database and writes both files. ``write_batch_html`` rebuilds a batch's Evidently report from what is
stored: the batch's file (its recorded ``source``), the version that scored it and that version's stored
reference sample. matplotlib and Evidently are imported only when a picture is drawn.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.domain.records import BATCH_COLUMNS, VERDICT_COLUMNS
from pipeline.io.store import MetricsStore

if TYPE_CHECKING:
    from pipeline.domain.schema import FeatureSchema
    from pipeline.io.data import Batch
    from pipeline.io.tables import ObjectStore
    from pipeline.model.registry import Registry
    from pipeline.settings import Settings

TIMELINE_PNG = "drift_timeline.png"
BATCHES_CSV = "batches.csv"


def _flag(batch: Mapping[str, Any], name: str) -> bool:
    return bool(batch.get(name) or False)


def _event_batches(events: Sequence[Mapping[str, Any]], kind: str, known: set[int]) -> list[int]:
    """Indexes of the plotted batches that carry an event of this kind (run-level events have none)."""
    found = {int(e["batch_index"]) for e in events if e.get("kind") == kind and e.get("batch_index") is not None}
    return sorted(found & known)


def timeline_data(
    batches: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], threshold: float
) -> dict[str, Any]:
    """What the drift timeline shows, without drawing it: batch indexes, drift values, the threshold and the
    marked batches (alarms, promotions, rejections). See ``plot_drift_timeline`` for what marks a batch."""
    if not batches:
        raise ValueError("no batches to plot")
    ordered = sorted(batches, key=lambda b: int(b["batch_index"]))
    xs = [int(b["batch_index"]) for b in ordered]
    known = set(xs)
    flagged = {int(b["batch_index"]) for b in ordered if any(_flag(b, name) for name in VERDICT_COLUMNS)}
    return {
        "batch": xs,
        "drift": [float(b["prediction_drift"]) for b in ordered],
        "threshold": float(threshold),
        "alarms": sorted(flagged | set(_event_batches(events, "alarm", known))),
        "promotions": _event_batches(events, "promotion", known),
        "rejections": _event_batches(events, "rejection", known),
        "roc_auc": [_number(b.get("roc_auc")) for b in ordered],
        "estimated_roc_auc": [_number(b.get("estimated_roc_auc")) for b in ordered],
    }


def plot_drift_timeline(
    batches: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    threshold: float,
    out: Path,
    title: str | None = None,
) -> dict[str, Any]:
    """Draw prediction drift per batch with the threshold, alarms and model decisions; save it as PNG.

    ``batches`` need ``batch_index`` and ``prediction_drift``; any true verdict column (``drift_detected``,
    ``performance_drop``, ``prior_shift``, ``estimated_drop``: VERDICT_COLUMNS) marks a batch as an alarm. When
    any batch has a ROC AUC, realized (``roc_auc``) or estimated (``estimated_roc_auc``), a second panel draws
    both. ``events`` need ``kind``
    and ``batch_index``: alarm events mark alarms too, promotion and rejection events mark the batch whose
    challenger was promoted or rejected.
    Returns the plotted data (``timeline_data``): batch indexes, drift values, the threshold and the marked batches.
    """
    plotted = timeline_data(batches, events, threshold)
    xs = plotted["batch"]

    # The object-oriented API with the Agg canvas: no pyplot state, no display, safe in any thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    realized, estimated = plotted["roc_auc"], plotted["estimated_roc_auc"]
    quality = any(v is not None for v in realized + estimated)
    fig = Figure(figsize=(10, 7.5 if quality else 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax, quality_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2]) if quality else (fig.add_subplot(), None)
    _plot_drift(ax, plotted, threshold, title)
    if quality_ax is not None:
        _plot_quality(quality_ax, xs, realized, estimated)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=110)
    return plotted


def _plot_drift(ax: Any, plotted: dict[str, Any], threshold: float, title: str | None) -> None:
    """The drift panel: prediction drift per batch, the threshold, alarms, promotions and rejections."""
    from matplotlib.ticker import MaxNLocator

    xs, drift = plotted["batch"], plotted["drift"]
    alarms, promotions, rejections = plotted["alarms"], plotted["promotions"], plotted["rejections"]
    ax.plot(xs, drift, marker="o", color="tab:blue", label="prediction drift")
    ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1.2, label=f"threshold {threshold:g}")
    by_index = dict(zip(xs, drift, strict=True))
    if alarms:
        ax.scatter(
            alarms,
            [by_index[i] for i in alarms],
            marker="X",
            s=110,
            color="tab:red",
            zorder=3,
            label="alarm",
        )
    for n, index in enumerate(promotions):
        ax.axvline(index, color="tab:green", linewidth=1.5, label="promotion" if n == 0 else None)
    for n, index in enumerate(rejections):
        ax.axvline(index, color="tab:orange", linestyle=":", linewidth=1.5, label="rejection" if n == 0 else None)
    ax.set_xlabel("batch")
    ax.set_ylabel("prediction drift")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(*drift, threshold) * 1.15 or 1.0)
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "Prediction drift per batch")
    ax.legend(loc="upper left", fontsize="small")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _plot_quality(ax: Any, xs: list[int], realized: list[float | None], estimated: list[float | None]) -> None:
    """ROC AUC per batch: realized where labels are known (solid), estimated without labels (dashed)."""
    for values, style, label in ((realized, "-", "ROC AUC (labels)"), (estimated, "--", "estimated ROC AUC")):
        points = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if points:
            ax.plot(*zip(*points, strict=True), linestyle=style, marker="o", markersize=4, label=label)
    ax.set_xlabel("batch")
    ax.set_ylabel("ROC AUC")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")


def _write_batches_csv(batches: Sequence[Mapping[str, Any]], out: Path) -> None:
    columns = ["ts", *BATCH_COLUMNS]
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for batch in batches:
            row = dict(batch)
            ts = row.get("ts")
            if ts is not None and hasattr(ts, "isoformat"):
                row["ts"] = ts.isoformat()
            writer.writerow(row)


def run_batches(store: MetricsStore, run_key: str | None, model_name: str) -> tuple[str, list[dict[str, Any]]]:
    """The run key (the model's latest run by default) and its batch rows, oldest first.

    Raises LookupError when the model has no recorded run, or the run has no batches of this model.
    """
    if run_key is None:
        run_key = store.latest_run_key(model_name)
        if run_key is None:
            raise LookupError(f"no monitor run of model {model_name!r} is recorded")
    batches = store.batches_of_run(run_key)
    if not batches:
        raise LookupError(f"run {run_key!r} has no recorded batches")
    others = sorted({b["model_name"] for b in batches} - {model_name})
    if others:
        raise LookupError(f"run {run_key!r} belongs to model {', '.join(others)}, not {model_name!r}")
    return run_key, batches


def write_run_report(store: MetricsStore, run_key: str | None, model_name: str, out_dir: Path) -> list[Path]:
    """Write the drift timeline PNG and the batch table CSV of one run (the model's latest by default).

    Raises LookupError when the model has no recorded run, or the run has no batches of this model.
    """
    run_key, batches = run_batches(store, run_key, model_name)
    events = store.events_of_run(run_key)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / TIMELINE_PNG
    csv_path = out_dir / BATCHES_CSV
    # The threshold a run was measured against is stored on every batch; the newest one is shown.
    threshold = float(batches[-1]["drift_threshold"])
    plot_drift_timeline(batches, events, threshold, png, title=f"Prediction drift of {model_name}, run {run_key}")
    _write_batches_csv(batches, csv_path)
    return [png, csv_path]


def period_drift(
    store: MetricsStore, model_name: str, binned: Any, since: Any = None, until: Any = None
) -> dict[str, Any]:
    """Drift over a period from the batch profiles stored in it, merged (no batch is read again).

    Only profiles on ``binned``'s bins (the same reference and champion) merge; the others are counted.
    Raises LookupError when none does.
    """
    from pipeline.stats.profile import BatchProfile, merge_all

    stored = store.stored_profiles(model_name, since, until)
    matching = [BatchProfile.from_bytes(blob) for _k, _i, _ts, binning, blob in stored if binning == binned.digest]
    if not matching:
        raise LookupError(
            f"no stored batch profile of {model_name!r} in the period is on this reference's bins "
            f"({len(stored)} on other references' bins)"
        )
    merged = merge_all(matching)
    drift = binned.measure(merged)
    estimated, estimated_accuracy = merged.expected.estimate()
    times = [ts for _k, _i, ts, binning, _b in stored if binning == binned.digest]
    result: dict[str, Any] = {
        "batches": len(matching),
        "other_bins": len(stored) - len(matching),
        "first": min(times).isoformat(),
        "last": max(times).isoformat(),
        "rows": merged.rows,
        "prediction_drift": drift.prediction_drift,
        "drifted_columns": drift.drifted_columns,
        "share_missing": drift.share_missing,
        "drifted_features": [name for name, _score in drift.drifted_features()],
        "mean_prediction": merged.mean_prediction,
        "estimated_roc_auc": estimated,
        "estimated_accuracy": estimated_accuracy,
    }
    if merged.labels.labelled:
        quality = binned.quality(merged)
        result.update(labelled_rows=quality.labelled, roc_auc=quality.roc_auc, accuracy=quality.accuracy)
    return result


def batch_file(source: str) -> str:
    """The file a recorded batch was read from: its ``source``, without the ETag an inbox batch carries.

    Raises LookupError for a simulated batch (its rows were never stored).
    """
    from pipeline.io.inbox import IDENTITY_SEPARATOR, uri_of

    if source.startswith("simulated:"):
        raise LookupError(f"batch {source!r} was simulated: its rows were never stored, no report can be rebuilt")
    return uri_of(source) if IDENTITY_SEPARATOR in source else source


def write_batch_html(
    *,
    batch: Mapping[str, Any],
    registry: Registry,
    settings: Settings,
    schema: FeatureSchema,
    reference: Batch,
    s3_client: ObjectStore | None,
    out_dir: Path,
) -> Path:
    """Rebuild the Evidently HTML report of one recorded batch (a row of ``batches_of_run``) and write it.

    The batch is read again from its file, both it and ``reference`` are sampled to at most
    ``pipeline.stats.evidently_report.HTML_SAMPLE_ROWS`` rows (the sample the monitor's own HTML uses), scored with the
    version that scored the batch, and compared at the batch's recorded threshold.
    """
    import numpy as np

    from pipeline.io.data import load_batch
    from pipeline.model.serving import load_version
    from pipeline.stats.drift import ReferenceProfile
    from pipeline.stats.evidently_report import HTML_SAMPLE_ROWS, sample_positions, sampled_report

    index = int(batch["batch_index"])
    current = load_batch(batch_file(str(batch["source"])), schema, s3_client).frame
    info = registry.version(int(batch["champion_version"]))
    scorer = load_version(registry, info, schema, settings).scorer
    ref = reference.frame.iloc[sample_positions(len(reference.frame), HTML_SAMPLE_ROWS)].reset_index(drop=True)
    cur = current.iloc[sample_positions(len(current), HTML_SAMPLE_ROWS)].reset_index(drop=True)
    profile = ReferenceProfile.scored(
        ref,
        scorer,
        schema,
        prediction_threshold=float(batch["drift_threshold"]),
        column_threshold=settings.column_drift_threshold,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"evidently_batch_{index:03d}.html"
    sampled_report(profile, cur, np.asarray(scorer.proba(cur))).save_html(str(path))
    return path
