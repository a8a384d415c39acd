"""A reference's fixed bins, piece by piece: the edge locator finds what ``np.searchsorted`` finds, and a column's
bins travel (a Spark broadcast) without their grid and count the same. Profiles on the bins, merged and scored
within their bounds, are checked in ``test_profile.py``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pipeline.stats.binned_reference import ColumnBins, EdgeLocator
from pipeline.stats.column_profiles import NumericProfile


@pytest.mark.parametrize("seed", range(12))
def test_the_edge_locator_finds_what_searchsorted_finds(seed):
    rng = np.random.default_rng(seed)
    spread = rng.lognormal(0, 3, 20_000)  # heavy tailed: quantile edges crowd near zero, far apart in the tail
    edges = np.unique(
        np.concatenate([np.quantile(spread, np.linspace(0, 1, 2048)), np.linspace(spread.min(), spread.max(), 2048)])
    )
    values = np.concatenate(
        [
            rng.lognormal(0, 3, 30_000),
            edges[rng.integers(0, edges.size, 2_000)],  # on an edge
            np.nextafter(edges[rng.integers(0, edges.size, 500)], -np.inf),  # just below one
            np.nextafter(edges[rng.integers(0, edges.size, 500)], np.inf),  # just above one
            [-1.0, 0.0, edges[-1] * 2, 1e300, -1e300],
        ]
    )
    locator = EdgeLocator(edges)

    np.testing.assert_array_equal(locator.locate(values), np.searchsorted(edges, values, side="left"))


@pytest.mark.parametrize("edges", [[], [3.0], [1.0, 1.0 + 2**-40], [-1e308, 1e308]])
def test_the_edge_locator_on_degenerate_edges(edges):
    edges = np.unique(np.asarray(edges, dtype=np.float64))
    values = np.asarray([-np.finfo(float).max, -2.0, 1.0, 1.0 + 2**-41, 3.0, 4.0, np.finfo(float).max])

    np.testing.assert_array_equal(EdgeLocator(edges).locate(values), np.searchsorted(edges, values, side="left"))


def test_pickled_bins_leave_their_grid_behind_and_count_the_same():
    rng = np.random.default_rng(3)
    reference = NumericProfile.of(np.sort(rng.normal(size=5_000)))
    bins = ColumnBins.of(reference, 256, 256)
    values = rng.normal(size=2_000)
    counted = bins.count(values)  # builds the grid here
    shipped = pickle.loads(pickle.dumps(bins))

    assert shipped._locator is None
    assert len(pickle.dumps(bins)) == len(pickle.dumps(ColumnBins.of(reference, 256, 256)))  # never counted
    again = shipped.count(values)
    np.testing.assert_array_equal(again.counts, counted.counts)
    np.testing.assert_array_equal(again.sums, counted.sums)
