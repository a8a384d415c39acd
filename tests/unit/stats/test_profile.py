"""Mergeable batch profiles: chunk order does not matter, and merged scores stay within the stated bound.

Every expected score comes from the exact path, ``ReferenceProfile.measure`` on the whole batch (itself held
to Evidently's values by ``test_drift_agreement.py``), and every expected quality figure from scikit-learn.
"""

import io
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from pipeline.demo.synth import DriftKind, Population, generate_stream, load_sample_frame
from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import labels_of, validate_frame
from pipeline.stats.binned_reference import BinnedReference
from pipeline.stats.drift import ReferenceProfile
from pipeline.stats.evidently_report import PREDICTION
from pipeline.stats.profile import AUC_BINS, BatchProfile, ProfileError, merge, merge_all

THRESHOLD = 0.1
REL, ABS = 0.01, 1e-3  # the promised bound on every score


# ---------------------------------------------------------------- data


@pytest.fixture(scope="module")
def population(schema):
    return Population.fit(load_sample_frame(), schema)


def _oracle(population, frame):
    return 1 / (1 + np.exp(-population.logit(frame, "base")))


@pytest.fixture(scope="module")
def demo(population, schema):
    """The demo's reference (validated, as the monitor holds it), its profile and its bins."""
    reference = validate_frame(population.sample_batch(3000, np.random.default_rng(81)), schema, "ref").frame
    profile = ReferenceProfile(
        reference, _oracle(population, reference), schema, prediction_threshold=THRESHOLD, column_threshold=THRESHOLD
    )
    return profile, BinnedReference(profile)


ODD = FeatureSchema(
    numerical=("lognormal", "cauchy", "far", "counts", "constant", "emptied", "flag"),
    categorical=("colour", "code"),
    target="y",
    positive=1,
    negative=0,
)


def _odd_frame(rows: int, rng: np.random.Generator, *, shifted: bool) -> pd.DataFrame:
    """Heavy tails, values far beyond the reference's range, ties, a constant column, unseen levels."""
    frame = pd.DataFrame(
        {
            "lognormal": rng.lognormal(0.0, 2.0, rows) * (3.0 if shifted else 1.0),
            "cauchy": rng.standard_cauchy(rows),
            "far": rng.normal(0, 1, rows) + (np.where(rng.random(rows) < 0.2, 1e4, 0.0) if shifted else 0.0),
            "counts": rng.poisson(2.5 if shifted else 2.0, rows).astype(float),
            "constant": np.full(rows, 7.0 if not shifted else 7.5),
            "emptied": rng.normal(0, 1, rows) - (30.0 if shifted else 0.0),
            "flag": (rng.random(rows) < (0.6 if shifted else 0.3)).astype(float),
            "colour": rng.choice(["red", "green", "blue", "mauve"] if shifted else ["red", "green", "blue"], rows),
            "code": rng.choice([1.0, 2.0, 3.0], rows),
            "y": (rng.random(rows) < 0.4).astype(int),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "lognormal"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "colour"] = None
    return frame


@pytest.fixture(scope="module")
def odd():
    rng = np.random.default_rng(91)
    reference = validate_frame(_odd_frame(4000, rng, shifted=False), ODD, "ref").frame
    proba = rng.beta(2, 5, len(reference))
    profile = ReferenceProfile(reference, proba, ODD, prediction_threshold=THRESHOLD, column_threshold=THRESHOLD)
    return profile, BinnedReference(profile)


def _chunks(frame: pd.DataFrame, proba: np.ndarray, labels, cuts) -> list[tuple]:
    bounds = [0, *sorted(cuts), len(frame)]
    return [
        (
            frame.iloc[lo:hi].reset_index(drop=True),
            proba[lo:hi],
            None if labels is None else labels[lo:hi],
        )
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _random_cuts(rows: int, rng: np.random.Generator) -> list[int]:
    return list(rng.choice(np.arange(1, rows), size=int(rng.integers(1, 12)), replace=False))


def _merge_randomly(profiles: list[BatchProfile], rng: np.random.Generator) -> BatchProfile:
    """Merge in a random order and a random grouping (a random binary tree)."""
    pool = [profiles[i] for i in rng.permutation(len(profiles))]
    while len(pool) > 1:
        i = int(rng.integers(len(pool) - 1))
        pool[i : i + 2] = [merge(pool[i], pool[i + 1])]
    return pool[0]


def _profile_in_chunks(binned: BinnedReference, frame, proba, labels=None, chunks: int = 10) -> BatchProfile:
    cuts = np.linspace(0, len(frame), chunks + 1).astype(int)[1:-1]
    return merge_all(binned.profile(*chunk) for chunk in _chunks(frame, proba, labels, cuts))


def _scores(result) -> dict[str, float]:
    return {**result.column_scores, PREDICTION: result.prediction_drift}


def _assert_close_profiles(a: BatchProfile, b: BatchProfile) -> None:
    """Equal counts, equal levels; float sums equal to rounding (float addition is not associative)."""
    assert (a.binning, a.rows) == (b.binning, b.rows)
    for x, y in zip((*a.numerical, a.prediction), (*b.numerical, b.prediction), strict=True):
        assert np.array_equal(x.counts, y.counts)
        assert (x.missing, x.infinite) == (y.missing, y.infinite)
        np.testing.assert_allclose(x.sums, y.sums, rtol=1e-12, atol=1e-9)
    for x, y in zip(a.categorical, b.categorical, strict=True):
        assert x.same_as(y)
    assert a.labels.same_as(b.labels)
    assert a.proba_sum == pytest.approx(b.proba_sum, rel=1e-12)


def _assert_within_bound(binned: BinnedReference, exact_profile: ReferenceProfile, frame, proba, merged) -> None:
    """Every score within 1% or 1e-3 of the exact one and within the profile's own proved bound; the batch
    figures equal; each decision equal unless the exact score is within that bound of the threshold."""
    exact = exact_profile.measure(frame, proba)
    ours = binned.measure(merged)
    bounds = binned.error_bounds(merged)
    expected, got = _scores(exact), _scores(ours)
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        if np.isnan(value):
            assert np.isnan(got[name]), name
            continue
        deviation = abs(got[name] - value)
        assert deviation <= max(REL * value, ABS), (name, value, got[name])
        slack = bounds.get(name, 0.0)
        assert deviation <= slack + 1e-9 * max(1.0, value), (name, deviation, slack)  # plus rounding
        if abs(value - THRESHOLD) > slack:
            assert (got[name] >= THRESHOLD) == (value >= THRESHOLD), name
    assert ours.share_missing == pytest.approx(exact.share_missing, rel=1e-12)
    assert ours.unseen_categories == exact.unseen_categories
    assert ours.drifted_columns == exact.drifted_columns
    assert ours.share_drifted_columns == exact.share_drifted_columns


# ---------------------------------------------------------------- (a) merging


def test_merging_in_any_order_and_grouping_gives_the_same_profile(demo, population, schema):
    _, binned = demo
    rng = np.random.default_rng(5)
    frame = validate_frame(population.sample_batch(900, rng, DriftKind.covariate), schema, "b").frame
    labels = labels_of(frame, schema)
    proba = _oracle(population, frame)
    whole = binned.profile(frame, proba, labels)
    for _ in range(4):
        parts = [binned.profile(*chunk) for chunk in _chunks(frame, proba, labels, _random_cuts(len(frame), rng))]
        _assert_close_profiles(_merge_randomly(parts, rng), whole)
        assert binned.measure(_merge_randomly(parts, rng)).column_scores == pytest.approx(
            binned.measure(whole).column_scores, rel=1e-9, abs=1e-12, nan_ok=True
        )


def test_merging_is_commutative_exactly_and_the_empty_profile_changes_nothing(odd):
    _, binned = odd
    rng = np.random.default_rng(6)
    frame = validate_frame(_odd_frame(500, rng, shifted=True), ODD, "b").frame
    labels = labels_of(frame, ODD)
    a = binned.profile(frame.iloc[:200].reset_index(drop=True), rng.random(200), labels[:200])
    b = binned.profile(frame.iloc[200:].reset_index(drop=True), rng.random(300))
    assert merge(a, b) == merge(b, a)
    assert merge(a, binned.empty()) == a
    assert binned.profile(frame.iloc[:0], np.zeros(0)) == binned.empty()


def test_profiles_on_other_bins_do_not_merge(demo, odd):
    (_, demo_bins), (_, odd_bins) = demo, odd
    with pytest.raises(ProfileError):
        merge(demo_bins.empty(), odd_bins.empty())
    with pytest.raises(ProfileError):
        odd_bins.measure(demo_bins.empty())


# ---------------------------------------------------------------- (b, d) scores and decisions


@pytest.mark.parametrize("kind", list(DriftKind), ids=lambda kind: kind.value)
def test_demo_stream_scores_stay_within_the_bound(kind, demo, population, schema):
    profile, binned = demo
    stream = generate_stream(population, rows=1200, batches=2, drift_at=2, kind=kind, seed=17)
    for raw in stream:
        frame = validate_frame(raw, schema, "batch").frame
        proba = _oracle(population, frame)
        _assert_within_bound(binned, profile, frame, proba, _profile_in_chunks(binned, frame, proba))


@pytest.mark.parametrize("shifted", [False, True], ids=["stable", "shifted"])
def test_heavy_tails_far_values_ties_and_constants_stay_within_the_bound(shifted, odd):
    profile, binned = odd
    rng = np.random.default_rng(7)
    frame = validate_frame(_odd_frame(3000, rng, shifted=shifted), ODD, "batch").frame
    proba = rng.beta(2, 4 if shifted else 5, len(frame))
    _assert_within_bound(binned, profile, frame, proba, _profile_in_chunks(binned, frame, proba, chunks=7))


def test_an_all_missing_chunk_and_an_all_missing_column(odd):
    profile, binned = odd
    rng = np.random.default_rng(8)
    frame = validate_frame(_odd_frame(1200, rng, shifted=True), ODD, "batch").frame
    frame.loc[:399, list(ODD.numerical)] = np.nan  # the first of three chunks has no numerical value
    frame.loc[:399, list(ODD.categorical)] = None
    frame["emptied"] = np.nan
    frame.loc[5:9, "cauchy"] = np.inf
    proba = rng.random(len(frame))
    merged = _profile_in_chunks(binned, frame, proba, chunks=3)
    _assert_within_bound(binned, profile, frame, proba, merged)
    assert np.isnan(binned.measure(merged).column_scores["emptied"])
    assert merged.numerical[ODD.numerical.index("cauchy")].infinite == 5


def test_values_far_beyond_the_reference_range_score_exactly(odd):
    """Beyond the reference's min and max the profile keeps exact sums: the tails cost no error at all."""
    profile, binned = odd
    rng = np.random.default_rng(9)
    frame = validate_frame(_odd_frame(800, rng, shifted=False), ODD, "batch").frame
    frame["far"] = rng.normal(0, 1, len(frame)) * 1e3 + 1e6
    proba = rng.random(len(frame))
    merged = _profile_in_chunks(binned, frame, proba, chunks=4)
    index = ODD.numerical.index("far")
    assert binned.error_bounds(merged)["far"] == 0.0
    assert binned.measure(merged).column_scores["far"] == pytest.approx(
        profile.measure(frame, proba).column_scores["far"], rel=1e-12
    )
    assert merged.numerical[index].counts[-1] == len(frame)


# ---------------------------------------------------------------- labels


def test_accuracy_is_exact_and_roc_auc_within_its_bound(demo, population, schema):
    _, binned = demo
    frame = validate_frame(
        population.sample_batch(2000, np.random.default_rng(10), DriftKind.concept), schema, "b"
    ).frame
    y = labels_of(frame, schema)
    proba = _oracle(population, frame)
    quality = binned.quality(_profile_in_chunks(binned, frame, proba, y, chunks=5))
    assert quality.labelled == len(frame) and quality.positives == int(y.sum())
    assert quality.accuracy == pytest.approx(accuracy_score(y, proba >= 0.5), rel=1e-12)
    expected = roc_auc_score(y, proba)
    assert abs(quality.roc_auc - expected) <= quality.roc_auc_bound + 1e-12
    assert quality.roc_auc_bound < 1e-3


def test_unlabelled_chunks_add_no_labels_and_one_class_has_no_roc_auc(odd):
    _, binned = odd
    frame = validate_frame(_odd_frame(100, np.random.default_rng(11), shifted=False), ODD, "b").frame
    proba = np.linspace(0, 1, len(frame))
    only_positives = binned.profile(frame, proba, np.ones(len(frame), dtype=int))
    merged = merge(only_positives, binned.profile(frame, proba))
    quality = binned.quality(merged)
    assert quality.labelled == 100 and quality.roc_auc is None
    assert quality.accuracy == pytest.approx(0.5)
    assert merged.labels.positives.size == AUC_BINS
    assert merged.mean_prediction == pytest.approx(0.5)


# ---------------------------------------------------------------- (c) serialization


def test_a_profile_round_trips_through_bytes(odd):
    _, binned = odd
    rng = np.random.default_rng(12)
    frame = validate_frame(_odd_frame(700, rng, shifted=True), ODD, "b").frame
    y = labels_of(frame, ODD)
    frame.loc[:3, "cauchy"] = -np.inf
    profile = _profile_in_chunks(binned, frame, rng.random(len(frame)), y, chunks=3)
    data = profile.to_bytes()
    restored = BatchProfile.from_bytes(data)
    assert restored == profile
    assert binned.measure(restored).column_scores == pytest.approx(
        binned.measure(profile).column_scores, nan_ok=True, rel=0, abs=0
    )
    assert {type(key) for key in restored.categorical[ODD.categorical.index("code")].levels} == {float}
    assert restored.to_bytes() == data


def test_bytes_that_are_not_a_profile_are_refused(odd):
    _, binned = odd
    data = bytearray(binned.empty().to_bytes())
    with pytest.raises(ProfileError):
        BatchProfile.from_bytes(b"not a profile")
    with pytest.raises(ProfileError):
        BatchProfile.from_bytes(bytes(data[: len(data) // 2]))
    buffer = io.BytesIO()
    header = json.dumps({"format": "pipeline.batch-profile", "version": 99}).encode()
    np.savez(buffer, header=np.frombuffer(header, dtype=np.uint8))
    with pytest.raises(ProfileError, match="version 99"):
        BatchProfile.from_bytes(buffer.getvalue())


@pytest.mark.parametrize("kind", [DriftKind.none, DriftKind.covariate, DriftKind.concept])
def test_estimated_performance_from_merged_chunks_matches_the_exact_estimate(kind, demo, population, schema):
    from pipeline.stats.estimate import Estimator

    _profile, binned = demo
    rng = np.random.default_rng(7)
    calibration = validate_frame(population.sample_batch(4000, rng), schema, "holdout").frame
    p_cal = np.clip(_oracle(population, calibration) * 0.8 + 0.05, 0, 1)  # a miscalibrated champion
    estimator = Estimator.fit(p_cal, labels_of(calibration, schema))
    (frame,) = generate_stream(population, rows=20_000, batches=1, drift_at=1, kind=kind, seed=3)
    batch = validate_frame(frame, schema, "batch").frame
    proba = np.clip(_oracle(population, batch) * 0.8 + 0.05, 0, 1)
    exact = estimator.estimate(proba)

    cuts = np.linspace(0, len(batch), 11).astype(int)[1:-1]
    merged = merge_all(
        binned.profile(chunk, p, None, estimator.calibrated(p)) for chunk, p, _ in _chunks(batch, proba, None, cuts)
    )
    roc_auc, accuracy = merged.expected.estimate()

    assert accuracy == pytest.approx(exact.accuracy, abs=1e-12)
    assert roc_auc == pytest.approx(exact.roc_auc, abs=1e-3)
    binned_estimate = merged.expected.estimated(estimator)  # the interval too, the calibration's spread with it
    assert binned_estimate.roc_auc == roc_auc
    assert binned_estimate.roc_auc_low == pytest.approx(exact.roc_auc_low, abs=1e-3)
    assert binned_estimate.roc_auc_high == pytest.approx(exact.roc_auc_high, abs=1e-3)
    labels_only = merged.expected.estimated()
    assert binned_estimate.roc_auc_low < labels_only.roc_auc_low < roc_auc < labels_only.roc_auc_high
    assert labels_only.roc_auc_high < binned_estimate.roc_auc_high
    assert BatchProfile.from_bytes(merged.to_bytes()).expected.estimate() == (roc_auc, accuracy)
    assert binned.empty().expected.estimate() == (None, None)
