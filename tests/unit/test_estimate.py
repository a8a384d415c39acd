"""Estimated performance without labels (CBPE): checked against realized figures from sklearn on drawn labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, roc_auc_score

from pipeline.estimate import Estimate, Estimator, Isotonic, expected_calibration_error, expected_roc_auc

RAW = Estimator(None, "none", float("nan"))
DRAWS = 200


def _scores(kind: str, rows: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "beta(2,3)":
        return rng.beta(2, 3, rows)
    if kind == "u-shaped":
        return rng.beta(0.5, 0.5, rows)
    if kind == "uniform, ties (2 decimals)":
        return np.round(rng.random(rows), 2)
    if kind == "rare positives":
        return rng.beta(1, 9, rows)
    raise AssertionError(kind)


def _realized(p_true: np.ndarray, scores: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """Mean realized ROC AUC and accuracy of ``scores`` over many label draws y ~ Bernoulli(p_true)."""
    aucs, accuracies = [], []
    for _ in range(DRAWS):
        y = (rng.random(p_true.size) < p_true).astype(int)
        aucs.append(roc_auc_score(y, scores))
        accuracies.append(accuracy_score(y, scores >= 0.5))
    return float(np.mean(aucs)), float(np.mean(accuracies))


@pytest.mark.parametrize("kind", ["beta(2,3)", "u-shaped", "uniform, ties (2 decimals)", "rare positives"])
def test_on_calibrated_probabilities_the_estimate_is_the_mean_realized_performance(kind):
    rng = np.random.default_rng(7)
    p = _scores(kind, 2_000, rng)
    auc, accuracy = _realized(p, p, rng)
    estimate = RAW.estimate(p)
    assert estimate.roc_auc == pytest.approx(auc, abs=0.003)
    assert estimate.accuracy == pytest.approx(accuracy, abs=0.003)
    reference = _scores(kind, 20_000, rng)
    fitted = Estimator.fit(reference, rng.random(reference.size) < reference).estimate(p)
    assert fitted.roc_auc == pytest.approx(auc, abs=0.01)
    assert fitted.accuracy == pytest.approx(accuracy, abs=0.01)


@pytest.mark.parametrize(
    "distort",
    [lambda p: p**3, lambda p: p ** (1 / 3), lambda p: 0.5 + (p - 0.5) / 4],
    ids=["p**3", "p**(1/3)", "squeezed"],
)
def test_a_badly_calibrated_model_is_calibrated_and_the_estimate_improves(distort):
    rng = np.random.default_rng(11)
    reference = rng.beta(2, 3, 20_000)
    estimator = Estimator.fit(distort(reference), rng.random(reference.size) < reference)
    assert estimator.method == "isotonic" and estimator.calibrator is not None
    assert estimator.reference_ece < expected_calibration_error(distort(reference), rng.random(20_000) < reference)
    p = rng.beta(2, 3, 2_000)
    auc, accuracy = _realized(p, distort(p), rng)
    calibrated, raw = estimator.estimate(distort(p)), RAW.estimate(distort(p))
    assert calibrated.roc_auc is not None and raw.roc_auc is not None
    assert abs(calibrated.roc_auc - auc) < 0.01 < abs(raw.roc_auc - auc)
    assert abs(calibrated.accuracy - accuracy) < 0.02
    assert abs(calibrated.accuracy - accuracy) < abs(raw.accuracy - accuracy)


def test_a_well_calibrated_reference_reports_a_small_calibration_error():
    rng = np.random.default_rng(3)
    p = rng.beta(2, 3, 20_000)
    estimator = Estimator.fit(p, rng.random(p.size) < p)
    assert estimator.method in {"none", "isotonic"}
    assert estimator.reference_ece < 0.02


def test_under_a_concept_shift_the_estimate_stays_confident_while_the_realized_auc_falls():
    """The documented failure: CBPE assumes P(label | score) is the reference's. When the relation between the
    inputs and the label changes (here the label follows another feature), the model's probabilities do not
    move, so neither does the estimate; only labels show the fall."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20_000, 2))
    model = 1 / (1 + np.exp(-2.5 * x[:, 0]))  # the model's P(positive): the reference's true relation
    estimator = Estimator.fit(model, rng.random(model.size) < model)
    batch = rng.normal(size=(2_000, 2))
    scores = 1 / (1 + np.exp(-2.5 * batch[:, 0]))
    shifted = 1 / (1 + np.exp(-2.5 * batch[:, 1]))  # the new concept: the label follows the other feature
    realized_before, _ = _realized(scores, scores, rng)
    realized_after, _ = _realized(shifted, scores, rng)
    estimate = estimator.estimate(scores)
    assert estimate.roc_auc is not None
    assert estimate.roc_auc == pytest.approx(realized_before, abs=0.01)  # confident, as before the shift
    assert realized_after < 0.55  # the model ranks at chance under the new concept
    assert estimate.roc_auc - realized_after > 0.3  # and the estimate does not see it


@pytest.mark.parametrize(
    ("proba", "roc_auc", "accuracy"),
    [
        (np.zeros(10), None, 1.0),  # no expected positives: AUC undefined; the 0.5 cut is always right
        (np.ones(10), None, 1.0),
        (np.full(10, 0.3), 0.5, 0.7),  # one tie: the diagonal
        (np.array([0.0, 1.0]), 1.0, 1.0),
        (np.array([]), None, float("nan")),
    ],
)
def test_edge_cases(proba, roc_auc, accuracy):
    estimate = RAW.estimate(proba)
    assert isinstance(estimate, Estimate)
    assert estimate.roc_auc == (None if roc_auc is None else pytest.approx(roc_auc))
    assert estimate.accuracy == pytest.approx(accuracy, nan_ok=True)


def test_the_ranking_is_the_raw_scores_and_the_expectation_the_calibrated_ones():
    # Two rows, ranked by score; the lower-scored is surely positive, the higher surely negative: AUC 0.
    assert expected_roc_auc(np.array([0.9, 0.1]), np.array([0.0, 1.0])) == pytest.approx(0.0)


def test_a_reference_with_one_class_is_not_calibrated():
    estimator = Estimator.fit(np.linspace(0, 1, 100), np.zeros(100))
    assert estimator.method == "none" and estimator.calibrator is None


@pytest.mark.parametrize("ties", [False, True])
def test_the_isotonic_calibration_is_sklearns(ties):
    rng = np.random.default_rng(2)
    p = rng.beta(2, 3, 5_000)
    p = np.round(p, 2) if ties else p
    y = (rng.random(p.size) < p**2).astype(float)
    new = rng.random(1_000) * 1.2 - 0.1  # some outside the reference's range
    sklearn = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    np.testing.assert_allclose(Isotonic.fit(p, y).predict(new), sklearn.predict(new), atol=1e-12)


def test_mismatched_or_non_finite_input_is_refused():
    with pytest.raises(ValueError):
        Estimator.fit(np.ones(3), np.ones(4))
    with pytest.raises(ValueError):
        Estimator.fit(np.ones(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        RAW.estimate(np.array([0.2, np.nan]))


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
