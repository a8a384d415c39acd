"""Batches of any size: read in chunks, each chunk validated, scored and profiled, the profiles merged.

A batch file larger than ``PIPELINE_CHUNK_MB`` is never held whole. The local engine reads it with pyarrow's
streaming readers (CSV blocks, Parquet row groups; an ``s3://`` object is first streamed to a temporary file),
``PIPELINE_CHUNK_ROWS`` rows at a time; the Spark engine (``pipeline.engine.spark``) does the same per partition.
Both run ``ChunkWork.run`` on every chunk, so they agree:

1. conform: CSV text is read as text, then a categorical column the reference holds as numbers gets its
   numeric text as numbers (what pandas' reader does to a whole file), so a chunk's categories are the
   reference's; numerical columns are converted by ``validate_frame`` as always;
2. validate (``validate_frame``), score (the champion's P(positive)), and profile against the reference's fixed
   bins (``pipeline.stats.profile``), with the calibrated probabilities the performance estimate needs;
3. keep the newest ``sample_rows`` validated rows: the sample a retrain's window and a new reference take from
   the batch (a huge batch cannot blow up a retrain).

The merged profile gives the observation the policy judges (``observation_of_profile``): drift scores within
the bound proved in ``pipeline.stats.profile``, ROC AUC within ``LabelQuality.roc_auc_bound``, accuracy exact, the
estimate from binned scores. A batch that fits one chunk takes the exact in-memory path instead.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema
from pipeline.domain.values import finite
from pipeline.engine.observe import BatchObservation, assemble
from pipeline.io.data import Batch, labels_of, validate_frame
from pipeline.io.tables import DataError, ObjectStore, s3_errors, split_s3
from pipeline.model.scoring import Scorer
from pipeline.settings import Settings
from pipeline.stats.estimate import Estimator
from pipeline.stats.profile import BatchProfile, BinnedReference

if TYPE_CHECKING:
    from pipeline.stats.noise import NoiseBand

ChunkSink = Callable[[Batch, np.ndarray], None]  # gets each chunk once scored (the prediction log's writer)
# How a batch file is observed in chunks: (uri, S3 client, the chunks' work, settings, sink) -> the merged result.
Engine = Callable[[str, "ObjectStore | None", "ChunkWork", Settings, "ChunkSink | None"], "Chunked"]


def numeric_categories(reference: pd.DataFrame, schema: FeatureSchema) -> frozenset[str]:
    """The categorical columns the reference holds as numbers (int-coded categories)."""
    return frozenset(
        name
        for name in schema.categorical
        if name in reference.columns and pd.api.types.is_numeric_dtype(reference[name])
    )


def conform(raw: pd.DataFrame, schema: FeatureSchema, numeric: frozenset[str]) -> pd.DataFrame:
    """A chunk read as text, with the categories the reference holds as numbers parsed as numbers where they
    parse (a stray text value stays text, as in a whole file pandas would read as text)."""
    names = [name for name in schema.categorical if name in numeric and name in raw.columns]
    names = [name for name in names if raw[name].dtype == object]
    if not names:
        return raw
    out = raw.copy()
    for name in names:
        text = raw[name]
        parsed = pd.to_numeric(text, errors="coerce")
        every = bool((parsed.notna() == text.notna()).all())
        out[name] = parsed if every else parsed.astype(object).where(parsed.notna(), text)
    return out


@dataclass(frozen=True)
class ChunkWork:
    """What every chunk goes through, the same in every engine (shipped once to Spark's executors)."""

    schema: FeatureSchema
    scorer: Scorer
    binned: BinnedReference
    estimator: Estimator | None
    numeric_categories: frozenset[str]

    def run(self, raw: pd.DataFrame, source: str) -> tuple[Batch, np.ndarray, BatchProfile]:
        """Validate, score and profile one chunk; errors are the same one-line ``DataError`` as a whole file's."""
        batch = validate_frame(conform(raw, self.schema, self.numeric_categories), self.schema, source)
        proba = self.scorer.proba(batch.frame)
        labels = labels_of(batch.frame, self.schema) if batch.has_labels else None
        calibrated = None if self.estimator is None else self.estimator.calibrated(proba)
        return batch, proba, self.binned.profile(batch.frame, proba, labels, calibrated)


@dataclass
class Chunked:
    """A batch observed chunk by chunk: the merged profile and what was kept of its rows."""

    source: str
    profile: BatchProfile
    sample: pd.DataFrame  # the newest validated rows, at most the sample size
    has_labels: bool
    extra_columns: list[str] = field(default_factory=list)
    chunks: int = 0

    @property
    def rows(self) -> int:
        return self.profile.rows

    def columns_with_values(self, schema: FeatureSchema) -> set[str]:
        """The feature columns with at least one value in the batch."""
        numerical = {
            name
            for name, counts in zip(schema.numerical, self.profile.numerical, strict=True)
            if counts.missing < self.rows
        }
        return numerical | {
            name
            for name, counts in zip(schema.categorical, self.profile.categorical, strict=True)
            if counts.missing < self.rows
        }

    def as_batch(self) -> Batch:
        """The batch as the monitor keeps it: the sample's rows, the whole batch's row count."""
        return Batch(
            source=self.source,
            frame=self.sample,
            has_labels=self.has_labels,
            extra_columns=self.extra_columns,
            total_rows=self.rows,
        )


class Newest:
    """The newest ``limit`` rows of a stream of frames."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[pd.DataFrame] = []
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        self.parts.append(frame.iloc[max(0, len(frame) - self.limit) :])
        self.rows += len(self.parts[-1])
        while self.parts and self.rows - len(self.parts[0]) >= self.limit:
            self.rows -= len(self.parts.pop(0))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame()
        joined = pd.concat(self.parts, ignore_index=True)
        return joined.iloc[max(0, len(joined) - self.limit) :].reset_index(drop=True)


def observe_chunks(
    chunks: Iterator[pd.DataFrame],
    source: str,
    work: ChunkWork,
    sample_rows: int,
    on_chunk: ChunkSink | None = None,
) -> Chunked:
    """Run every chunk through ``work`` and merge; ``on_chunk`` gets each validated chunk and its P(positive)
    (the prediction log). Labels must be in every chunk or in none."""
    merged: BatchProfile | None = None
    newest = Newest(sample_rows)
    labelled: bool | None = None
    extra: list[str] = []
    count = 0
    for raw in chunks:
        batch, proba, profile = work.run(raw, source)
        del raw
        if labelled is None:
            labelled, extra = batch.has_labels, batch.extra_columns
        merged = profile if merged is None else merged.merge(profile)  # one profile held, however many chunks
        newest.add(batch.frame)
        if on_chunk is not None:
            on_chunk(batch, proba)
        count += 1
    if merged is None:
        raise DataError(f"{source}: no rows (header only or empty)")
    return Chunked(source, merged, newest.frame(), bool(labelled), extra, count)


def observation_of_profile(
    binned: BinnedReference,
    chunked: Chunked,
    band: NoiseBand | None = None,
    false_rate: float = 0.01,
    estimator: Estimator | None = None,
) -> BatchObservation:
    """What the policy judges, from a merged profile: the fields of ``observe.observation_of`` (the drift scores
    judged against ``band``, the reference's noise at the batch's size, when one is given). The estimate's
    interval counts the calibration's own spread when given the ``estimator`` the chunks were calibrated with."""
    profile = chunked.profile
    roc_auc = accuracy = None
    positives: int | None = None
    if chunked.has_labels:
        quality = binned.quality(profile)
        roc_auc, accuracy, positives = finite(quality.roc_auc), quality.accuracy, quality.positives
    estimate = profile.expected.estimated(estimator) if int(profile.expected.rows.sum()) else None
    return assemble(
        binned.measure(profile).judged(band, false_rate),
        rows=profile.rows,
        mean_prediction=profile.mean_prediction,
        prediction_variance=profile.proba_spread,
        positives=positives,
        roc_auc=roc_auc,
        accuracy=accuracy,
        estimate=estimate,
        profile=profile,
    )


# ---------------------------------------------------------------- the local engine's readers


def object_size(source: str, s3_client: ObjectStore | None) -> int:
    """The size of a batch file in bytes (a local stat, or the S3 object's length)."""
    if source.startswith("s3://"):
        if s3_client is None:
            raise DataError(f"{source}: no S3 client configured")
        bucket, key = split_s3(source)
        with s3_errors(source, bucket):
            return int(s3_client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{source}: no such file")
    return path.stat().st_size


def csv_header(path: Path) -> tuple[list[str], str]:
    """A CSV file's column names and separator, from its first line (a byte-order mark skipped)."""
    import csv

    from pipeline.io.tables import csv_separator

    with path.open("rb") as handle:
        head = handle.readline().decode("utf-8-sig", errors="replace")
    separator = csv_separator(head)
    names = next(csv.reader([head.rstrip("\r\n")], delimiter=separator), [])
    return [name.strip() for name in names], separator


def read_chunks(path: Path, source: str, chunk_rows: int, schema: FeatureSchema) -> Iterator[pd.DataFrame]:
    """The schema's columns of a local CSV or Parquet file, ``chunk_rows`` rows at a time. CSV numerical
    columns are parsed as numbers by pyarrow (a cell that is not one is the one-line ``DataError`` a whole
    file gives), the other columns as text; columns the schema does not name are not read."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    wanted = [*schema.features, schema.target, *([schema.id] if schema.id else [])]
    try:
        if suffix == ".parquet":
            parquet = pq.ParquetFile(path)
            columns = [name for name in wanted if name in parquet.schema_arrow.names]
            for record_batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
                yield record_batch.to_pandas()
            return
        names, separator = csv_header(path)
        numerical = set(schema.numerical)
        reader = pacsv.open_csv(
            str(path),
            read_options=pacsv.ReadOptions(block_size=min(CSV_BLOCK_BYTES, _block_bytes(path, chunk_rows))),
            parse_options=pacsv.ParseOptions(delimiter=separator),
            convert_options=pacsv.ConvertOptions(
                include_columns=[name for name in wanted if name in names],
                column_types={name: pa.float64() if name in numerical else pa.string() for name in names},
                strings_can_be_null=True,
            ),
        )
        pending: list[pa.RecordBatch] = []
        rows = 0
        for record_batch in reader:  # small blocks, gathered into chunks of about chunk_rows rows
            pending.append(record_batch)
            rows += record_batch.num_rows
            if rows >= chunk_rows:
                yield pa.Table.from_batches(pending).to_pandas()
                pending, rows = [], 0
        if pending:
            yield pa.Table.from_batches(pending).to_pandas()
    except pa.ArrowInvalid as err:
        raise DataError(_arrow_message(source, str(err), names if suffix != ".parquet" else [])) from err
    except OSError as err:
        raise DataError(f"{source}: not a readable {suffix[1:]} file ({' '.join(str(err).split())[:160]})") from err


def _arrow_message(source: str, message: str, names: list[str]) -> str:
    """pyarrow's conversion error as the whole-file reader says it: the column by name and the value."""
    import re

    found = re.search(r"column #(\d+): CSV conversion error to \w+: invalid value '(.*)'", message)
    if found and int(found.group(1)) < len(names):
        return f"{source}: column {names[int(found.group(1))]!r} holds non-numeric value {found.group(2)!r}"
    return f"{source}: not a readable file ({' '.join(message.split())[:160]})"


# pyarrow's streaming CSV reader holds more memory the bigger its blocks (with 26 MB blocks it grew with the
# file: 0.5 GB at 1,000,000 demo rows, 1 GB at 3,000,000); with 1 MB blocks it stays at about 40 MB.
CSV_BLOCK_BYTES = 1 << 20


def _block_bytes(path: Path, chunk_rows: int) -> int:
    """The CSV block size that holds about ``chunk_rows`` rows (from the first rows' length)."""
    with path.open("rb") as handle:
        handle.readline()
        sample = handle.read(1 << 20)
    lines = max(sample.count(b"\n"), 1)
    per_row = max(len(sample) / lines, 1.0)
    return int(min(max(per_row * chunk_rows, 1 << 14), 1 << 30))


def local_copy(source: str, s3_client: ObjectStore | None, folder: str) -> Path:
    """A local path for the batch: itself, or the S3 object streamed to ``folder`` (never held in memory)."""
    if not source.startswith("s3://"):
        return Path(source)
    if s3_client is None:
        raise DataError(f"{source}: no S3 client configured")
    bucket, key = split_s3(source)
    target = Path(folder) / Path(key).name
    with s3_errors(source, bucket):
        s3_client.download_file(bucket, key, str(target))
    return target


def read_ahead(chunks: Iterator[pd.DataFrame], depth: int = 1) -> Generator[pd.DataFrame, None, None]:
    """The same chunks, each next one read by a background thread while the caller scores and profiles this
    one: pyarrow's parsing runs without the GIL, on the core the profile's single thread leaves idle. At most
    ``depth`` chunks wait. A reader's error reaches the caller at the chunk where it happened; closing this
    iterator stops and joins the thread."""
    import queue
    import threading

    slots: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not offer(("chunk", chunk)):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consuming thread, which raises it
            offer(("error", err))
            return
        offer(("done", None))

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            if kind == "done":
                return
            assert isinstance(value, pd.DataFrame)
            yield value
    finally:
        stop.set()
        thread.join()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def chunked_file(
    source: str,
    s3_client: ObjectStore | None,
    work: ChunkWork,
    *,
    chunk_rows: int,
    sample_rows: int,
    on_chunk: ChunkSink | None = None,
) -> Chunked:
    """Observe a batch file chunk by chunk with the local engine."""
    with tempfile.TemporaryDirectory(prefix="batch-") as folder:
        path = local_copy(source, s3_client, folder)
        with closing(read_ahead(read_chunks(path, source, chunk_rows, work.schema))) as chunks:
            chunked = observe_chunks(chunks, source, work, sample_rows, on_chunk)
        if path.suffix.lower() == ".csv":
            known = {*work.schema.features, work.schema.target, *([work.schema.id] if work.schema.id else [])}
            chunked.extra_columns = [name for name in csv_header(path)[0] if name not in known]
        return chunked


def local_engine(
    uri: str, s3: ObjectStore | None, work: ChunkWork, settings: Settings, sink: ChunkSink | None
) -> Chunked:
    """The local engine: pyarrow's readers in this process."""
    return chunked_file(uri, s3, work, chunk_rows=settings.chunk_rows, sample_rows=settings.window_rows, on_chunk=sink)
