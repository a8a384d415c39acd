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
  ``SPREAD_KNOTS`` quantiles of the reference's scores (``CalibrationSpread``). A deviation d(s) of the map moves
  the estimate by sum_i g_i d(s_i) to first order (the same g); the variance of that over the refits is added.

The interval is the estimate +- z sqrt(sum of both), z the normal quantile of ``LEVEL``, clipped to [0, 1]. On
calibrated probabilities its coverage is the level (label noise alone: 0.89 to 0.91 at 200, 1,000 and 10,000
rows, down to 5 expected positives). With a calibration fitted on a few thousand reference rows it is near the
level; on a few hundred, below it: an isotonic map fitted on few rows is also optimistic on average (too sure of
itself), which no spread shows. It is approximate when the batch expects few positives or few negatives: the
realized AUC is then skewed, or undefined when every label comes out the same.

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
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
from scipy.optimize import isotonic_regression
from scipy.special import chdtrc

ECE_BINS = 10
CALIBRATION_FOLDS = 5
LEVEL = 0.90  # the coverage of the interval on every estimate
BOOTSTRAPS = 40  # isotonic refits on resampled references: the calibration's own uncertainty
SPREAD_KNOTS = 200  # reference-score quantiles at which each refit's deviation is kept
SPREAD_BLOCKS = 512  # a larger reference is resampled in this many blocks of consecutive scores
DRIFT_ALPHA = 0.01  # the calibration test's false-alarm rate when the calibration holds
DRIFT_BINS = 10  # at most this many bins in the calibration test
MIN_BIN_VARIANCE = 5.0  # each bin of the calibration test holds at least this much sum of q (1 - q)
MIN_RECALIBRATION_ROWS = 1_000  # fewer labelled rows neither test nor refit the calibration
TRUST_WINDOW = 3  # the last labelled batches the trust rule looks at
TRUST_ALPHA = 0.05  # the trust rule's false-alarm rate bound when the intervals hold


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
        return cls._of_sorted(p[order], labels[order])

    @classmethod
    def _of_sorted(cls, p: np.ndarray, y: np.ndarray) -> Isotonic:
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
        spread = CalibrationSpread.of_sorted(p, labels)
        if calibrated_ece < raw_ece:
            return cls(Isotonic._of_sorted(p, labels), "isotonic", calibrated_ece, spread)
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
        scores, rows, positives = _tied(raw, q)
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
    grouped, rows, positives = _tied(s, q)
    return grouped_estimate(grouped, rows, positives, 0.0).roc_auc


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


def _tied(scores: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows in groups of tied scores, ascending: (score, rows, sum of q) per group."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if s.size else np.zeros(0, dtype="int64")
    rows = np.diff(np.r_[starts, s.size])
    return s[starts], rows, np.add.reduceat(q[order], starts) if s.size else np.zeros(0)


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


def _as_labels(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    labels = np.asarray(y).astype("float64").reshape(-1)
    if labels.shape != proba.shape:
        raise ValueError(f"{proba.size} probabilities for {labels.size} labels")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1 (1 = the positive class)")
    return labels
