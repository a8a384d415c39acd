"""Section 7: batches of any size, through the CLI as a user runs it.

A demo champion is trained with ``pipeline train``; a CSV batch of N rows × the demo's 81 features is written
(in chunks, so the benchmark itself stays small); then ``pipeline monitor --current big.csv`` runs as its own
process, in a wrapper process that reports the monitor's peak resident memory (``getrusage`` of its child) and
its wall time from start to exit. The baseline is what monitoring cannot avoid: reading the file (pyarrow's
streaming CSV reader, its own type inference) and the champion's own ``predict_proba`` on every row, chunk by
chunk, timed in this process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.common import BenchStack, Say, Section, Table, seconds


@dataclass(frozen=True)
class BigBatchConfig:
    sizes: tuple[int, ...] = (100_000, 1_000_000, 10_000_000)
    chunk_rows: int = 100_000  # the monitor's PIPELINE_CHUNK_ROWS
    memory_target_gib: float = 1.5
    time_target: float = 1.25  # x (read + predict)
    spark: bool = True  # also run every size with `--engine spark` (needs the spark extra and Java)
    spark_master: str = "local[2]"

    @classmethod
    def quick(cls) -> BigBatchConfig:
        return cls(sizes=(20_000, 200_000))


@dataclass
class Watched:
    """One ``pipeline monitor`` process, as ``benchmarks.watch`` saw it."""

    seconds: float
    maxrss_gib: float  # the monitor process's own peak
    tree_rss_gib: float  # the peak summed over its process tree (a Spark engine's JVM and workers)
    tree_cpu: float  # CPU seconds of the tree
    output: str


@dataclass
class Measured:
    rows: int
    size_mb: float
    seconds: float
    maxrss_gib: float
    chunks: int
    read_seconds: float
    predict_seconds: float
    cpu: float = float("nan")
    spark: Watched | None = None

    @property
    def baseline(self) -> float:
        return self.read_seconds + self.predict_seconds


@dataclass
class CostModel:
    """Time = fixed + per_row x rows, by least squares over the sizes measured."""

    fixed: float  # seconds per monitor run: start-up, the champion, a Spark session and its workers
    per_row: float  # seconds per row

    @classmethod
    def fit(cls, rows: Sequence[int], times: Sequence[float]) -> CostModel:
        if len(rows) < 2:
            raise ValueError("a cost model needs two sizes at least")
        slope, intercept = np.polyfit(np.asarray(rows, dtype=float), np.asarray(times, dtype=float), 1)
        return cls(float(intercept), float(slope))

    def seconds(self, rows: int) -> float:
        return self.fixed + self.per_row * rows


def _env(stack: BenchStack, chunk_rows: int, max_rows: int) -> dict[str, str]:
    assert stack.tracking_uri and stack.s3_endpoint
    return {
        **os.environ,
        "PIPELINE_TRACKING_URI": stack.tracking_uri,
        "PIPELINE_S3_ENDPOINT_URL": stack.s3_endpoint,
        "PIPELINE_ARTIFACT_BUCKET": "bench-artifacts",
        "PIPELINE_METRICS_DB_URL": stack.metrics_dsn,
        "PIPELINE_MODEL_NAME": "bench-big-batches",
        "PIPELINE_EXPERIMENT_NAME": "bench-big-batches",
        "PIPELINE_CHUNK_ROWS": str(chunk_rows),
        # what a user with batches this big sets: the default cap (5,000,000 rows) guards an hourly inbox
        "PIPELINE_MAX_ROWS": str(max_rows),
        "PIPELINE_REFRESH_FRACTION": "0",  # the cost of monitoring a batch, not of a refresh retrain (section 3)
        "PIPELINE_TUNING_TRIALS": "2",
        "PIPELINE_SPARK_MASTER": "local[2]",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",  # pragma: allowlist secret (moto's fake key)
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def _pipeline(*args: str, env: dict[str, str]) -> str:
    exe = str(Path(sys.executable).with_name("pipeline"))
    done = subprocess.run([exe, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pipeline {' '.join(args)} exited {done.returncode}: {done.stdout[-2000:]}")
    return done.stdout


def write_big_csv(path: Path, rows: int, seed: int = 5, part: int = 100_000, distinct: int = 1_000_000) -> None:
    """``rows`` demo visits (no drift, labelled) as one CSV file, written ``part`` rows at a time: the first
    ``distinct`` rows drawn from the demo population, the rest repeating them (drawing 10,000,000 visits would
    take longer than monitoring them; the monitor's cost does not depend on the rows being distinct)."""
    from pipeline.demo.synth import Population, load_sample_frame
    from pipeline.domain.schema import builtin_schema

    schema = builtin_schema()
    population = Population.fit(load_sample_frame(), schema)
    rng = np.random.default_rng(seed)
    parts: list[str] = []
    with path.open("w", encoding="utf-8") as handle:
        written = 0
        while written < rows:
            n = min(part, rows - written)
            if written < distinct:
                text = population.sample_batch(n, rng).to_csv(index=False, header=False)
                parts.append(text)
            else:
                text = parts[(written // part) % len(parts)]
                if n < part:
                    text = "".join(text.splitlines(keepends=True)[:n])
            if written == 0:
                handle.write(",".join(_quoted(name) for name in population.sample_batch(1, rng).columns) + "\n")
            handle.write(text)
            written += n


def _quoted(name: str) -> str:
    return f'"{name}"' if "," in name else name


def _baseline(path: Path, chunk_rows: int, env: dict[str, str]) -> tuple[float, float]:
    """Seconds to read the file with pyarrow's streaming reader, and for the champion's predict_proba on it."""
    import mlflow
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from pipeline.domain.schema import builtin_schema
    from pipeline.engine.local_readers import CSV_BLOCK_BYTES

    mlflow.set_tracking_uri(env["PIPELINE_TRACKING_URI"])
    model = mlflow.sklearn.load_model(f"models:/{env['PIPELINE_MODEL_NAME']}@champion")
    features = list(builtin_schema().features)
    read = predict = 0.0
    started = time.perf_counter()
    reader = pacsv.open_csv(str(path), read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES))
    pending: list[pa.RecordBatch] = []
    rows = 0
    done = False
    while not done:
        try:
            batch = reader.read_next_batch()
            pending.append(batch)
            rows += batch.num_rows
        except StopIteration:
            done = True
        if not pending or (rows < chunk_rows and not done):
            continue
        frame = pa.Table.from_batches(pending).to_pandas()  # chunks of chunk_rows rows, as the monitor's
        pending, rows = [], 0
        read += time.perf_counter() - started
        started = time.perf_counter()
        model.predict_proba(frame[features])
        predict += time.perf_counter() - started
        started = time.perf_counter()
    return read, predict


def watch(command: list[str], env: dict[str, str], what: str) -> Watched:
    """Run one command under ``benchmarks.watch`` (its own process, so the command is its only child)."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.watch", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    figures = re.search(r"WATCH seconds=([\d.]+) maxrss_kb=(\d+) tree_rss_kb=(\d+) tree_cpu=([\d.]+) code=(-?\d+)", out)
    if figures is None or figures.group(5) != "0":
        raise RuntimeError(f"{what} failed: {out[-2000:]}")
    return Watched(
        seconds=float(figures.group(1)),
        maxrss_gib=int(figures.group(2)) / 1024 / 1024,
        tree_rss_gib=int(figures.group(3)) / 1024 / 1024,
        tree_cpu=float(figures.group(4)),
        output=out,
    )


def measure(
    path: Path, reference: Path, rows: int, config: BigBatchConfig, env: dict[str, str], say: Say = print
) -> Measured:
    exe = str(Path(sys.executable).with_name("pipeline"))
    command = [exe, "monitor", "--reference", str(reference), "--current", str(path), "--threshold", "10"]
    local = watch([*command, "--run-id", f"big-{rows}-{time.time_ns()}"], env, f"monitor of {rows:,} rows")
    say(f"    local engine: {seconds(local.seconds)}, peak {local.maxrss_gib:.2f} GiB")
    spark = None
    if config.spark:
        spark_env = {**env, "PIPELINE_SPARK_MASTER": config.spark_master}
        spark = watch(
            [*command, "--engine", "spark", "--run-id", f"big-spark-{rows}-{time.time_ns()}"],
            spark_env,
            f"monitor --engine spark of {rows:,} rows",
        )
        say(f"    Spark engine ({config.spark_master}): {seconds(spark.seconds)}")
    chunks = re.search(r"read in (\d+) chunks", local.output)
    read, predict = _baseline(path, config.chunk_rows, env)
    return Measured(
        rows=rows,
        size_mb=path.stat().st_size / 1024 / 1024,
        seconds=local.seconds,
        maxrss_gib=local.maxrss_gib,
        chunks=int(chunks.group(1)) if chunks else 1,
        read_seconds=read,
        predict_seconds=predict,
        cpu=local.tree_cpu,
        spark=spark,
    )


def spark_available() -> str | None:
    """Why the Spark engine cannot run here, or None."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (the `spark` extra)"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "no Java runtime (JAVA_HOME or java on the PATH)"
    return None


def run(config: BigBatchConfig, stack: BenchStack, say: Say) -> Section:
    env = _env(stack, config.chunk_rows, max(config.sizes))
    missing = spark_available() if config.spark else None
    if missing:
        say(f"  the Spark engine is left out: {missing}")
        config = replace(config, spark=False)
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="bench-big-") as tmp:
        folder = Path(tmp)
        _pipeline("data", "synth", "--out", str(folder / "demo"), "--rows", "20000", "--batches", "1", env=env)
        reference = folder / "demo" / "reference.csv"
        say("  training the demo champion")
        _pipeline("train", "--data", str(reference), "--if-no-champion", env=env)
        for rows in config.sizes:
            path = folder / f"batch_{rows}.csv"
            say(f"  writing a {rows:,}-row batch")
            write_big_csv(path, rows)
            say(f"  monitoring it through the CLI ({path.stat().st_size / 1024 / 1024:,.0f} MB)")
            results.append(measure(path, reference, rows, config, env, say))
            path.unlink()
    table = Table(
        [
            "rows",
            "file",
            "chunks",
            "monitor run (process start to exit)",
            "peak resident memory",
            "read (pyarrow)",
            "champion's predict",
            "run / (read + predict)",
        ],
        [
            [
                f"{m.rows:,}",
                f"{m.size_mb:,.0f} MB",
                str(m.chunks),
                seconds(m.seconds),
                f"{m.maxrss_gib:.2f} GiB",
                seconds(m.read_seconds),
                seconds(m.predict_seconds),
                f"{m.seconds / m.baseline:.2f}×",
            ]
            for m in results
        ],
    )
    largest = results[-1]
    body = (
        "Each batch is one CSV file of demo visits (81 features, labelled), monitored by `pipeline monitor "
        "--reference reference.csv --current batch.csv` as its own process with the demo champion (logreg or "
        f"xgboost, as `pipeline train` chose); files over `PIPELINE_CHUNK_MB` (64) are read in chunks of "
        f"{config.chunk_rows:,} rows (`PIPELINE_CHUNK_ROWS`). Peak memory is the monitor process's maximum "
        "resident set (getrusage of the child), time is its whole run, process start to exit, including "
        "imports, loading the champion and the reference, reading, scoring, profiling, storing. The baseline is the "
        "file read by pyarrow's streaming CSV reader plus the champion's `predict_proba` on every chunk, in the "
        "benchmark's process. Rows beyond the first 1,000,000 repeat them (see `write_big_csv`)."
    )
    tables: list[tuple[str, Table]] = [("The local engine (the default):", table)]
    notes: list[str] = []
    figures: dict[str, object] = {
        "rows": largest.rows,
        "maxrss_gib": largest.maxrss_gib,
        "ratio": largest.seconds / largest.baseline,
        "memory_target": config.memory_target_gib,
        "time_target": config.time_target,
        "all": results,
    }
    spark_runs = [m for m in results if m.spark is not None]
    if len(spark_runs) >= 2:
        tables += spark_tables(spark_runs, config)
        notes.append(
            "The Spark engine runs the same command with `--engine spark`"
            f" (`PIPELINE_SPARK_MASTER={config.spark_master}`, Spark's default 128 MB input splits): one Spark"
            " session per monitor run, the batch read by Spark, every"
            " partition scored and profiled in the Python workers, the profiles merged on the driver. Its memory is"
            " the sum over the monitor, the JVM and the workers, sampled every 0.25 s; CPU is that tree's too."
        )
        figures["models"] = cost_models(spark_runs)
    elif config.spark:
        notes.append("The Spark engine needs two sizes for its cost model; this run measured fewer.")
    else:
        notes.append(f"The Spark engine was not measured in this run: {missing or 'turned off'}.")
    return Section("7. Batches of any size", body, tables, notes=notes, figures=figures)


def cost_models(runs: list[Measured]) -> dict[tuple[str, str], CostModel]:
    rows = [m.rows for m in runs]
    spark = [m.spark for m in runs if m.spark is not None]
    return {
        ("local engine", "wall"): CostModel.fit(rows, [m.seconds for m in runs]),
        ("local engine", "CPU"): CostModel.fit(rows, [m.cpu for m in runs]),
        ("Spark engine", "wall"): CostModel.fit(rows, [w.seconds for w in spark]),
        ("Spark engine", "CPU"): CostModel.fit(rows, [w.tree_cpu for w in spark]),
    }


def spark_tables(runs: list[Measured], config: BigBatchConfig) -> list[tuple[str, Table]]:
    versus = Table(
        [
            "rows",
            "local engine",
            f"Spark {config.spark_master}",
            "Spark / local",
            "CPU, local / Spark",
            "peak memory, local / Spark (all processes)",
        ]
    )
    for m in runs:
        assert m.spark is not None
        versus.rows.append(
            [
                f"{m.rows:,}",
                seconds(m.seconds),
                seconds(m.spark.seconds),
                f"{m.spark.seconds / m.seconds:.2f}",
                f"{seconds(m.cpu)} / {seconds(m.spark.tree_cpu)}",
                f"{m.maxrss_gib:.2f} / {m.spark.tree_rss_gib:.2f} GiB",
            ]
        )
    model = Table(["engine", "time", "fixed cost a (per monitor run)", "b (per row)", "rows per second (1/b)"])
    for (engine, kind), cost in cost_models(runs).items():
        model.rows.append(
            [
                engine,
                kind,
                seconds(cost.fixed),
                f"{cost.per_row * 1e6:.2f} µs",
                f"{1 / cost.per_row:,.0f}" if cost.per_row > 0 else "n/a",
            ]
        )
    return [
        ("The Spark engine against the local engine, through the CLI on the same files:", versus),
        ("Cost model, time = a + b × rows (least squares over the sizes above):", model),
    ]
