"""Evidently stays the report engine: the Evidently drift report of a batch against its reference, on demand.

``sampled_report`` builds it on a uniform sample of at most ``HTML_SAMPLE_ROWS`` rows of the batch and of the
reference (``sample_positions``): a picture to look at, in seconds whatever the batch size, not the figures the
monitor decides on (those are always the whole batch's, ``pipeline.stats.drift``). ``DriftResult.save_html``
writes it. The report runs Evidently's own methods at the reference's thresholds: ``NUM_METHOD`` (normed
Wasserstein) on numerical columns and the prediction P(positive), ``CAT_METHOD`` (Jensen-Shannon) on categorical
ones, as ``drift_metrics`` sets them up; ``pipeline.stats.evidently_check`` runs the same metrics on whole batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pipeline.domain.schema import FeatureSchema

PREDICTION = "prediction"  # the prediction's column in Evidently's data, and its key among scores and bounds
NUM_METHOD = "wasserstein"
CAT_METHOD = "jensenshannon"
HTML_SAMPLE_ROWS = 5_000  # rows of the batch and of the reference an Evidently HTML report is built on, at most
HTML_SAMPLE_SEED = 0


class EvidentlyReference(Protocol):
    """What a report reads of a reference (``pipeline.stats.drift.ReferenceProfile``)."""

    @property
    def schema(self) -> FeatureSchema: ...
    @property
    def prediction_threshold(self) -> float: ...
    @property
    def column_threshold(self) -> float: ...
    def reference_data(self) -> tuple[pd.DataFrame, np.ndarray]: ...


def sample_positions(rows: int, limit: int, seed: int = HTML_SAMPLE_SEED) -> np.ndarray:
    """The positions of a uniform sample of at most ``limit`` of ``rows`` rows, in order, without replacement;
    every position when there are no more than ``limit`` rows. The same arguments give the same sample."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


def evidently_definition(schema: FeatureSchema) -> Any:
    """Evidently's data definition of the schema's features and the prediction column."""
    from evidently import DataDefinition

    return DataDefinition(
        numerical_columns=[*schema.numerical, PREDICTION], categorical_columns=list(schema.categorical)
    )


def drift_metrics(
    reference: EvidentlyReference, usable: list[str], per_column: bool
) -> tuple[Any, Any, Any, dict[str, Any]]:
    """The report's metrics at the reference's thresholds: the prediction's drift, the drifted count of the
    ``usable`` columns, the missing values of every feature, and with ``per_column`` one drift per usable column."""
    from evidently.metrics import DatasetMissingValueCount, DriftedColumnsCount, ValueDrift

    schema = reference.schema
    prediction = ValueDrift(column=PREDICTION, method=NUM_METHOD, threshold=reference.prediction_threshold)
    columns = DriftedColumnsCount(
        columns=usable,
        num_method=NUM_METHOD,
        cat_method=CAT_METHOD,
        num_threshold=reference.column_threshold,
        cat_threshold=reference.column_threshold,
    )
    missing = DatasetMissingValueCount(columns=list(schema.features))
    categorical = set(schema.categorical)
    each = {
        name: ValueDrift(
            column=name,
            method=CAT_METHOD if name in categorical else NUM_METHOD,
            threshold=reference.column_threshold,
        )
        for name in (usable if per_column else [])
    }
    return prediction, columns, missing, each


def sampled_report(
    reference: EvidentlyReference, frame: pd.DataFrame, predictions: np.ndarray, rows: int | None = None
) -> Any:
    """The Evidently report of the batch against the reference, each side a uniform sample of at most
    ``rows`` rows (default ``HTML_SAMPLE_ROWS``; ``sample_positions``): what the HTML shows, in seconds whatever
    the batch size."""
    from evidently import Dataset, Report

    schema = reference.schema
    definition = evidently_definition(schema)
    sides = []
    for data, proba in (reference.reference_data(), (frame, np.asarray(predictions, dtype=np.float64))):
        kept = sample_positions(len(data), HTML_SAMPLE_ROWS if rows is None else rows)
        side = data[list(schema.features)].iloc[kept].reset_index(drop=True)
        side[PREDICTION] = proba[kept]
        sides.append(side)
    ref, current = sides
    usable = [name for name in schema.features if ref[name].notna().any() and current[name].notna().any()]
    prediction, columns, missing, _each = drift_metrics(reference, usable, per_column=False)
    report = Report([prediction, columns, missing])
    return report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
