"""The reference's columns, profiled once, and the distances a batch's columns are scored by: Evidently's methods.

The drift score of a numerical column (and of the prediction) is Evidently's ``wasserstein`` method: the
Wasserstein distance between the reference and current distributions divided by the reference standard
deviation ("normed", floored at ``MIN_NORM``). 0 means identical distributions; larger means more drift.
Categorical columns use Jensen-Shannon distance (0..1, larger = more drift).

A ``NumericProfile`` keeps a column's distinct finite values, the share of each and its standard deviation; a
``CategoricalProfile`` its level counts. The Wasserstein distance is the exact integral of |F_ref - F_cur| over
the merged support of both samples (what scipy computes, on distinct values instead of all values), so the
scores equal Evidently's up to floating-point rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MIN_NORM = 0.001  # Evidently's floor on the reference standard deviation


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
