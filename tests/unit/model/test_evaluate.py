import dataclasses

import numpy as np
import pytest

from pipeline.demo.synth import Population, load_sample_frame
from pipeline.domain.schema import SegmentSpec, load_schema
from pipeline.model.evaluate import compare, row_log_loss
from pipeline.model.scoring import Scorer


class FixedModel:
    """A model whose probabilities are given: lets the promotion rule be tested on exact inputs."""

    classes_ = np.array([0, 1])

    def __init__(self, proba):
        self.proba = np.asarray(proba)

    def predict_proba(self, frame):
        p = self.proba[: len(frame)]
        return np.column_stack([1 - p, p])


def fixed(proba):
    return Scorer.trained(FixedModel(proba), load_schema())


@pytest.fixture(scope="module")
def holdout(schema):
    return Population.fit(load_sample_frame(), schema).sample_batch(2000, np.random.default_rng(3))


def _truth(holdout, schema):
    return (holdout[schema.target] == schema.positive).to_numpy().astype(float)


def test_no_champion_promotes(holdout, schema):
    decision = compare(None, fixed(np.full(len(holdout), 0.3)), holdout, schema, min_gain=0.002, z=2)
    assert decision.promote and decision.champion is None


def test_equal_models_are_not_promoted(holdout, schema):
    same = fixed(np.full(len(holdout), 0.34))
    decision = compare(same, same, holdout, schema, min_gain=0.002, z=2)
    assert not decision.promote and decision.gain == 0


def test_clearly_better_challenger_is_promoted(holdout, schema):
    y = _truth(holdout, schema)
    informed = fixed(np.where(y == 1, 0.7, 0.2))
    flat = fixed(np.full(len(holdout), 0.34))
    decision = compare(flat, informed, holdout, schema, min_gain=0.002, z=2)
    assert decision.promote
    assert decision.gain == pytest.approx(
        row_log_loss(y, flat.estimator.proba).mean() - row_log_loss(y, informed.estimator.proba).mean()
    )
    reverse = compare(informed, flat, holdout, schema, min_gain=0.002, z=2)
    assert not reverse.promote and reverse.gain < 0


def test_tiny_noisy_gain_is_below_the_margin(holdout, schema):
    rng = np.random.default_rng(0)
    base = np.full(len(holdout), 0.34)
    noisy = np.clip(base + rng.normal(0, 0.01, len(base)), 0.01, 0.99)
    decision = compare(fixed(noisy), fixed(base), holdout, schema, min_gain=0.002, z=2)
    assert not decision.promote
    assert "below the margin" in decision.reason


def test_a_challenger_better_overall_but_worse_on_a_segment_is_promoted_and_names_it(holdout, schema):
    """The challenger knows the labels' link everywhere but among walk-ins, where it is wrong more often than not;
    the champion says the base rate everywhere. Better overall, worse beyond noise among walk-ins only."""
    schema = dataclasses.replace(schema, segments=(SegmentSpec("arrivalmode"),))
    y = _truth(holdout, schema)
    walk_in = (holdout["arrivalmode"] == "walk-in").to_numpy()
    challenger = np.where(walk_in, np.where(y == 1, 0.25, 0.55), np.where(y == 1, 0.7, 0.2))
    decision = compare(fixed(np.full(len(y), y.mean())), fixed(challenger), holdout, schema, min_gain=0.002, z=2)
    assert decision.promote
    assert [w["segment"] for w in decision.worse_segments] == ["arrivalmode=walk-in"]
    assert decision.worse_segments[0]["gain_log_loss"] < 0 and "walk-in" in decision.reason
    assert decision.as_dict()["worse_segments"] == decision.worse_segments  # in the promotion's event details


def test_a_challenger_better_on_every_segment_names_none(holdout, schema):
    schema = dataclasses.replace(schema, segments=(SegmentSpec("arrivalmode"),))
    y = _truth(holdout, schema)
    challenger = np.where(y == 1, 0.7, 0.2)
    decision = compare(fixed(np.full(len(y), y.mean())), fixed(challenger), holdout, schema, min_gain=0.002, z=2)
    assert decision.promote and decision.worse_segments == []
