"""Per-segment monitoring on synthetic worlds whose truth is known: five regions, a model whose P(positive) depends
on a numerical feature and the region."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.domain.policy_types import Rules
from pipeline.domain.schema import SegmentSpec
from pipeline.stats.estimate import Estimator
from pipeline.stats.segments import MISSING, measure_segments, segment_values

REGIONS = ("a", "b", "c", "d", "e")
OFFSET = {"a": -1.0, "b": -0.5, "c": 0.0, "d": 0.5, "e": 1.0}
SPEC = (SegmentSpec("region"),)
RULES = Rules(min_rows_for_auc=100)


def world(rows: int, rng: np.random.Generator, shares=None, shift: dict | None = None, noise_labels: str = ""):
    region = rng.choice(REGIONS, size=rows, p=shares)
    x = rng.normal(size=rows) + np.array([(shift or {}).get(r, 0.0) for r in region])
    proba = 1 / (1 + np.exp(-(1.5 * x + np.array([OFFSET[r] for r in region]))))
    y = (rng.random(rows) < proba).astype(int)
    if noise_labels:
        mixed = region == noise_labels
        y[mixed] = rng.integers(0, 2, mixed.sum())
    return pd.DataFrame({"region": region, "x": x}), proba, y


def measured(batch, reference, rules=RULES, estimator=None):
    return measure_segments(SPEC, batch, reference, rules, norm=float(np.std(reference[1])), estimator=estimator)


@pytest.fixture(scope="module")
def reference():
    return world(10_000, np.random.default_rng(1))


def test_a_shift_in_one_segment_of_five_is_found_there_only(reference):
    report = measured(world(2_000, np.random.default_rng(2), shift={"c": 1.0}), reference)
    assert [s.value for s in report.alarmed()] == ["c"]
    assert report.worst(1)[0].value == "c"
    assert report.decompositions[0].moved == "within"


def test_a_pure_change_of_the_mix_is_mix_not_a_segment_drift(reference):
    report = measured(world(2_000, np.random.default_rng(3), shares=[0.05, 0.1, 0.15, 0.3, 0.4]), reference)
    assert report.alarmed() == []
    part = report.decompositions[0]
    assert part.moved == "mix"
    assert part.mix > 0.05 and abs(part.within) < abs(part.mix) / 4
    assert part.change == pytest.approx(part.mix + part.within)


def test_the_decomposition_adds_up_to_the_change_of_the_mean(reference):
    batch = world(2_000, np.random.default_rng(4), shares=[0.4, 0.3, 0.1, 0.1, 0.1], shift={"e": -1.5})
    part = measured(batch, reference).decompositions[0]
    assert part.change == pytest.approx(np.mean(batch[1]) - np.mean(reference[1]))
    assert part.moved == "mix and within"


def test_a_segment_whose_labels_lost_their_link_alarms_on_auc(reference):
    report = measured(world(2_000, np.random.default_rng(5), noise_labels="b"), reference)
    by_value = {s.value: s for s in report.segments}
    assert by_value["b"].auc_dropped and not by_value["b"].drifted
    assert [s.value for s in report.alarmed()] == ["b"]
    assert by_value["a"].roc_auc is not None and by_value["a"].roc_auc_stderr > 0


def test_the_label_free_estimate_never_reads_the_batch_labels(reference):
    estimator = Estimator.fit(reference[1], reference[2])
    frame, proba, y = world(1_000, np.random.default_rng(6))
    with_labels = measured((frame, proba, y), reference, estimator=estimator)
    flipped = measured((frame, proba, 1 - y), reference, estimator=estimator)
    assert [s.estimated_roc_auc for s in with_labels.segments] == [s.estimated_roc_auc for s in flipped.segments]
    assert all(s.estimated_roc_auc is not None for s in with_labels.segments)


def test_small_segments_are_counted_in_the_mix_but_not_judged(reference):
    report = measured(world(300, np.random.default_rng(7)), reference)
    assert report.segments == ()
    assert report.decompositions[0].moved == "none"


def test_stable_small_segments_alarm_at_most_at_the_rate_per_rule(reference):
    """500-row batches of the reference's world: 5 segments of about 100 rows each (those under ``MIN_ROWS`` not
    judged). Benjamini-Hochberg at 1% over the segments: a batch with any segment alarmed by a rule is at most about
    1% of stable batches (3% allowed for the count's own noise over 300 batches: 9 or more is over 3 standard
    deviations above 1%)."""
    rng = np.random.default_rng(8)
    rules = Rules(drift_threshold=0.0, min_rows_for_auc=100)  # the noise model alone decides
    reports = [measured(world(500, rng), reference, rules) for _ in range(300)]
    assert sum(any(s.drifted for s in r.segments) for r in reports) <= 9
    assert sum(any(s.auc_dropped for s in r.segments) for r in reports) <= 9
    assert sum(r.decompositions[0].moved != "none" for r in reports) <= 2 * 9  # two tests at 1% each


def test_numerical_segments_are_named_by_their_bins():
    spec = SegmentSpec("age", (40.0, 65.0))
    column = pd.Series([10, 40, 64.9, 65, None, 99])
    assert list(segment_values(spec, column)) == ["<40", "40-65", "40-65", ">=65", MISSING, ">=65"]
    assert list(segment_values(SegmentSpec("r"), pd.Series(["a", None, 3]))) == ["a", MISSING, "3"]
