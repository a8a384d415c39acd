"""Estimated performance without labels (CBPE), its interval, the calibration test and the trust rule: checked
against realized figures from sklearn on drawn labels, and against hand-counted cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import accuracy_score, roc_auc_score

from pipeline.stats.auc_interval import LEVEL, Estimate, expected_roc_auc
from pipeline.stats.calibration import expected_calibration_error
from pipeline.stats.estimate import Estimator, Recalibration, calibration_drifted, estimate_trusted

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


def test_a_reference_with_one_class_is_not_calibrated():
    estimator = Estimator.fit(np.linspace(0, 1, 100), np.zeros(100))
    assert estimator.method == "none" and estimator.calibrator is None


def test_mismatched_or_non_finite_input_is_refused():
    with pytest.raises(ValueError):
        Estimator.fit(np.ones(3), np.ones(4))
    with pytest.raises(ValueError):
        Estimator.fit(np.ones(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        RAW.estimate(np.array([0.2, np.nan]))


# ---------------------------------------------------------------- the interval


def _realized_aucs(p_true: np.ndarray, scores: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """The realized ROC AUC of ``scores`` for each of ``draws`` label draws y ~ Bernoulli(p_true), by the
    Mann-Whitney identity (tied scores share their mean rank); draws with one class left out."""
    ranks = rankdata(scores)
    y = rng.random((draws, p_true.size)) < p_true
    positives = y.sum(axis=1)
    negatives = p_true.size - positives
    kept = (positives > 0) & (negatives > 0)
    rank_sums = y[kept] @ ranks
    return (rank_sums - positives[kept] * (positives[kept] + 1) / 2) / (positives[kept] * negatives[kept])


def test_the_realized_auc_helper_is_sklearns():
    rng = np.random.default_rng(0)
    p = np.round(rng.random(300), 1)
    aucs = _realized_aucs(p, p, 5, np.random.default_rng(1))
    labels = np.random.default_rng(1).random((5, p.size)) < p
    np.testing.assert_allclose(aucs, [roc_auc_score(y, p) for y in labels])


def _coverage_and_spread(
    estimate: Estimate, p_true: np.ndarray, scores: np.ndarray, draws: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Share of label draws whose realized ROC AUC falls in the interval, and the realized AUCs' standard
    deviation."""
    realized = _realized_aucs(p_true, scores, draws, rng)
    inside = (realized >= estimate.roc_auc_low) & (realized <= estimate.roc_auc_high)
    return float(inside.mean()), float(realized.std())


@pytest.mark.parametrize("rows", [200, 1_000, 10_000])
@pytest.mark.parametrize("kind", ["beta(2,3)", "u-shaped", "uniform, ties (2 decimals)", "rare positives"])
def test_on_calibrated_probabilities_the_interval_covers_the_realized_auc_at_its_level(kind, rows):
    rng = np.random.default_rng(rows)
    p = _scores(kind, rows, rng)
    estimate = RAW.estimate(p)
    assert estimate.level == LEVEL == 0.90
    assert estimate.roc_auc_low is not None and estimate.roc_auc_high is not None
    assert estimate.roc_auc_low < estimate.roc_auc < estimate.roc_auc_high
    coverage, spread = _coverage_and_spread(estimate, p, p, 1_000 if rows < 10_000 else 400, rng)
    assert coverage == pytest.approx(0.90, abs=0.05)
    half_width = (estimate.roc_auc_high - estimate.roc_auc_low) / 2
    assert half_width == pytest.approx(1.6449 * spread, rel=0.15)  # the normal quantile of 0.95 times the sd


def test_the_interval_narrows_as_the_square_root_of_the_batch():
    rng = np.random.default_rng(4)
    small, large = (RAW.estimate(rng.beta(2, 3, rows)) for rows in (1_000, 100_000))
    width = [e.roc_auc_high - e.roc_auc_low for e in (small, large)]
    assert width[0] / width[1] == pytest.approx(10.0, rel=0.1)


@pytest.mark.parametrize(
    ("proba", "roc_auc"),
    [
        (np.array([0.0, 0.0, 1.0, 1.0]), 1.0),  # every label certain: the realized AUC is too
        (np.full(10, 0.3), 0.5),  # one tie: every labelling gives 0.5
    ],
)
def test_when_the_realized_auc_cannot_vary_the_interval_is_the_estimate(proba, roc_auc):
    estimate = RAW.estimate(proba)
    assert estimate.roc_auc_low == estimate.roc_auc == estimate.roc_auc_high == pytest.approx(roc_auc)


def test_undefined_estimates_have_no_interval():
    for proba in (np.zeros(10), np.array([])):
        estimate = RAW.estimate(proba)
        assert estimate.roc_auc is None and estimate.roc_auc_low is None and estimate.roc_auc_high is None


def test_a_wider_level_gives_a_wider_interval():
    p = np.random.default_rng(1).beta(2, 3, 2_000)
    narrow, wide = RAW.estimate(p, level=0.5), RAW.estimate(p, level=0.99)
    assert wide.roc_auc_low < narrow.roc_auc_low < narrow.roc_auc_high < wide.roc_auc_high
    # both from one standard deviation: the ratio of the normal quantiles of 0.995 and 0.75
    ratio = (wide.roc_auc_high - wide.roc_auc_low) / (narrow.roc_auc_high - narrow.roc_auc_low)
    assert ratio == pytest.approx(2.5758 / 0.6745, rel=1e-3)


def test_the_calibrations_own_spread_widens_the_interval_to_its_level():
    """A calibration fitted on 1,000 reference rows is off by about as much as 10,000 labels move the AUC; the
    interval of label noise alone misses the realized AUC far more often than its level allows."""
    rng = np.random.default_rng(8)
    inside, inside_labels_only = [], []
    for _ in range(60):
        reference = rng.beta(2, 3, 1_000)
        estimator = Estimator.fit(reference**2, rng.random(reference.size) < reference)
        assert estimator.spread is not None
        p = rng.beta(2, 3, 10_000)
        realized = roc_auc_score(rng.random(p.size) < p, p**2)
        for estimate, hits in (
            (estimator.estimate(p**2), inside),
            (replace(estimator, spread=None).estimate(p**2), inside_labels_only),
        ):
            hits.append(estimate.roc_auc_low <= realized <= estimate.roc_auc_high)
    assert np.mean(inside) >= 0.75
    assert np.mean(inside_labels_only) <= 0.6


def test_the_spread_term_is_the_spread_of_the_estimates_under_each_refit():
    """First order: the variance the spread adds is that of the expected AUC recomputed with each refit's map."""
    rng = np.random.default_rng(6)
    reference = rng.beta(2, 3, 2_000)
    estimator = Estimator.fit(reference**2, rng.random(reference.size) < reference)
    assert estimator.spread is not None
    scores = rng.beta(2, 3, 5_000) ** 2
    calibrated = estimator.calibrated(scores)
    refits = [
        expected_roc_auc(scores, np.clip(calibrated + np.interp(scores, estimator.spread.knots, deviation), 0, 1))
        for deviation in estimator.spread.deviations
    ]
    with_spread, without = estimator.estimate(scores), replace(estimator, spread=None).estimate(scores)
    z = 1.6449
    sd_with = (with_spread.roc_auc_high - with_spread.roc_auc_low) / (2 * z)
    sd_without = (without.roc_auc_high - without.roc_auc_low) / (2 * z)
    assert np.sqrt(sd_with**2 - sd_without**2) == pytest.approx(np.std(refits, ddof=1), rel=0.05)


def test_the_spread_measures_how_much_the_estimate_moves_from_one_reference_to_another():
    """The spread is measured on one reference; the truth it stands for is how the estimate of one batch varies
    over independent references of the same size."""
    rng = np.random.default_rng(10)
    batch = rng.beta(2, 3, 5_000) ** 2
    estimates, measured = [], []
    for _ in range(40):
        reference = rng.beta(2, 3, 1_000)
        estimator = Estimator.fit(reference**2, rng.random(reference.size) < reference)
        with_spread, without = estimator.estimate(batch), replace(estimator, spread=None).estimate(batch)
        estimates.append(with_spread.roc_auc)
        z = 1.6449
        sd_with = (with_spread.roc_auc_high - with_spread.roc_auc_low) / (2 * z)
        sd_without = (without.roc_auc_high - without.roc_auc_low) / (2 * z)
        measured.append(np.sqrt(sd_with**2 - sd_without**2))
    assert np.mean(measured) == pytest.approx(np.std(estimates, ddof=1), rel=0.3)


def test_a_reference_too_small_to_calibrate_has_no_spread():
    estimator = Estimator.fit(np.linspace(0, 1, 100), np.r_[np.zeros(97), np.ones(3)])
    assert estimator.spread is None


# ---------------------------------------------------------------- the calibration test and the refit


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _drifted(p: np.ndarray) -> np.ndarray:
    """The label's new relation to the calibrated probability: less sure, and fewer positives."""
    return _sigmoid(np.log(p / (1 - p)) * 0.6 - 0.3)


def _model(rows: int, rng: np.random.Generator) -> np.ndarray:
    return _sigmoid(rng.normal(0, 1.5, rows) - 0.5)


def test_the_calibration_test_by_hand():
    # 40 rows at 0.5: sum of q (1 - q) is 10, two bins of 5 (20 rows each). The first bin has 20 positives for 10
    # expected, the second 10 for 10: statistic 10^2 / 5 = 20, chi-square with 2 degrees of freedom: exp(-20 / 2).
    y = np.r_[np.ones(20), np.ones(10), np.zeros(10)]
    drifted, p_value = calibration_drifted(RAW, np.full(40, 0.5), y)
    assert drifted and p_value == pytest.approx(np.exp(-10.0))
    drifted, p_value = calibration_drifted(RAW, np.full(40, 0.5), np.tile([0.0, 1.0], 20))
    assert not drifted and p_value == pytest.approx(1.0)


def test_too_few_expected_positives_are_not_tested():
    drifted, p_value = calibration_drifted(RAW, np.full(100, 0.01), np.zeros(100))
    assert not drifted and np.isnan(p_value)


def test_when_the_calibration_holds_the_test_alarms_at_its_rate():
    rng = np.random.default_rng(13)
    p_values = []
    for _ in range(400):
        p = _model(2_000, rng)
        p_values.append(calibration_drifted(RAW, p, rng.random(p.size) < p)[1])
    p_values = np.array(p_values)
    assert np.mean(p_values < 0.01) <= 0.03
    assert np.mean(p_values < 0.1) == pytest.approx(0.1, abs=0.04)  # uniform p-values
    assert np.mean(p_values < 0.5) == pytest.approx(0.5, abs=0.08)


def test_a_fitted_calibration_is_not_taken_for_a_drift():
    """The reference's own sampling error, measured by the spread, is not a drift (without it, 5,000 labelled rows
    would see the error of a 2,000-row calibration far more often than 1%)."""
    rng = np.random.default_rng(14)
    alarms, alarms_labels_only = 0, 0
    for _ in range(60):
        reference = _model(2_000, rng)
        estimator = Estimator.fit(reference**2, rng.random(reference.size) < reference)
        p = _model(5_000, rng)
        y = rng.random(p.size) < p
        alarms += calibration_drifted(estimator, p**2, y)[0]
        alarms_labels_only += calibration_drifted(replace(estimator, spread=None), p**2, y)[0]
    assert alarms <= 4
    assert alarms_labels_only >= 8


def test_a_drifted_calibration_is_detected():
    rng = np.random.default_rng(15)
    reference = _model(5_000, rng)
    estimator = Estimator.fit(reference, rng.random(reference.size) < reference)
    detected = []
    for _ in range(50):
        p = _model(1_000, rng)
        detected.append(calibration_drifted(estimator, p, rng.random(p.size) < _drifted(p))[0])
    assert np.mean(detected) >= 0.9


def test_refit_if_drifted_recalibrates_on_the_newest_rows_and_the_estimate_recovers():
    rng = np.random.default_rng(16)
    reference = _model(5_000, rng)
    estimator = Estimator.fit(reference, rng.random(reference.size) < reference)
    recent = _model(2_000, rng)  # labelled rows of earlier batches, after the drift
    decision = estimator.refit_if_drifted(recent, rng.random(recent.size) < _drifted(recent))
    assert isinstance(decision, Recalibration)
    assert decision.refitted and decision.estimator is not estimator and decision.p_value < 0.01
    assert "drifted" in decision.reason and "2000" in decision.reason
    before, after = [], []
    for _ in range(10):
        batch = _model(2_000, rng)
        realized = roc_auc_score(rng.random(batch.size) < _drifted(batch), batch)
        before.append(abs(estimator.estimate(batch).roc_auc - realized))
        after.append(abs(decision.estimator.estimate(batch).roc_auc - realized))
    assert np.mean(before) > 0.07
    assert np.mean(after) < 0.025


def test_refit_if_drifted_keeps_a_calibration_that_holds_or_cannot_be_checked():
    rng = np.random.default_rng(17)
    reference = _model(5_000, rng)
    estimator = Estimator.fit(reference, rng.random(reference.size) < reference)
    recent = _model(2_000, rng)
    holds = estimator.refit_if_drifted(recent, rng.random(recent.size) < recent)
    assert holds.estimator is estimator and not holds.refitted and holds.p_value > 0.01
    few = estimator.refit_if_drifted(recent[:500], rng.random(500) < _drifted(recent[:500]))
    assert few.estimator is estimator and not few.refitted and np.isnan(few.p_value)
    assert "fewer than 1000" in few.reason
    rare = estimator.refit_if_drifted(np.full(2_000, 0.001), np.zeros(2_000))
    assert rare.estimator is estimator and not rare.refitted


def test_a_drift_with_too_few_of_a_class_to_recalibrate_on_keeps_the_estimator():
    # 40 rows at 0.5, none positive: 20 expected, the test sees it; nothing to calibrate on
    decision = RAW.refit_if_drifted(np.full(40, 0.5), np.zeros(40), min_rows=40)
    assert decision.estimator is RAW and not decision.refitted and decision.p_value < 1e-6
    assert "too few" in decision.reason


# ---------------------------------------------------------------- trust


IN, OUT = (0.70, 0.65, 0.75), (0.55, 0.65, 0.75)


@pytest.mark.parametrize(
    ("history", "trusted"),
    [
        ([], None),
        ([(None, 0.6, 0.7), (0.7, None, None)], None),  # no labelled batch with an interval
        ([IN], True),
        ([OUT], True),  # one batch outside a 90% interval: 10% of the time when it holds
        ([OUT, OUT], False),  # both of two: 1%
        ([IN, OUT, OUT], False),  # two of three: 2.8%
        ([OUT, IN, OUT], False),
        ([IN, IN, OUT], True),  # one of three: 27%
        ([OUT, OUT, IN, IN, IN], True),  # the misses left the window
        ([OUT, OUT, IN, (None, 0.6, 0.7), OUT], False),  # batches without labels are skipped
        ([(0.65, 0.65, 0.75), (0.75, 0.65, 0.75)], True),  # the ends are inside
        ([(0.80, 0.65, 0.75), (0.60, 0.65, 0.75)], False),  # above or below, both count
    ],
)
def test_estimate_trusted(history, trusted):
    assert estimate_trusted(history) is trusted


@pytest.mark.parametrize(
    ("level", "history", "trusted"),
    [
        (0.99, [OUT], False),  # one batch outside a 99% interval: 1%
        (0.5, [OUT, OUT, OUT], True),  # three of three outside a 50% interval: 12.5%
    ],
)
def test_estimate_trusted_follows_the_intervals_level(level, history, trusted):
    assert estimate_trusted(history, level=level) is trusted


def test_the_trust_rule_false_alarms_at_its_stated_rate():
    """When each batch falls outside its 90% interval with probability 0.1, independently, a check over three
    batches says untrusted with probability P(at least 2 of 3) = 3 x 0.1^2 x 0.9 + 0.1^3 = 0.028."""
    rng = np.random.default_rng(18)
    outside = rng.random((20_000, 3)) < 0.1
    verdicts = [estimate_trusted([OUT if miss else IN for miss in row]) for row in outside]
    assert np.mean([v is False for v in verdicts]) == pytest.approx(0.028, abs=0.004)


def test_under_the_drift_the_estimate_becomes_untrusted_and_after_a_refit_it_is_trusted_again():
    rng = np.random.default_rng(19)
    reference = _model(5_000, rng)
    estimator = Estimator.fit(reference, rng.random(reference.size) < reference)
    history = []
    for _ in range(3):
        batch = _model(2_000, rng)
        y = rng.random(batch.size) < _drifted(batch)
        estimate = estimator.estimate(batch)
        history.append((roc_auc_score(y, batch), estimate.roc_auc_low, estimate.roc_auc_high))
    assert estimate_trusted(history) is False
    assert estimate_trusted(history[:1]) is True  # one batch is not enough to say
    refitted = estimator.refit_if_drifted(batch, y).estimator
    history = []  # the history of the estimator in use
    for _ in range(3):
        batch = _model(2_000, rng)
        y = rng.random(batch.size) < _drifted(batch)
        estimate = refitted.estimate(batch)
        history.append((roc_auc_score(y, batch), estimate.roc_auc_low, estimate.roc_auc_high))
    assert estimate_trusted(history) is True
