"""The Spark engine: a batch read by Spark, each partition validated, scored and profiled in the executors.

``chunked_with_spark`` gives the same ``engine.Chunked`` as the local engine's ``engine.chunked_file`` on the same
file: every partition's chunks go through the same ``ChunkWork.run`` (conform, validate, score with the
champion, profile on the reference's fixed bins), each partition sends the driver ONE small row (its merged
profile as ``BatchProfile.to_bytes``, its row count, whether it is labelled, or its error), and the driver merges
the profiles with ``merge_all``. Counts are then equal to the local engine's exactly, sums to rounding, so the
observation, the alarms and the stored rows are the same; only the decide / store / retrain steps that follow
run on the driver, as with the local engine.

What is shipped to the executors, and how. The ``ChunkWork`` (the schema, the champion's ``Scorer``, the
reference's bins and the estimator's calibration) is sent as one Spark broadcast variable: copied once to each
executor and unpickled once per Python worker (workers are reused across tasks), not once per task as a closure
would be, and never loaded from the tracking server by the executors. The broadcast is destroyed when the job
ends. The executors import ``pipeline``: install this package (with its model flavors) on the cluster's nodes,
e.g. by an EMR bootstrap action, as any Python code run in executors needs.

Reading. A CSV is read with every column as text, with the separator of its header line detected as
``pipeline.io.tables`` does. The executors get each partition as Arrow batches (``mapInArrow``, ``chunk_rows`` rows
each), make pyarrow's null spellings (``""``, ``NA``, ``NULL``, ``NaN``...) missing and convert them to pandas
with pyarrow, which is what the local engine's pyarrow reader gives; ``ChunkWork.run`` then types the columns
as for any chunk. A Parquet file is read with its own types, as the local engine reads its row groups.

The sample. The newest ``sample_rows`` validated rows overall are what a retrain's window and a new reference
take from the batch. A single file's partitions are its byte ranges (CSV) or row groups (Parquet) in file order,
so the partition index orders them. The job ships the sample of the last two partitions along with their
profiles; the driver, knowing every partition's row count, asks for an earlier partition's sample only when
those two do not hold enough rows (a second small job over those partitions alone). The driver never holds more
than about twice the sample.

Errors. A ``DataError`` or ``ModelMismatch`` raised in an executor is caught in the partition function
(``pipeline.engine.spark_partition``) and sent back as the partition's row (the rest of the partition is read
unprocessed, so that its Python worker is reused);
the driver raises the one of the earliest partition in file order, with the same one-line message as the local
engine (``batch.csv: column 'age' holds non-numeric value 'forty'``). Spark's own failures (a missing path, an
unreadable file) become a one-line ``DataError`` too, never a Java stack trace.

``s3://`` paths. pyspark's wheel carries Hadoop's client but not ``hadoop-aws`` (the S3A filesystem), and it
cannot be fetched here. So this engine reads local paths and whatever filesystem the cluster is configured for:
on EMR, ``s3://`` is read natively (EMRFS); elsewhere add ``org.apache.hadoop:hadoop-aws`` (the version of
pyspark's Hadoop) to ``spark.jars.packages``. With ``s3_endpoint`` (moto, LocalStack, MinIO) the path is read
as ``s3a://`` against that endpoint, which needs that same jar. Without it, reading an S3 path fails with a
one-line ``DataError`` saying so. The tests use local files.

pyspark is an optional extra (``pip install 'driftloop[spark]'``, and Java 17): nothing here imports it
until a function is called.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.engine.local import Chunked, ChunkSink, ChunkWork, Engine, Newest
from pipeline.engine.local_readers import check_before_reading
from pipeline.engine.spark_partition import SAMPLE_SCHEMA, SUMMARY_SCHEMA, observe_partition, sample_partition, unpack
from pipeline.io.tables import DataError, InputLimits, _suffix, csv_separator, duplicated
from pipeline.model.scoring import ModelMismatch
from pipeline.stats.profile import BatchProfile, merge_all

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame, SparkSession

    from pipeline.io.tables import ObjectStore
    from pipeline.settings import Settings

DEFAULT_CHUNK_ROWS = 50_000  # rows per chunk inside a partition (the Arrow batch size)
TAIL_PARTITIONS = 2  # the partitions whose samples the main job sends: enough unless the sample is large
INSTALL_HINT = "the Spark engine needs pyspark: pip install 'driftloop[spark]' (and Java 17)"

ERRORS: dict[str, type[ValueError]] = {"data": DataError, "model": ModelMismatch}


def spark_session(
    master: str | None = "local[2]",
    app_name: str = "driftloop",
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    shuffle_partitions: int = 8,
) -> SparkSession:
    """A SparkSession for the monitor: quiet logs, UTC, Arrow for pandas, few shuffle partitions (the engine
    shuffles nothing). Locally the executors run this very Python, and the web UI is off."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise RuntimeError(INSTALL_HINT) from err
    builder = SparkSession.builder if master is None else SparkSession.builder.master(master)
    builder = (
        builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(chunk_rows))
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.python.worker.reuse", "true")
    )
    if master is not None and master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.ui.enabled", "false")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@dataclass
class SparkChunked(Chunked):
    """``engine.Chunked``, plus what the executors computed for the sample and how the file was split."""

    sample_proba: np.ndarray = field(default_factory=lambda: np.empty(0))  # P(positive) of each sample row
    partitions: int = 0
    sample_partitions: tuple[int, ...] = ()  # the partitions the sample's rows come from, in file order


def chunked_with_spark(
    spark: SparkSession,
    source: str,
    work: ChunkWork,
    *,
    sample_rows: int,
    s3_endpoint: str | None = None,
) -> SparkChunked:
    """Observe a batch file with Spark: the same result as ``engine.chunked_file`` on the same file."""
    frame = read_batch(spark, source, s3_endpoint)
    nulls = _csv_nulls() if _suffix(source) == ".csv" else ()
    shipped = spark.sparkContext.broadcast(work)
    try:
        partitions = frame.rdd.getNumPartitions()
        tail = frozenset(range(max(0, partitions - TAIL_PARTITIONS), partitions))
        observe = partial(observe_partition, shipped, source, sample_rows, tail, nulls)
        collected = _run(source, lambda: frame.mapInArrow(observe, SUMMARY_SCHEMA).collect())
        summaries = sorted(collected, key=lambda row: row["partition"])
        _raise_first_error(summaries)
        filled = [row for row in summaries if row["rows"]]
        if not filled:
            raise DataError(f"{source}: no rows (header only or empty)")
        samples = {row["partition"]: row["sample"] for row in filled if row["sample"] is not None}
        wanted = _sample_partitions([(row["partition"], row["rows"]) for row in filled], sample_rows)
        missing = [index for index in wanted if index not in samples]
        if missing:
            samples.update(_samples_of(spark, frame, shipped, source, sample_rows, nulls, missing))
    finally:
        shipped.destroy()
    newest, newest_proba = Newest(sample_rows), Newest(sample_rows)
    for index in wanted:
        sample, proba = unpack(samples[index])
        newest.add(sample)
        newest_proba.add(pd.DataFrame({"proba": proba}))
    first = filled[0]
    proba_frame = newest_proba.frame()
    profile = merge_all(BatchProfile.from_bytes(row["profile"]) for row in filled)
    labelled = any(bool(row["labelled"]) for row in filled)
    return SparkChunked(
        source=source,
        profile=profile,
        sample=newest.frame(),
        has_labels=labelled,
        unlabelled_rows=profile.rows - profile.labels.labelled if labelled else 0,
        extra_columns=list(json.loads(first["extra"])),
        chunks=sum(int(row["chunks"]) for row in summaries),
        sample_proba=proba_frame["proba"].to_numpy() if len(proba_frame) else np.empty(0),
        partitions=partitions,
        sample_partitions=tuple(wanted),
    )


# ---------------------------------------------------------------- reading


def read_batch(spark: SparkSession, source: str, s3_endpoint: str | None = None) -> DataFrame:
    """The batch as a Spark DataFrame: a CSV's cells as text (header names stripped), a Parquet file as typed."""
    suffix = _suffix(source)
    path, options = spark_path(source, s3_endpoint)
    if suffix != ".csv":
        return _run(source, lambda: spark.read.options(**options).parquet(path))
    head = _run(source, lambda: _header_line(spark, source, path, options))
    if not head.strip():
        raise DataError(f"{source}: empty file")
    separator = csv_separator(head)
    names = [name.strip() for name in next(csv.reader(io.StringIO(head), delimiter=separator))]
    duplicates = duplicated(names)
    if duplicates:
        raise DataError(f"{source}: duplicated column names: {', '.join(duplicates)}")
    from pyspark.sql.types import StringType, StructField, StructType

    text = StructType([StructField(name, StringType(), True) for name in names])
    reader = (
        spark.read.schema(text)
        .options(**options)
        .option("header", "true")
        .option("enforceSchema", "true")  # the header's names are ours (stripped), its cells are not data
        .option("sep", separator)
        .option("quote", '"')
        .option("escape", '"')  # RFC 4180 doubled quotes, as pyarrow reads them
        .option("mode", "FAILFAST")  # a row of the wrong width fails, as in pyarrow
    )
    return _run(source, lambda: reader.csv(path))


def spark_path(source: str, s3_endpoint: str | None) -> tuple[str, dict[str, str]]:
    """The path Spark reads and the reader options it needs: ``s3://`` as ``s3a://`` against an endpoint."""
    if source.startswith("s3://") and s3_endpoint:
        options = {"fs.s3a.endpoint": s3_endpoint, "fs.s3a.path.style.access": "true"}
        return "s3a://" + source[len("s3://") :], options
    return source, {}


def _header_line(spark: SparkSession, source: str, path: str, options: dict[str, str]) -> str:
    """The first line of the CSV (a local file read directly, anything else through Spark)."""
    if "://" not in path:
        local = Path(path)
        if not local.is_file():
            raise DataError(f"{source}: no such file")
        with local.open("rb") as handle:
            return handle.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n")
    first = spark.read.options(**options).text(path).first()
    return "" if first is None else str(first[0]).lstrip("\ufeff").rstrip("\r\n")


def _csv_nulls() -> tuple[str, ...]:
    """The cells the local engine's pyarrow reader takes as missing."""
    import pyarrow.csv as pacsv

    return tuple(pacsv.ConvertOptions().null_values)


def _run(source: str, action: Callable[[], Any]) -> Any:
    """Run a Spark action; Spark's failures become one-line ``DataError``s naming the source."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        return action()
    except (PySparkException, Py4JJavaError) as err:
        raise _spark_failure(source, err) from err


def _spark_failure(source: str, err: Exception) -> DataError:
    text = " ".join(str(err).split())
    if "PATH_NOT_FOUND" in text or "FileNotFoundException" in text:
        return DataError(f"{source}: no such file")
    if "S3AFileSystem" in text or 'scheme "s3' in text:
        return DataError(
            f"{source}: this Spark cannot read S3 (no S3 filesystem: add org.apache.hadoop:hadoop-aws to "
            "spark.jars.packages, or run on a cluster that reads S3, such as EMR)"
        )
    if "Malformed" in text:
        return DataError(f"{source}: not a readable {_suffix(source)[1:]} file (a row of the wrong width)")
    return DataError(f"{source}: Spark could not read it ({text[:200]})")


# ---------------------------------------------------------------- on the driver


def _raise_first_error(rows: Sequence[Any]) -> None:
    """The error of the earliest partition in file order, as the local engine would have met it first."""
    for row in rows:
        if row["error"] is not None:
            raise ERRORS.get(row["error_kind"], DataError)(row["error"])


def _sample_partitions(counts: Sequence[tuple[int, int]], sample_rows: int) -> list[int]:
    """The partitions (in file order) that hold the newest ``sample_rows`` rows, from each one's row count."""
    wanted: list[int] = []
    held = 0
    for index, rows in sorted(counts, reverse=True):
        if held >= sample_rows and wanted:
            break
        wanted.append(index)
        held += rows
    return sorted(wanted)


def _samples_of(
    spark: SparkSession,
    frame: DataFrame,
    shipped: Broadcast[ChunkWork],
    source: str,
    sample_rows: int,
    nulls: Sequence[str],
    partitions: list[int],
) -> dict[int, bytes]:
    """The samples of some partitions only: a job over those partitions, the rest not even read."""
    sampled = frame.mapInArrow(partial(sample_partition, shipped, source, sample_rows, nulls), SAMPLE_SCHEMA)
    rows = _run(source, lambda: spark.sparkContext.runJob(sampled.rdd, list, partitions))
    rows = sorted(rows, key=lambda row: row["partition"])
    _raise_first_error(rows)
    return {row["partition"]: row["sample"] for row in rows}


def spark_engine(settings: Settings) -> Engine:
    """The Spark engine (``pipeline.engine.spark``; the ``spark`` extra and Java): one session for the run, each
    batch read, scored and profiled by the executors. It writes no prediction log."""
    spark = spark_session(settings.spark_master, chunk_rows=settings.chunk_rows)

    def engine(uri: str, s3: ObjectStore | None, work: ChunkWork, run: Settings, sink: ChunkSink | None) -> Chunked:
        endpoint = run.s3_endpoint_url if uri.startswith("s3://") else None
        # the caps, before Spark reads: a CSV's header line and columns, a Parquet file's metadata
        check_before_reading(uri, s3, InputLimits.of(run.engine))
        return chunked_with_spark(spark, uri, work, sample_rows=run.window_rows, s3_endpoint=endpoint)

    return engine
