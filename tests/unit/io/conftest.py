"""What the io tests share: a valid batch frame drawn from the demo population."""

import numpy as np
import pytest


@pytest.fixture
def good_frame(schema):
    from pipeline.demo.synth import Population, load_sample_frame

    population = Population.fit(load_sample_frame(), schema)
    return population.sample_batch(50, np.random.default_rng(0))
