"""Estimated performance without labels: NannyML's confidence-based performance estimation (CBPE), with a
prediction interval, a check of its assumption on labelled rows, and a rule for when not to trust it.

Pure numpy/scipy, no I/O. Two steps, the shape of every NannyML estimator:

1. ``Estimator.fit(proba, y)`` on a labelled reference (rows the model was not trained on): decide whether the
   model's P(positive) needs calibrating, and fit the calibrator if so.
2. ``Estimator.estimate(proba)`` on an unlabelled batch: the batch's confusion matrix in expectation, from the
   calibrated probabilities alone, and from it the expected ROC AUC and accuracy.

The estimate assumes what calibration on the reference learned still holds: P(label | model score) is the same
in the batch as in the reference. A covariate shift keeps that (the inputs move, the relation does not), so the
estimate follows the inputs. A concept shift breaks it: the model is as confident as before, so the estimate stays
where it was while the realized AUC falls. Only labels can show that (``policy``'s performance drop); the same
goes for a label shift (more positives among the same inputs), which moves P(label | score) too.

**The interval** (``Estimate.roc_auc_low``, ``roc_auc_high``, at ``LEVEL``) is a prediction interval for the ROC
AUC the batch's labels will show if the calibration holds: the labels' own noise, and the calibration's spread
(``pipeline.stats.calibration.CalibrationSpread``), which ``Estimator.fit`` measures whether it calibrates or keeps
the raw probabilities (that choice rests on the same rows). Its derivation and measured coverage are in
``pipeline.stats.auc_interval``, which computes it.

**A drifted calibration** shows on labelled rows the champion scored: ``calibration_drifted`` is a chi-square test
of the calibrated probabilities against the labels (bins of equal sum of q (1 - q), observed minus expected
positives per bin, with the calibration's own spread added to the bins' covariance). Its false-alarm rate is
``alpha`` when the calibrated probabilities are the true ones; with a fitted calibration somewhat more (the
bootstrap's spread falls a little short of the calibration's real error, most when the labelled rows far
outnumber the reference's), and a calibration that many labelled rows find off is worth refitting anyway.
``Estimator.refit_if_drifted`` runs it on the newest labelled rows of earlier batches and, when it fails,
calibrates afresh on those rows.

**Trust.** ``estimate_trusted`` over the labelled batches estimated by the estimator in use: untrusted when the
realized AUC fell outside the interval more often, among the last ``TRUST_WINDOW``, than ``TRUST_ALPHA`` allows for
an interval of its level (with the defaults: two of the last three, or both of the only two).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import chdtrc

from pipeline.stats.auc_interval import LEVEL, Estimate, grouped_estimate, tied_groups
from pipeline.stats.calibration import (
    CalibrationSpread,
    Isotonic,
    expected_calibration_error,
    sorted_calibration_error,
)

CALIBRATION_FOLDS = 5
DRIFT_ALPHA = 0.01  # the calibration test's false-alarm rate when the calibration holds
DRIFT_BINS = 10  # at most this many bins in the calibration test
MIN_BIN_VARIANCE = 5.0  # each bin of the calibration test holds at least this much sum of q (1 - q)
MIN_RECALIBRATION_ROWS = 1_000  # fewer labelled rows neither test nor refit the calibration
TRUST_WINDOW = 3  # the last labelled batches the trust rule looks at
TRUST_ALPHA = 0.05  # the trust rule's false-alarm rate bound when the intervals hold


@dataclass(frozen=True)
class Estimator:
    """A reference's calibration, ready to estimate the performance of unlabelled batches."""

    calibrator: Isotonic | None  # None: the raw probabilities are used
    method: str  # "none" or "isotonic"
    reference_ece: float  # expected calibration error on the reference, after the choice (cross-validated)
    spread: CalibrationSpread | None = None  # the calibration's own uncertainty; None: not measured (counted as 0)

    @classmethod
    def fit(cls, proba: np.ndarray, y: np.ndarray) -> Estimator:
        """Calibrate on the reference when that lowers the calibration error, and measure the calibration's spread.

        How it decides: the reference is split into ``CALIBRATION_FOLDS`` stratified folds; each fold's
        probabilities are calibrated by an isotonic regression fitted on the other folds. The expected
        calibration error (``ECE_BINS`` equal-count bins, the row-weighted mean of |mean probability - positive
        rate| per bin) of these out-of-fold calibrated probabilities is compared with that of the raw
        probabilities on the same rows. Isotonic calibration, refitted on the whole reference, is kept only when
        it is strictly lower; so the choice is never judged on the rows the calibrator was fitted to.
        ``reference_ece`` is the chosen side's figure: the raw ECE, or the out-of-fold calibrated ECE.
        A reference with one class, or too few rows of either class to fold, is not calibrated and its spread is
        not measured. Otherwise the spread (``CalibrationSpread``) is measured whichever side is chosen: keeping
        the raw probabilities rests on the same reference rows, which tell the calibration no more exactly.
        """
        p = _as_proba(proba)
        labels = _as_labels(y, p)
        order = np.argsort(p, kind="stable")  # sorted once: every fold's subset stays sorted
        p, labels = p[order], labels[order]
        raw_ece = sorted_calibration_error(p, labels)
        positives = int(labels.sum())
        if min(positives, len(labels) - positives) < CALIBRATION_FOLDS:
            return cls(None, "none", raw_ece)
        fold = _stratified_folds(labels, CALIBRATION_FOLDS)
        out_of_fold = np.empty_like(p)
        for k in range(CALIBRATION_FOLDS):
            test = fold == k
            out_of_fold[test] = Isotonic.of_sorted(p[~test], labels[~test]).predict(p[test])
        calibrated_ece = expected_calibration_error(out_of_fold, labels)
        spread = CalibrationSpread.of_sorted(p, labels)
        if calibrated_ece < raw_ece:
            return cls(Isotonic.of_sorted(p, labels), "isotonic", calibrated_ece, spread)
        return cls(None, "none", raw_ece, spread)

    def calibrated(self, proba: np.ndarray) -> np.ndarray:
        """The calibrated P(positive) of each row (the raw ones when no calibrator was chosen)."""
        p = _as_proba(proba)
        if self.calibrator is None:
            return p
        return self.calibrator.predict(p)

    def estimate(self, proba: np.ndarray, level: float = LEVEL) -> Estimate:
        """The batch's expected ROC AUC with its prediction interval, and expected accuracy, from the model's raw
        P(positive) alone."""
        raw = _as_proba(proba)
        q = self.calibrated(raw)
        scores, rows, positives = tied_groups(raw, q)
        correct = float(np.sum(np.where(raw >= 0.5, q, 1.0 - q)))
        return grouped_estimate(scores, rows, positives, correct, self.spread, level)

    def refit_if_drifted(
        self,
        recent_proba: np.ndarray,
        recent_y: np.ndarray,
        min_rows: int = MIN_RECALIBRATION_ROWS,
        alpha: float = DRIFT_ALPHA,
    ) -> Recalibration:
        """The estimator to use from now on, given the newest labelled rows of earlier batches (the champion's raw
        P(positive) and their 0/1 labels; never the batch about to be estimated).

        With fewer than ``min_rows`` rows, or too few expected positives or negatives to test, this estimator, not
        checked. Otherwise ``calibration_drifted`` at ``alpha``: when it holds, this estimator; when it drifted,
        ``Estimator.fit`` on these rows (they become the reference of the calibration), unless they hold fewer than
        ``CALIBRATION_FOLDS`` of a class (this estimator, said in the reason). An estimator refitted on some rows
        passes on the same rows: it is tested again as newer labelled rows replace them.
        """
        raw = _as_proba(recent_proba)
        labels = _as_labels(recent_y, raw)
        if raw.size < min_rows:
            return Recalibration(self, False, math.nan, f"{raw.size} labelled rows, fewer than {min_rows}: not checked")
        drifted, p_value = calibration_drifted(self, raw, labels, alpha)
        if math.isnan(p_value):
            return Recalibration(
                self, False, p_value, f"{raw.size} labelled rows expect too few positives or negatives: not checked"
            )
        if not drifted:
            return Recalibration(
                self,
                False,
                p_value,
                f"the calibration holds on the newest {raw.size} labelled rows (p = {p_value:.3g})",
            )
        positives = int(labels.sum())
        if min(positives, raw.size - positives) < CALIBRATION_FOLDS:
            return Recalibration(
                self,
                False,
                p_value,
                f"the calibration drifted on the newest {raw.size} labelled rows (p = {p_value:.3g}), but "
                f"{positives} of them are positive: too few of a class to recalibrate on",
            )
        return Recalibration(
            Estimator.fit(raw, labels),
            True,
            p_value,
            f"the calibration drifted on the newest {raw.size} labelled rows (p = {p_value:.3g} < {alpha:g}): "
            "recalibrated on them",
        )


class Recalibration(NamedTuple):
    """What ``Estimator.refit_if_drifted`` decided."""

    estimator: Estimator  # the estimator to use: the same one, or one fitted on the newest labelled rows
    refitted: bool  # True when the calibration drifted and ``estimator`` is the new one
    p_value: float  # of ``calibration_drifted``; NaN when not checked
    reason: str  # one line saying which and why


def calibration_drifted(
    estimator: Estimator, proba: np.ndarray, y: np.ndarray, alpha: float = DRIFT_ALPHA
) -> tuple[bool, float]:
    """Whether labelled rows the champion scored contradict ``estimator``'s calibration: (drifted, p-value).

    The rows are sorted by calibrated probability q and cut into G bins of equal sum of q (1 - q), G at most
    ``DRIFT_BINS`` and each bin holding at least ``MIN_BIN_VARIANCE``. Per bin, r = observed minus expected
    positives; if the calibration holds, r has mean 0 and variance sum of q (1 - q), plus the covariance the
    calibration's own spread gives (``CalibrationSpread``: r moves by minus the deviation summed over the bin's
    rows). The statistic r' M^-1 r (M that covariance) is chi-square with G degrees of freedom, nearly: drifted when
    its p-value is below ``alpha``, the false-alarm rate when the calibration holds. Any miscalibration shows: all
    probabilities too high or too low, too confident or too timid, wrong in one range of scores.
    (False, NaN) when the rows' sum of q (1 - q) is below ``MIN_BIN_VARIANCE``: too few to test.
    """
    raw = _as_proba(proba)
    labels = _as_labels(y, raw)
    q = estimator.calibrated(raw)
    order = np.argsort(q, kind="stable")
    raw, q, labels = raw[order], q[order], labels[order]
    spread_of_rows = q * (1.0 - q)
    total = float(spread_of_rows.sum())
    bins = min(DRIFT_BINS, int(total // MIN_BIN_VARIANCE))
    if bins < 1:
        return False, math.nan
    cumulative = np.cumsum(spread_of_rows) - spread_of_rows / 2
    bin_of = np.minimum((cumulative / total * bins).astype("int64"), bins - 1)
    residual = np.bincount(bin_of, labels - q, bins)
    covariance = np.diag(np.bincount(bin_of, spread_of_rows, bins))
    if estimator.spread is not None:
        shifts = np.stack(
            [estimator.spread.shifts(raw[bin_of == g], np.ones(int(np.sum(bin_of == g)))) for g in range(bins)]
        )
        covariance = covariance + np.atleast_2d(np.cov(shifts))
    statistic = float(residual @ np.linalg.solve(covariance, residual))
    p_value = float(chdtrc(bins, statistic))
    return p_value < alpha, p_value


def estimate_trusted(
    history: Iterable[tuple[float | None, float | None, float | None]],
    level: float = LEVEL,
    window: int = TRUST_WINDOW,
    alpha: float = TRUST_ALPHA,
) -> bool | None:
    """Whether the estimate can be trusted, from the labelled batches it was made for: (realized ROC AUC,
    interval low, interval high) each, oldest first; batches missing any of the three are skipped.

    The last ``window`` of them (fewer when there are fewer) are looked at. If the intervals hold, the number whose
    realized AUC fell outside is binomial (that many, 1 - ``level``); untrusted when a count at least as high as
    the one seen has probability at most ``alpha``. With the defaults (0.90, 3, 0.05): untrusted when two of the
    last three fell outside (probability 0.028 when the intervals hold) or both of the only two (0.01); one batch
    alone never decides (0.10). None when there is no such batch.
    """
    seen = [
        (float(auc), float(low), float(high))
        for auc, low, high in history
        if auc is not None and low is not None and high is not None and math.isfinite(auc)
    ]
    if not seen:
        return None
    last = seen[-window:]
    outside = sum(not low <= auc <= high for auc, low, high in last)
    return _binomial_tail(len(last), outside, 1.0 - level) > alpha


def _binomial_tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X binomial (n, p)."""
    return float(sum(math.comb(n, j) * p**j * (1.0 - p) ** (n - j) for j in range(k, n + 1)))


def expected_accuracy(scores: np.ndarray, p: np.ndarray) -> float:
    """Mean over rows of P(the 0.5 cut of ``scores`` is right): ``p`` where the score is >= 0.5, else 1 - p."""
    s, q = np.asarray(scores, dtype="float64"), np.asarray(p, dtype="float64")
    if s.size == 0:
        return float("nan")
    return float(np.mean(np.where(s >= 0.5, q, 1.0 - q)))


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


def _as_labels(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    labels = np.asarray(y).astype("float64").reshape(-1)
    if labels.shape != proba.shape:
        raise ValueError(f"{proba.size} probabilities for {labels.size} labels")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1 (1 = the positive class)")
    return labels
