"""Multivariate drift: a domain classifier that tells the batch's rows from the reference's.

Every other drift score looks at one column at a time (or at the champion's predictions). A change in how the
features move together while each marginal stays put (two features whose correlation flips) passes them all.
This score sees it: a classifier learns to tell reference rows from batch rows, and its ROC AUC on rows it did not
learn from is 0.5 when nothing changed and grows with any change of the joint distribution.

- **Bounded sample.** At most ``sample_rows`` rows of the reference and as many of the batch, drawn at random
  with a fixed seed, so the cost per batch does not grow with the batch (a batch read in chunks gives a bounded
  uniform sample of its rows: ``pipeline.engine.local.Reservoir``).
- **Features.** Numerical columns standardised by the reference sample, clipped at 8 standard deviations; their
  squares and pairwise products (the first
  ``MAX_PAIRED`` numerical columns, in schema order): a product's mean is the pair's covariance, so a correlation
  that flips moves it even though no column moves. Categorical columns one-hot on the reference's most frequent
  ``MAX_LEVELS`` levels, the others (and levels the reference never had) in one "other" column; they enter
  linearly (their marginals are the univariate rules' business; a change of their interaction with a numerical
  column is not seen). A missing cell, numerical or categorical, takes a value drawn at random from the
  reference's values of its column: a change in the share of missing values is reported on its own
  (``share_missing``) and does not make this score alarm.
- **Classifier.** L2-regularised logistic regression: fast (about 0.15 s for 2,000 + 2,000 rows and four
  features) and, on these features, it sees second-order structure.
- **Noise model.** The pooled sample is split at random in two halves, stratified: the classifier is fitted on
  one and scores the other. Under no change, given the fitted half, the test half's reference/batch labels are
  exchangeable, so its AUC is a Mann-Whitney statistic with null mean 0.5 and variance
  (m + n + 1) / (12 m n) for its m reference and n batch rows; ties only shrink it, so the band is exact or
  conservative. The p-value is the one-sided normal tail. A k-fold cross-validated AUC uses every row for testing,
  but its pooled out-of-fold scores come from k different models: measured on 50 stable batches of 2,000 + 2,000
  rows it had mean 0.495 and standard deviation 0.0117 against Mann-Whitney's 0.0091, so Mann-Whitney's band is
  not its noise, and calibrating it would need label permutations (k fits each) per reference and sample size.
  The held-out half costs a factor sqrt(2) in noise and has a noise model that holds at every size for free.

Pure: numpy, pandas, scikit-learn; no I/O.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema

SAMPLE_ROWS = 2_000  # rows of the reference, and at most as many of the batch, the classifier sees
MIN_ROWS = 20  # fewer rows of either side: not measured
MAX_PAIRED = 30  # numerical columns whose squares and pairwise products are features
MAX_LEVELS = 20  # most frequent levels of a categorical column one-hot encoded
POOL_SAMPLES = 5  # the reference pool holds at most this many samples' rows
CLIP = 8.0  # standardised values are clipped at this many standard deviations


@dataclass(frozen=True)
class MultivariateResult:
    """The domain classifier's held-out ROC AUC and its noise under no change."""

    auc: float
    stderr: float  # the standard deviation of the held-out AUC under no change (Mann-Whitney)
    reference_rows: int  # rows of the reference in the sample
    batch_rows: int  # rows of the batch in the sample

    @property
    def p_value(self) -> float:
        """The chance of a held-out AUC at least this high under no change (one-sided, normal)."""
        from scipy.stats import norm

        return float(norm.sf((self.auc - 0.5) / self.stderr))

    def edge(self, rate: float) -> float:
        """The AUC chance reaches with probability ``rate`` under no change, at this sample's size."""
        from scipy.stats import norm

        return 0.5 + float(norm.isf(rate)) * self.stderr


def mann_whitney_stderr(first: int, second: int) -> float:
    """The null standard deviation of a ROC AUC on ``first`` and ``second`` exchangeable rows (no ties)."""
    if first < 1 or second < 1:
        return math.inf
    return math.sqrt((first + second + 1) / (12.0 * first * second))


@dataclass(frozen=True)
class _Encoding:
    """How a frame's feature columns become the classifier's matrix: fitted on the reference sample."""

    numerical: tuple[str, ...]
    means: np.ndarray
    scales: np.ndarray
    levels: tuple[tuple[str, tuple[str, ...]], ...]  # categorical column -> its encoded levels
    observed: tuple[np.ndarray, ...]  # per column (numerical, then categorical): the reference's values, for gaps

    @classmethod
    def fit(cls, frame: pd.DataFrame, schema: FeatureSchema) -> _Encoding:
        numerical = tuple(name for name in schema.numerical if name in frame.columns)
        values = frame[list(numerical)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an entirely empty column
            means = np.nan_to_num(np.nanmean(values, axis=0)) if len(values) else np.zeros(len(numerical))
            scales = np.nan_to_num(np.nanstd(values, axis=0)) if len(values) else np.ones(len(numerical))
        scales = np.where(scales > 0, scales, 1.0)
        levels = tuple(
            (name, tuple(frame[name].dropna().astype(str).value_counts().index[:MAX_LEVELS]))
            for name in schema.categorical
            if name in frame.columns
        )
        observed = tuple(values[~np.isnan(values[:, k]), k] for k in range(len(numerical))) + tuple(
            frame[name].dropna().astype(str).to_numpy() for name, _levels in levels
        )
        return cls(numerical, means, scales, levels, observed)

    def matrix(self, frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """The frame as features: standardised numbers, their squares and products, one-hots. A missing cell takes
        a value drawn from the reference's values of its column (``rng``): the share of missing values is a metric
        of its own, and a gap should not tell the batch from the reference."""
        values = frame[list(self.numerical)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        for k in range(len(self.numerical)):
            gaps = np.isnan(values[:, k])
            if gaps.any() and len(self.observed[k]):
                values[gaps, k] = rng.choice(self.observed[k], size=int(gaps.sum()))
        z = np.clip(np.nan_to_num((values - self.means) / self.scales), -CLIP, CLIP)
        paired = z[:, :MAX_PAIRED]
        i, j = np.triu_indices(paired.shape[1])
        parts: list[np.ndarray] = [z, paired[:, i] * paired[:, j]]
        for position, (name, levels) in enumerate(self.levels):
            text = frame[name].astype(str).where(frame[name].notna(), None)
            pool = self.observed[len(self.numerical) + position]
            gaps = text.isna().to_numpy()
            if gaps.any() and len(pool):
                text = text.copy()
                text[gaps] = rng.choice(pool, size=int(gaps.sum()))
            hot: list[np.ndarray] = [(text == level).to_numpy(dtype=float) for level in levels]
            parts.append(np.column_stack(hot) if hot else np.zeros((len(z), 1)))
            parts.append((text.notna() & ~text.isin(levels)).to_numpy(float)[:, None])
        return np.hstack(parts)


def sample_of(frame: pd.DataFrame, rows: int, seed: int | np.random.Generator) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn at random without replacement (seeded)."""
    if len(frame) <= rows:
        return frame
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), size=rows, replace=False))
    return frame.iloc[picked]


class DomainClassifier:
    """Fitted once per reference (``fit``: a pool of at most ``POOL_SAMPLES`` times ``sample_rows`` of its rows and
    the encoding), then ``measure`` on each batch with the batch's own seed: each batch draws its own reference
    sample and split from the pool, so that the chance errors of consecutive batches are not those of one fixed
    reference sample (measured: with one fixed sample of 2,000 rows, the stable batches' mean AUC sat anywhere
    within 0.49-0.51 depending on the sample; the false-alarm rate holds on average over samples)."""

    def __init__(self, encoding: _Encoding, pool: pd.DataFrame, sample_rows: int) -> None:
        self.encoding = encoding
        self.pool = pool
        self.sample_rows = sample_rows

    @classmethod
    def fit(cls, reference: pd.DataFrame, schema: FeatureSchema, sample_rows: int = SAMPLE_ROWS) -> DomainClassifier:
        pool = sample_of(reference, POOL_SAMPLES * sample_rows, 0)
        return cls(_Encoding.fit(pool, schema), pool, sample_rows)

    def measure(self, batch: pd.DataFrame, seed: int = 0) -> MultivariateResult | None:
        """The held-out AUC of at most ``sample_rows`` reference rows against as many of the batch's, drawn with
        ``seed``; None when either side has fewer than ``MIN_ROWS`` rows."""
        if len(self.pool) < MIN_ROWS or len(batch) < MIN_ROWS:
            return None
        rng = np.random.default_rng([seed, 20_261_202])
        reference = self.encoding.matrix(sample_of(self.pool, self.sample_rows, rng), rng)
        rows = self.encoding.matrix(sample_of(batch, self.sample_rows, rng), rng)
        x = np.vstack([reference, rows])
        y = np.r_[np.zeros(len(reference)), np.ones(len(rows))]
        test = _held_out(y, rng)
        scores = _fit_and_score(x[~test], y[~test], x[test])
        auc = _auc(y[test], scores)
        first, second = int(np.sum(y[test] == 0)), int(np.sum(y[test] == 1))
        return MultivariateResult(auc, mann_whitney_stderr(first, second), len(reference), len(rows))


def _held_out(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random half of each class (stratified): the rows the classifier is tested on."""
    test = np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        where = np.flatnonzero(y == label)
        test[rng.choice(where, size=len(where) // 2, replace=False)] = True
    return test


def _fit_and_score(x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    scale = x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    model = LogisticRegression(C=1.0, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fit that stops at max_iter still ranks rows
        model.fit(x / scale, y)
    return np.asarray(model.decision_function(x_test / scale))


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by ranks (ties at half)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = y == 1
    n1, n0 = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
