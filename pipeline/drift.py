"""Drift measured with Evidently 0.7 against a reference profile built once.

The drift score of a numerical column (and of the prediction) is Evidently's ``wasserstein`` method: the
Wasserstein distance between the reference and current distributions divided by the reference standard
deviation ("normed"). 0 means identical distributions; larger means more drift; a column counts as drifted
when its score is >= the threshold (default 0.1, i.e. the mass moved by a tenth of a standard deviation on
average). Categorical columns use Jensen-Shannon distance (0..1, larger = more drift), threshold 0.1.

Prediction drift is measured on the predicted probability of admission, not on the 0/1 label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import DatasetMissingValueCount, DriftedColumnsCount, ValueDrift

from pipeline.schema import FeatureSchema

PREDICTION = "prediction"
NUM_METHOD = "wasserstein"
CAT_METHOD = "jensenshannon"


@dataclass(frozen=True)
class DriftResult:
    prediction_drift: float
    drifted_columns: int
    share_drifted_columns: float
    share_missing: float
    unseen_categories: int
    snapshot: Any

    def save_html(self, path: str) -> None:
        self.snapshot.save_html(path)


class ReferenceProfile:
    """The reference data and the champion's predictions on it, wrapped for Evidently once."""

    def __init__(
        self,
        frame: pd.DataFrame,
        predictions: np.ndarray,
        schema: FeatureSchema,
        *,
        prediction_threshold: float,
        column_threshold: float,
    ) -> None:
        self.schema = schema
        self.prediction_threshold = prediction_threshold
        self.column_threshold = column_threshold
        self.rows = len(frame)
        self._definition = DataDefinition(
            numerical_columns=[*schema.numerical, PREDICTION], categorical_columns=list(schema.categorical)
        )
        reference = frame[list(schema.features)].copy()
        reference[PREDICTION] = predictions
        self._dataset = Dataset.from_pandas(reference, data_definition=self._definition)
        self._levels = {
            name: set(frame[name].dropna().astype(str).unique()) for name in schema.categorical
        }
        self._present = [name for name in schema.features if frame[name].notna().any()]

    def _metrics(self, usable: list[str]) -> tuple[ValueDrift, DriftedColumnsCount, DatasetMissingValueCount]:
        return (
            ValueDrift(column=PREDICTION, method=NUM_METHOD, threshold=self.prediction_threshold),
            DriftedColumnsCount(
                columns=usable,
                num_method=NUM_METHOD,
                cat_method=CAT_METHOD,
                num_threshold=self.column_threshold,
                cat_threshold=self.column_threshold,
            ),
            DatasetMissingValueCount(columns=list(self.schema.features)),
        )

    def unseen_categories(self, frame: pd.DataFrame) -> int:
        """Cells whose category level never occurs in the reference."""
        total = 0
        for name, levels in self._levels.items():
            values = frame[name].dropna().astype(str)
            total += int((~values.isin(levels)).sum())
        return total

    def measure(self, frame: pd.DataFrame, predictions: np.ndarray) -> DriftResult:
        """Drift of one batch against the reference, read from Evidently by metric."""
        current = frame[list(self.schema.features)].copy()
        current[PREDICTION] = predictions
        # A column empty on either side has no distribution to compare; it is counted as not drifted.
        usable = [name for name in self._present if current[name].notna().any()]
        prediction_metric, columns_metric, missing_metric = self._metrics(usable)
        snapshot = Report([prediction_metric, columns_metric, missing_metric]).run(
            Dataset.from_pandas(current, data_definition=self._definition), self._dataset
        )
        results = snapshot.metric_results
        prediction_drift = float(results[prediction_metric.metric_id].value)
        drifted = results[columns_metric.metric_id]
        missing = results[missing_metric.metric_id]
        cells = len(current) * len(self.schema.features)
        return DriftResult(
            prediction_drift=prediction_drift,
            drifted_columns=int(drifted.count.value),
            share_drifted_columns=float(drifted.count.value) / len(self.schema.features),
            share_missing=float(missing.count.value) / cells if cells else 0.0,
            unseen_categories=self.unseen_categories(current),
            snapshot=snapshot,
        )
