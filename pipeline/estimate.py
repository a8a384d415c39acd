"""Estimated performance without labels: NannyML's confidence-based performance estimation (CBPE).

Pure numpy/sklearn, no I/O. Two steps, the shape of every NannyML estimator:

1. ``Estimator.fit(proba, y)`` on a labelled reference (rows the model was not trained on): decide whether the
   model's P(positive) needs calibrating, and fit the calibrator if so.
2. ``Estimator.estimate(proba)`` on an unlabelled batch: the batch's confusion matrix in expectation, from the
   calibrated probabilities alone, and from it the expected ROC AUC and accuracy.

The estimate assumes what calibration on the reference learned still holds: P(label | model score) is the same
in the batch as in the reference. A covariate shift keeps that (the inputs move, the relation does not), so the
estimate follows the inputs. A concept shift breaks it: the model is as confident as before, so the estimate stays
where it was while the realized AUC falls. Only labels can show that (``policy``'s performance drop); the same
goes for a label shift (more positives among the same inputs), which moves P(label | score) too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import isotonic_regression

ECE_BINS = 10
CALIBRATION_FOLDS = 5


@dataclass(frozen=True)
class Isotonic:
    """A fitted isotonic calibration: a non-decreasing step-linear map from the model's score to P(positive).

    What sklearn's ``IsotonicRegression(out_of_bounds="clip")`` fits and predicts, without its per-call overhead:
    tied scores are pooled first (their mean label, weighted by their count), then sklearn's pool-adjacent-
    violators; between two distinct scores the map is linear, outside them it holds the end values.
    """

    scores: np.ndarray  # distinct reference scores, ascending: the ends of each step of the map
    values: np.ndarray  # the calibrated P(positive) at each of them, non-decreasing, within [0, 1]

    @classmethod
    def fit(cls, proba: np.ndarray, y: np.ndarray) -> Isotonic:
        p, labels = np.asarray(proba, dtype="float64"), np.asarray(y, dtype="float64")
        order = np.argsort(p, kind="stable")
        return cls._of_sorted(p[order], labels[order])

    @classmethod
    def _of_sorted(cls, p: np.ndarray, y: np.ndarray) -> Isotonic:
        starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
        counts = np.diff(np.r_[starts, p.size]).astype("float64")
        means = np.add.reduceat(y, starts) / counts
        values = np.asarray(
            isotonic_regression(means, sample_weight=counts, y_min=0.0, y_max=1.0, increasing=True), dtype="float64"
        )
        keep = np.ones(values.size, dtype=bool)  # the ends of each flat step carry the whole map
        keep[1:-1] = (values[:-2] != values[1:-1]) | (values[1:-1] != values[2:])
        return cls(p[starts][keep], values[keep])

    def predict(self, proba: np.ndarray) -> np.ndarray:
        return np.interp(proba, self.scores, self.values)


@dataclass(frozen=True)
class Estimate:
    """One batch's performance, estimated without labels."""

    roc_auc: float | None  # expected ROC AUC; None when undefined (no expected positives or no expected negatives)
    accuracy: float  # expected accuracy of the model's 0.5 cut; NaN on an empty batch


@dataclass(frozen=True)
class Estimator:
    """A reference's calibration, ready to estimate the performance of unlabelled batches."""

    calibrator: Isotonic | None  # None: the raw probabilities are used
    method: str  # "none" or "isotonic"
    reference_ece: float  # expected calibration error on the reference, after the choice (cross-validated)

    @classmethod
    def fit(cls, proba: np.ndarray, y: np.ndarray) -> Estimator:
        """Calibrate on the reference when that lowers the calibration error.

        How it decides: the reference is split into ``CALIBRATION_FOLDS`` stratified folds; each fold's
        probabilities are calibrated by an isotonic regression fitted on the other folds. The expected
        calibration error (``ECE_BINS`` equal-count bins, the row-weighted mean of |mean probability - positive
        rate| per bin) of these out-of-fold calibrated probabilities is compared with that of the raw
        probabilities on the same rows. Isotonic calibration, refitted on the whole reference, is kept only when
        it is strictly lower; so the choice is never judged on the rows the calibrator was fitted to.
        ``reference_ece`` is the chosen side's figure: the raw ECE, or the out-of-fold calibrated ECE.
        A reference with one class, or too few rows of either class to fold, is not calibrated.
        """
        p = _as_proba(proba)
        labels = np.asarray(y).astype("float64").reshape(-1)
        if labels.shape != p.shape:
            raise ValueError(f"{p.size} probabilities for {labels.size} labels")
        if not np.all((labels == 0) | (labels == 1)):
            raise ValueError("labels must be 0 or 1 (1 = the positive class)")
        order = np.argsort(p, kind="stable")  # sorted once: every fold's subset stays sorted
        p, labels = p[order], labels[order]
        raw_ece = _sorted_calibration_error(p, labels)
        positives = int(labels.sum())
        if min(positives, len(labels) - positives) < CALIBRATION_FOLDS:
            return cls(None, "none", raw_ece)
        fold = _stratified_folds(labels, CALIBRATION_FOLDS)
        out_of_fold = np.empty_like(p)
        for k in range(CALIBRATION_FOLDS):
            test = fold == k
            out_of_fold[test] = Isotonic._of_sorted(p[~test], labels[~test]).predict(p[test])
        calibrated_ece = expected_calibration_error(out_of_fold, labels)
        if calibrated_ece < raw_ece:
            return cls(Isotonic._of_sorted(p, labels), "isotonic", calibrated_ece)
        return cls(None, "none", raw_ece)

    def calibrated(self, proba: np.ndarray) -> np.ndarray:
        """The calibrated P(positive) of each row (the raw ones when no calibrator was chosen)."""
        p = _as_proba(proba)
        if self.calibrator is None:
            return p
        return self.calibrator.predict(p)

    def estimate(self, proba: np.ndarray) -> Estimate:
        """The batch's expected ROC AUC and accuracy, from the model's raw P(positive) alone."""
        raw = _as_proba(proba)
        p = self.calibrated(raw)
        return Estimate(roc_auc=expected_roc_auc(raw, p), accuracy=expected_accuracy(raw, p))


def expected_roc_auc(scores: np.ndarray, p: np.ndarray) -> float | None:
    """The area under the expected ROC curve of ``scores`` when row i is positive with probability ``p[i]``.

    Rows are ranked by score, highest first; at each distinct score (tied rows enter together, a straight
    segment), expected TP = sum of p, expected FP = sum of 1 - p over the rows ranked so far; TPR and FPR divide
    by the expected positives and negatives. O(n log n). None when there are no expected positives or negatives.
    """
    s, q = np.asarray(scores, dtype="float64"), np.asarray(p, dtype="float64")
    if s.size == 0:
        return None
    order = np.argsort(-s, kind="stable")
    s, q = s[order], q[order]
    tp = np.cumsum(q)
    fp = np.cumsum(1.0 - q)
    positives, negatives = tp[-1], fp[-1]
    if positives <= 1e-12 or negatives <= 1e-12:
        return None
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tpr = np.r_[0.0, tp[last_of_tie] / positives]
    fpr = np.r_[0.0, fp[last_of_tie] / negatives]
    area = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)
    return float(np.clip(area, 0.0, 1.0))


def expected_accuracy(scores: np.ndarray, p: np.ndarray) -> float:
    """Mean over rows of P(the 0.5 cut of ``scores`` is right): ``p`` where the score is >= 0.5, else 1 - p."""
    s, q = np.asarray(scores, dtype="float64"), np.asarray(p, dtype="float64")
    if s.size == 0:
        return float("nan")
    return float(np.mean(np.where(s >= 0.5, q, 1.0 - q)))


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Row-weighted mean of |mean probability - positive rate| over ``bins`` equal-count bins of the sorted
    probabilities (fewer bins when there are fewer than two rows a bin). NaN when empty."""
    p, labels = np.asarray(proba, dtype="float64"), np.asarray(y, dtype="float64")
    if p.size == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    return _sorted_calibration_error(p[order], labels[order], bins)


def _sorted_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    if p.size == 0:
        return float("nan")
    count = max(1, min(bins, p.size // 2))
    sizes = np.full(count, p.size // count)
    sizes[: p.size % count] += 1  # the bins of np.array_split
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    gaps = np.abs(np.add.reduceat(p, starts) - np.add.reduceat(y, starts))  # size x |mean p - mean y| per bin
    return float(gaps.sum() / p.size)


def _stratified_folds(labels: np.ndarray, folds: int) -> np.ndarray:
    """A fold number per row, each class dealt evenly over the folds in a fixed random order."""
    rng = np.random.default_rng(0)
    fold = np.empty(labels.size, dtype="int64")
    for value in (0.0, 1.0):
        rows = rng.permutation(np.flatnonzero(labels == value))
        fold[rows] = np.arange(rows.size) % folds
    return fold


def _as_proba(proba: np.ndarray) -> np.ndarray:
    p = np.asarray(proba, dtype="float64").reshape(-1)
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities must be finite")
    return p
