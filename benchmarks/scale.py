"""Batches at scale: the Spark engine in ``local[2]`` against the local chunked engine, on the same CSV files.

Both engines run the product's own path on a file of N rows by the demo's 81 features (covariate-shifted,
unlabelled): ``engine.chunked_file`` reads it with pyarrow and runs every chunk through ``ChunkWork.run``;
``spark_engine.chunked_with_spark`` reads it with Spark and runs every partition's chunks through the same
``ChunkWork.run`` in the executors, then merges the partitions' profiles. The champion is the demo's xgboost,
fitted on the reference. The files are written in chunks, so memory stays bounded whatever N.

The cost model. For each engine, wall time = a + b x rows, fitted by least squares over the sizes (two sizes:
the line through both). ``a`` is the fixed cost of a job (planning, shipping the champion and the reference's
bins, the first chunk of each worker); ``b`` the cost of a row. The Spark session's start (a JVM, once per
monitor run) is measured apart, and so is the first job of a session, which starts the Python workers. On a
cluster of C cores, b x 2 / C per row (``local[2]`` has 2 cores) plus a plus the session's start is the
estimate to size it with; the executors' disks and the network are not in it.

``python -m benchmarks.scale`` runs it alone (``--quick``: small sizes, a smoke run).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Say, Section, Table, load_average, seconds
from pipeline.data import labels_of, validate_frame
from pipeline.drift import ReferenceProfile
from pipeline.engine import ChunkWork, chunked_file, numeric_categories
from pipeline.estimate import Estimator
from pipeline.profile import BinnedReference
from pipeline.schema import FeatureSchema, builtin_schema
from pipeline.scoring import Scorer
from pipeline.synth import DriftKind, Population, load_sample_frame
from pipeline.train import ZOO, fit

WRITE_ROWS = 50_000  # rows generated and appended to the file at a time


def tree_cpu_seconds(root: int | None = None) -> float:
    """CPU seconds (user + system) of a process and all its descendants: the JVM and the Python workers of a
    Spark session included, and children already reaped (Linux ``/proc``; NaN elsewhere).

    On a shared machine wall time grows with the other jobs' load; CPU time much less, so it is what a
    cluster's cores are sized from."""
    root = os.getpid() if root is None else root
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    spent: dict[int, float] = {}
    try:
        entries = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return float("nan")
    for name in entries:
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid, parent = int(name), int(fields[1])
        children.setdefault(parent, []).append(pid)
        spent[pid] = sum(int(value) for value in fields[11:15]) / tick  # utime, stime, cutime, cstime
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += spent.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


@dataclass(frozen=True)
class ScaleConfig:
    sizes: tuple[int, ...] = (200_000, 1_000_000)
    reference_rows: int = 20_000
    chunk_rows: int = 50_000  # the local engine's chunks and Spark's Arrow batches alike
    sample_rows: int = 50_000
    master: str = "local[2]"
    seed: int = 11

    @classmethod
    def quick(cls) -> ScaleConfig:
        return cls(sizes=(20_000, 60_000), reference_rows=3_000, chunk_rows=10_000, sample_rows=5_000)


@dataclass
class Timing:
    rows: int
    megabytes: float
    local: float  # seconds, the local engine
    spark: float  # seconds, the Spark engine (a warm session)
    partitions: int
    local_cpu: float = float("nan")  # CPU seconds of this process tree during the local run
    spark_cpu: float = float("nan")  # the same for the Spark run: driver, JVM and Python workers


@dataclass
class CostModel:
    fixed: float  # a: seconds per job
    per_row: float  # b: seconds per row

    @classmethod
    def fit(cls, rows: Sequence[int], times: Sequence[float]) -> CostModel:
        if len(rows) < 2:
            raise ValueError("a cost model needs two sizes at least")
        slope, intercept = np.polyfit(np.asarray(rows, dtype=float), np.asarray(times, dtype=float), 1)
        return cls(float(intercept), float(slope))

    def seconds(self, rows: int) -> float:
        return self.fixed + self.per_row * rows


@dataclass
class ScaleResult:
    timings: list[Timing] = field(default_factory=list)
    session_start: float = float("nan")
    first_job: float = float("nan")  # the session's first job on the smallest file (starts the Python workers)
    load: str = "unknown"


def build_work(population: Population, schema: FeatureSchema, rows: int, seed: int) -> ChunkWork:
    """What the monitor ships to every chunk: the champion, the reference's bins, its calibration."""
    raw = population.sample_batch(rows, np.random.default_rng(seed))
    reference = validate_frame(raw, schema, "reference").frame
    champion = fit(ZOO["xgboost"], {}, reference, schema)
    scorer = Scorer.trained(champion, schema)
    proba = scorer.proba(reference)
    profile = ReferenceProfile(reference, proba, schema, prediction_threshold=0.1, column_threshold=0.1)
    estimator = Estimator.fit(proba, labels_of(reference, schema))
    return ChunkWork(schema, scorer, BinnedReference(profile), estimator, numeric_categories(raw, schema))


def write_batch(population: Population, schema: FeatureSchema, path: Path, rows: int, seed: int) -> float:
    """A covariate-shifted, unlabelled CSV of ``rows`` rows, written ``WRITE_ROWS`` at a time; its size in MB."""
    rng = np.random.default_rng(seed)
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        while written < rows:
            part = population.sample_batch(min(WRITE_ROWS, rows - written), rng, DriftKind.covariate)
            part.drop(columns=[schema.target]).to_csv(handle, index=False, header=written == 0)
            written += len(part)
    return path.stat().st_size / 2**20


def spark_vs_local(
    rows: int,
    *,
    work: ChunkWork,
    spark: Any,
    population: Population,
    folder: Path,
    config: ScaleConfig,
    say: Say = print,
) -> Timing:
    """Time both engines on one file of ``rows`` rows (written, timed, removed)."""
    from pipeline.spark_engine import chunked_with_spark

    path = folder / f"batch-{rows}.csv"
    megabytes = write_batch(population, work.schema, path, rows, config.seed + rows)
    try:
        start, cpu = time.perf_counter(), tree_cpu_seconds()
        local = chunked_file(str(path), None, work, chunk_rows=config.chunk_rows, sample_rows=config.sample_rows)
        local_s, local_cpu = time.perf_counter() - start, tree_cpu_seconds() - cpu
        start, cpu = time.perf_counter(), tree_cpu_seconds()
        other = chunked_with_spark(spark, str(path), work, sample_rows=config.sample_rows)
        spark_s, spark_cpu = time.perf_counter() - start, tree_cpu_seconds() - cpu
    finally:
        path.unlink(missing_ok=True)
    if other.rows != local.rows or other.rows != rows:
        raise RuntimeError(f"the engines disagree on the rows: {local.rows} local, {other.rows} Spark, {rows} written")
    say(
        f"  {rows:,} rows ({megabytes:.0f} MB): local {local_s:.1f} s ({local_cpu:.1f} s CPU), "
        f"Spark {spark_s:.1f} s ({spark_cpu:.1f} s CPU)"
    )
    return Timing(rows, megabytes, local_s, spark_s, other.partitions, local_cpu, spark_cpu)


def measure(config: ScaleConfig, say: Say = print) -> ScaleResult:
    from pipeline.spark_engine import chunked_with_spark, spark_session

    schema = builtin_schema()
    population = Population.fit(load_sample_frame(), schema)
    work = build_work(population, schema, config.reference_rows, config.seed)
    result = ScaleResult()
    start = time.perf_counter()
    spark = spark_session(config.master, "benchmark-scale", chunk_rows=config.chunk_rows)
    result.session_start = time.perf_counter() - start
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as name:
            folder = Path(name)
            warm = folder / "warm.csv"
            write_batch(population, schema, warm, config.chunk_rows, config.seed)
            start = time.perf_counter()
            chunked_with_spark(spark, str(warm), work, sample_rows=config.sample_rows)
            result.first_job = time.perf_counter() - start
            for rows in config.sizes:
                result.timings.append(
                    spark_vs_local(
                        rows, work=work, spark=spark, population=population, folder=folder, config=config, say=say
                    )
                )
    finally:
        spark.stop()
    result.load = load_average()
    return result


def section(result: ScaleResult, config: ScaleConfig) -> Section:
    timings = result.timings
    rows = [timing.rows for timing in timings]
    models = {
        ("local engine", "wall"): CostModel.fit(rows, [timing.local for timing in timings]),
        (f"Spark {config.master}", "wall"): CostModel.fit(rows, [timing.spark for timing in timings]),
        ("local engine", "CPU"): CostModel.fit(rows, [timing.local_cpu for timing in timings]),
        (f"Spark {config.master}", "CPU"): CostModel.fit(rows, [timing.spark_cpu for timing in timings]),
    }
    table = Table(["rows", "CSV", "partitions", "local engine", "Spark local[2]", "Spark / local", "CPU local / Spark"])
    for timing in timings:
        table.rows.append(
            [
                f"{timing.rows:,}",
                f"{timing.megabytes:.0f} MB",
                str(timing.partitions),
                seconds(timing.local),
                seconds(timing.spark),
                f"{timing.spark / timing.local:.2f}",
                f"{seconds(timing.local_cpu)} / {seconds(timing.spark_cpu)}",
            ]
        )
    model = Table(["engine", "time", "fixed cost a (per job)", "b (per row)", "rows/s (1/b)", "10M rows: a + b x 10M"])
    for (name, kind), cost in models.items():
        model.rows.append(
            [
                name,
                kind,
                seconds(cost.fixed),
                f"{cost.per_row * 1e6:.1f} µs",
                f"{1 / cost.per_row:,.0f}" if cost.per_row > 0 else "n/a",
                seconds(cost.seconds(10_000_000)),
            ]
        )
    return Section(
        "6. Batches at scale: Spark against the local engine",
        __doc__ or "",
        [("Time on the same file (unlabelled, xgboost champion):", table), ("Cost model, a + b x rows:", model)],
        notes=[
            f"Spark session start (a JVM, once per monitor run): {seconds(result.session_start)}; "
            f"the session's first job, which starts the Python workers: {seconds(result.first_job)}.",
            f"Load average while it ran (1, 5, 15 min): {result.load}.",
        ],
        figures={"models": models, "timings": timings},
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run.")
    parser.add_argument("--sizes", default="", help="Comma-separated row counts, e.g. 200000,1000000.")
    args = parser.parse_args(argv)
    config = ScaleConfig.quick() if args.quick else ScaleConfig()
    if args.sizes:
        config = ScaleConfig(
            sizes=tuple(int(size) for size in args.sizes.split(",")),
            reference_rows=config.reference_rows,
            chunk_rows=config.chunk_rows,
            sample_rows=config.sample_rows,
        )
    print(section(measure(config), config).markdown())


if __name__ == "__main__":
    main()
