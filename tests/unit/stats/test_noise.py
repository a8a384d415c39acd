"""The noise model of drift scores: its draws score as the profile does, its p-values are calibrated on batches
drawn from the reference's own population, and a real shift still stands out."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from pipeline.domain import policy
from pipeline.domain.policy_types import Observation, Rules
from pipeline.domain.schema import FeatureSchema
from pipeline.stats.column_profiles import NumericProfile, jensen_shannon
from pipeline.stats.drift import ReferenceProfile
from pipeline.stats.noise import (
    EmpiricalTail,
    GammaTail,
    NoiseModel,
    benjamini_hochberg,
    effective_rows,
    grid_size,
    jensen_shannon_draws,
    wasserstein_draws,
)

SCHEMA = FeatureSchema(numerical=("x", "flag"), categorical=("colour",), target="y", positive=1, negative=0)


def population(rows: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    x = rng.normal(shift, 1.0, rows)
    return pd.DataFrame(
        {
            "x": x,
            "flag": (rng.random(rows) < 0.03).astype(float),
            "colour": rng.choice(["red", "green", "blue", "grey"], size=rows, p=[0.5, 0.3, 0.15, 0.05]),
        }
    )


def predictions(frame: pd.DataFrame) -> np.ndarray:
    return 1 / (1 + np.exp(-(frame["x"].to_numpy() + frame["flag"].to_numpy())))


def profile_of(frame: pd.DataFrame) -> ReferenceProfile:
    return ReferenceProfile(frame, predictions(frame), SCHEMA, prediction_threshold=0.1, column_threshold=0.1)


def test_effective_size_is_the_harmonic_combination_of_both_sides():
    assert effective_rows(200, 200) == 100
    assert effective_rows(1000, 9000) == 900
    assert effective_rows(0, 100) == 0
    assert grid_size(1000) == pytest.approx(1000, rel=0.03)
    assert grid_size(1) == 2


def test_vectorised_draw_scores_equal_the_profiles_own_scores():
    values = np.array([0.0, 1.0, 3.0, 7.0])
    reference_counts = np.array([[40, 30, 20, 10], [10, 10, 10, 70]])
    current_counts = np.array([[10, 20, 30, 40], [25, 25, 25, 25]])
    for ref, cur in zip(reference_counts, current_counts, strict=True):
        ref_values = np.repeat(values, ref)
        profile = NumericProfile.of(ref_values)
        expected = profile.score(np.sort(np.repeat(values, cur)))
        got = wasserstein_draws(values, ref[None, :], cur[None, :], profile.norm)[0]
        assert got == pytest.approx(expected, rel=1e-12)
        assert jensen_shannon_draws(ref[None, :].astype(float), cur[None, :].astype(float))[0] == pytest.approx(
            jensen_shannon(ref.astype(float), cur.astype(float)), rel=1e-12
        )


def test_tails_give_p_values_between_0_and_1_that_fall_with_the_score():
    rng = np.random.default_rng(2)
    draws = np.abs(rng.normal(0, 0.05, 500))
    for tail in (GammaTail.of(draws), EmpiricalTail.of(draws)):
        assert tail is not None
        p_small, p_mid, p_large = (tail.p_value(s) for s in (0.001, 0.05, 0.5))
        assert 1 >= p_small > p_mid > p_large > 0
        assert math.isnan(tail.p_value(math.nan))
    # a band without spread: only a larger score is beyond it
    flat = GammaTail.of(np.zeros(10))
    assert flat is not None and flat.p_value(0.0) == 1.0 and flat.p_value(0.1) == 0.0


def test_benjamini_hochberg_rejects_what_the_procedure_says_and_skips_nan():
    # sorted p: 0.001 (<= 1*0.05/4), 0.02 (<= 2*0.05/4 = 0.025), 0.04 (> 0.0375), 0.9
    rejected = benjamini_hochberg({"a": 0.001, "b": 0.02, "c": 0.04, "d": 0.9, "e": math.nan}, 0.05)
    assert rejected == {"a", "b"}
    assert benjamini_hochberg({}, 0.05) == set()


@pytest.mark.parametrize("rows", [200, 2000])
def test_batches_of_the_reference_population_are_rarely_beyond_the_band(rows):
    """Over many references, each with a few batches drawn independently from the same population, each score's
    p-value is below 1% about 1% of the time, and a batch is declared to have any drifted column at most at the
    rate. (Many references: one reference's own luck moves the rate of all its batches together.)"""
    rng = np.random.default_rng(rows)
    low = {"prediction": 0, "x": 0, "flag": 0, "colour": 0}
    any_drifted = 0
    trials = 0
    for _ in range(60):
        reference = profile_of(population(3000, rng))
        model = NoiseModel(reference)
        for _ in range(4):
            batch = population(rows, rng)
            band = model.band(rows)
            drift = reference.measure(batch, predictions(batch)).judged(band, 0.01)
            trials += 1
            low["prediction"] += bool(drift.prediction_p is not None and drift.prediction_p <= 0.01)
            for name in ("x", "flag", "colour"):  # the band's own p-value, drawn whatever the score
                low[name] += band.column_p(name, drift.column_scores[name]) <= 0.01
            any_drifted += drift.drifted_columns > 0 or bool(drift.significant)
    for name, count in low.items():
        # a one-sided binomial test: the rate is not above 1% beyond chance (at 0.1%), nor absurdly conservative
        assert binomtest(count, trials, 0.01, alternative="greater").pvalue > 0.001, (name, count, trials)
    assert binomtest(any_drifted, trials, 0.01, alternative="greater").pvalue > 0.001


def test_a_real_shift_is_beyond_the_band_and_drifts_its_column():
    rng = np.random.default_rng(7)
    reference = profile_of(population(3000, rng))
    batch = population(300, rng, shift=0.6)
    drift = reference.measure(batch, predictions(batch)).judged(reference.noise.band(300), 0.01)
    assert drift.prediction_p is not None and drift.prediction_p < 1e-4
    assert drift.is_drifted("x") and not drift.is_drifted("colour")
    assert [name for name, _ in drift.drifted_features()] == ["x"]


def test_a_small_batch_score_above_the_threshold_alone_does_not_alarm():
    """At 100 rows a stable batch's prediction drift often passes 0.1; the rule needs it beyond the band too."""
    rng = np.random.default_rng(11)
    reference = profile_of(population(3000, rng))
    band = reference.noise.band(100)
    raw = judged = 0
    for _ in range(100):
        batch = population(100, rng)
        drift = reference.measure(batch, predictions(batch)).judged(band, 0.01)
        observation = Observation(
            rows=100,
            prediction_drift=drift.prediction_drift,
            share_drifted_columns=drift.share_drifted_columns,
            drifted_columns=drift.drifted_columns,
            mean_prediction=0.5,
            prediction_drift_p=drift.prediction_p,
        )
        raw += drift.prediction_drift >= 0.1
        judged += policy.prediction_drifted(observation, Rules())
    assert raw >= 20  # the threshold alone alarms on a good share of stable small batches
    assert judged <= 4


def test_bands_are_cached_per_effective_size():
    rng = np.random.default_rng(3)
    reference = profile_of(population(2000, rng))
    model = reference.noise
    assert model.band(500) is model.band(505)
    assert model.band(500) is not model.band(1000)
    large = model.band(1_000_000)
    assert large.effective_rows == pytest.approx(effective_rows(1_000_000, 2000), rel=0.03)


def test_a_band_draws_only_the_columns_asked_for_and_the_same_tail_whatever_the_order():
    rng = np.random.default_rng(11)
    reference = profile_of(population(3000, rng))
    first, second = NoiseModel(reference).band(500), NoiseModel(reference).band(500)
    drawn: list[str] = []
    draw = first.draw_column
    first.draw_column = lambda name: drawn.append(name) or draw(name)
    assert first.column_p("colour", 0.2) == second.column_p("colour", 0.2)  # no other column drawn before
    assert first.column_p("x", 0.2) == first.column_p("x", 0.2)
    assert drawn == ["colour", "x"]  # each once, on request


def test_a_column_below_its_threshold_is_not_tested_and_counts_as_one():
    rng = np.random.default_rng(12)
    reference = profile_of(population(3000, rng))
    batch = population(500, rng)
    band = NoiseModel(reference).band(500)
    drawn: list[str] = []
    draw = band.draw_column
    band.draw_column = lambda name: drawn.append(name) or draw(name)
    drift = reference.measure(batch, predictions(batch))
    below = [name for name, score in drift.column_scores.items() if score < reference.column_threshold]
    judged = drift.judged(band, 0.01)
    assert below and all(judged.column_p[name] == 1.0 for name in below)
    assert not set(below) & set(drawn)


def sharpened(proba: np.ndarray, factor: float = 1.6) -> np.ndarray:
    """P(positive) pushed away from 0.5, as a model's scores on the rows it was fitted on are."""
    logit = np.log(proba / (1 - proba))
    return 1 / (1 + np.exp(-factor * logit))


def test_in_sample_reference_scores_alarm_on_stable_batches_unless_the_band_is_drawn_out_of_sample():
    """A reference scored in-sample (sharper than any new batch) makes stable batches of 2,000 rows look drifted
    against the reference's own noise; a band drawn from out-of-sample scores of the same population (a holdout
    of 1,000 rows) holds them, and a real shift still stands out."""
    rng = np.random.default_rng(11)
    rows, trials = 2_000, 200
    reference = population(5_000, rng)
    fitted = sharpened(predictions(reference))
    holdout = predictions(population(1_000, rng))
    own = ReferenceProfile(reference, fitted, SCHEMA, prediction_threshold=0.1, column_threshold=0.1)
    drawn = ReferenceProfile(
        reference, fitted, SCHEMA, prediction_threshold=0.1, column_threshold=0.1, prediction_null=holdout
    )
    own_band, drawn_band = own.noise.band(rows), drawn.noise.band(rows)
    own_low = drawn_low = 0
    for _ in range(trials):
        batch = predictions(population(rows, rng))
        score = own.prediction_profile.score(np.sort(batch))
        own_low += own_band.prediction_p(score) <= 0.01
        drawn_low += drawn_band.prediction_p(score) <= 0.01
    assert own_low > 0.5 * trials  # the bias alone is beyond the reference's own noise
    assert binomtest(drawn_low, trials, 0.01, alternative="greater").pvalue > 0.001
    shifted = predictions(population(rows, rng, shift=0.5))
    assert drawn_band.prediction_p(own.prediction_profile.score(np.sort(shifted))) < 1e-4


def test_a_reference_without_out_of_sample_scores_draws_from_its_own():
    rng = np.random.default_rng(12)
    frame = population(2_000, rng)
    empty = ReferenceProfile(
        frame, predictions(frame), SCHEMA, prediction_threshold=0.1, column_threshold=0.1, prediction_null=np.array([])
    )
    score = 0.08
    assert empty.noise.band(500).prediction_p(score) == profile_of(frame).noise.band(500).prediction_p(score)
