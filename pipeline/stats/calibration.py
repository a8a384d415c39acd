"""The calibration of a model's P(positive) on a labelled reference, and how far it could be from the truth.

``Isotonic`` is the calibration map (what sklearn's isotonic regression fits, without its per-call overhead);
``expected_calibration_error`` measures how far probabilities are from the positive rates they claim.
``CalibrationSpread`` is the calibration's own uncertainty: the reference pins P(label | score) down only to
within its sampling error, the same in every batch. ``BOOTSTRAPS`` isotonic refits on Poisson(1)-resampled
references, each one's deviation from the refit on the whole reference kept at ``SPREAD_KNOTS`` quantiles of the
reference's scores; the performance estimate (``pipeline.stats.estimate``) adds their spread to its interval
(``pipeline.stats.auc_interval``) and to its test of a drifted calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

ECE_BINS = 10
BOOTSTRAPS = 40  # isotonic refits on resampled references: the calibration's own uncertainty
SPREAD_KNOTS = 200  # reference-score quantiles at which each refit's deviation is kept
SPREAD_BLOCKS = 512  # a larger reference is resampled in this many blocks of consecutive scores


@dataclass(frozen=True)
class Isotonic:
    """A fitted isotonic calibration: a non-decreasing step-linear map from the model's score to P(positive).

    What sklearn's ``IsotonicRegression(out_of_bounds="clip")`` fits and predicts, without its per-call overhead:
    tied scores are pooled first (their mean label, weighted by their count), then pool-adjacent-violators
    (scipy's); between two distinct scores the map is linear, outside them it holds the end values.
    """

    scores: np.ndarray  # distinct reference scores, ascending: the ends of each step of the map
    values: np.ndarray  # the calibrated P(positive) at each of them, non-decreasing, within [0, 1]

    @classmethod
    def fit(cls, proba: np.ndarray, y: np.ndarray) -> Isotonic:
        p, labels = np.asarray(proba, dtype="float64"), np.asarray(y, dtype="float64")
        order = np.argsort(p, kind="stable")
        return cls.of_sorted(p[order], labels[order])

    @classmethod
    def of_sorted(cls, p: np.ndarray, y: np.ndarray) -> Isotonic:
        starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
        counts = np.diff(np.r_[starts, p.size]).astype("float64")
        means = np.add.reduceat(y, starts) / counts
        values = np.clip(np.asarray(isotonic_regression(means, weights=counts).x, dtype="float64"), 0.0, 1.0)
        keep = np.ones(values.size, dtype=bool)  # the ends of each flat step carry the whole map
        keep[1:-1] = (values[:-2] != values[1:-1]) | (values[1:-1] != values[2:])
        return cls(p[starts][keep], values[keep])

    def predict(self, proba: np.ndarray) -> np.ndarray:
        return np.interp(proba, self.scores, self.values)


@dataclass(frozen=True, eq=False)
class CalibrationSpread:
    """How far the reference's calibration could be from the truth: ``BOOTSTRAPS`` isotonic refits on resampled
    references, each one's deviation from the refit on the whole reference, at ``knots`` (linear in between, held
    beyond the ends: how ``Isotonic.predict`` reads its map)."""

    knots: np.ndarray  # ascending reference scores
    deviations: np.ndarray  # refits x knots

    @classmethod
    def of_sorted(cls, p: np.ndarray, y: np.ndarray, seed: int = 0) -> CalibrationSpread:
        """From a reference sorted by score. The bootstrap weighs every row by a Poisson(1) draw; the sorted rows
        are first cut into at most ``SPREAD_BLOCKS`` blocks of consecutive rows, each taken at its mean score, so
        that a block's resampled positives and negatives are two Poisson draws (of its positives and of its
        negatives: sums of independent Poisson(1) weights) and a refit costs the same whatever the reference's
        size. With no more rows than that, each block is one row: the plain Poisson bootstrap. A fixed seed, so the
        same reference gives the same spread."""
        knots = np.unique(np.quantile(p, np.linspace(0.0, 1.0, SPREAD_KNOTS)))
        blocks = min(p.size, SPREAD_BLOCKS)
        starts = np.unique((np.arange(blocks) * p.size) // blocks)
        rows = np.diff(np.r_[starts, p.size]).astype("float64")
        positives = np.add.reduceat(y, starts)
        scores = np.add.reduceat(p, starts) / rows
        tied = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])  # blocks of equal scores pooled
        scores, rows, positives = scores[tied], np.add.reduceat(rows, tied), np.add.reduceat(positives, tied)
        whole = np.interp(knots, scores, isotonic_regression(positives / rows, weights=rows).x)
        rng = np.random.default_rng(seed)
        drawn_positives = rng.poisson(positives, (BOOTSTRAPS, scores.size)).astype("float64")
        weights = drawn_positives + rng.poisson(rows - positives, (BOOTSTRAPS, scores.size))
        deviations = np.empty((BOOTSTRAPS, knots.size))
        for b in range(BOOTSTRAPS):
            kept = weights[b] > 0
            fitted = isotonic_regression(drawn_positives[b, kept] / weights[b, kept], weights=weights[b, kept]).x
            deviations[b] = np.interp(knots, scores[kept], fitted) - whole
        return cls(knots, deviations)

    def shifts(self, scores: np.ndarray, values: np.ndarray) -> np.ndarray:
        """For each refit b, sum_i values_i * deviation_b(scores_i): each value is shared between the two knots
        around its score in the proportions of linear interpolation, then the knots' totals meet the deviations."""
        k = self.knots
        s, v = np.asarray(scores, dtype="float64"), np.asarray(values, dtype="float64")
        if k.size == 1:
            return self.deviations[:, 0] * v.sum()
        right = np.clip(np.searchsorted(k, s, side="right"), 1, k.size - 1)
        left = right - 1
        share = np.clip((s - k[left]) / (k[right] - k[left]), 0.0, 1.0)
        on_knots = np.bincount(left, v * (1.0 - share), k.size) + np.bincount(right, v * share, k.size)
        return self.deviations @ on_knots

    def variance(self, scores: np.ndarray, values: np.ndarray) -> float:
        """The variance over the refits of sum_i values_i * deviation(scores_i)."""
        return float(np.var(self.shifts(scores, values), ddof=1))


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Row-weighted mean of |mean probability - positive rate| over ``bins`` equal-count bins of the sorted
    probabilities (fewer bins when there are fewer than two rows a bin). NaN when empty."""
    p, labels = np.asarray(proba, dtype="float64"), np.asarray(y, dtype="float64")
    if p.size == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    return sorted_calibration_error(p[order], labels[order], bins)


def sorted_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    if p.size == 0:
        return float("nan")
    count = max(1, min(bins, p.size // 2))
    sizes = np.full(count, p.size // count)
    sizes[: p.size % count] += 1  # the bins of np.array_split
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    gaps = np.abs(np.add.reduceat(p, starts) - np.add.reduceat(y, starts))  # size x |mean p - mean y| per bin
    return float(gaps.sum() / p.size)
