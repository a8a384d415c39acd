"""Sections 1 and 2: monitor throughput per stage against an Evidently report per batch, and their agreement.

Every batch goes through the monitor's own per-batch steps, each timed: load (Parquet read), validate,
score (the champion's vectorised ``predict_proba`` and, as batches are labelled, ROC AUC), drift, and
decide + store (one transaction into a real Postgres). "Ours" measures drift with
``ReferenceProfile.measure``;
the baseline with ``pipeline.stats.evidently_check.measure_with_evidently``: a fresh Evidently ``Report`` per batch
over the reference and the batch, exactly what the monitor ran before the fast path (reference ``Dataset`` built
once).
"""

from __future__ import annotations

import functools
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import (
    PeakMemory,
    Say,
    Section,
    Stopwatch,
    Table,
    median,
    percent,
    ratio,
    seconds,
)
from pipeline.demo.synth import DriftKind, Population, load_sample_frame
from pipeline.domain import policy
from pipeline.domain.policy_types import Observation, PolicyState, Rules
from pipeline.domain.records import BatchRow, Event
from pipeline.domain.schema import FeatureSchema, load_schema
from pipeline.engine.observe import observation_of
from pipeline.io.data import labels_of, validate_frame
from pipeline.io.store import MetricsStore
from pipeline.io.tables import read_table
from pipeline.model.train import ZOO, fit, predict_proba
from pipeline.settings import Settings
from pipeline.stats.binned_reference import BinnedReference
from pipeline.stats.drift import DriftResult, ReferenceProfile
from pipeline.stats.evidently_check import measure_with_evidently, usable_columns
from pipeline.stats.evidently_report import CAT_METHOD, NUM_METHOD
from pipeline.stats.profile import merge_all

STAGES = ("load", "validate", "score", "drift", "store")
CHUNKS = 10  # the merged-profile path of section 2 profiles each batch in this many chunks
KINDS = (DriftKind.none, DriftKind.none, DriftKind.covariate, DriftKind.concept, DriftKind.prior)


@dataclass(frozen=True)
class ThroughputConfig:
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    reference_rows: int = 20_000
    passes: dict[int, int] = field(default_factory=lambda: {1_000: 3, 10_000: 2, 100_000: 2})
    baseline_batches: dict[int, int] = field(default_factory=lambda: {1_000: 5, 10_000: 5, 100_000: 5})
    seed: int = 7

    @classmethod
    def quick(cls) -> ThroughputConfig:
        return cls(
            sizes=(500, 2_000),
            reference_rows=3_000,
            passes={500: 1, 2_000: 1},
            baseline_batches={500: 2, 2_000: 1},
        )


@dataclass
class Run:
    times: dict[str, float]
    total: float
    cpu: float
    peak_mib: float
    drift: DriftResult


@dataclass
class SizeResult:
    rows: int
    ours: list[Run] = field(default_factory=list)
    baseline: list[Run] = field(default_factory=list)
    agreement: list[dict[str, Any]] = field(default_factory=list)


class BatchPipeline:
    """The monitor's per-batch steps, with drift measured by the given function."""

    def __init__(self, schema: FeatureSchema, model: Any, store: MetricsStore | None, settings: Settings) -> None:
        self.schema = schema
        self.model = model
        self.store = store
        self.settings = settings
        self.run_key = f"bench-{uuid.uuid4().hex[:12]}"
        self.index = 0
        self.rules = Rules.of(settings.policy)
        self.holdout_auc: float | None = None

    def run(
        self, path: Path, measure: Callable[[pd.DataFrame, np.ndarray], DriftResult]
    ) -> tuple[Run, pd.DataFrame, np.ndarray]:
        watch = Stopwatch()
        self.index += 1
        cpu = time.process_time()
        with PeakMemory() as memory:
            with watch.stage("load"):
                raw = read_table(str(path))
            with watch.stage("validate"):
                batch = validate_frame(raw, self.schema, str(path))
            with watch.stage("score"):
                proba = predict_proba(self.model, batch.frame, self.schema)
                y = labels_of(batch.frame, self.schema) if batch.has_labels else None
            with watch.stage("drift"):
                drift = measure(batch.frame, proba)
            with watch.stage("store"):  # the observation (ROC AUC when labelled), the verdict, the row
                observation = observation_of(drift, proba, y).observation
                self._decide_and_store(batch.source, observation, drift)
        total = sum(watch.times.values())
        cpu = time.process_time() - cpu
        return Run(watch.times, total, cpu, memory.peak_mib, drift), batch.frame, proba

    def _decide_and_store(self, source: str, observation: Observation, drift: DriftResult) -> None:
        """The product's verdict (no retrain: the benchmark times one batch's way to the database)."""
        verdict = policy.judge(self.index, observation, PolicyState(), self.rules, self.holdout_auc)
        if self.store is None:
            return
        events = []
        if verdict.alarm:
            events.append(
                Event(
                    self.run_key,
                    "bench",
                    "alarm",
                    verdict.why,
                    self.index,
                    details={"prediction_drift": drift.prediction_drift},
                )
            )
        self.store.record_batch(
            BatchRow(
                run_key=self.run_key,
                batch_index=self.index,
                model_name="bench",
                champion_version=1,
                source=source,
                n_rows=observation.rows,
                prediction_drift=drift.prediction_drift,
                drift_threshold=self.settings.drift_threshold,
                drifted_columns=drift.drifted_columns,
                share_drifted_columns=drift.share_drifted_columns,
                share_missing=drift.share_missing,
                unseen_categories=drift.unseen_categories,
                drift_detected=verdict.drift_detected,
                roc_auc=observation.roc_auc,
                accuracy=None,
                performance_drop=verdict.performance_drop,
                action=verdict.action_without_retrain().value,
            ),
            events,
        )


class EvidentlyColumns:
    """Evidently's per-column decision: its registered stattest, on columns cleaned as its report does."""

    def __init__(
        self, reference: pd.DataFrame, reference_proba: np.ndarray, schema: FeatureSchema, threshold: float
    ) -> None:
        self.schema = schema
        self.threshold = threshold
        self.reference = {name: _clean(reference[name]) for name in schema.features}
        self.reference_proba = _clean(pd.Series(reference_proba))

    def score(self, name: str, current: pd.Series) -> tuple[float, bool]:
        from evidently.legacy.calculations.stattests.registry import get_stattest
        from evidently.legacy.core import ColumnType

        categorical = name in self.schema.categorical
        kind = ColumnType.Categorical if categorical else ColumnType.Numerical
        reference = self.reference[name] if name != "prediction" else self.reference_proba
        current = _clean(current)
        test = get_stattest(reference, current, kind, CAT_METHOD if categorical else NUM_METHOD)
        result = test(reference, current, kind, self.threshold)
        return float(result.drift_score), bool(result.drifted)


def _clean(column: pd.Series) -> pd.Series:
    return column.replace([-np.inf, np.inf], np.nan).dropna()


def _merged(binned: BinnedReference, frame: pd.DataFrame, proba: np.ndarray) -> tuple[DriftResult, float]:
    """The batch's drift from the merge of its chunks' profiles, and the seconds it took."""
    started = time.perf_counter()
    parts = np.array_split(np.arange(len(frame)), CHUNKS)
    merged = merge_all(binned.profile(frame.iloc[part].reset_index(drop=True), proba[part]) for part in parts)
    result = binned.measure(merged)
    return result, time.perf_counter() - started


def _deviation(merged: float, exact: float) -> tuple[float, float, bool]:
    """Absolute and relative deviation of a merged-profile score from the exact one, and whether it is in bound."""
    if np.isnan(exact) and np.isnan(merged):
        return 0.0, 0.0, True
    absolute = abs(merged - exact)
    relative = absolute / abs(exact) if exact else (0.0 if absolute == 0 else float("inf"))
    return absolute, relative, absolute <= max(0.01 * abs(exact), 1e-3)


def _agreement(
    columns: EvidentlyColumns,
    profile: ReferenceProfile,
    binned: BinnedReference,
    frame: pd.DataFrame,
    proba: np.ndarray,
    ours: DriftResult,
    kind: DriftKind,
) -> dict[str, Any]:
    merged, merged_seconds = _merged(binned, frame, proba)
    equal = merged_equal = pairs = in_bound = 0
    worst = worst_abs = worst_rel = 0.0
    for name in usable_columns(profile, frame):
        score, drifted = columns.score(name, frame[name])
        mine = ours.column_scores[name]
        pairs += 1
        equal += int((mine >= columns.threshold) == drifted)
        merged_equal += int((merged.column_scores[name] >= columns.threshold) == drifted)
        worst = max(worst, abs(mine - score))
        absolute, relative, bounded = _deviation(merged.column_scores[name], mine)
        worst_abs, worst_rel, in_bound = max(worst_abs, absolute), max(worst_rel, relative), in_bound + bounded
    prediction_score, prediction_drifted = columns.score("prediction", pd.Series(proba))
    absolute, relative, bounded = _deviation(merged.prediction_drift, ours.prediction_drift)
    return {
        "kind": kind.value,
        "pairs": pairs,
        "equal": equal,
        "worst": worst,
        "prediction_equal": (ours.prediction_drift >= profile.prediction_threshold) == prediction_drifted,
        "prediction_diff": abs(ours.prediction_drift - prediction_score),
        "merged_equal": merged_equal,
        "merged_prediction_equal": (merged.prediction_drift >= profile.prediction_threshold) == prediction_drifted,
        "merged_abs": max(worst_abs, absolute),
        "merged_rel": max(worst_rel, relative),
        "merged_in_bound": in_bound + bounded,
        "merged_scores": pairs + 1,
        "merged_seconds": merged_seconds,
    }


def run(config: ThroughputConfig, store: MetricsStore | None, say: Say) -> tuple[Section, Section]:
    schema = load_schema()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    rng = np.random.default_rng(config.seed)
    population = Population.fit(load_sample_frame(), schema)
    reference = validate_frame(population.sample_batch(config.reference_rows, rng), schema, "reference").frame
    say(f"training the champion (xgboost, defaults) on {len(reference)} reference rows")
    model = fit(ZOO["xgboost"], {}, reference, schema)
    reference_proba = predict_proba(model, reference, schema)
    watch = Stopwatch()
    with watch.stage("profile"):
        profile = ReferenceProfile(
            reference,
            reference_proba,
            schema,
            prediction_threshold=settings.drift_threshold,
            column_threshold=settings.column_drift_threshold,
        )
    with watch.stage("bins"):
        binned = BinnedReference(profile)
    measure_with_evidently(profile, reference.head(200), reference_proba[:200])  # builds Evidently's reference once
    columns = EvidentlyColumns(reference, reference_proba, schema, settings.column_drift_threshold)
    if store is not None:
        store.create_schema()
    pipeline = BatchPipeline(schema, model, store, settings)
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-batches-") as tmp:
        for rows in config.sizes:
            paths = []
            for i, kind in enumerate(KINDS):
                path = Path(tmp) / f"batch_{rows}_{i}_{kind.value}.parquet"
                population.sample_batch(rows, rng, kind).to_parquet(path, index=False)
                paths.append(path)
            if not results:  # warm-up: first calls pay imports and caches, in both paths
                pipeline.run(paths[0], profile.measure)
                pipeline.run(paths[0], functools.partial(measure_with_evidently, profile))
            result = SizeResult(rows)
            for repeat in range(config.passes.get(rows, 1)):
                for path, kind in zip(paths, KINDS, strict=True):
                    run_, frame, proba = pipeline.run(path, profile.measure)
                    result.ours.append(run_)
                    if repeat == 0:
                        result.agreement.append(_agreement(columns, profile, binned, frame, proba, run_.drift, kind))
            say(f"{rows:>7} rows: ours median {seconds(median([r.total for r in result.ours]))} per batch")
            for path in paths[: config.baseline_batches.get(rows, 1)]:
                run_, _, _ = pipeline.run(path, functools.partial(measure_with_evidently, profile))
                result.baseline.append(run_)
                say(f"{rows:>7} rows: Evidently per batch {seconds(run_.total)}")
            results.append(result)
    return _throughput_section(results, config, watch.times["profile"], store is not None), _agreement_section(
        results, watch.times["bins"]
    )


def _median_stage(runs: list[Run], stage: str) -> float:
    return median([r.times.get(stage, 0.0) for r in runs])


def _throughput_section(
    results: list[SizeResult], config: ThroughputConfig, profile_seconds: float, stored: bool
) -> Section:
    stages = Table(["rows", "path", "runs", *STAGES, "end to end", "CPU time", "peak memory"])
    summary = Table(
        [
            "rows",
            "ours, end to end",
            "Evidently per batch, end to end",
            "speed-up",
            "ours, drift only",
            "Evidently, drift only",
            "drift speed-up",
            "rows/s (ours)",
        ]
    )
    figures: dict[str, Any] = {}
    for result in results:
        for label, runs in (("ours", result.ours), ("Evidently per batch", result.baseline)):
            cells = [seconds(_median_stage(runs, stage)) for stage in STAGES]
            peak = max(r.peak_mib for r in runs)
            stages.rows.append(
                [
                    f"{result.rows:,}",
                    label,
                    str(len(runs)),
                    *cells,
                    seconds(median([r.total for r in runs])),
                    seconds(median([r.cpu for r in runs])),
                    f"{peak:.0f} MiB",
                ]
            )
        ours_total = median([r.total for r in result.ours])
        base_total = median([r.total for r in result.baseline])
        ours_drift = _median_stage(result.ours, "drift")
        base_drift = _median_stage(result.baseline, "drift")
        summary.rows.append(
            [
                f"{result.rows:,}",
                seconds(ours_total),
                seconds(base_total),
                ratio(base_total / ours_total),
                seconds(ours_drift),
                seconds(base_drift),
                ratio(base_drift / ours_drift),
                f"{result.rows / ours_total:,.0f}",
            ]
        )
        figures[result.rows] = {
            "stages": {stage: _median_stage(result.ours, stage) for stage in STAGES},
            "baseline_drift": base_drift,
            "ours_cpu": median([r.cpu for r in result.ours]),
            "ours": ours_total,
            "baseline": base_total,
            "speedup": base_total / ours_total,
            "drift_speedup": base_drift / ours_drift,
        }
    largest = results[-1]
    section = Section(
        "1. Monitor throughput",
        f"""
Batches of {", ".join(f"{r.rows:,}" for r in results)} rows × 81 features (78 numerical, 3 categorical)
and the target, drawn by `pipeline.demo.synth` (two stable batches, one each of covariate, concept and prior
shift), stored as Parquet. The reference is {config.reference_rows:,} rows; the champion is the zoo's
xgboost with default parameters trained on it. Every stage is wall-clock time, median over the runs
(each run is one batch; "runs" counts them). CPU time is the process's CPU seconds over the batch, all
threads together: when other work shares the machine, it is less inflated than wall time. Peak memory is
the highest resident-memory rise over the
process's level before the batch. Drift in "ours" is `ReferenceProfile.measure`; the reference profile
is built once per reference, in {seconds(profile_seconds)}. The baseline is a fresh Evidently `Report`
per batch (prediction `ValueDrift`, `DriftedColumnsCount`, `DatasetMissingValueCount`), the way the
monitor worked before.
""",
        tables=[("Per stage (median):", stages), ("Ours against the Evidently-per-batch baseline:", summary)],
        figures={"by_rows": figures, "largest": largest.rows},
    )
    if not stored:
        section.notes.append("No Postgres in this run (--quick without a stack): the store stage is only the decision.")
    section.notes.append("`score` includes ROC AUC on the labelled batch, as the monitor computes it.")
    return section


def _merged_table(results: list[SizeResult]) -> tuple[Table, dict[str, Any]]:
    """The merged-profile path against Evidently's decisions and against the exact scores."""
    table = Table(
        [
            "rows",
            "(column, batch) pairs",
            "equal decisions (merged profile vs Evidently)",
            "prediction decisions equal",
            "largest deviation from the exact score: absolute",
            "relative",
            "scores within 1% or 1e-3",
            f"profile {CHUNKS} chunks + merge + score (median)",
        ]
    )
    pairs = equal = scores = bounded = 0
    worst_abs = worst_rel = 0.0
    for result in results:
        rows = result.agreement
        size_pairs = sum(a["pairs"] for a in rows)
        size_equal = sum(a["merged_equal"] for a in rows)
        size_abs = max(a["merged_abs"] for a in rows)
        size_rel = max(a["merged_rel"] for a in rows)
        size_scores = sum(a["merged_scores"] for a in rows)
        size_bounded = sum(a["merged_in_bound"] for a in rows)
        pairs, equal, scores, bounded = (
            pairs + size_pairs,
            equal + size_equal,
            scores + size_scores,
            bounded + size_bounded,
        )
        worst_abs, worst_rel = max(worst_abs, size_abs), max(worst_rel, size_rel)
        table.rows.append(
            [
                f"{result.rows:,}",
                f"{size_pairs:,}",
                percent(size_equal / size_pairs, 2),
                f"{sum(bool(a['merged_prediction_equal']) for a in rows)}/{len(rows)}",
                f"{size_abs:.1e}",
                f"{size_rel:.1e}",
                f"{size_bounded}/{size_scores}",
                seconds(median([a["merged_seconds"] for a in rows])),
            ]
        )
    figures = {
        "merged_equal_share": equal / pairs if pairs else float("nan"),
        "merged_abs": worst_abs,
        "merged_rel": worst_rel,
        "merged_in_bound": bounded == scores,
    }
    return table, figures


def _agreement_section(results: list[SizeResult], bins_seconds: float) -> Section:
    table = Table(
        [
            "rows",
            "batches",
            "(column, batch) pairs",
            "equal decisions",
            "largest score difference",
            "prediction decisions equal",
            "drifted-column count equal to the report's",
            "prediction score equal to the report's",
        ]
    )
    total_pairs = total_equal = 0
    for result in results:
        pairs = sum(a["pairs"] for a in result.agreement)
        equal = sum(a["equal"] for a in result.agreement)
        total_pairs += pairs
        total_equal += equal
        worst = max([a["worst"] for a in result.agreement] + [a["prediction_diff"] for a in result.agreement])
        prediction_equal = sum(bool(a["prediction_equal"]) for a in result.agreement)
        count_equal = sum(
            o.drift.drifted_columns == b.drift.drifted_columns
            for o, b in zip(result.ours, result.baseline, strict=False)
        )
        score_equal = sum(
            abs(o.drift.prediction_drift - b.drift.prediction_drift) <= 1e-9 * max(1.0, b.drift.prediction_drift)
            for o, b in zip(result.ours, result.baseline, strict=False)
        )
        compared = min(len(result.ours), len(result.baseline))
        table.rows.append(
            [
                f"{result.rows:,}",
                str(len(result.agreement)),
                f"{pairs:,}",
                percent(equal / pairs, 2),
                f"{worst:.1e}",
                f"{prediction_equal}/{len(result.agreement)}",
                f"{count_equal}/{compared}",
                f"{score_equal}/{compared}",
            ]
        )
    share = total_equal / total_pairs if total_pairs else float("nan")
    merged, merged_figures = _merged_table(results)
    return Section(
        "2. Agreement with Evidently",
        f"""
For the same batches, the drift decision of each usable feature (score >= 0.1) from our fast path against
Evidently's, per (column, batch). Evidently's per-column decision is its own registered stattest
(`wasserstein` for numerical, `jensenshannon` for categorical) applied to the column cleaned as its drift
metrics clean it (infinities and missing values dropped): the code its report runs for each column. The
prediction decision uses the monitor's threshold 0.1. The last two columns compare, batch by batch, our
figures with the baseline's full Evidently report from section 1.

The same batches through the mergeable batch profile (`pipeline.stats.profile`): each batch is cut into {CHUNKS}
chunks, each chunk profiled on the reference's fixed bins, the profiles merged and the merged profile
scored. Its decisions are compared with Evidently's as above, and its scores with the exact scores of
`ReferenceProfile.measure` (the bound: within 1% relative or 1e-3 absolute). The reference's bins are
built once, in {seconds(bins_seconds)}.
""",
        tables=[("Exact fast path:", table), (f"Merged profile of {CHUNKS} chunks:", merged)],
        notes=[
            f"Over all sizes: {total_equal:,} of {total_pairs:,} decisions equal ({percent(share, 3)}).",
            f"Merged profiles over all sizes: {percent(merged_figures['merged_equal_share'], 3)} of decisions equal"
            f" to Evidently's; largest deviation from the exact score {merged_figures['merged_abs']:.1e} absolute,"
            f" {merged_figures['merged_rel']:.1e} relative.",
        ],
        figures={"equal_share": share, "pairs": total_pairs, **merged_figures},
    )
