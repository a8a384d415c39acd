"""The champion cache: which scores the prediction's noise band is drawn from, by where the reference came from."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from app_fakes import FakeRegistry, loader

from pipeline.app.champion import ChampionCache
from pipeline.io.data import validate_frame
from pipeline.model.serving import TAG_CALIBRATION, TAG_REFERENCE_FITTED, log_calibration
from pipeline.settings import Settings


@pytest.fixture
def cache(tracking, population, oracle, schema):
    holdout = np.linspace(0.05, 0.95, 50)
    with mlflow.start_run():
        uri = log_calibration(holdout, (holdout > 0.5).astype(int))
    registry = FakeRegistry()
    registry.add(1, **{TAG_CALIBRATION: uri})
    registry.champion_version = 1
    cache = ChampionCache(Settings(_env_file=None), schema, registry, lambda _: None, load=loader(oracle))  # type: ignore[call-arg]
    cache.load()
    frame = validate_frame(population.sample_batch(300, np.random.default_rng(3)), schema, "ref").frame
    return cache, registry, frame, holdout


def test_a_reference_the_champion_may_have_been_fitted_on_draws_its_band_from_the_recorded_holdout(cache):
    champion, _, frame, holdout = cache
    champion.set_reference(frame)
    null = champion.profile().prediction_null
    assert null is not None and np.array_equal(null, holdout)


def test_a_batch_made_the_reference_draws_from_its_own_scores_and_says_so_for_later_runs(cache):
    champion, registry, frame, _ = cache
    with mlflow.start_run():
        champion.rebase(4, frame, fitted=False)
    assert champion.profile().prediction_null is None
    assert registry.version(1).tags[TAG_REFERENCE_FITTED] == "false"
    with mlflow.start_run():
        champion.rebase(5, frame, fitted=True)
    assert champion.profile().prediction_null is not None
    assert registry.version(1).tags[TAG_REFERENCE_FITTED] == "true"
