"""A batch read from a local path or ``s3://`` (``pipeline.io.tables``) and validated against the feature schema:
a ``Batch`` of typed columns with the target as label keys, or a one-line ``DataError``; and what a validated
frame gives (its labels as 0/1, a model's input columns)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema, id_key, label_key
from pipeline.io.inbox import uri_of
from pipeline.io.tables import NO_LIMITS, DataError, InputLimits, ObjectStore, duplicated, read_table


@dataclass
class Batch:
    """A validated batch: numerics as float64, categoricals as read (one type per column), the target as label
    keys (see ``pipeline.domain.schema.label_key``).

    Categories keep the values they were read with (int-coded categories stay numbers, text keeps its
    blanks), so a model the user trained on ``pd.read_csv`` output is scored on what it was trained on.

    A batch read in chunks (``pipeline.engine.local``) keeps only a sample of its rows in ``frame`` (the newest);
    ``total_rows`` is then the whole batch's count.

    Real data comes partly labelled: a row whose target is empty is an unlabelled row (its label key is missing).
    It is scored and drift-measured like every row, and left out of quality, the label-based rules and training.
    ``has_labels``: at least one row has a label; ``unlabelled_rows``: the rows whose target is empty (all of them
    when the target column is there but empty throughout: an unlabelled batch).
    """

    source: str
    frame: pd.DataFrame
    has_labels: bool
    extra_columns: list[str] = field(default_factory=list)
    total_rows: int | None = None
    unlabelled_rows: int = 0

    @property
    def rows(self) -> int:
        return len(self.frame) if self.total_rows is None else self.total_rows

    @property
    def labelled_rows(self) -> int:
        """The rows whose label is known (of the whole batch, also when read in chunks)."""
        return self.rows - self.unlabelled_rows if self.has_labels else 0

    @property
    def partly_labelled(self) -> bool:
        return self.has_labels and self.unlabelled_rows > 0


def _coerce_numeric(source: str, name: str, column: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column if column.dtype == np.float64 else column.astype("float64")  # the batch's frame copies it
    converted = pd.to_numeric(column, errors="coerce")
    bad = column[converted.isna() & column.notna() & (column.astype(str).str.strip() != "")]
    if len(bad):
        raise DataError(f"{source}: column {name!r} holds non-numeric value {str(bad.iloc[0])!r}")
    return converted.astype("float64")


def _distinct(source: str, name: str, values: pd.Series) -> Any:
    """The distinct values of a column of objects, missing ones left out; a nested value (a Parquet struct or
    list) is refused in one line: a cell must hold one value."""
    try:
        return values.dropna().unique()
    except TypeError as err:  # unhashable: a dict (struct) or an array (list)
        nested = next((value for value in values if isinstance(value, (dict, list, np.ndarray))), None)
        kind = type(nested).__name__ if nested is not None else "unhashable"
        raise DataError(f"{source}: column {name!r} holds nested values ({kind}); expected one value per cell") from err


def _map_distinct(source: str, name: str, column: pd.Series, key: Callable[[Any], str | None]) -> pd.Series:
    """Apply ``key`` once per distinct value (a batch has far fewer distinct values than rows)."""
    values = column.astype("object")
    mapping = {value: key(value) for value in _distinct(source, name, values)}
    mapped = values.map(mapping)
    return mapped.where(mapped.notna(), np.nan).astype("object")


def _coerce_categorical(source: str, name: str, column: pd.Series) -> pd.Series:
    """Categories as read, one type per column. Numbers become float64: an int-coded column reads as int64
    without missing values and as float64 with them, and both must compare equal. Booleans and text stay
    objects; blank text is missing."""
    if pd.api.types.is_bool_dtype(column):
        return column.astype("object")
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    values = column.astype("object")
    missing = values.isna()
    if missing.any():  # pyarrow's missing text is None; pandas' reader, and a user's imputer, have NaN
        values = values.where(~missing, np.nan)
    distinct = _distinct(source, name, values)
    blanks = [value for value in distinct if isinstance(value, str) and not value.strip()]
    return values.mask(values.isin(blanks)) if blanks else values


def _check_target(source: str, column: pd.Series, schema: FeatureSchema) -> pd.Series:
    """The target as label keys (see ``pipeline.domain.schema.label_key``), missing where it is empty (an
    unlabelled row); refuses unknown values."""
    keys = _map_distinct(source, schema.target, column, label_key)
    unknown = keys[keys.notna() & ~keys.isin([schema.positive_key, schema.negative_key])]
    if len(unknown):
        raw = column.iloc[unknown.index[0]]
        raise DataError(
            f"{source}: target {schema.target!r} holds {raw!r}; expected {schema.positive!r} or {schema.negative!r}"
        )
    return keys


def validate_frame(frame: pd.DataFrame, schema: FeatureSchema, source: str) -> Batch:
    """Check a raw frame against the schema and return a clean batch, or raise ``DataError``."""
    columns = [str(name) for name in frame.columns]
    duplicates = duplicated(columns)
    if duplicates:
        raise DataError(f"{source}: duplicated column names: {', '.join(duplicates)}")
    missing = [name for name in schema.features if name not in frame.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise DataError(f"{source}: missing feature columns: {shown}")
    if frame.empty:
        raise DataError(f"{source}: no rows (header only or empty)")
    index = pd.RangeIndex(len(frame))
    if not frame.index.equals(index):
        frame = frame.reset_index(drop=True)
    checked: dict[str, pd.Series] = {}  # gathered, then one frame: a column at a time would copy it 81 times
    for name in schema.numerical:
        checked[name] = _coerce_numeric(source, name, frame[name])
    for name in schema.categorical:
        checked[name] = _coerce_categorical(source, name, frame[name])
    has_labels, unlabelled = schema.target in frame.columns, 0
    if has_labels:
        keys = _check_target(source, frame[schema.target], schema)
        unlabelled = int(keys.isna().sum())
        has_labels = unlabelled < len(keys)
        if has_labels:  # a target empty throughout: an unlabelled batch, as one without the column
            checked[schema.target] = keys
    if schema.id is not None and schema.id in frame.columns:
        checked[schema.id] = _map_distinct(source, schema.id, frame[schema.id], id_key)
    clean = pd.DataFrame(checked, index=index)
    known = set(schema.features) | {schema.target, *([schema.id] if schema.id else [])}
    extra = [name for name in columns if name not in known]
    return Batch(source=source, frame=clean, has_labels=has_labels, extra_columns=extra, unlabelled_rows=unlabelled)


def load_batch(
    source: str,
    schema: FeatureSchema,
    s3_client: ObjectStore | None = None,
    max_mb: float | None = None,
    limits: InputLimits = NO_LIMITS,
) -> Batch:
    """Read and validate one batch (refused when over ``limits``: ``pipeline.io.tables.InputLimits``)."""
    return validate_frame(read_table(source, s3_client, max_mb, limits), schema, source)


def empty_columns(
    batch: Batch, reference: pd.DataFrame, schema: FeatureSchema, present: set[str] | None = None
) -> list[str]:
    """Feature columns with no value at all in this batch, where the reference allows that.

    The rule: a column entirely empty in a batch is an ERROR when the reference never has it missing (in the
    demo: age, ESI, the vitals, sex, arrival mode...: an empty one means a broken extract), and only a WARNING
    (returned here) when the reference has missing values in it too (the demo's lab results are legitimately
    missing for most visits), so a small batch can have none.

    ``present``: the columns with values, for a batch read in chunks (its ``frame`` is only a sample).
    """
    allowed = []
    for name in schema.features:
        if (name in present) if present is not None else batch.frame[name].notna().any():
            continue
        if name in reference.columns and reference[name].notna().all():
            where = uri_of(batch.source)  # the file, not its identity (path#MD5, key#ETag)
            raise DataError(f"{where}: column {name!r} is entirely empty; it is never empty in the reference")
        allowed.append(name)
    return allowed


def labels_of(frame: pd.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """The validated target as 0/1: 1 where it is the schema's positive label."""
    return (frame[schema.target].to_numpy() == schema.positive_key).astype(np.int64)


def model_input(frame: pd.DataFrame, schema: FeatureSchema, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The feature columns a model is scored on: the schema's, or ``columns`` (schema columns the model names
    in its own order: a model fitted on a frame may insist on its column order)."""
    return frame[list(schema.features if columns is None else columns)]


def labelled_mask(frame: pd.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """Which rows of a validated frame carry a label (all of them when none is empty)."""
    if schema.target not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[schema.target].notna().to_numpy()


def labelled_frame(batch: Batch, schema: FeatureSchema) -> pd.DataFrame:
    """The rows of the batch's frame with a label (quality, the retraining window); none for an unlabelled batch."""
    if not batch.has_labels:
        return batch.frame.iloc[:0]
    if not batch.unlabelled_rows:
        return batch.frame
    return batch.frame[labelled_mask(batch.frame, schema)].reset_index(drop=True)


def only_labelled(batch: Batch, schema: FeatureSchema) -> Batch:
    """The batch's labelled rows as a batch of their own (training data, a holdout)."""
    if not batch.partly_labelled:
        return batch
    return Batch(batch.source, labelled_frame(batch, schema), True, batch.extra_columns)


def known_labels(batch: Batch, schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray] | None:
    """(which rows of the batch's frame are labelled, their 0/1 labels), or None for an unlabelled batch."""
    if not batch.has_labels:
        return None
    mask = labelled_mask(batch.frame, schema)
    return mask, labels_of(batch.frame[mask] if batch.unlabelled_rows else batch.frame, schema)


def unlabelled_line(index: int, batch: Batch, schema: FeatureSchema) -> str | None:
    """The one line a batch with empty labels is said with (None when every row is labelled or none is asked)."""
    if not batch.unlabelled_rows:
        return None
    if not batch.has_labels:
        return (
            f"[batch {index}] target {schema.target!r} is empty in all {batch.rows} rows: "
            "an unlabelled batch (scored and drift-measured)"
        )
    return (
        f"[batch {index}] {batch.unlabelled_rows} of {batch.rows} rows have an empty {schema.target!r}: "
        f"unlabelled rows, scored and drift-measured; quality and training use the {batch.labelled_rows} labelled"
    )
