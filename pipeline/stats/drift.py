"""Drift of each batch against a reference profile built once, with Evidently's methods, computed in numpy.

A numerical column (and the prediction) is scored by the normed Wasserstein distance, a categorical column by
the Jensen-Shannon distance (``pipeline.stats.column_profiles``); a column counts as drifted when its score is
>= the threshold (default 0.1, i.e. for a numerical column the mass moved by a tenth of a standard deviation on
average). Prediction drift is measured on the predicted probability of the positive class, not on the 0/1 label.

How it is computed. The reference does not change between batches, so it is profiled once: per numerical
column its distinct finite values, their cumulative counts and its standard deviation; per categorical column
its level counts. A batch then costs one sort per numerical column and a ``value_counts`` per categorical one.
The scores equal Evidently's up to floating-point rounding; ``tests/unit/stats/test_drift_agreement.py`` holds
them to Evidently's own values.

Evidently stays the report engine: ``DriftResult.save_html`` builds an Evidently report for the batch on
demand (``pipeline.stats.evidently_report.sampled_report``, on a sample of the batch and of the reference: a
picture to look at, not the figures the monitor decides on: those are always the whole batch's), and
``pipeline.stats.evidently_check`` runs Evidently on the whole batch, the reference the scores are checked against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema
from pipeline.stats.column_profiles import CategoricalProfile, NumericProfile
from pipeline.stats.evidently_report import sampled_report

if TYPE_CHECKING:
    from pipeline.stats.noise import NoiseBand, NoiseModel


def column_drifted(score: float, threshold: float) -> bool:
    """The column rule: drifted when the score reaches the threshold; NaN (a side without values) never."""
    return bool(score >= threshold)


@dataclass(frozen=True)
class DriftResult:
    """One batch's drift. ``column_scores`` holds every feature's score (NaN where a side has no values).

    Once judged against the reference's noise band (``judged``), ``prediction_p`` and ``column_p`` hold the chance
    of a score at least as large under no drift (``pipeline.stats.noise``; a column below its threshold is not
    tested and holds 1), and ``significant`` the columns the
    Benjamini-Hochberg procedure rejects: a column then counts as drifted only when its score reaches the column
    threshold **and** it is significant. Unjudged (no noise model), the threshold alone decides.
    """

    prediction_drift: float
    drifted_columns: int
    share_drifted_columns: float
    share_missing: float
    unseen_categories: int
    column_scores: Mapping[str, float] = field(default_factory=dict, repr=False)
    column_threshold: float = 0.1
    build_report: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    prediction_p: float | None = None
    column_p: Mapping[str, float] = field(default_factory=dict, repr=False)
    significant: frozenset[str] | None = None  # None: not judged against a noise band
    false_rate: float | None = None  # the false-alarm rate it was judged at

    @classmethod
    def of(
        cls,
        scores: Mapping[str, float],
        prediction_drift: float,
        *,
        missing: int,
        rows: int,
        unseen: int,
        column_threshold: float,
        build_report: Callable[[], Any] | None = None,
    ) -> DriftResult:
        """A batch's drift from its scores and counts: the one place the batch figures are derived."""
        drifted = sum(1 for score in scores.values() if column_drifted(score, column_threshold))
        cells = rows * len(scores)
        return cls(
            prediction_drift=prediction_drift,
            drifted_columns=drifted,
            share_drifted_columns=drifted / len(scores) if scores else 0.0,
            share_missing=missing / cells if cells else 0.0,
            unseen_categories=unseen,
            column_scores=dict(scores),
            column_threshold=column_threshold,
            build_report=build_report,
        )

    def judged(self, band: NoiseBand | None, false_rate: float) -> DriftResult:
        """This result with the p-values of its scores at the batch's size, and the drifted columns recounted:
        score at or above the threshold and rejected by Benjamini-Hochberg at ``false_rate`` over the features."""
        if band is None:
            return self
        from pipeline.stats.noise import benjamini_hochberg

        # A column below its threshold cannot drift: its tail is not drawn, and it counts as p = 1 among the
        # tests (Benjamini-Hochberg then rejects a subset of what it would with its own p: still at the rate).
        column_p = {
            name: band.column_p(name, score) if column_drifted(score, self.column_threshold) else _untested(score)
            for name, score in self.column_scores.items()
        }
        significant = frozenset(benjamini_hochberg(column_p, false_rate))
        drifted = sum(
            1
            for name, score in self.column_scores.items()
            if column_drifted(score, self.column_threshold) and name in significant
        )
        return replace(
            self,
            prediction_p=band.prediction_p(self.prediction_drift),
            column_p=column_p,
            significant=significant,
            false_rate=false_rate,
            drifted_columns=drifted,
            share_drifted_columns=drifted / len(self.column_scores) if self.column_scores else 0.0,
        )

    def evidently_snapshot(self) -> Any:
        """The Evidently report of this batch against the reference, computed now."""
        if self.build_report is None:
            raise RuntimeError("this drift result keeps no data to build an Evidently report from")
        return self.build_report()

    def save_html(self, path: str) -> None:
        """Write the Evidently HTML report of this batch (``pipeline.stats.evidently_report.sampled_report``)."""
        self.evidently_snapshot().save_html(path)

    def is_drifted(self, name: str) -> bool:
        """A column drifted when its score reaches the column threshold (a NaN score, an empty side, never) and,
        once judged against a noise band, it is significant too."""
        score = self.column_scores.get(name, float("nan"))
        if not column_drifted(score, self.column_threshold):
            return False
        return self.significant is None or name in self.significant

    def drifted_features(self) -> list[tuple[str, float]]:
        """The drifted feature columns with their scores, highest first."""
        drifted = [(name, score) for name, score in self.column_scores.items() if self.is_drifted(name)]
        return sorted(drifted, key=lambda item: (-item[1], item[0]))


def _sorted_columns(frame: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray:
    """The columns as rows of one float64 array, each sorted (NaN last)."""
    rows = np.empty((len(names), len(frame)), dtype=np.float64)
    for i, name in enumerate(names):
        rows[i] = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
    rows.sort(axis=1)
    return rows


def _finite_part(sorted_row: np.ndarray) -> np.ndarray:
    """The finite values of a sorted row: after any -inf, before any +inf and NaN."""
    low = int(np.searchsorted(sorted_row, -np.inf, side="right"))
    high = int(np.searchsorted(sorted_row, np.inf, side="left"))
    return sorted_row[low:high]


class Scores(Protocol):
    """A model's P(positive) on a frame's rows (``pipeline.model.scoring.Scorer``)."""

    def proba(self, frame: pd.DataFrame) -> Any: ...


def _untested(score: float) -> float:
    """The p-value a column below its threshold counts with: 1, or NaN (no test) when it has no score."""
    return 1.0 if np.isfinite(score) else math.nan


class ReferenceProfile:
    """The reference data and the champion's predictions on it, profiled once for every later batch."""

    def __init__(
        self,
        frame: pd.DataFrame,
        predictions: np.ndarray,
        schema: FeatureSchema,
        *,
        prediction_threshold: float,
        column_threshold: float,
        prediction_null: np.ndarray | None = None,
    ) -> None:
        self.schema = schema
        self.prediction_threshold = prediction_threshold
        self.column_threshold = column_threshold
        self.rows = len(frame)
        self._frame = frame
        self._predictions = np.asarray(predictions, dtype=np.float64)
        reference = _sorted_columns(frame, schema.numerical)
        self._numeric = [NumericProfile.of(_finite_part(row)) for row in reference]
        self._prediction = NumericProfile.of(self._predictions)
        null = None if prediction_null is None else np.asarray(prediction_null, dtype=np.float64)
        self.prediction_null = None if null is None else np.sort(null[np.isfinite(null)])
        self._categorical = [CategoricalProfile.of(frame[name]) for name in schema.categorical]
        self._noise: NoiseModel | None = None

    @classmethod
    def scored(
        cls,
        frame: pd.DataFrame,
        model: Scores,
        schema: FeatureSchema,
        *,
        prediction_threshold: float,
        column_threshold: float,
        prediction_null: np.ndarray | None = None,
    ) -> ReferenceProfile:
        """A reference as the monitor, the report, the Spark job and ``period-drift`` build it: its rows scored
        by the model whose batches it judges. ``prediction_null``: that model's P(positive) on rows of the same
        population it was not fitted on, when the reference's rows may be ones it was fitted on
        (``pipeline.stats.noise``: the prediction's noise band is drawn from them)."""
        return cls(
            frame,
            np.asarray(model.proba(frame)),
            schema,
            prediction_threshold=prediction_threshold,
            column_threshold=column_threshold,
            prediction_null=prediction_null,
        )

    @property
    def noise(self) -> NoiseModel:
        """The reference's noise model (``pipeline.stats.noise``): its bands are drawn on first use and cached."""
        if self._noise is None:
            from pipeline.stats.noise import NoiseModel

            self._noise = NoiseModel(self)
        return self._noise

    def reference_data(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The reference rows and the champion's P(positive) on them."""
        return self._frame, self._predictions

    @property
    def numeric_profiles(self) -> tuple[NumericProfile, ...]:
        """The numerical columns' profiles, in the schema's order."""
        return tuple(self._numeric)

    @property
    def prediction_profile(self) -> NumericProfile:
        """The profile of the reference's P(positive)."""
        return self._prediction

    @property
    def categorical_profiles(self) -> tuple[CategoricalProfile, ...]:
        """The categorical columns' profiles, in the schema's order."""
        return tuple(self._categorical)

    # ------------------------------------------------------------ the fast path

    def measure(self, frame: pd.DataFrame, predictions: np.ndarray) -> DriftResult:
        """Drift of one batch against the reference. A column empty on either side counts as not drifted."""
        scores: dict[str, float] = {}
        missing = 0
        current = _sorted_columns(frame, self.schema.numerical)
        for name, numeric, row in zip(self.schema.numerical, self._numeric, current, strict=True):
            missing += row.size - int(np.searchsorted(row, np.nan, side="left"))
            scores[name] = numeric.score(_finite_part(row))
        unseen = 0
        for name, categorical in zip(self.schema.categorical, self._categorical, strict=True):
            column = frame[name]
            counts = column.value_counts(dropna=True)
            missing += len(column) - int(counts.sum())
            scores[name] = categorical.score(counts)
            unseen += categorical.unseen(counts)
        proba = np.sort(np.asarray(predictions, dtype=np.float64))
        return DriftResult.of(
            scores,
            self._prediction.score(_finite_part(proba)),
            missing=missing,
            rows=len(frame),
            unseen=unseen,
            column_threshold=self.column_threshold,
            build_report=lambda: sampled_report(self, frame, predictions),
        )

    def unseen_categories(self, frame: pd.DataFrame) -> int:
        """Cells whose category level never occurs in the reference."""
        return sum(
            profile.unseen(frame[name].value_counts(dropna=True))
            for name, profile in zip(self.schema.categorical, self._categorical, strict=True)
        )
