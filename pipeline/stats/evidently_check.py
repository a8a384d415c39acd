"""Evidently, the reference implementation: a fresh Evidently report of a whole batch, the slow baseline.

``ReferenceProfile.measure`` (``pipeline.stats.drift``) computes Evidently's methods in numpy; the functions here
run Evidently itself on the same batch against the same reference, with the metrics of
``pipeline.stats.evidently_report.drift_metrics``: ``full_report`` is the per-batch report the scores are checked
against (``tests/unit/stats/test_drift_agreement.py``), ``measure_with_evidently`` reads every figure of a
``DriftResult`` from it (the baseline of the benchmarks). The reference's Evidently dataset is built once per
reference and kept while the reference lives.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pandas as pd

from pipeline.stats.drift import DriftResult, ReferenceProfile
from pipeline.stats.evidently_report import PREDICTION, drift_metrics, evidently_definition

_REFERENCE_DATA: weakref.WeakKeyDictionary[ReferenceProfile, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def _evidently_inputs(reference: ReferenceProfile) -> tuple[Any, Any]:
    """Evidently's data definition and the reference as an Evidently dataset, built on first use."""
    from evidently import Dataset

    if reference not in _REFERENCE_DATA:
        definition = evidently_definition(reference.schema)
        frame, predictions = reference.reference_data()
        data = frame[list(reference.schema.features)].copy()
        data[PREDICTION] = predictions
        _REFERENCE_DATA[reference] = (definition, Dataset.from_pandas(data, data_definition=definition))
    return _REFERENCE_DATA[reference]


def usable_columns(reference: ReferenceProfile, frame: pd.DataFrame) -> list[str]:
    """Features with values on both sides: the ones Evidently can compare."""
    data, _ = reference.reference_data()
    return [name for name in reference.schema.features if data[name].notna().any() and frame[name].notna().any()]


def _run_evidently(
    reference: ReferenceProfile, frame: pd.DataFrame, predictions: np.ndarray, per_column: bool
) -> tuple[Any, tuple]:
    from evidently import Dataset, Report

    definition, ref = _evidently_inputs(reference)
    current = frame[list(reference.schema.features)].copy()
    current[PREDICTION] = predictions
    metrics = drift_metrics(reference, usable_columns(reference, frame), per_column)
    prediction, columns, missing, each = metrics
    report = Report([prediction, columns, missing, *each.values()])
    return report.run(Dataset.from_pandas(current, data_definition=definition), ref), metrics


def full_report(
    reference: ReferenceProfile, frame: pd.DataFrame, predictions: np.ndarray, *, per_column: bool = False
) -> Any:
    """A fresh Evidently report of the whole batch: prediction drift, drifted columns, missing values.

    With ``per_column``, one ``ValueDrift`` per usable feature is added (slow: for checks only).
    """
    return _run_evidently(reference, frame, predictions, per_column)[0]


def measure_with_evidently(
    reference: ReferenceProfile, frame: pd.DataFrame, predictions: np.ndarray, *, per_column: bool = False
) -> DriftResult:
    """The result of ``ReferenceProfile.measure`` with every figure read from a fresh Evidently report: the slow
    baseline.

    ``column_scores`` is filled only with ``per_column``.
    """
    snapshot, (prediction, columns, missing, each) = _run_evidently(reference, frame, predictions, per_column)
    results = snapshot.metric_results
    features = reference.schema.features
    drifted = int(results[columns.metric_id].count.value)
    cells = len(frame) * len(features)
    return DriftResult(
        prediction_drift=float(results[prediction.metric_id].value),
        drifted_columns=drifted,
        share_drifted_columns=drifted / len(features),
        share_missing=float(results[missing.metric_id].count.value) / cells if cells else 0.0,
        unseen_categories=reference.unseen_categories(frame),
        column_scores={name: float(results[metric.metric_id].value) for name, metric in each.items()},
        column_threshold=reference.column_threshold,
        build_report=lambda: snapshot,
    )
