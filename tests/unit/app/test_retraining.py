"""Retraining with recovery over fakes: the lock, a version an interrupted attempt made, a tracking failure."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import requests
from app_fakes import FakeRegistry, FakeRetrain, FakeStore, loader

from pipeline.app.champion import ChampionCache
from pipeline.app.retraining import Retrainer
from pipeline.domain.policy_types import Action, Verdict
from pipeline.io.data import validate_frame
from pipeline.model import tracking as tracking_module
from pipeline.settings import Settings


@pytest.fixture
def world(population, oracle, schema):
    registry = FakeRegistry()
    registry.add(1)
    registry.champion_version = 1
    said: list[str] = []
    cache = ChampionCache(Settings(_env_file=None), schema, registry, said.append, load=loader(oracle))  # type: ignore[call-arg]
    cache.load()
    batch = validate_frame(population.sample_batch(600, np.random.default_rng(5)), schema, "b7")
    cache.set_reference(batch.frame)
    return cache, registry, FakeStore(), batch, said


VERDICT = Verdict(True, False, False, (), True)


def _rows(batch):
    return lambda: (batch.frame, ["b7"])


def test_a_version_made_for_the_same_batch_number_from_another_source_is_not_credited(tracking, world):
    cache, registry, store, batch, _said = world
    registry.add(2, monitor_run_key="run", monitor_batch="7", monitor_source="other.csv#ab12", decision="promoted")
    retrain = FakeRetrain(registry)
    with mlflow.start_run():
        Retrainer(cache, store, retrain_fn=retrain)(7, batch, "run", VERDICT, _rows(batch))
    assert retrain.calls  # trained for its own source


def test_another_monitor_holding_the_lock_means_skipped_busy_and_no_retrain(tracking, world):
    cache, registry, store, batch, said = world
    store.lock_free = False
    retrain = FakeRetrain(registry)
    done = Retrainer(cache, store, retrain_fn=retrain)(7, batch, "run", VERDICT, _rows(batch))
    assert done.action is Action.skipped_busy and not done.events and not retrain.calls
    assert "another monitor is retraining" in said[-1]


def test_a_version_an_interrupted_attempt_made_for_the_batch_is_finished_not_trained_again(tracking, world):
    cache, registry, store, batch, _said = world
    registry.add(
        2,
        monitor_run_key="run",
        monitor_batch="7",
        monitor_source=batch.source,
        decision="promoted",
        candidate="xgboost",
    )
    retrain = FakeRetrain(registry)
    with mlflow.start_run():  # the monitor's run, where the new reference is logged
        done = Retrainer(cache, store, retrain_fn=retrain)(7, batch, "run", VERDICT, _rows(batch))
    assert done.action is Action.retrained_promoted and not retrain.calls
    assert registry.champion_version == 2 and cache.version == 2  # promoted, and served from now on
    assert registry.versions[2].tags["reference_uri"].endswith("reference_batch_007.parquet")
    assert all(event.details.get("recovered") for event in done.events)


def test_a_lost_retrain_is_a_rejection_and_the_champion_stays(tracking, world):
    cache, registry, store, batch, _said = world
    retrain = FakeRetrain(registry, promote=False)
    done = Retrainer(cache, store, retrain_fn=retrain)(7, batch, "run", VERDICT, _rows(batch))
    assert done.action is Action.retrained_rejected and not done.failed
    assert [event.kind for event in done.events] == ["retrain", "rejection"]
    assert cache.version == 1 and retrain.calls == [len(batch.frame)]


def test_a_retrain_the_tracking_side_broke_is_settled_and_recorded_as_a_failed_rejection(tracking, world, monkeypatch):
    cache, registry, store, batch, _said = world
    monkeypatch.setattr(tracking_module, "server_up", lambda uri: True)  # the server is back at once
    retrain = FakeRetrain(registry, fail_with=requests.ConnectionError("connection refused"))
    retrainer = Retrainer(cache, store, retrain_fn=retrain)
    done = retrainer(7, batch, "run", VERDICT, _rows(batch))
    assert done.action is Action.retrained_rejected and done.failed
    assert done.events[0].details == {"error": "connection refused", "failed": True}
    assert retrainer.failures == ["batch 7: retrain failed, champion v1 unchanged: connection refused"]


def test_a_bug_in_the_retrain_is_not_taken_for_a_tracking_failure(tracking, world):
    cache, registry, store, batch, _said = world
    retrain = FakeRetrain(registry, fail_with=ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        Retrainer(cache, store, retrain_fn=retrain)(7, batch, "run", VERDICT, _rows(batch))
