"""The local engine's readers: a batch file (a local path, or an ``s3://`` object streamed to a temporary file)
read by pyarrow's streaming readers ``chunk_rows`` rows at a time, the next chunk read ahead by a background
thread. What is done with each chunk is ``pipeline.engine.local``."""

from __future__ import annotations

import io
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.domain.schema import FeatureSchema
from pipeline.io.tables import (
    NO_LIMITS,
    DataError,
    InputLimits,
    ObjectStore,
    SourceUnavailable,
    check_parquet,
    s3_errors,
    split_s3,
)


def object_size(source: str, s3_client: ObjectStore | None) -> int:
    """The size of a batch file in bytes (a local stat, or the S3 object's length)."""
    if source.startswith("s3://"):
        if s3_client is None:
            raise SourceUnavailable(f"{source}: no S3 client configured")
        bucket, key = split_s3(source)
        with s3_errors(source, bucket):
            return int(s3_client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    path = Path(source)
    if not path.is_file():
        raise SourceUnavailable(f"{source}: no such file")
    return path.stat().st_size


def csv_header(path: Path, source: str = "", limits: InputLimits = NO_LIMITS) -> tuple[list[str], str]:
    """A CSV file's column names and separator, from its first line (a byte-order mark skipped); a header line
    or a column count over ``limits`` is refused, and so are duplicated names."""
    with path.open("rb") as handle:  # never more of a line than the cap allows, and a line end
        raw = handle.readline(-1 if limits.header_bytes is None else limits.header_bytes + 2)
    return header_of(raw, source or str(path), limits)


def header_of(raw: bytes, source: str, limits: InputLimits = NO_LIMITS) -> tuple[list[str], str]:
    """The column names and separator of a CSV's first bytes ``raw`` (its header line, and perhaps more), the
    header line and the column count checked against ``limits``, and duplicated names refused."""
    import csv

    from pipeline.io.tables import csv_separator

    newline = limits.header_end(source, raw)
    head = (raw if newline < 0 else raw[:newline]).decode("utf-8-sig", errors="replace")
    separator = csv_separator(head)
    names = [name.strip() for name in next(csv.reader([head.rstrip("\r\n")], delimiter=separator), [])]
    limits.check_columns(source, names)
    return names, separator


def check_before_reading(source: str, s3_client: ObjectStore | None, limits: InputLimits) -> None:
    """Check a batch file against ``limits`` before any engine reads it: a CSV's header line and columns from its
    first bytes, a Parquet file's columns and rows from its metadata. An ``s3://`` object is not fetched for it:
    ranged reads of the cap's bytes, or of the footer (a one-line 200 MB CSV is refused having read 1 MiB of it).
    Paths of other filesystems (a cluster's) are left to the engine."""
    suffix = Path(source.split("?")[0]).suffix.lower()
    if source.startswith("s3://"):
        if s3_client is None:
            return
        handle: Any = RangedObject(source, s3_client)
    elif "://" in source or not Path(source).is_file():
        return
    else:
        handle = Path(source)
    if suffix in (".parquet", ".pq"):
        check_parquet(source, handle, limits)
    elif suffix == ".csv" and (limits.header_bytes is not None or limits.columns is not None):
        if isinstance(handle, Path):
            csv_header(handle, source, limits)
        else:
            header_of(handle.read(-1 if limits.header_bytes is None else limits.header_bytes + 2), source, limits)


class RangedObject(io.RawIOBase):
    """An S3 object as a read-only, seekable file, each read a ranged GET of the bytes asked for (what Parquet's
    footer reader needs: the last 8 bytes, then the metadata)."""

    def __init__(self, source: str, s3_client: ObjectStore) -> None:
        self.source, self.client = source, s3_client
        self.bucket, self.key = split_s3(source)
        self.size = object_size(source, s3_client)
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.position + size)
        if end <= self.position:
            return b""
        with s3_errors(self.source, self.bucket):
            body = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={self.position}-{end - 1}")
            try:
                data: bytes = body["Body"].read()
            finally:
                body["Body"].close()
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_chunks(
    path: Path, source: str, chunk_rows: int, schema: FeatureSchema, limits: InputLimits = NO_LIMITS
) -> Iterator[pd.DataFrame]:
    """The schema's columns of a local CSV or Parquet file, ``chunk_rows`` rows at a time. CSV numerical
    columns are parsed as numbers by pyarrow (a cell that is not one is the one-line ``DataError`` a whole
    file gives), the other columns as text; columns the schema does not name are not read. A file over
    ``limits`` is refused: a Parquet file from its metadata before any row is read, a CSV from its header,
    then once its rows pass the cap."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    wanted = [*schema.features, schema.target, *([schema.id] if schema.id else [])]
    try:
        if suffix == ".parquet":
            check_parquet(source, path, limits)
            parquet = pq.ParquetFile(path)
            columns = [name for name in wanted if name in parquet.schema_arrow.names]
            for record_batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
                yield record_batch.to_pandas()
            return
        names, separator = csv_header(path, source, limits)
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
        rows = total = 0
        for record_batch in reader:  # small blocks, gathered into chunks of about chunk_rows rows
            pending.append(record_batch)
            rows += record_batch.num_rows
            total += record_batch.num_rows
            limits.check_rows(source, total)
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

    # pyarrow names the row too when it reads on one thread (OMP_NUM_THREADS=1): "column #0: Row #4002: CSV ..."
    found = re.search(r"column #(\d+): (?:Row #\d+: )?CSV conversion error to \w+: invalid value '(.*)'", message)
    if found and int(found.group(1)) < len(names):
        return f"{source}: column {names[int(found.group(1))]!r} holds non-numeric value {found.group(2)!r}"
    return f"{source}: not a readable file ({' '.join(message.split())[:160]})"


# pyarrow's streaming CSV reader holds more memory the bigger its blocks (with 26 MB blocks it grew with the
# file: 0.5 GB at 1,000,000 demo rows, 1 GB at 3,000,000); with 1 MB blocks it stays at about 40 MB.
CSV_BLOCK_BYTES = 1 << 20


def _block_bytes(path: Path, chunk_rows: int) -> int:
    """The CSV block size that holds about ``chunk_rows`` rows (from the first rows' length)."""
    with path.open("rb") as handle:
        handle.readline()  # the header, within its cap (``csv_header`` read it first)
        sample = handle.read(1 << 20)
    lines = max(sample.count(b"\n"), 1)
    per_row = max(len(sample) / lines, 1.0)
    return int(min(max(per_row * chunk_rows, 1 << 14), 1 << 30))


def local_copy(source: str, s3_client: ObjectStore | None, folder: str) -> Path:
    """A local path for the batch: itself, or the S3 object streamed to ``folder`` (never held in memory)."""
    if not source.startswith("s3://"):
        return Path(source)
    if s3_client is None:
        raise SourceUnavailable(f"{source}: no S3 client configured")
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
