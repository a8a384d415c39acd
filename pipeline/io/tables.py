"""Read and write tables (CSV, Parquet) at local paths or ``s3://``; every failure a one-line ``DataError``
(S3 errors mapped in one place). ``pipeline.io.data`` checks what is read against the feature schema."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from pipeline.io.aws import make_aws_client

if TYPE_CHECKING:
    from pipeline.settings import EngineSettings

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq")


class ObjectStore(Protocol):  # boto3's S3 client, the calls the project makes
    """What reading and writing ``s3://`` paths needs of a boto3 S3 client."""

    def get_object(self, *, Bucket: str, Key: str, Range: str = ...) -> Any: ...  # noqa: N803 - boto3's names
    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> Any: ...  # noqa: N803
    def get_paginator(self, operation_name: str) -> Any: ...
    def head_object(self, *, Bucket: str, Key: str) -> Any: ...  # noqa: N803
    def download_file(self, Bucket: str, Key: str, Filename: str) -> Any: ...  # noqa: N803


class DataError(ValueError):
    """A batch that cannot be used. The message is one line naming the file and the problem."""


class SourceUnavailable(DataError):
    """A file that could not be fetched (S3 unreachable or refusing, no credentials, a key or file gone): the
    fault of where it is, not of what it holds, so a batch refused with it is tried again by a later run."""


@dataclass(frozen=True)
class InputLimits:
    """Caps on one batch file, checked before its rows are parsed: a header line's bytes, its columns (a CSV's
    header, a Parquet file's metadata) and its rows (a Parquet file's metadata; a CSV's as it is read). A file
    over one is a one-line ``DataError`` naming the setting. None: no cap."""

    header_bytes: int | None = None
    columns: int | None = None
    rows: int | None = None

    @classmethod
    def of(cls, engine: EngineSettings) -> InputLimits:
        """The caps the settings give (``PIPELINE_MAX_HEADER_BYTES``, ``_MAX_COLUMNS``, ``_MAX_ROWS``)."""
        return cls(engine.max_header_bytes, engine.max_columns, engine.max_rows)

    def header_end(self, source: str, head: bytes) -> int:
        """Where the header line of ``head`` (the file's first bytes) ends: the index of its newline, or -1 for
        a file of one line within the cap; a header line longer than the cap is refused."""
        cap = self.header_bytes
        if cap is None:
            return head.find(b"\n")
        window = head[: cap + 2]  # the cap, and room for a line end
        newline = window.find(b"\n")
        if len((window if newline < 0 else window[:newline]).rstrip(b"\r")) > cap:
            raise DataError(f"{source}: the header line is over {cap:,} bytes (PIPELINE_MAX_HEADER_BYTES)")
        return newline  # -1: the file is one line, within the window

    def check_columns(self, source: str, names: Iterable[str]) -> None:
        """Refuse more columns than the cap, then duplicated names (counted once: linear in the columns)."""
        names = list(names)
        self.check_column_count(source, len(names))
        duplicates = duplicated(names)
        if duplicates:
            shown = ", ".join(duplicates[:20]) + (f" (+{len(duplicates) - 20} more)" if len(duplicates) > 20 else "")
            raise DataError(f"{source}: duplicated column names: {shown}")

    def check_column_count(self, source: str, count: int) -> None:
        if self.columns is not None and count > self.columns:
            raise DataError(f"{source}: {count:,} columns, over the limit of {self.columns:,} (PIPELINE_MAX_COLUMNS)")

    def check_rows(self, source: str, count: int) -> None:
        if self.rows is not None and count > self.rows:
            raise DataError(f"{source}: {count:,} rows, over the limit of {self.rows:,} (PIPELINE_MAX_ROWS)")


NO_LIMITS = InputLimits()


def duplicated(names: Iterable[str]) -> list[str]:
    """The names given more than once, sorted; one pass over them."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def parquet_shape(source: str, handle: Any) -> tuple[int, int]:
    """A Parquet file's (rows, columns) as its metadata (the footer) says, no data read; ``handle`` is a path or
    a file object."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(handle).metadata
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"{source}: not a readable Parquet file") from err
    return int(metadata.num_rows), int(metadata.num_columns)


def check_parquet(source: str, handle: Any, limits: InputLimits) -> None:
    """Refuse a Parquet file whose metadata claims more columns or rows than the caps, before reading data."""
    rows, columns = parquet_shape(source, handle)
    limits.check_column_count(source, columns)
    limits.check_rows(source, rows)


def make_s3_client(endpoint_url: str | None, region: str) -> ObjectStore:
    """A boto3 S3 client; the endpoint decides between moto, LocalStack and AWS (``make_aws_client``)."""
    client: ObjectStore = make_aws_client("s3", endpoint_url, region)
    return client


def s3_failure(source: str, err: Exception) -> SourceUnavailable:
    """One line for a botocore failure: missing credentials said as such, not as an unreachable S3."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return SourceUnavailable(
            f"{source}: no AWS credentials found (environment, ~/.aws or an instance role); "
            "set PIPELINE_S3_ENDPOINT_URL for the local stack"
        )
    tried = urlsplit(str(getattr(err, "kwargs", {}).get("endpoint_url") or ""))  # botocore's connection errors
    endpoint = f"{tried.scheme}://{tried.netloc}" if tried.netloc else ""
    if endpoint:
        return SourceUnavailable(
            f"{source}: S3 unreachable at {endpoint} ({err.__class__.__name__}); PIPELINE_S3_ENDPOINT_URL sets the "
            "endpoint (empty for AWS itself)"
        )
    return SourceUnavailable(f"{source}: S3 unreachable ({err.__class__.__name__})")


def s3_client_error(source: str, bucket: str, err: Any) -> SourceUnavailable:
    """One line for an S3 error response (a missing key or bucket, access denied, anything else by its code)."""
    code = err.response.get("Error", {}).get("Code", "error")
    if code in ("NoSuchKey", "404"):
        return SourceUnavailable(f"{source}: no such key in bucket {bucket}")
    if code == "NoSuchBucket":
        return SourceUnavailable(f"{source}: bucket {bucket} does not exist")
    if code in ("AccessDenied", "403"):
        return SourceUnavailable(f"{source}: access denied to bucket {bucket}")
    return SourceUnavailable(f"{source}: S3 error {code}")


@contextmanager
def s3_errors(source: str, bucket: str) -> Iterator[None]:
    """Any S3 failure in the block as one ``DataError`` line naming ``source``: an error response by its code
    (``s3_client_error``), anything else (unreachable, no credentials) by ``s3_failure``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as err:
        raise s3_client_error(source, bucket, err) from err
    except BotoCoreError as err:
        raise s3_failure(source, err) from err


def split_s3(uri: str, *, allow_empty_key: bool = False) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; with ``allow_empty_key`` the key may be a prefix or empty."""
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket or (not key and not allow_empty_key):
        raise DataError(f"{uri}: an s3 path needs the form s3://bucket/key")
    return bucket, key


def _suffix(source: str) -> str:
    suffix = Path(source.split("?")[0]).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(f"{source}: unsupported file type {suffix or '(none)'!r}; use .csv or .parquet")
    return suffix


def _check_size(source: str, size: int, max_mb: float | None) -> None:
    if max_mb is not None and size > max_mb * 1024 * 1024:
        raise DataError(
            f"{source}: {size / 1024 / 1024:.1f} MB is over the batch limit of {max_mb:g} MB "
            "(--max-batch-mb); split it into smaller batches"
        )


def read_bytes(source: str, s3_client: ObjectStore | None = None, max_mb: float | None = None) -> bytes:
    """Fetch the raw bytes of a local file or an S3 object, with errors that name the source.

    A file bigger than ``max_mb`` is refused from its size alone (stat, or the S3 object's length).
    """
    if source.startswith("s3://"):
        if s3_client is None:
            raise SourceUnavailable(f"{source}: no S3 client configured")
        bucket, key = split_s3(source)
        with s3_errors(source, bucket):
            response = s3_client.get_object(Bucket=bucket, Key=key)
            body = response["Body"]
            try:
                _check_size(source, int(response.get("ContentLength") or 0), max_mb)
                return body.read()
            finally:
                body.close()
    path = Path(source)
    if not path.exists():
        raise SourceUnavailable(f"{source}: no such file")
    if path.is_dir():
        raise DataError(f"{source}: is a directory, not a data file")
    _check_size(source, path.stat().st_size, max_mb)
    return path.read_bytes()


SEPARATORS = (",", ";", "\t", "|")  # in order of preference when two split the header into as many names


def csv_separator(text: str) -> str:
    """The header line's separator: the one of comma, semicolon, tab or bar that splits it into the most names,
    quotes respected (a semicolon export's ``"Amount, EUR";Date`` is two names), a comma when none splits it."""
    first = text.split("\n", 1)[0].rstrip("\r")

    def names(separator: str) -> int:
        try:
            return len(next(csv.reader([first], delimiter=separator), []))
        except csv.Error:
            return 0

    counts = {separator: names(separator) for separator in SEPARATORS}
    return max(SEPARATORS, key=lambda separator: counts[separator])  # max keeps the first of equals


def _parse_csv(source: str, raw: bytes, limits: InputLimits = NO_LIMITS) -> pd.DataFrame:
    if not raw or raw.isspace():
        raise DataError(f"{source}: empty file")
    newline = limits.header_end(source, raw)
    try:  # a byte-order mark (spreadsheet exports) is not part of the first name
        first = (raw if newline < 0 else raw[:newline]).decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{source}: not UTF-8 text (byte {err.start})") from err
    separator = csv_separator(first)
    lines = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", errors="replace", newline="")
    header = next(csv.reader(lines, delimiter=separator), [])  # the header only: lines are read as needed
    limits.check_columns(source, header)
    frame = _parse_csv_arrow(raw, separator)
    if frame is None:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise DataError(f"{source}: not UTF-8 text (byte {err.start})") from err
        try:
            frame = pd.read_csv(io.StringIO(text), sep=separator, low_memory=False, float_precision="round_trip")
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise DataError(f"{source}: not a readable CSV ({str(err).splitlines()[0]})") from err
    limits.check_rows(source, len(frame))
    return frame


# pandas' default missing-value markers, so the fast reader finds the same cells missing as pandas would
PANDAS_NULL_VALUES = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip


def _parse_csv_arrow(raw: bytes, separator: str) -> pd.DataFrame | None:
    """The CSV as ``pd.read_csv(..., float_precision="round_trip")`` gives it (every number correctly rounded),
    read by pyarrow's multithreaded reader, about 6x faster on a 100,000-row batch; or None when the file is
    one pyarrow reads differently: ragged or unnamed columns, no rows, or a text column that pandas would have
    parsed as numbers. Those go to pandas' own parser.

    Known differences that stay: pyarrow reads ``+5`` as a float where pandas reads an integer, ``0x10`` as
    16 where pandas keeps the text, and integers beyond int64 as floats where pandas keeps the text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw

    def read(column_types: dict[str, Any]) -> pa.Table:
        return pacsv.read_csv(
            pa.py_buffer(body),
            parse_options=pacsv.ParseOptions(delimiter=separator),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types,
                null_values=list(PANDAS_NULL_VALUES),
                strings_can_be_null=True,
                true_values=["True", "TRUE", "true"],
                false_values=["False", "FALSE", "false"],
            ),
        )

    try:
        table = read({})
        if table.num_rows == 0 or any(not name for name in table.column_names):
            return None
        # pandas keeps dates and times as text, and a column with no value as float NaN
        retyped = {
            column.name: pa.float64() if pa.types.is_null(column.type) else pa.string()
            for column in table.schema
            if pa.types.is_null(column.type) or pa.types.is_temporal(column.type)
        }
        if retyped:
            table = read(retyped)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    for column in table.schema:
        kind = column.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
            if not pa.types.is_string(kind):
                return None
            if _numeric_to_pandas(table.column(column.name)):
                return None
    frame = table.to_pandas()
    for name in table.column_names:  # pandas' missing text is NaN, not None (a user's imputer looks for NaN)
        if frame[name].dtype == object and table.column(name).null_count:
            frame[name] = frame[name].where(frame[name].notna(), np.nan)
    return frame


def _numeric_to_pandas(column: Any) -> bool:
    """Whether pandas' parser would read this text column as numbers (spaces around a number, ``inf``, ...)."""
    values = pd.Series(column.drop_null().unique().to_pylist(), dtype=object)
    if values.empty:
        return False
    try:
        pd.to_numeric(values.str.strip())
    except (ValueError, TypeError):
        return False
    return True


def _parse_parquet(source: str, raw: bytes, limits: InputLimits = NO_LIMITS) -> pd.DataFrame:
    import pyarrow as pa

    check_parquet(source, io.BytesIO(raw), limits)
    try:
        return pd.read_parquet(io.BytesIO(raw))
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(f"{source}: not a readable Parquet file") from err


def read_table(
    source: str, s3_client: ObjectStore | None = None, max_mb: float | None = None, limits: InputLimits = NO_LIMITS
) -> pd.DataFrame:
    """Read a CSV or Parquet table from a local path or ``s3://bucket/key``; a file over ``limits`` is refused
    before its rows are parsed (a CSV's row count once read)."""
    suffix = _suffix(source)
    raw = read_bytes(source, s3_client, max_mb)
    if suffix == ".csv":
        return _parse_csv(source, raw, limits)
    return _parse_parquet(source, raw, limits)


def write_table(frame: pd.DataFrame, destination: str, s3_client: ObjectStore | None = None) -> None:
    """Write a frame as CSV or Parquet (by suffix) to a local path or ``s3://``."""
    suffix = _suffix(destination)
    buffer = io.BytesIO()
    if suffix == ".csv":
        buffer.write(frame.to_csv(index=False).encode("utf-8"))
    else:
        frame.to_parquet(buffer, index=False)
    write_bytes(destination, buffer.getvalue(), s3_client)


def write_bytes(destination: str, body: bytes, s3_client: ObjectStore | None = None) -> None:
    """Write bytes to a local path (atomically: a temporary file renamed) or ``s3://``; one-line ``DataError``s."""
    if destination.startswith("s3://"):
        if s3_client is None:
            raise SourceUnavailable(f"{destination}: no S3 client configured")
        bucket, key = split_s3(destination)
        with s3_errors(destination, bucket):
            s3_client.put_object(Bucket=bucket, Key=key, Body=body)
        return
    path = Path(destination)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(body)
    tmp.replace(path)
