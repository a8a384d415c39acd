"""A mergeable batch profile: the drift statistics of a batch of any size, from chunks profiled one at a time.

A ``BatchProfile`` holds everything ``ReferenceProfile.measure`` needs, as counts and sums that add up:
profile each chunk (a pandas chunk, a Spark partition, a day's file) with ``BinnedReference.profile``,
``merge`` the chunk profiles in any order and grouping, and score the merged profile with
``BinnedReference.measure``: the same ``DriftResult`` fields as the exact path. Profiles serialize to a
compact, versioned npz (``to_bytes`` / ``from_bytes``; no pickle), so drift over a period is a merge of
stored profiles, not a re-read of the data.

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
commutative exactly and associative to rounding (relative 1e-15, far below the bound below).

The edges. Per numerical column (and the prediction), the union of the reference's quantiles at
``QUANTILE_EDGES`` equally spaced ranks (every distinct value when there are no more than that) and
``EVEN_EDGES`` equally spaced points from its min to its max. Quantile edges are narrow where the reference
has mass, even edges bound the widest bin to range / (``EVEN_EDGES`` - 1); a column with few distinct values
(counts, flags, ordinals) has every value as an edge, so its ties land exactly on edges.

The Wasserstein distance from a profile. Each slot's mass is placed at its mean, and the normed W1 between
the reference (its exact distinct values, kept by ``ReferenceProfile``) and that weighted sample is
computed exactly, by the same code as the exact path (``NumericProfile.distance``). Why this is exact
almost everywhere, and how far off it can be elsewhere:

- the tails are exact: below ``e_0`` the reference CDF is 0, so the integral of |F_ref - F_cur| there is
  the integral of F_cur, which is the sum of (e_0 - x) over the batch divided by n: the slot's sum. Moving
  the slot's mass to its mean keeps that integral. Likewise above ``e_{K-1}``, where F_ref is 1.
- values exactly at an edge are exact (no width).
- inside an open bin (a, b), F_cur runs from its value at a up by the bin's share, and F_ref between its
  values just after a and just before b (known exactly). When these two ranges do not overlap, F_ref - F_cur
  keeps one sign over the bin, so the integral of |F_ref - F_cur| is the absolute integral of F_ref - F_cur,
  which depends on the bin's values only through their count and sum: exact again, and the mass at the
  mean gives that same value.
- only where the two CDFs cross inside a bin ("ambiguous" bins) is the value approximate. There,
  |W(true) - W(estimate)| <= the integral of |F_cur - F_est| = (share of the bin) x (mean absolute deviation
  of its values from their mean), and a sample on [a, b] with mean m deviates from m by at most
  2 (m - a)(b - m) / (b - a) on average. Summed over ambiguous bins and divided by the reference's std,
  that is ``BinnedReference.error_bounds``: a proved bound on each numerical score, computed from the profile.

A priori, whatever the batch, the bound is at most the widest bin over twice the reference's std, so at
most range / (2 (``EVEN_EDGES`` - 1) std); in practice it is far smaller, because only the bins where the
two CDFs cross count, and in those the current share is small.

Measured against the exact scores of ``ReferenceProfile.measure``, each batch profiled in 10 chunks and
merged: on the demo data (a 20,000-row reference; batches of 300 to 100,000 rows, every ``DriftKind``) the
largest deviation of any score was 3.1e-5 and the largest computed bound 4.0e-4; on heavy tails (lognormal,
Cauchy), integer and 0/1 columns, constant columns and values far beyond the reference's range (the cases
of ``tests/unit/test_profile.py``), at most 4.1e-5, with integer columns, constant columns and the tails
exact to rounding. Section 2 of the benchmarks reports the same against Evidently's decisions. Categorical
scores, missing shares and unseen counts are exact (the same code on the same counts). A serialized demo
profile (81 features) is about 50 KB for 300 rows and under 1 MB for 100,000 rows.

ROC AUC from the per-class bins counts a (positive, negative) pair in different bins exactly and a pair in
the same bin as a tie (one half, as ROC AUC counts true ties), so its error is at most half the share of
pairs that share a bin: ``LabelQuality.roc_auc_bound``, computed from the profile. Measured on the demo's
xgboost champion, 500 to 50,000 labelled rows: deviation at most 3.6e-5, bound at most 1e-4. Accuracy is
exact.
"""

from __future__ import annotations

import hashlib
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

from pipeline.stats.auc_interval import LEVEL, Estimate, grouped_estimate, ranked_pairs
from pipeline.stats.column_profiles import NumericProfile
from pipeline.stats.drift import DriftResult, ReferenceProfile
from pipeline.stats.estimate import Estimator
from pipeline.stats.evidently_report import PREDICTION

FORMAT = "pipeline.batch-profile"
VERSION = 2
QUANTILE_EDGES = 2048
EVEN_EDGES = 2048
AUC_BINS = 10_000
_OVERLAP_SLACK = 1e-12  # a bin counts as ambiguous a hair early: rounding in the cumulative sums


class ProfileError(ValueError):
    """Profiles that cannot be merged or read: another reference's bins, another format, damaged bytes."""


# ---------------------------------------------------------------- the batch side: counts that add up


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


@dataclass(frozen=True)
class LabelQuality:
    """Quality on a profile's labelled rows. ROC AUC is within ``roc_auc_bound`` of the exact value."""

    labelled: int
    positives: int
    accuracy: float | None
    roc_auc: float | None
    roc_auc_bound: float


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


# ---------------------------------------------------------------- the reference side: fixed bins


def edges_of(reference: NumericProfile, quantiles: int = QUANTILE_EDGES, even: int = EVEN_EDGES) -> np.ndarray:
    """A column's fixed edges: its quantiles (every distinct value if there are few) and even points, min to max."""
    values = reference.values
    if reference.count == 0 or values.size == 0:
        return np.zeros(1)
    if values.size <= quantiles:
        at_quantiles = values
    else:
        cumulative = np.cumsum(np.rint(reference.shares * reference.count))
        ranks = np.linspace(1.0, float(reference.count), quantiles)
        at_quantiles = values[np.minimum(np.searchsorted(cumulative, ranks, side="left"), values.size - 1)]
    low, high = float(values[0]), float(values[-1])
    spread = np.linspace(low, high, even) if high > low and math.isfinite(high - low) else values[:1]
    return np.union1d(at_quantiles, spread)


def _in_order(reference: NumericProfile) -> NumericProfile:
    """The profile with its values sorted and distinct (the reference's predictions are profiled as they come)."""
    values = reference.values
    if values.size < 2 or bool(np.all(values[1:] > values[:-1])):
        return reference
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return NumericProfile(
        ordered[starts], np.add.reduceat(reference.shares[order], starts), reference.count, reference.norm
    )


class EdgeLocator:
    """``np.searchsorted(edges, x, side="left")``, exactly, in a third of its time on unsorted values.

    A uniform grid of ``CELLS_PER_EDGE`` cells per edge over the edges' range gives each value the first edge
    of its cell; two steps forward reach the answer for a value whose cell holds at most two edges below it.
    Every answer is then checked (``edges[j-1] < x <= edges[j]``, which only the true insertion point meets),
    and the few that fail (a cell crowded with edges, a rounding at a cell's border) are searched the usual way.
    """

    CELLS_PER_EDGE = 4

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = edges
        self.padded = np.append(edges, np.inf)  # padded[j] is defined for every insertion point j <= k
        k = edges.size
        low, high = (float(edges[0]), float(edges[-1])) if k else (0.0, 0.0)
        self.cells = self.CELLS_PER_EDGE * k
        self.gridded = k >= 2 and math.isfinite(high - low) and high > low
        self.low = low
        self.scale = self.cells / (high - low) if self.gridded else 0.0
        borders = low + (high - low) * (np.arange(self.cells + 1) / max(self.cells, 1))
        self.first = np.searchsorted(edges, borders, side="left") if self.gridded else np.zeros(1, np.intp)

    def locate(self, x: np.ndarray) -> np.ndarray:
        """The left insertion point of every (finite) value of ``x`` among the edges."""
        if not self.gridded:
            return np.searchsorted(self.edges, x, side="left")
        cell = (x - self.low) * self.scale
        np.clip(cell, 0, self.cells - 1, out=cell)
        j = self.first[cell.astype(np.intp)]
        padded = self.padded
        j += padded[j] < x
        j += padded[j] < x
        wrong = padded[j] < x
        wrong |= (j > 0) & (padded[j - 1] >= x)
        if wrong.any():
            j[wrong] = np.searchsorted(self.edges, x[wrong], side="left")
        return j


class ColumnBins:
    """One numerical column's fixed edges and what scoring needs of its reference, computed once."""

    def __init__(self, reference: NumericProfile, edges: np.ndarray) -> None:
        reference = _in_order(reference)
        self.reference = reference
        self.edges = edges
        k = edges.size
        slots = np.arange(2 * k + 1)
        self.anchors = edges[np.maximum((slots - 1) // 2, 0)]
        # Where each slot's mean may lie: the tails beyond the range, an edge, or the bin between two edges.
        self.floors = np.concatenate(([-np.inf], np.repeat(edges, 2)))
        self.ceilings = np.concatenate((np.repeat(edges, 2), [np.inf]))
        # The reference CDF over each open bin (e_j, e_{j+1}): just after e_j, just before e_{j+1}.
        cumulative = np.concatenate(([0.0], np.cumsum(reference.shares)))
        self.ref_after = cumulative[np.searchsorted(reference.values, edges[:-1], side="right")]
        self.ref_before = cumulative[np.searchsorted(reference.values, edges[1:], side="left")]
        self._locator: EdgeLocator | None = None  # built where chunks are counted, never shipped

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_locator"] = None  # a Spark broadcast ships the edges; each worker builds its grid once
        return state

    @property
    def locator(self) -> EdgeLocator:
        if self._locator is None:
            self._locator = EdgeLocator(self.edges)
        return self._locator

    @classmethod
    def of(cls, reference: NumericProfile, quantiles: int, even: int) -> ColumnBins:
        return cls(reference, edges_of(_in_order(reference), quantiles, even))

    @property
    def slots(self) -> int:
        return 2 * self.edges.size + 1

    def count(self, values: np.ndarray) -> NumericCounts:
        """The slot counts and offset sums of one chunk's values (NaN missing, infinities apart)."""
        finite = np.isfinite(values)
        if finite.all():
            x, missing = values, 0
        else:
            x, missing = values[finite], int(np.isnan(values).sum())
        locator = self.locator
        j = locator.locate(x)
        slot = 2 * j + (locator.padded[j] == x)  # an open bin, or on an edge
        return NumericCounts(
            np.bincount(slot, minlength=self.slots).astype(np.int64),
            np.bincount(slot, weights=x - self.anchors[slot], minlength=self.slots),
            missing,
            int(values.size - finite.sum()) - missing,
        )

    def empty(self) -> NumericCounts:
        return NumericCounts(np.zeros(self.slots, np.int64), np.zeros(self.slots), 0, 0)

    def _means(self, counts: NumericCounts) -> np.ndarray:
        means = self.anchors + counts.sums / np.maximum(counts.counts, 1)
        return np.clip(means, self.floors, self.ceilings)

    def score(self, counts: NumericCounts) -> float:
        """Normed Wasserstein distance with each slot's mass at its mean (NaN if either side is empty)."""
        n = int(counts.counts.sum())
        if self.reference.count == 0 or n == 0:
            return float("nan")
        return self.reference.distance(self._means(counts), counts.counts / n)

    def bound(self, counts: NumericCounts) -> float:
        """The most ``score`` can be off from the exact score: the ambiguous bins' worst spread, normed."""
        n = int(counts.counts.sum())
        if self.reference.count == 0 or n == 0 or self.edges.size < 2:
            return 0.0 if n else float("nan")
        shares = counts.counts / n
        inner = slice(2, 2 * self.edges.size - 1, 2)  # the open bins (e_j, e_{j+1})
        share = shares[inner]
        current_low = (np.cumsum(shares) - shares)[inner]
        ambiguous = (
            (share > 0)
            & (current_low < self.ref_before + _OVERLAP_SLACK)
            & (self.ref_after < current_low + share + _OVERLAP_SLACK)
        )
        low, high = self.edges[:-1], self.edges[1:]
        mean = self._means(counts)[inner]
        spread = 2 * (mean - low) * (high - mean) / (high - low)
        return float(np.sum(share[ambiguous] * spread[ambiguous])) / self.reference.norm


class BinnedReference:
    """A reference profile's fixed bins: profiles chunks, and scores merged profiles as ``measure`` does."""

    def __init__(
        self, reference: ReferenceProfile, *, quantile_edges: int = QUANTILE_EDGES, even_edges: int = EVEN_EDGES
    ) -> None:
        self.schema = reference.schema
        self.column_threshold = reference.column_threshold
        self.prediction_threshold = reference.prediction_threshold
        self._numeric = tuple(
            ColumnBins.of(profile, quantile_edges, even_edges) for profile in reference.numeric_profiles
        )
        self._prediction = ColumnBins.of(reference.prediction_profile, quantile_edges, even_edges)
        self._categorical = reference.categorical_profiles
        digest = hashlib.sha256(json.dumps([self.schema.numerical, self.schema.categorical]).encode("utf-8"))
        for bins in (*self._numeric, self._prediction):
            digest.update(np.ascontiguousarray(bins.edges, dtype=np.float64).tobytes())
            digest.update(b"|")
        self.digest = digest.hexdigest()

    def profile(
        self,
        frame: pd.DataFrame,
        predictions: np.ndarray,
        labels: np.ndarray | None = None,
        calibrated: np.ndarray | None = None,
    ) -> BatchProfile:
        """The profile of one chunk: a validated frame, its P(positive), its 0/1 labels if labelled, and its
        calibrated P(positive) (``Estimator.calibrated``) when the performance is to be estimated."""
        proba = np.asarray(predictions, dtype=np.float64)
        if proba.shape != (len(frame),):
            raise ValueError(f"{proba.size} predictions for {len(frame)} rows")
        numerical = tuple(
            bins.count(frame[name].to_numpy(dtype=np.float64, na_value=np.nan))
            for name, bins in zip(self.schema.numerical, self._numeric, strict=True)
        )
        finite = proba[np.isfinite(proba)]
        return BatchProfile(
            binning=self.digest,
            rows=len(frame),
            numerical=numerical,
            prediction=self._prediction.count(proba),
            categorical=tuple(CategoryCounts.of(frame[name]) for name in self.schema.categorical),
            labels=LabelCounts.empty() if labels is None else LabelCounts.of(labels, proba),
            proba_sum=float(finite.sum()),
            proba_spread=float(np.sum(finite * (1 - finite))),
            expected=ExpectedCounts.empty() if calibrated is None else ExpectedCounts.of(proba, calibrated),
        )

    def empty(self) -> BatchProfile:
        """The profile of no rows: merging it changes nothing."""
        return BatchProfile(
            binning=self.digest,
            rows=0,
            numerical=tuple(bins.empty() for bins in self._numeric),
            prediction=self._prediction.empty(),
            categorical=tuple(CategoryCounts({}, 0) for _ in self.schema.categorical),
            labels=LabelCounts.empty(),
            proba_sum=0.0,
            proba_spread=0.0,
        )

    def _check(self, profile: BatchProfile) -> None:
        if profile.binning != self.digest:
            raise ProfileError("the profile was made on another reference's bins")

    def measure(self, profile: BatchProfile) -> DriftResult:
        """Drift of a (merged) profile: the fields of ``ReferenceProfile.measure``, within the stated bound."""
        self._check(profile)
        scores: dict[str, float] = {}
        missing = 0
        for name, bins, counts in zip(self.schema.numerical, self._numeric, profile.numerical, strict=True):
            missing += counts.missing
            scores[name] = bins.score(counts)
        unseen = 0
        for name, reference, levels in zip(
            self.schema.categorical, self._categorical, profile.categorical, strict=True
        ):
            current = levels.series()
            missing += levels.missing
            scores[name] = reference.score(current)
            unseen += reference.unseen(current)
        return DriftResult.of(
            scores,
            self._prediction.score(profile.prediction),
            missing=missing,
            rows=profile.rows,
            unseen=unseen,
            column_threshold=self.column_threshold,
        )

    def error_bounds(self, profile: BatchProfile) -> dict[str, float]:
        """Per numerical column and ``prediction``: how far the profile's score can be from the exact one."""
        self._check(profile)
        bounds = {
            name: bins.bound(counts)
            for name, bins, counts in zip(self.schema.numerical, self._numeric, profile.numerical, strict=True)
        }
        bounds[PREDICTION] = self._prediction.bound(profile.prediction)
        return bounds

    def quality(self, profile: BatchProfile) -> LabelQuality:
        """Accuracy (exact) and ROC AUC (within ``roc_auc_bound``) on the profile's labelled rows."""
        self._check(profile)
        labels = profile.labels
        labelled = labels.labelled
        pos = labels.positives.astype(np.float64)
        neg = labels.negatives.astype(np.float64)
        pairs = pos.sum() * neg.sum()
        accuracy = float(labels.confusion[0] + labels.confusion[3]) / labelled if labelled else None
        if pairs == 0:
            return LabelQuality(labelled, int(labels.confusion[2:].sum()), accuracy, None, 0.0)
        right, same_bin = ranked_pairs(pos, neg)
        roc_auc = (right + same_bin / 2) / pairs
        return LabelQuality(labelled, int(labels.confusion[2:].sum()), accuracy, roc_auc, same_bin / 2 / pairs)
