"""The Spark engine's work in the executors: one partition's Arrow batches as the local engine's chunks, each
through the shipped ``ChunkWork.run``, and the ONE small row the partition sends the driver (its merged profile,
row count, labels, its sample when asked, or its error). See ``pipeline.engine.spark`` for the whole job."""

from __future__ import annotations

import io
import json
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.engine.local import ChunkWork, Newest
from pipeline.io.tables import DataError
from pipeline.model.scoring import ModelMismatch
from pipeline.stats.profile import BatchProfile, merge_all

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.broadcast import Broadcast

# One row per partition: what the driver needs to merge, never the partition's rows.
SUMMARY_SCHEMA = (
    "partition INT, rows LONG, chunks INT, labelled BOOLEAN, extra STRING, profile BINARY, sample BINARY, "
    "error STRING, error_kind STRING"
)
SAMPLE_SCHEMA = "partition INT, sample BINARY, error STRING, error_kind STRING"


def observe_partition(
    shipped: Broadcast[ChunkWork],
    source: str,
    sample_rows: int,
    tail: frozenset[int],
    nulls: Sequence[str],
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """One partition's summary row: its merged profile, rows, labels, and its sample if it is in ``tail``."""
    index = _partition_index()
    work = shipped.value
    profiles: list[BatchProfile] = []
    newest, newest_proba = Newest(sample_rows), Newest(sample_rows)
    labelled, extra, count = False, "[]", 0
    try:
        for raw in _chunks(batches, nulls):
            batch, proba, profile = work.run(raw, source)
            labelled = labelled or batch.has_labels  # a chunk whose labels are all empty: unlabelled rows
            if not profiles:
                extra = json.dumps(batch.extra_columns)
            profiles.append(profile)
            if index in tail:
                newest.add(batch.frame)
                newest_proba.add(pd.DataFrame({"proba": proba}))
            count += 1
            if len(profiles) >= 64:
                profiles = [merge_all(profiles)]
    except (DataError, ModelMismatch) as err:
        _drain(batches)
        yield _record(SUMMARY_SCHEMA, _summary(index, error=err))
        return
    merged = merge_all(profiles) if profiles else None
    sample = _pack(newest.frame(), newest_proba.frame()) if merged is not None and index in tail else None
    row = _summary(
        index,
        rows=0 if merged is None else merged.rows,
        chunks=count,
        labelled=labelled,
        extra=extra,
        profile=None if merged is None else merged.to_bytes(),
        sample=sample,
    )
    yield _record(SUMMARY_SCHEMA, row)


def sample_partition(
    shipped: Broadcast[ChunkWork],
    source: str,
    sample_rows: int,
    nulls: Sequence[str],
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """One partition's newest validated rows and their P(positive), by the same ``ChunkWork.run``."""
    index = _partition_index()
    work = shipped.value
    newest, newest_proba = Newest(sample_rows), Newest(sample_rows)
    try:
        for raw in _chunks(batches, nulls):
            batch, proba, _ = work.run(raw, source)
            newest.add(batch.frame)
            newest_proba.add(pd.DataFrame({"proba": proba}))
    except (DataError, ModelMismatch) as err:
        _drain(batches)
        yield _record(SAMPLE_SCHEMA, {"partition": index, "sample": None, **_error_fields(err)})
        return
    row = {"partition": index, "sample": _pack(newest.frame(), newest_proba.frame()), "error": None}
    yield _record(SAMPLE_SCHEMA, {**row, "error_kind": None})


def _chunks(batches: Iterator[pa.RecordBatch], nulls: Sequence[str]) -> Iterator[pd.DataFrame]:
    """A partition's Arrow batches as the local engine's reader gives its chunks: a CSV's null spellings as
    missing, then pyarrow's own conversion to pandas."""
    for batch in batches:
        if batch.num_rows:
            yield _as_local_reader(batch, nulls).to_pandas()


def _partition_index() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        raise RuntimeError("not in a Spark task")
    return context.partitionId()


def _drain(batches: Iterator[pa.RecordBatch]) -> None:
    """Read the rest of a failed partition's input unprocessed: a Python worker that stops reading its input is
    not reused, and the next task would pay for a new one (imports, the broadcast)."""
    deque(batches, maxlen=0)


def _as_local_reader(batch: pa.RecordBatch, nulls: Sequence[str]) -> pa.RecordBatch:
    """Text cells spelled as one of ``nulls`` made missing, as pyarrow's CSV reader does (``strings_can_be_null``)."""
    if not nulls:
        return batch
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for column in batch.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            spelled = pc.is_in(column, value_set=pa.array(nulls, type=column.type))
            column = pc.if_else(spelled, pa.scalar(None, type=column.type), column)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _record(schema: str, row: dict[str, Any]) -> pa.RecordBatch:
    """One output row as the Arrow batch ``mapInArrow`` expects."""
    import pyarrow as pa

    return pa.RecordBatch.from_pylist([row], schema=_arrow_schema(schema))


def _arrow_schema(ddl: str) -> pa.Schema:
    import pyarrow as pa

    types = {"INT": pa.int32(), "LONG": pa.int64(), "BOOLEAN": pa.bool_(), "STRING": pa.string(), "BINARY": pa.binary()}
    fields = [part.split() for part in ddl.split(",")]
    return pa.schema([pa.field(name, types[kind]) for name, kind in fields])


def _error_fields(err: Exception) -> dict[str, str]:
    return {"error": str(err), "error_kind": "model" if isinstance(err, ModelMismatch) else "data"}


def _summary(
    index: int,
    *,
    rows: int = 0,
    chunks: int = 0,
    labelled: bool = False,
    extra: str = "[]",
    profile: bytes | None = None,
    sample: bytes | None = None,
    error: Exception | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "partition": index,
        "rows": rows,
        "chunks": chunks,
        "labelled": labelled,
        "extra": extra,
        "profile": profile,
        "sample": sample,
        "error": None,
        "error_kind": None,
    }
    if error is not None:
        row.update(_error_fields(error))
    return row


SAMPLE_PROBA = "__p_positive__"


def _pack(sample: pd.DataFrame, proba: pd.DataFrame) -> bytes:
    """A partition's sample and its P(positive) for the driver, as Parquet (never pickle: the package unpickles
    nothing). A column of mixed types (a stray text value among int-coded categories) travels as text."""
    import pyarrow.parquet as pq

    from pipeline.io.predictions import arrow_table

    values = proba["proba"].to_numpy(dtype=np.float64) if len(proba) else np.empty(0)
    buffer = io.BytesIO()
    pq.write_table(arrow_table(sample.assign(**{SAMPLE_PROBA: values})), buffer)
    return buffer.getvalue()


def unpack(data: bytes) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_parquet(io.BytesIO(data))
    return frame.drop(columns=[SAMPLE_PROBA]), frame[SAMPLE_PROBA].to_numpy(dtype=np.float64)
