"""The calibration map is sklearn's isotonic regression, the calibration error is counted as stated, and the
calibration's spread is its refits' deviations read at the scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from pipeline.stats.calibration import CalibrationSpread, Isotonic, expected_calibration_error


@pytest.mark.parametrize("ties", [False, True])
def test_the_isotonic_calibration_is_sklearns(ties):
    rng = np.random.default_rng(2)
    p = rng.beta(2, 3, 5_000)
    p = np.round(p, 2) if ties else p
    y = (rng.random(p.size) < p**2).astype(float)
    new = rng.random(1_000) * 1.2 - 0.1  # some outside the reference's range
    sklearn = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    np.testing.assert_allclose(Isotonic.fit(p, y).predict(new), sklearn.predict(new), atol=1e-12)


@pytest.mark.parametrize(
    ("proba", "y", "ece"),
    [
        (np.array([0.1, 0.1, 0.9, 0.9]), np.array([0, 0, 1, 1]), 0.1),  # two bins, each 0.1 off
        (np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1]), 0.0),
        (np.array([0.2, 0.2, 0.2, 0.2]), np.array([1, 1, 1, 1]), 0.8),
    ],
)
def test_expected_calibration_error(proba, y, ece):
    assert expected_calibration_error(proba, y) == pytest.approx(ece)


@pytest.mark.parametrize("seed", range(3))
def test_the_spreads_shifts_are_its_deviations_interpolated_at_the_scores(seed):
    rng = np.random.default_rng(seed)
    knots = np.sort(rng.random(12))
    spread = CalibrationSpread(knots, rng.normal(size=(5, knots.size)))
    scores = rng.random(300) * 1.4 - 0.2  # some beyond the knots: held at the ends
    values = rng.normal(size=scores.size)
    direct = [np.sum(values * np.interp(scores, knots, deviation)) for deviation in spread.deviations]
    np.testing.assert_allclose(spread.shifts(scores, values), direct, rtol=1e-10, atol=1e-12)
