"""The attribution of prediction drift (pipeline.stats.attribution), on synthetic streams whose truth is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.domain.schema import FeatureSchema
from pipeline.stats import attribution
from pipeline.stats.drift import ReferenceProfile

NUMERICAL = ("x0", "x1", "x2", "x3", "x4", "x5")
WEIGHTS = {"x0": 2.0, "x1": 1.2, "x2": 0.8, "x3": 0.0, "x4": 0.0, "x5": 0.0}  # x3..x5: ignored by the model
LEVEL_EFFECT = {"a": 0.0, "b": 1.5, "c": -1.0}
SCHEMA = FeatureSchema(numerical=NUMERICAL, categorical=("site",), target="y", positive=1, negative=0)


def frame(rows: int, seed: int, shift: dict[str, float] | None = None, site: tuple[float, ...] = (0.5, 0.3, 0.2)):
    rng = np.random.default_rng(seed)
    data = {name: rng.normal(size=rows) + (shift or {}).get(name, 0.0) for name in NUMERICAL}
    data["site"] = rng.choice(["a", "b", "c"], size=rows, p=list(site))
    return pd.DataFrame(data)


def proba(rows: pd.DataFrame) -> np.ndarray:
    logit = sum(w * rows[name].to_numpy(dtype=float) for name, w in WEIGHTS.items())
    logit = logit + rows["site"].map(LEVEL_EFFECT).to_numpy(dtype=float)
    return 1 / (1 + np.exp(-logit))


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    reference = frame(5_000, seed=1)
    return ReferenceProfile.scored(
        reference,
        type("M", (), {"proba": staticmethod(proba)})(),
        SCHEMA,
        prediction_threshold=0.1,
        column_threshold=0.1,
    )


def explain(batch: pd.DataFrame, profile: ReferenceProfile, **kw) -> attribution.Attribution:
    scores = profile.measure(batch, proba(batch)).column_scores
    return attribution.attribute_to_profile(batch, profile, proba, scores, **kw)


@pytest.mark.parametrize("feature", ["x0", "x1", "x2"])
def test_a_shifted_feature_the_model_relies_on_ranks_first(profile, feature):
    batch = frame(3_000, seed=7, shift={feature: 0.6})
    result = explain(batch, profile)
    assert result.ranking()[0] == feature
    assert result.shares[0].share > 0.5
    assert sum(s.share for s in result.shares) == pytest.approx(1.0)


def test_an_important_feature_shifted_a_little_outranks_an_ignored_one_shifted_a_lot(profile):
    batch = frame(3_000, seed=8, shift={"x0": 0.25, "x4": 2.0})
    scores = profile.measure(batch, proba(batch)).column_scores
    assert max(scores, key=lambda name: scores[name]) == "x4"  # the drift scores alone would blame x4
    result = explain(batch, profile)
    assert result.ranking()[0] == "x0"
    shares = {s.feature: s.share for s in result.shares}
    assert shares["x4"] < 0.1


def test_a_shifted_category_is_found(profile):
    batch = frame(3_000, seed=9, site=(0.2, 0.6, 0.2))
    assert explain(batch, profile).ranking()[0] == "site"


def test_the_sample_is_bounded_and_seeded(profile):
    batch = frame(10_000, seed=10, shift={"x1": 0.5})
    seen: list[int] = []

    def counting(rows: pd.DataFrame) -> np.ndarray:
        seen.append(len(rows))
        return proba(rows)

    scores = profile.measure(batch, proba(batch)).column_scores
    result = attribution.attribute_to_profile(batch, profile, counting, scores, max_rows=500, max_features=3)
    assert (result.rows, result.batch_rows, result.features_tried) == (500, 10_000, 3)
    assert seen == [500 * 4]  # the sample and one copy per feature tried, in one call
    assert {s.feature for s in result.shares} == {name for name, _ in sorted(scores.items(), key=lambda i: -i[1])[:3]}
    again = attribution.attribute_to_profile(batch, profile, proba, scores, max_rows=500, max_features=3)
    assert again == result


def test_no_drift_explains_nothing_much(profile):
    result = explain(frame(3_000, seed=11), profile)
    assert result.prediction_drift < 0.1
    assert all(0.0 <= s.share <= 1.0 for s in result.shares)


def test_transport_numeric_keeps_ranks_and_missing_values():
    rng = np.random.default_rng(0)
    column = pd.Series([3.0, np.nan, 1.0, 2.0])
    out = attribution.transport_numeric(column, pd.Series(np.arange(100.0)), rng)
    assert np.isnan(out[1])
    assert out[2] < out[3] < out[0]
    assert attribution.transport_numeric(pd.Series([1.0]), pd.Series([np.nan]), rng).tolist() == [1.0]


def test_transport_numeric_of_an_undrifted_discrete_column_changes_few_rows():
    rng = np.random.default_rng(1)
    reference = pd.Series(rng.integers(1, 6, 20_000).astype(float))
    batch = pd.Series(rng.integers(1, 6, 20_000).astype(float))
    sample = batch.iloc[:2000].reset_index(drop=True)
    out = attribution.transport_numeric(sample, reference, rng, within=batch)
    assert np.mean(out != sample.to_numpy()) < 0.05
    shifted = attribution.transport_numeric(sample + 1, reference, rng, within=batch + 1)
    assert np.mean(shifted == sample.to_numpy()) > 0.95


def test_transport_categorical_moves_only_the_excess():
    rng = np.random.default_rng(0)
    column = pd.Series(["a"] * 6000 + ["b"] * 4000)
    out = attribution.transport_categorical(column, pd.Series(["a"] * 50 + ["b"] * 50), rng)
    assert (out == "b").mean() == pytest.approx(0.5, abs=0.02)
    assert (out != column.to_numpy()).mean() == pytest.approx(0.1, abs=0.02)
    assert ((out != column.to_numpy()) & (column.to_numpy() == "b")).sum() == 0
    same = attribution.transport_categorical(column, column, rng)
    assert (same == column.to_numpy()).all()


def test_shares_are_the_prediction_shifts_over_their_sum_highest_first():
    result = attribution._shares(["a", "b", "c"], [0.02, 0.0, 0.06], [0.01, -0.01, 0.05], 0.1, rows=10, batch_rows=10)
    assert result.ranking() == ["c", "a", "b"]
    assert [s.share for s in result.shares] == pytest.approx([0.75, 0.25, 0.0])
    assert [s.drift_drop for s in result.shares] == pytest.approx([0.05, 0.01, -0.01])
    assert result.summary() == "c 75%, a 25%"
    assert result.as_list(1) == [{"feature": "c", "share": 0.75, "prediction_shift": 0.06, "drift_drop": 0.05}]
    none = attribution._shares(["a"], [0.0], [-0.01], 0.0, rows=1, batch_rows=1)
    assert none.summary() == "no single feature explains the prediction drift"


def test_paired_drift_is_the_normed_wasserstein_distance_of_two_scorings():
    before = np.array([0.1, 0.2, 0.3, np.nan])
    assert attribution.paired_drift(before, before + 0.1, norm=0.5) == pytest.approx(0.2)
    assert attribution.paired_drift(before, before[::-1].copy()) == pytest.approx(0.0, abs=0.15)
    assert attribution.paired_drift(np.array([np.nan]), np.array([1.0])) == 0.0
