"""The expected ROC AUC of rows grouped by score, and its prediction interval: the math of the performance estimate.

``ranked_pairs`` counts the (positive, negative) pairs ranked right and tied over groups of tied scores: the one
formula behind the binned ROC AUC of a labelled profile (``pipeline.stats.profile``) and the expected ROC AUC of
an estimate. ``grouped_estimate`` turns a batch given as such groups (each group's rows and the sum of their
calibrated P(positive)) into an ``Estimate``: the area under the expected ROC curve, the expected accuracy, and
the interval below; ``Estimator.estimate`` (``pipeline.stats.estimate``) and a merged profile's
``ExpectedCounts.estimated`` both compute through it.

**The interval** (``Estimate.roc_auc_low``, ``roc_auc_high``, at ``LEVEL``) is a prediction interval for the ROC
AUC the batch's labels will show if the calibration holds. Two things move that AUC away from the estimate:

- the labels themselves: row i is positive with probability q_i (its calibrated probability), independently. The
  realized AUC is W / (P N): W the positive-negative pairs of distinct rows ranked right (ties half), P and N the
  positives and negatives. Both are polynomials in the labels, linear in each one; to first order (the delta
  method on their multilinear forms, i.e. the Hajek projection) AUC - E ~ sum_i g_i (y_i - q_i), with
  g_i = (dW_i - A dPN_i) / PN, where PN = sum over pairs i != j of q_i (1 - q_j), A = W(q) / PN,
  dW_i = (rows ranked below i, tied rows half) - (Q - q_i) and dPN_i = (n - 1) - 2 (Q - q_i), Q = sum q. So
  var = sum_i g_i^2 q_i (1 - q_i): O(n) once the rows are sorted, exact in rows of tied scores (they share g);
- the calibration: the reference pins P(label | score) down only to within its sampling error, the same in every
  batch, so it does not average out as the batch grows. ``Estimator.fit`` measures it, whether it calibrates or
  keeps the raw probabilities (that choice rests on the same rows): ``BOOTSTRAPS`` isotonic refits on
  Poisson(1)-resampled references, each one's deviation from the refit on the whole reference kept at
  ``SPREAD_KNOTS`` quantiles of the reference's scores (``pipeline.stats.calibration.CalibrationSpread``). A
  deviation d(s) of the map moves the estimate by sum_i g_i d(s_i) to first order (the same g); the variance of
  that over the refits is added.

The interval is the estimate +- z sqrt(sum of both), z the normal quantile of ``LEVEL``, clipped to [0, 1]. On
calibrated probabilities its coverage is the level (label noise alone: 0.89 to 0.91 at 200, 1,000 and 10,000
rows, down to 5 expected positives). With a calibration fitted on a few thousand reference rows it is near the
level; on a few hundred, below it: an isotonic map fitted on few rows is also optimistic on average (too sure of
itself), which no spread shows. It is approximate when the batch expects few positives or few negatives: the
realized AUC is then skewed, or undefined when every label comes out the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pipeline.stats.calibration import CalibrationSpread

LEVEL = 0.90  # the coverage of the interval on every estimate


@dataclass(frozen=True)
class Estimate:
    """One batch's performance, estimated without labels."""

    roc_auc: float | None  # expected ROC AUC; None when undefined (no expected positives or no expected negatives)
    accuracy: float  # expected accuracy of the model's 0.5 cut; NaN on an empty batch
    # The prediction interval of the ROC AUC the batch's labels will show if the calibration holds, at ``level``;
    # None with ``roc_auc``.
    roc_auc_low: float | None = None
    roc_auc_high: float | None = None
    level: float = LEVEL


def ranked_pairs(positives: np.ndarray, negatives: np.ndarray) -> tuple[float, float]:
    """ROC AUC's counts over groups of tied scores in ascending order, given each group's (expected) positives and
    negatives: the (positive, negative) pairs ranked right (in different groups, the positive higher) and the pairs
    tied (in one group). ROC AUC is (right + tied / 2) / (all positives x all negatives). The one formula behind
    the binned AUC of a labelled profile and the expected AUC of an estimate."""
    below = np.cumsum(negatives) - negatives
    return float(np.dot(positives, below)), float(np.dot(positives, negatives))


def grouped_estimate(
    scores: np.ndarray,
    rows: np.ndarray,
    expected_positives: np.ndarray,
    expected_correct: float,
    spread: CalibrationSpread | None = None,
    level: float = LEVEL,
) -> Estimate:
    """The estimate of a batch given as groups of tied rows, in ascending order of score: each group's score, its
    rows, the sum of their calibrated P(positive), and the batch's expected number of rows the 0.5 cut gets right.
    The one implementation behind ``Estimator.estimate`` (groups: distinct scores) and a merged profile's
    (``pipeline.stats.profile.ExpectedCounts``; groups: score bins, whose rows count as tied).

    ROC AUC: the area under the expected ROC curve (tied rows a straight segment); interval: the module's
    docstring, with the rows of a group taken to share their mean calibrated probability (exact when the
    calibrated probability is a function of the score, as ``Estimator.calibrated`` is).
    """
    r = np.asarray(rows, dtype="float64")
    e = np.asarray(expected_positives, dtype="float64")
    n = float(r.sum())
    if n == 0:
        return Estimate(None, math.nan, level=level)
    accuracy = expected_correct / n
    neg = r - e
    total_pos, total_neg = float(e.sum()), float(neg.sum())
    if total_pos <= 1e-12 or total_neg <= 1e-12:
        return Estimate(None, accuracy, level=level)
    wins, tied_pairs = ranked_pairs(e, neg)
    roc_auc = float(np.clip((wins + tied_pairs / 2) / (total_pos * total_neg), 0.0, 1.0))

    q = e / r
    spread_of_rows = e - e * q  # sum of q (1 - q) over each group's rows
    noise = float(spread_of_rows.sum())
    pairs = total_pos * total_neg - noise  # sum over i != j of q_i (1 - q_j)
    if pairs <= 1e-12:
        return Estimate(roc_auc, accuracy, roc_auc, roc_auc, level)
    auc = (wins + (tied_pairs - noise) / 2) / pairs  # W(q) / pairs, over i != j
    # pairs x gradient = dW - auc dPN = (rows below + half the other tied ones) - (Q - q) - auc ((n - 1) - 2 (Q - q))
    #                  = cumsum(r) - r / 2 + (1 - 2 auc) q + a constant
    gradient = np.cumsum(r)
    gradient -= r / 2
    gradient += (1.0 - 2.0 * auc) * q
    gradient += -0.5 - total_pos - auc * (n - 1.0) + 2.0 * auc * total_pos
    gradient /= pairs
    variance = float(np.dot(gradient * gradient, spread_of_rows))
    if spread is not None:
        variance += spread.variance(np.asarray(scores, dtype="float64"), gradient * r)
    half = NormalDist().inv_cdf((1.0 + level) / 2) * math.sqrt(variance)
    return Estimate(roc_auc, accuracy, max(0.0, roc_auc - half), min(1.0, roc_auc + half), level)


def expected_roc_auc(scores: np.ndarray, p: np.ndarray) -> float | None:
    """The area under the expected ROC curve of ``scores`` when row i is positive with probability ``p[i]``.

    Rows are ranked by score; at each distinct score (tied rows enter together, a straight segment), expected
    TP = sum of p, expected FP = sum of 1 - p over the rows ranked so far; TPR and FPR divide by the expected
    positives and negatives. O(n log n). None when there are no expected positives or negatives.
    """
    s, q = np.asarray(scores, dtype="float64"), np.asarray(p, dtype="float64")
    grouped, rows, positives = tied_groups(s, q)
    return grouped_estimate(grouped, rows, positives, 0.0).roc_auc


def tied_groups(scores: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows in groups of tied scores, ascending: (score, rows, sum of q) per group."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if s.size else np.zeros(0, dtype="int64")
    rows = np.diff(np.r_[starts, s.size])
    return s[starts], rows, np.add.reduceat(q[order], starts) if s.size else np.zeros(0)
