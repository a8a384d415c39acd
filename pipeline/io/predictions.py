"""The prediction log: every scored row's id, P(positive) and inputs, one Parquet object per monitored batch.

Written by the monitor when the schema names an ``id`` column (without ids, no label could ever be joined to a
prediction, so nothing is logged), read by ``pipeline labels`` to join labels that arrive later.

Where: ``<root>/<model name>/<run key>/batch-<index>.parquet``, the root being ``PIPELINE_PREDICTION_LOG_URI``
(by default ``s3://<artifact bucket>/predictions``; a local folder works too). The key is the batch's own key in
Postgres (run key, batch index), so a rerun of a batch overwrites its object and never doubles it; the object is
written before the batch's row is committed, so a recorded batch always has its log.

Columns (public, documented in docs/drift.md, "Late labels"):

- ``id`` (text, the schema's id column as ``pipeline.domain.schema.id_key`` reads it; null where a row has none),
  ``row`` (the row's position in the batch), ``run_key``, ``batch``, ``champion_version``, ``p_positive``;
- ``label``: 1 = the schema's positive label, 0 = negative, null when the batch came without labels;
- ``feature:<name>`` for each feature of the schema, as the monitor validated it: the rows a late label makes
  usable for retraining.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import Batch, labelled_mask, labels_of
from pipeline.io.tables import DataError, ObjectStore, s3_errors, split_s3, write_bytes

FEATURE_PREFIX = "feature:"


class PredictionLogError(DataError):
    """The prediction log could not be written or read (one line naming the object)."""


LOG_COLUMNS = ("id", "row", "run_key", "batch", "champion_version", "p_positive", "label")  # then feature:<name>


def log_frame(
    batch: Batch, schema: FeatureSchema, proba: np.ndarray, *, run_key: str, index: int, version: int
) -> pd.DataFrame:
    """A batch's rows as the log keeps them."""
    frame = batch.frame
    n = len(frame)
    ids = frame[schema.id] if schema.id is not None and schema.id in frame.columns else pd.Series([None] * n)
    columns: dict[str, object] = {
        "id": ids.astype("object").where(ids.notna(), None).to_numpy(),
        "row": np.arange(n, dtype="int64"),
        "run_key": run_key,
        "batch": np.full(n, index, dtype="int64"),
        "champion_version": np.full(n, version, dtype="int64"),
        "p_positive": np.asarray(proba, dtype="float64"),
        "label": _labels(batch, schema),
    }
    for name in schema.features:
        columns[FEATURE_PREFIX + name] = frame[name].to_numpy()
    return pd.DataFrame(columns)


def _labels(batch: Batch, schema: FeatureSchema) -> pd.api.extensions.ExtensionArray:
    """The rows' 0/1 labels, missing where a row has none (an unlabelled batch, an empty target)."""
    n = len(batch.frame)
    if not batch.has_labels:
        return pd.array([None] * n, "Int8")
    if not batch.unlabelled_rows:
        return pd.array(labels_of(batch.frame, schema), dtype="Int8")
    known = labelled_mask(batch.frame, schema)
    labels = pd.array(labels_of(batch.frame, schema), dtype="Int8")
    labels[~known] = pd.NA
    return labels


def features_of_log(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """The logged rows back as a validated frame: the schema's features, under their own names."""
    return pd.DataFrame({name: frame[FEATURE_PREFIX + name].to_numpy() for name in schema.features})


def arrow_table(frame: pd.DataFrame) -> Any:
    """A frame as an Arrow table; a column of mixed types (numbers and text) as text."""
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # a categorical column read as numbers in some rows and text in others: kept as text
        mixed = frame.copy()
        for name in mixed.columns[mixed.dtypes == object]:  # noqa: E721 - pandas dtype comparison
            mixed[name] = mixed[name].map(lambda value: None if value is None or value != value else str(value))
        return pa.Table.from_pandas(mixed, preserve_index=False)


class BatchLogWriter:
    """Appends a batch's chunks to one Parquet file (one row group a chunk), rows numbered across chunks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer: Any = None

    def add(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = frame.assign(row=frame["row"] + self.rows)
        table = arrow_table(frame)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        else:
            try:
                table = table.cast(self._writer.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                raise PredictionLogError(
                    f"{self.path.name}: a column changes type between chunks of the batch; prediction log not "
                    f"written ({' '.join(str(err).split())[:120]})"
                ) from err
        self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _to_parquet(frame: pd.DataFrame) -> bytes:
    import pyarrow.parquet as pq

    table = arrow_table(frame)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class PredictionLog:
    root: str  # s3://bucket/prefix or a local folder
    s3: ObjectStore | None = None

    def uri(self, model_name: str, run_key: str, index: int) -> str:
        return f"{self.root.rstrip('/')}/{model_name}/{run_key}/batch-{index:05d}.parquet"

    def write(self, frame: pd.DataFrame, model_name: str, run_key: str, index: int) -> str:
        """Write one batch's log (replacing an earlier attempt's); a failure is one ``DataError`` line."""
        return self.put(_to_parquet(frame), model_name, run_key, index)

    def put(self, body: bytes, model_name: str, run_key: str, index: int) -> str:
        uri = self.uri(model_name, run_key, index)
        try:
            write_bytes(uri, body, self.s3)
        except DataError as err:
            raise PredictionLogError(f"prediction log not written: {err}") from err
        return uri

    @contextlib.contextmanager
    def batch_writer(self, model_name: str, run_key: str, index: int) -> Iterator[BatchLogWriter]:
        """A batch's log written chunk by chunk to a temporary file, stored (like ``write``) only when every chunk
        was added: a batch that fails half-way leaves no log."""
        with tempfile.TemporaryDirectory(prefix="prediction-log-") as folder:
            writer = BatchLogWriter(Path(folder) / "batch.parquet")
            try:
                yield writer
            finally:
                writer.close()
            self.put(
                writer.path.read_bytes() if writer.rows else _to_parquet(pd.DataFrame()), model_name, run_key, index
            )

    def uris(self, model_name: str) -> list[str]:
        """Every batch log of the model, in key order."""
        prefix = f"{self.root.rstrip('/')}/{model_name}/"
        if prefix.startswith("s3://"):
            if self.s3 is None:
                raise PredictionLogError(f"{prefix}: no S3 client configured for the prediction log")
            bucket, key = split_s3(prefix, allow_empty_key=True)
            found = []
            try:
                with s3_errors(prefix, bucket):
                    for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                        found += [
                            f"s3://{bucket}/{item['Key']}"
                            for item in page.get("Contents", [])
                            if item["Key"].endswith(".parquet")
                        ]
            except DataError as err:
                raise PredictionLogError(f"prediction log not readable: {err}") from err
            return sorted(found)
        folder = Path(prefix)
        return sorted(str(path) for path in folder.glob("*/batch-*.parquet")) if folder.is_dir() else []

    def read(self, uri: str, columns: list[str] | None = None) -> pd.DataFrame:
        from pipeline.io.tables import read_bytes

        raw = read_bytes(uri, self.s3)
        return pd.read_parquet(io.BytesIO(raw), columns=columns)

    def batches(self, model_name: str, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        for uri in self.uris(model_name):
            yield self.read(uri, columns)
