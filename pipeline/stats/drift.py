"""Drift of each batch against a reference profile built once, with Evidently's methods, computed in numpy.

The drift score of a numerical column (and of the prediction) is Evidently's ``wasserstein`` method: the
Wasserstein distance between the reference and current distributions divided by the reference standard
deviation ("normed"). 0 means identical distributions; larger means more drift; a column counts as drifted
when its score is >= the threshold (default 0.1, i.e. the mass moved by a tenth of a standard deviation on
average). Categorical columns use Jensen-Shannon distance (0..1, larger = more drift), threshold 0.1.

Prediction drift is measured on the predicted probability of admission, not on the 0/1 label.

How it is computed. The reference does not change between batches, so it is profiled once: per numerical
column its distinct finite values, their cumulative counts and its standard deviation; per categorical column
its level counts. A batch then costs one sort per numerical column and a ``value_counts`` per categorical one.
The Wasserstein distance is the exact integral of |F_ref - F_cur| over the merged support of both samples
(what scipy computes, on distinct values instead of all values), so the scores equal Evidently's up to
floating-point rounding; ``tests/unit/test_drift_agreement.py`` holds them to Evidently's own values.

Evidently stays the report engine: ``DriftResult.save_html`` builds an Evidently report for the batch on
demand, on a uniform sample of at most ``HTML_SAMPLE_ROWS`` rows of the batch and of the reference (a picture
to look at, not the figures the monitor decides on: those are always the whole batch's), and
``ReferenceProfile.evidently_report`` is the per-batch report the scores are checked against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema

if TYPE_CHECKING:
    from pipeline.stats.noise import NoiseBand, NoiseModel

PREDICTION = "prediction"
NUM_METHOD = "wasserstein"
CAT_METHOD = "jensenshannon"
MIN_NORM = 0.001  # Evidently's floor on the reference standard deviation
HTML_SAMPLE_ROWS = 5_000  # rows of the batch and of the reference an Evidently HTML report is built on, at most
HTML_SAMPLE_SEED = 0


def sample_positions(rows: int, limit: int, seed: int = HTML_SAMPLE_SEED) -> np.ndarray:
    """The positions of a uniform sample of at most ``limit`` of ``rows`` rows, in order, without replacement;
    every position when there are no more than ``limit`` rows. The same arguments give the same sample."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


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
        """Write the Evidently HTML report of this batch (on at most ``HTML_SAMPLE_ROWS`` rows of each side)."""
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


@dataclass(frozen=True)
class NumericProfile:
    """A numerical column of the reference: its distinct finite values, the share of each, its std."""

    values: np.ndarray
    shares: np.ndarray
    count: int
    norm: float

    @classmethod
    def of(cls, sorted_finite: np.ndarray) -> NumericProfile:
        values, counts = _distinct(sorted_finite)
        size = sorted_finite.size
        norm = max(float(np.std(sorted_finite)), MIN_NORM) if size else MIN_NORM
        return cls(values, counts / max(size, 1), int(size), norm)

    def score(self, current_sorted: np.ndarray) -> float:
        """Normed Wasserstein distance to a sorted sample of finite values (NaN if either side is empty).

        W1 is the integral of |F_ref - F_cur| over the line. Both samples' distinct values are merged in
        order (a stable argsort of two sorted runs, linear time); the running sum of reference shares minus
        current shares is F_ref - F_cur just after each point, constant up to the next point.
        """
        if self.count == 0 or current_sorted.size == 0:
            return float("nan")
        values, counts = _distinct(current_sorted)
        return self.distance(values, counts / current_sorted.size)

    def distance(self, points: np.ndarray, shares: np.ndarray) -> float:
        """Normed Wasserstein distance to a weighted sample: sorted ``points`` carrying ``shares`` (summing to 1).

        Zero shares are allowed and change nothing; ``score`` passes a sample's distinct values and shares.
        """
        merged = np.concatenate((self.values, points))
        order = np.argsort(merged, kind="stable")
        gap = np.cumsum(np.concatenate((self.shares, -shares))[order])
        return float(np.dot(np.abs(gap[:-1]), np.diff(merged[order]))) / self.norm


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical column of the reference: the count of each level (missing values left out)."""

    counts: dict[Any, int]
    count: int
    levels: frozenset[str]

    @classmethod
    def of(cls, column: pd.Series) -> CategoricalProfile:
        counts = column.value_counts(dropna=True)
        return cls(
            {key: int(n) for key, n in counts.items()},
            int(counts.sum()),
            frozenset(str(key) for key in counts.index),
        )

    def score(self, current: pd.Series) -> float:
        """Jensen-Shannon distance (natural log) of the level frequencies (NaN if a side is empty)."""
        if self.count == 0 or current.sum() == 0:
            return float("nan")
        keys = list(self.counts.keys() | current.index)
        ref = np.array([self.counts.get(key, 0) for key in keys], dtype=np.float64) / self.count
        cur = current.reindex(keys, fill_value=0).to_numpy(dtype=np.float64) / float(current.sum())
        return jensen_shannon(ref, cur)

    def unseen(self, current: pd.Series) -> int:
        return int(sum(n for key, n in current.items() if str(key) not in self.levels))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance between two frequency vectors, as ``scipy.spatial.distance.jensenshannon``."""
    p = p / p.sum()
    q = q / q.sum()
    mid = (p + q) / 2
    total = _relative_entropy(p, mid) + _relative_entropy(q, mid)
    return float(np.sqrt(max(total, 0.0) / 2))


def _relative_entropy(p: np.ndarray, q: np.ndarray) -> float:
    nonzero = p > 0
    return float(np.sum(p[nonzero] * np.log(p[nonzero] / q[nonzero])))


def _distinct(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and how often each occurs."""
    if sorted_values.size == 0:
        return sorted_values, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
    return sorted_values[starts], np.diff(np.append(starts, sorted_values.size))


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


def evidently_definition(schema: FeatureSchema) -> Any:
    """Evidently's data definition of the schema's features and the prediction column."""
    from evidently import DataDefinition

    return DataDefinition(
        numerical_columns=[*schema.numerical, PREDICTION], categorical_columns=list(schema.categorical)
    )


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
        self._evidently: tuple[Any, Any] | None = None
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
            build_report=lambda: self.sampled_report(frame, predictions),
        )

    def unseen_categories(self, frame: pd.DataFrame) -> int:
        """Cells whose category level never occurs in the reference."""
        return sum(
            profile.unseen(frame[name].value_counts(dropna=True))
            for name, profile in zip(self.schema.categorical, self._categorical, strict=True)
        )

    # ------------------------------------------------------------ Evidently, the reference implementation

    def _evidently_inputs(self) -> tuple[Any, Any]:
        from evidently import Dataset

        if self._evidently is None:
            definition = evidently_definition(self.schema)
            reference = self._frame[list(self.schema.features)].copy()
            reference[PREDICTION] = self._predictions
            self._evidently = (definition, Dataset.from_pandas(reference, data_definition=definition))
        return self._evidently

    def usable_columns(self, frame: pd.DataFrame) -> list[str]:
        """Features with values on both sides: the ones Evidently can compare."""
        return [name for name in self.schema.features if self._frame[name].notna().any() and frame[name].notna().any()]

    def _evidently_metrics(self, usable: list[str], per_column: bool) -> tuple[Any, Any, Any, dict[str, Any]]:
        from evidently.metrics import DatasetMissingValueCount, DriftedColumnsCount, ValueDrift

        prediction = ValueDrift(column=PREDICTION, method=NUM_METHOD, threshold=self.prediction_threshold)
        columns = DriftedColumnsCount(
            columns=usable,
            num_method=NUM_METHOD,
            cat_method=CAT_METHOD,
            num_threshold=self.column_threshold,
            cat_threshold=self.column_threshold,
        )
        missing = DatasetMissingValueCount(columns=list(self.schema.features))
        categorical = set(self.schema.categorical)
        each = {
            name: ValueDrift(
                column=name,
                method=CAT_METHOD if name in categorical else NUM_METHOD,
                threshold=self.column_threshold,
            )
            for name in (usable if per_column else [])
        }
        return prediction, columns, missing, each

    def _run_evidently(self, frame: pd.DataFrame, predictions: np.ndarray, per_column: bool) -> tuple[Any, tuple]:
        from evidently import Dataset, Report

        definition, reference = self._evidently_inputs()
        current = frame[list(self.schema.features)].copy()
        current[PREDICTION] = predictions
        metrics = self._evidently_metrics(self.usable_columns(frame), per_column)
        prediction, columns, missing, each = metrics
        report = Report([prediction, columns, missing, *each.values()])
        return report.run(Dataset.from_pandas(current, data_definition=definition), reference), metrics

    def sampled_report(self, frame: pd.DataFrame, predictions: np.ndarray, rows: int | None = None) -> Any:
        """The Evidently report of the batch against the reference, each side a uniform sample of at most
        ``rows`` rows (default ``HTML_SAMPLE_ROWS``; ``sample_positions``): what the HTML shows, in seconds whatever
        the batch size."""
        from evidently import Dataset, Report

        definition = evidently_definition(self.schema)
        sides = []
        for data, proba in ((self._frame, self._predictions), (frame, np.asarray(predictions, dtype=np.float64))):
            kept = sample_positions(len(data), HTML_SAMPLE_ROWS if rows is None else rows)
            side = data[list(self.schema.features)].iloc[kept].reset_index(drop=True)
            side[PREDICTION] = proba[kept]
            sides.append(side)
        reference, current = sides
        usable = [
            name for name in self.schema.features if reference[name].notna().any() and current[name].notna().any()
        ]
        prediction, columns, missing, _each = self._evidently_metrics(usable, per_column=False)
        report = Report([prediction, columns, missing])
        return report.run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )

    def evidently_report(self, frame: pd.DataFrame, predictions: np.ndarray, *, per_column: bool = False) -> Any:
        """A fresh Evidently report of the batch: prediction drift, drifted columns, missing values.

        With ``per_column``, one ``ValueDrift`` per usable feature is added (slow: for checks only).
        """
        return self._run_evidently(frame, predictions, per_column)[0]

    def measure_with_evidently(
        self, frame: pd.DataFrame, predictions: np.ndarray, *, per_column: bool = False
    ) -> DriftResult:
        """The result of ``measure`` with every figure read from a fresh Evidently report: the slow baseline.

        ``column_scores`` is filled only with ``per_column``.
        """
        snapshot, (prediction, columns, missing, each) = self._run_evidently(frame, predictions, per_column)
        results = snapshot.metric_results
        drifted = int(results[columns.metric_id].count.value)
        cells = len(frame) * len(self.schema.features)
        return DriftResult(
            prediction_drift=float(results[prediction.metric_id].value),
            drifted_columns=drifted,
            share_drifted_columns=drifted / len(self.schema.features),
            share_missing=float(results[missing.metric_id].count.value) / cells if cells else 0.0,
            unseen_categories=self.unseen_categories(frame),
            column_scores={name: float(results[metric.metric_id].value) for name, metric in each.items()},
            column_threshold=self.column_threshold,
            build_report=lambda: snapshot,
        )
