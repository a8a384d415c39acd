"""A mergeable batch profile: the drift statistics of a batch of any size, from chunks profiled one at a time.

A ``BatchProfile`` holds everything ``ReferenceProfile.measure`` needs, as counts and sums that add up:
profile each chunk (a pandas chunk, a Spark partition, a day's file) with ``BinnedReference.profile``
(``pipeline.stats.binned_reference``, the reference's fixed bins), ``merge`` the chunk profiles in any order and
grouping, and score the merged profile with ``BinnedReference.measure``: the same ``DriftResult`` fields as the
exact path. Profiles serialize to a compact, versioned npz (``to_bytes`` / ``from_bytes``; no pickle), so drift
over a period is a merge of stored profiles, not a re-read of the data.

What a profile holds, per column:

- numerical columns and the prediction P(positive): counts on the reference's fixed edges
  ``e_0 < ... < e_{K-1}`` (``e_0`` and ``e_{K-1}`` are the reference's min and max). There are 2K+1 slots:
  below ``e_0``, exactly at each edge, strictly between consecutive edges, above ``e_{K-1}``. Each slot keeps
  its count and the sum of its values' offsets from the slot's anchor (the edge at or below it; ``e_0`` for
  the lower tail), so the mean of each slot is known. Plus the missing (NaN) and infinite counts.
- categorical columns: the exact count of every level (unseen levels included) and the missing count.
- labels, when the chunk has them: the confusion counts at the 0.5 cut (exact accuracy) and per-class
  counts of P(positive) on ``AUC_BINS`` equal bins of [0, 1] (ROC AUC); the sums of P(positive) and of
  P(1 - P) (mean prediction and prediction variance, as the policy's observation uses them).

Counts are integers: merging is exactly associative and commutative. The sums are float64: merging is
commutative exactly and associative to rounding (relative 1e-15, far below the bound on the scores of
``pipeline.stats.binned_reference``).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.stats.auc_interval import LEVEL, Estimate, grouped_estimate
from pipeline.stats.estimate import Estimator

FORMAT = "pipeline.batch-profile"
VERSION = 2
AUC_BINS = 10_000


class ProfileError(ValueError):
    """Profiles that cannot be merged or read: another reference's bins, another format, damaged bytes."""


@dataclass(frozen=True, eq=False)
class NumericCounts:
    """One numerical column (or the prediction) of a batch on its reference's 2K+1 slots."""

    counts: np.ndarray  # int64, per slot: below e_0, at e_0, (e_0, e_1), at e_1, ..., above e_{K-1}
    sums: np.ndarray  # float64, per slot: the sum of the values' offsets from the slot's anchor
    missing: int  # NaN
    infinite: int  # +-inf: neither missing nor scored, as Evidently drops them

    def merge(self, other: NumericCounts) -> NumericCounts:
        if self.counts.shape != other.counts.shape:
            raise ProfileError("numerical counts on different bins")
        return NumericCounts(
            self.counts + other.counts,
            self.sums + other.sums,
            self.missing + other.missing,
            self.infinite + other.infinite,
        )

    def same_as(self, other: NumericCounts) -> bool:
        return (
            np.array_equal(self.counts, other.counts)
            and np.array_equal(self.sums, other.sums)
            and (self.missing, self.infinite) == (other.missing, other.infinite)
        )


@dataclass(frozen=True, eq=False)
class CategoryCounts:
    """One categorical column of a batch: the count of each level (missing left out) and the missing count."""

    levels: Mapping[Any, int]
    missing: int

    @classmethod
    def of(cls, column: pd.Series) -> CategoryCounts:
        counts = column.value_counts(dropna=True)
        levels = {_plain(key): int(n) for key, n in counts.items()}
        return cls(levels, len(column) - int(counts.sum()))

    def merge(self, other: CategoryCounts) -> CategoryCounts:
        levels = dict(self.levels)
        for key, n in other.levels.items():
            levels[key] = levels.get(key, 0) + n
        return CategoryCounts(levels, self.missing + other.missing)

    def series(self) -> pd.Series:
        return pd.Series(dict(self.levels), dtype=np.int64)

    def same_as(self, other: CategoryCounts) -> bool:
        return dict(self.levels) == dict(other.levels) and self.missing == other.missing


@dataclass(frozen=True, eq=False)
class LabelCounts:
    """What accuracy and ROC AUC need: confusion counts at the 0.5 cut, per-class counts of P(positive) bins."""

    confusion: np.ndarray  # int64 [true negatives, false positives, false negatives, true positives]
    positives: np.ndarray  # int64, AUC_BINS: labelled positives per P(positive) bin
    negatives: np.ndarray  # int64, AUC_BINS

    @classmethod
    def empty(cls) -> LabelCounts:
        return cls(np.zeros(4, np.int64), np.zeros(AUC_BINS, np.int64), np.zeros(AUC_BINS, np.int64))

    @classmethod
    def of(cls, labels: np.ndarray, proba: np.ndarray) -> LabelCounts:
        y = np.asarray(labels).astype(np.int64)
        if y.shape != proba.shape or np.any((y != 0) & (y != 1)):
            raise ValueError("labels must be 0/1, one per prediction")
        known = np.isfinite(proba)
        y, p = y[known], proba[known]
        confusion = np.bincount(2 * y + (p >= 0.5), minlength=4).astype(np.int64)
        bins = np.clip(np.floor(p * AUC_BINS), 0, AUC_BINS - 1).astype(np.int64)
        return cls(
            confusion,
            np.bincount(bins[y == 1], minlength=AUC_BINS).astype(np.int64),
            np.bincount(bins[y == 0], minlength=AUC_BINS).astype(np.int64),
        )

    @property
    def labelled(self) -> int:
        return int(self.confusion.sum())

    def prediction_summary(self) -> tuple[float, float]:
        """The labelled rows' mean P(positive) and sum of p(1-p), at the centres of their bins (within half a
        bin, 1/(2 AUC_BINS), of the exact mean)."""
        rows = (self.positives + self.negatives).astype(np.float64)
        centres = (np.arange(AUC_BINS) + 0.5) / AUC_BINS
        count = rows.sum()
        mean = float(rows @ centres / count) if count else float("nan")
        return mean, float(rows @ (centres * (1 - centres)))

    def merge(self, other: LabelCounts) -> LabelCounts:
        return LabelCounts(
            self.confusion + other.confusion, self.positives + other.positives, self.negatives + other.negatives
        )

    def same_as(self, other: LabelCounts) -> bool:
        return all(
            np.array_equal(mine, theirs)
            for mine, theirs in (
                (self.confusion, other.confusion),
                (self.positives, other.positives),
                (self.negatives, other.negatives),
            )
        )


@dataclass(frozen=True, eq=False)
class ExpectedCounts:
    """What the performance estimate (``pipeline.stats.estimate``) needs, without labels: per bin of the raw
    P(positive) (``AUC_BINS`` equal bins of [0, 1]), the rows and the sum of their calibrated P(positive) (the
    expected positives), and the expected number of rows the 0.5 cut gets right. Empty when the profile was made
    without an estimator."""

    rows: np.ndarray  # int64, AUC_BINS
    expected_positives: np.ndarray  # float64, AUC_BINS
    expected_correct: float

    @classmethod
    def empty(cls) -> ExpectedCounts:
        return cls(np.zeros(AUC_BINS, np.int64), np.zeros(AUC_BINS, np.float64), 0.0)

    @classmethod
    def of(cls, proba: np.ndarray, calibrated: np.ndarray) -> ExpectedCounts:
        known = np.isfinite(proba)
        p, q = proba[known], np.asarray(calibrated, dtype=np.float64)[known]
        bins = np.clip(np.floor(p * AUC_BINS), 0, AUC_BINS - 1).astype(np.int64)
        return cls(
            np.bincount(bins, minlength=AUC_BINS).astype(np.int64),
            np.bincount(bins, weights=q, minlength=AUC_BINS),
            float(np.sum(np.where(p >= 0.5, q, 1.0 - q))),
        )

    def merge(self, other: ExpectedCounts) -> ExpectedCounts:
        return ExpectedCounts(
            self.rows + other.rows,
            self.expected_positives + other.expected_positives,
            self.expected_correct + other.expected_correct,
        )

    def same_as(self, other: ExpectedCounts) -> bool:
        return (
            np.array_equal(self.rows, other.rows)
            and np.array_equal(self.expected_positives, other.expected_positives)
            and self.expected_correct == other.expected_correct
        )

    def estimate(self) -> tuple[float | None, float | None]:
        """(expected ROC AUC, expected accuracy); rows in one bin count as tied. None where undefined."""
        estimated = self.estimated()
        return estimated.roc_auc, None if math.isnan(estimated.accuracy) else estimated.accuracy

    def estimated(self, estimator: Estimator | None = None, level: float = LEVEL) -> Estimate:
        """The estimate with its prediction interval (``pipeline.stats.auc_interval.grouped_estimate``, what
        ``Estimator.estimate`` computes on rows): each bin a group of tied rows at its midpoint. The interval counts
        the calibration's own spread when given the ``estimator`` whose calibrated probabilities were counted."""
        kept = np.flatnonzero(self.rows)
        return grouped_estimate(
            (kept + 0.5) / AUC_BINS,
            self.rows[kept],
            self.expected_positives[kept],
            self.expected_correct,
            None if estimator is None else estimator.spread,
            level,
        )


@dataclass(frozen=True, eq=False)
class BatchProfile:
    """The drift and quality statistics of a batch (or a merge of batches), against one reference's bins."""

    binning: str  # the digest of the reference bins the counts are on: only equal digests merge
    rows: int
    numerical: tuple[NumericCounts, ...]
    prediction: NumericCounts
    categorical: tuple[CategoryCounts, ...]
    labels: LabelCounts
    proba_sum: float  # sum of P(positive) over the rows (the mean prediction, merged)
    proba_spread: float  # sum of P(1 - P) (the prediction variance the policy uses)
    expected: ExpectedCounts = field(default_factory=ExpectedCounts.empty)

    def merge(self, other: BatchProfile) -> BatchProfile:
        """The profile of both batches together. Associative and commutative (the counts exactly)."""
        return merge(self, other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BatchProfile):
            return NotImplemented
        return (
            (self.binning, self.rows, self.proba_sum, self.proba_spread)
            == (other.binning, other.rows, other.proba_sum, other.proba_spread)
            and len(self.numerical) == len(other.numerical)
            and len(self.categorical) == len(other.categorical)
            and all(a.same_as(b) for a, b in zip(self.numerical, other.numerical, strict=True))
            and self.prediction.same_as(other.prediction)
            and all(a.same_as(b) for a, b in zip(self.categorical, other.categorical, strict=True))
            and self.labels.same_as(other.labels)
            and self.expected.same_as(other.expected)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def mean_prediction(self) -> float:
        return self.proba_sum / self.rows if self.rows else float("nan")

    # ------------------------------------------------------------ serialization

    def to_bytes(self) -> bytes:
        """A compressed npz: a JSON header (format, version, digest, levels) and flat numpy arrays; no pickle."""
        numeric = (*self.numerical, self.prediction)
        header = {
            "format": FORMAT,
            "version": VERSION,
            "binning": self.binning,
            "rows": self.rows,
            "proba_sum": self.proba_sum,
            "proba_spread": self.proba_spread,
            "expected_correct": self.expected.expected_correct,
            "levels": [list(column.levels) for column in self.categorical],
        }
        arrays = {
            "header": np.frombuffer(json.dumps(header, allow_nan=False).encode("utf-8"), dtype=np.uint8),
            "slots": np.array([column.counts.size for column in numeric], dtype=np.int64),
            "counts": np.concatenate([column.counts for column in numeric]),
            "sums": np.concatenate([column.sums for column in numeric]),
            "missing": np.array([column.missing for column in numeric], dtype=np.int64),
            "infinite": np.array([column.infinite for column in numeric], dtype=np.int64),
            "level_counts": np.array(
                [n for column in self.categorical for n in column.levels.values()], dtype=np.int64
            ),
            "level_missing": np.array([column.missing for column in self.categorical], dtype=np.int64),
            "confusion": self.labels.confusion,
            "positives": self.labels.positives,
            "negatives": self.labels.negatives,
            "expected_rows": self.expected.rows,
            "expected_positives": self.expected.expected_positives,
        }
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> BatchProfile:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            header = json.loads(arrays["header"].tobytes().decode("utf-8"))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as err:
            raise ProfileError(f"not a batch profile: {err}") from err
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ProfileError(f"unsupported profile format {header.get('format')!r} version {header.get('version')!r}")
        bounds = np.cumsum(arrays["slots"])[:-1]
        numeric = [
            NumericCounts(counts, sums, int(missing), int(infinite))
            for counts, sums, missing, infinite in zip(
                np.split(arrays["counts"], bounds),
                np.split(arrays["sums"], bounds),
                arrays["missing"],
                arrays["infinite"],
                strict=True,
            )
        ]
        level_counts = iter(arrays["level_counts"].tolist())
        categorical = tuple(
            CategoryCounts({key: next(level_counts) for key in keys}, int(missing))
            for keys, missing in zip(header["levels"], arrays["level_missing"], strict=True)
        )
        return cls(
            binning=header["binning"],
            rows=int(header["rows"]),
            numerical=tuple(numeric[:-1]),
            prediction=numeric[-1],
            categorical=categorical,
            labels=LabelCounts(arrays["confusion"], arrays["positives"], arrays["negatives"]),
            proba_sum=float(header["proba_sum"]),
            proba_spread=float(header["proba_spread"]),
            expected=ExpectedCounts(
                arrays["expected_rows"], arrays["expected_positives"], float(header["expected_correct"])
            ),
        )


def merge(a: BatchProfile, b: BatchProfile) -> BatchProfile:
    """The profile of two batches together: every count and sum added. Both must be on the same bins."""
    if a.binning != b.binning:
        raise ProfileError("profiles on different reference bins cannot be merged")
    return BatchProfile(
        binning=a.binning,
        rows=a.rows + b.rows,
        numerical=tuple(x.merge(y) for x, y in zip(a.numerical, b.numerical, strict=True)),
        prediction=a.prediction.merge(b.prediction),
        categorical=tuple(x.merge(y) for x, y in zip(a.categorical, b.categorical, strict=True)),
        labels=a.labels.merge(b.labels),
        proba_sum=a.proba_sum + b.proba_sum,
        proba_spread=a.proba_spread + b.proba_spread,
        expected=a.expected.merge(b.expected),
    )


def merge_all(profiles: Iterable[BatchProfile]) -> BatchProfile:
    """The merge of one or more profiles."""
    merged: BatchProfile | None = None
    for profile in profiles:
        merged = profile if merged is None else merge(merged, profile)
    if merged is None:
        raise ValueError("no profile to merge")
    return merged


def _plain(key: Any) -> Any:
    """A level as a plain Python value (numpy scalars unwrapped), so that it serializes as JSON."""
    return key.item() if isinstance(key, np.generic) else key
