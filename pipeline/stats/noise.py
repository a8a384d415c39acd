"""How much a drift score moves by chance at a batch's size: the reference's own sampling noise.

A drift score (normed Wasserstein distance, Jensen-Shannon distance) is never 0 between two samples of the same
population, and the smaller the batch, the larger it is by chance alone: at 200 rows a stable batch's prediction
drift is often above 0.1. A fixed threshold without a noise model therefore alarms on small batches for nothing.

The noise model answers: if the batch came from the reference's own population, how large would each score be?
It resamples the reference (the bootstrap: a sample of the population the reference stands for) and scores each
draw against the reference with the scores' own formulas.

- **Size.** A batch of ``n`` rows against a reference of ``N`` rows carries the sampling noise of both sides: the
  score of two independent samples spreads like that of one sample of the *effective size* ``n * N / (n + N)``
  against the population, so the draws are of that size (times the column's share of values present).
- **Discrete columns** (categorical ones, and numerical ones with at most ``DISCRETE_VALUES`` distinct values,
  such as 0/1 flags): a draw is a multinomial count over the reference's levels, so ``DISCRETE_DRAWS`` draws cost
  little at any size, and the p-value is the share of draws scoring at least as high (the exact bootstrap tail;
  a rare flag's skewed tail is kept as it is).
- **Continuous columns and the prediction**: ``DRAWS`` resamples of the column's values; the squared score is
  close to a weighted sum of squared normal deviates, so a gamma distribution fitted to the squared draws by
  their mean and variance (the Satterthwaite approximation) gives the tail, and p-values smaller than
  ``1 / DRAWS``. Above ``MAX_DRAW_ROWS`` effective rows the draws are made at that size and the squared scores
  scaled by the ratio of sizes (the distance shrinks like one over the square root of the sample size).
- **In-sample reference scores**: a model's P(positive) on the rows it was fitted on is sharper than on any new
  rows of the same population, so a batch scored by that model differs from such a reference by more than
  chance. When the reference carries ``prediction_null`` (the champion's P(positive) on rows it was not fitted
  on, its recorded holdout), the prediction's draws are made from those out-of-sample scores and scored against
  the reference's own: the band then holds what a stable batch really scores, bias included. The holdout is
  smaller than the reference and was scored by the candidate fitted before it, so this band is wider (more
  conservative) than the reference's own (measured in ``docs/benchmarks.md``, section 9).
- **Cached**: a band is computed once per reference and effective size (rounded to a geometric grid of
  ``SIZE_STEP``), so a stream of equal batches pays for it once.

What the policy does with it (``pipeline.domain.policy``): the prediction-drift alarm needs the score at or above its
threshold **and** its p-value at or below the false-alarm rate; a column counts as drifted when its score reaches
the column threshold **and** the Benjamini-Hochberg procedure over all features rejects it at that rate (under no
drift at all, the chance that any column is declared drifted is then at most the rate).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.domain.schema import FeatureSchema

DRAWS = 200  # resamples of a continuous column per band: enough to fit the gamma tail's two moments
DISCRETE_DRAWS = 20_000  # multinomial draws of a discrete column per band: p-values down to 1 / 20,000
DISCRETE_VALUES = 32  # a numerical column with at most this many distinct values is drawn as a discrete one
MAX_DRAW_ROWS = 2_000  # continuous draws above this effective size are made at this size and scaled
MAX_SHIFTED_ROWS = 20_000  # draws from out-of-sample scores above this effective size are made at it and scaled
SIZE_STEP = 1.05  # effective sizes are rounded to this geometric grid (the noise changes by about 2.5% a step)
SEED = 0


class Reference(Protocol):
    """What the noise model reads of a reference (``pipeline.stats.drift.ReferenceProfile``)."""

    @property
    def rows(self) -> int: ...
    @property
    def schema(self) -> FeatureSchema: ...
    @property
    def numeric_profiles(self) -> Sequence[Any]: ...
    @property
    def categorical_profiles(self) -> Sequence[Any]: ...
    @property
    def prediction_profile(self) -> Any: ...
    @property
    def prediction_null(self) -> np.ndarray | None: ...


class Tail(Protocol):
    """The distribution of a score under no drift, at one size."""

    def p_value(self, score: float) -> float:
        """P(score >= observed) under no drift (NaN for a NaN score)."""
        ...

    def quantile(self, level: float) -> float:
        """The score that chance stays below with probability ``level``: the edge of the noise band."""
        ...


@dataclass(frozen=True)
class GammaTail:
    """A gamma distribution of the squared score, fitted to resampled scores by their mean and variance."""

    shape: float
    scale: float
    peak: float  # the largest squared score drawn: a band without spread compares with it

    @classmethod
    def of(cls, scores: np.ndarray) -> GammaTail | None:
        squared = np.asarray(scores, dtype=np.float64) ** 2
        squared = squared[np.isfinite(squared)]
        if squared.size < 2:
            return None
        mean, var = float(squared.mean()), float(squared.var(ddof=1))
        if mean <= 0 or var <= 0:
            return cls(math.inf, 0.0, float(squared.max()))
        return cls(mean * mean / var, var / mean, float(squared.max()))

    def scaled(self, factor: float) -> GammaTail:
        """The tail of squared scores multiplied by ``factor`` (a larger batch: factor < 1)."""
        return GammaTail(self.shape, self.scale * factor, self.peak * factor)

    def p_value(self, score: float) -> float:
        if not math.isfinite(score):
            return math.nan
        squared = score * score
        if self.scale == 0.0:
            return 1.0 if squared <= self.peak * (1 + 1e-9) + 1e-15 else 0.0
        from scipy.stats import gamma

        return float(gamma.sf(squared, self.shape, scale=self.scale))

    def quantile(self, level: float) -> float:
        if self.scale == 0.0:
            return math.sqrt(self.peak)
        from scipy.stats import gamma

        return math.sqrt(float(gamma.ppf(level, self.shape, scale=self.scale)))


@dataclass(frozen=True)
class EmpiricalTail:
    """The sorted scores of many draws: the p-value is the share of draws at least as high (with the observed
    score counted among them, so it is never 0)."""

    scores: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray) -> EmpiricalTail | None:
        finite = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])
        return cls(finite) if finite.size else None

    def p_value(self, score: float) -> float:
        if not math.isfinite(score):
            return math.nan
        at_least = self.scores.size - int(np.searchsorted(self.scores, score * (1 - 1e-9) - 1e-12, side="left"))
        return (1 + at_least) / (1 + self.scores.size)

    def quantile(self, level: float) -> float:
        return float(np.quantile(self.scores, level))


@dataclass
class NoiseBand:
    """The noise of every score at one batch size: the prediction's tail, drawn at once, and a tail per feature,
    drawn when first asked for (``draw_column``) and kept: a batch needs the tails of the columns whose scores
    reach their threshold only, so a stable batch of a wide table draws few."""

    rows: int  # the batch size it was asked for
    effective_rows: float  # the size of one sample with the noise of batch and reference together
    prediction: Tail | None
    draw_column: Callable[[str], Tail | None]
    _columns: dict[str, Tail | None] = field(default_factory=dict, repr=False)

    def column(self, name: str) -> Tail | None:
        if name not in self._columns:
            self._columns[name] = self.draw_column(name)
        return self._columns[name]

    def prediction_p(self, score: float) -> float:
        return math.nan if self.prediction is None else self.prediction.p_value(score)

    def column_p(self, name: str, score: float) -> float:
        tail = self.column(name)
        return math.nan if tail is None else tail.p_value(score)

    def prediction_edge(self, false_rate: float) -> float:
        """The prediction-drift score chance reaches with probability ``false_rate``."""
        return math.nan if self.prediction is None else self.prediction.quantile(1.0 - false_rate)


def effective_rows(batch_rows: int, reference_rows: int) -> float:
    """The size of one sample whose noise against the population equals that of the two samples together."""
    if batch_rows <= 0 or reference_rows <= 0:
        return 0.0
    return batch_rows * reference_rows / (batch_rows + reference_rows)


def grid_size(size: float) -> int:
    """``size`` rounded to the geometric grid of ``SIZE_STEP`` (at least 2)."""
    if size <= 2:
        return 2
    return max(2, int(round(SIZE_STEP ** round(math.log(size) / math.log(SIZE_STEP)))))


def _shares(counts: np.ndarray) -> np.ndarray:
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def wasserstein_draws(values: np.ndarray, reference: np.ndarray, current: np.ndarray, norm: float) -> np.ndarray:
    """The normed Wasserstein distance between each row of ``reference`` and of ``current`` (counts of each of the
    sorted distinct ``values``): ``NumericProfile.distance`` for many pairs of draws at once, on one support."""
    gap = np.cumsum(_shares(reference) - _shares(current), axis=1)[:, :-1]
    return np.abs(gap) @ np.diff(values) / norm


def jensen_shannon_draws(reference_counts: np.ndarray, current_counts: np.ndarray) -> np.ndarray:
    """The Jensen-Shannon distance (natural log) between each row of ``reference_counts`` and of
    ``current_counts`` (counts of the same levels): ``pipeline.stats.column_profiles.jensen_shannon`` for many pairs
    at once."""
    reference, drawn = _shares(reference_counts), _shares(current_counts)
    mid = (reference + drawn) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(reference > 0, reference * np.log(reference / mid), 0.0)
        right = np.where(drawn > 0, drawn * np.log(drawn / mid), 0.0)
    return np.sqrt(np.maximum(left.sum(axis=1) + right.sum(axis=1), 0.0) / 2)


class NoiseModel:
    """The noise bands of one reference, computed on demand and cached per effective size."""

    def __init__(self, profile: Reference, *, seed: int = SEED) -> None:
        self.profile = profile
        self.seed = seed
        self._bands: dict[int, NoiseBand] = {}

    def band(self, rows: int) -> NoiseBand:
        """The noise band of a batch of ``rows`` rows against this reference."""
        size = effective_rows(rows, self.profile.rows)
        key = grid_size(size)
        if key not in self._bands:
            self._bands[key] = self._draw(rows, float(key))
        return self._bands[key]

    def _draw(self, rows: int, size: float) -> NoiseBand:
        rng = np.random.default_rng([self.seed, int(size)])
        null = self.profile.prediction_null
        if null is not None and null.size:
            prediction = _shifted_tail(self.profile.prediction_profile, null, size, rng)
        else:
            prediction = self._numeric_tail(self.profile.prediction_profile, size, rows, rng)
        return NoiseBand(rows, size, prediction, functools.partial(self._draw_column, rows, size))

    def _draw_column(self, rows: int, size: float, name: str) -> Tail | None:
        """One feature's tail at this size (its own seeded draws: the same whichever columns were asked first)."""
        schema = self.profile.schema
        reference_rows = max(self.profile.rows, 1)
        if name in schema.numerical:
            position = schema.numerical.index(name)
            numeric = self.profile.numeric_profiles[position]
            present = numeric.count / reference_rows  # the share of rows with a value
            rng = np.random.default_rng([self.seed, int(size), 1 + position])
            return self._numeric_tail(numeric, size * present, round(rows * present), rng)
        if name in schema.categorical:
            position = schema.categorical.index(name)
            categorical = self.profile.categorical_profiles[position]
            present = categorical.count / reference_rows
            rng = np.random.default_rng([self.seed, int(size), 1 + len(schema.numerical) + position])
            return self._categorical_tail(categorical.counts, round(rows * present), rng)
        return None

    @staticmethod
    def _numeric_tail(numeric: Any, size: float, batch: int, rng: np.random.Generator) -> Tail | None:
        """A numerical column's tail: ``size`` is the effective size of its values, ``batch`` the batch's count
        of them (a discrete column draws both sides itself)."""
        drawn = int(round(size))
        if numeric.count == 0 or drawn < 1:
            return None
        if numeric.values.size <= DISCRETE_VALUES:
            reference, current = _two_samples(numeric.shares, numeric.count, batch, rng)
            return EmpiricalTail.of(wasserstein_draws(numeric.values, reference, current, numeric.norm))
        at = min(drawn, MAX_DRAW_ROWS)
        positions = np.minimum(
            np.searchsorted(np.cumsum(numeric.shares), rng.random((DRAWS, at)) * numeric.shares.sum(), side="right"),
            numeric.values.size - 1,
        )
        counts = _draw_counts(positions, numeric.values.size)  # on the reference's own support
        scores = wasserstein_draws(numeric.values, numeric.shares[None, :], counts, numeric.norm)
        tail = GammaTail.of(scores)
        return None if tail is None else tail.scaled(at / drawn) if at < drawn else tail

    @staticmethod
    def _categorical_tail(level_counts: Mapping[Any, int], batch: int, rng: np.random.Generator) -> Tail | None:
        counts = np.array(list(level_counts.values()), dtype=np.float64)
        if counts.sum() <= 0 or batch < 1:
            return None
        reference, current = _two_samples(counts / counts.sum(), int(counts.sum()), batch, rng)
        return EmpiricalTail.of(jensen_shannon_draws(reference, current))


def numeric_tail(numeric: Any, size: float, batch: int, seed: Sequence[int]) -> Tail | None:
    """The noise tail of a numerical sample's score against ``numeric`` (a ``NumericProfile``) at effective size
    ``size`` and ``batch`` values, drawn as a column's is: the per-segment prediction drift's noise."""
    return NoiseModel._numeric_tail(numeric, size, batch, np.random.default_rng(list(seed)))


def _shifted_tail(reference: Any, null: np.ndarray, size: float, rng: np.random.Generator) -> Tail | None:
    """The prediction's tail when the reference's scores are in-sample: ``DRAWS`` samples of ``size`` values from
    the out-of-sample scores ``null``, each scored against the reference's profile (one merged support, all draws
    at once). Drawn at the full size up to ``MAX_SHIFTED_ROWS`` (a bias does not shrink with the size, so the
    draws are not scaled down from a smaller size as the reference's own are), scaled above it."""
    drawn = int(round(size))
    if reference.count == 0 or drawn < 1:
        return None
    support = np.union1d(reference.values, null)
    at_reference = np.zeros(support.size)
    at_reference[np.searchsorted(support, reference.values)] = reference.shares
    at = min(drawn, MAX_SHIFTED_ROWS)
    picks = np.searchsorted(support, null)[rng.integers(0, null.size, (DRAWS, at))]
    scores = wasserstein_draws(support, at_reference[None, :], _draw_counts(picks, support.size), reference.norm)
    tail = GammaTail.of(scores)
    return None if tail is None else tail.scaled(at / drawn) if at < drawn else tail


def _draw_counts(positions: np.ndarray, support_size: int) -> np.ndarray:
    """Each row of ``positions`` (one draw's picked indices into a support) as counts on that support: a
    ``(draws, support_size)`` array, all draws at once (one ``bincount`` with a per-draw offset)."""
    draws = positions.shape[0]
    offsets = support_size * np.arange(draws)[:, None]
    return np.bincount((positions + offsets).ravel(), minlength=draws * support_size).reshape(draws, support_size)


def _two_samples(
    shares: np.ndarray, reference_rows: int, batch_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``DISCRETE_DRAWS`` pairs of a reference and a batch of the given sizes drawn from the same levels' shares:
    the noise of both sides, each with its own skew (a rare flag's count is far from normal)."""
    p = shares / shares.sum()
    return rng.multinomial(reference_rows, p, size=DISCRETE_DRAWS), rng.multinomial(batch_rows, p, size=DISCRETE_DRAWS)


def benjamini_hochberg(p_values: Mapping[str, float], rate: float) -> set[str]:
    """The names whose hypothesis of no drift the Benjamini-Hochberg procedure rejects at false discovery rate
    ``rate`` (NaN p-values, a side without values, are never rejected and do not count as tests)."""
    tested = {name: p for name, p in p_values.items() if math.isfinite(p)}
    if not tested:
        return set()
    from scipy.stats import false_discovery_control

    names = list(tested)
    adjusted = false_discovery_control(np.array([tested[name] for name in names]), method="bh")
    return {name for name, q in zip(names, adjusted, strict=True) if q <= rate}
