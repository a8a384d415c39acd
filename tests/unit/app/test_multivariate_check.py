"""The monitor's multivariate drift on streams whose truth is known, through the loop over fakes: a batch whose
two features' correlation flips while each marginal and the champion's predictions stay put alarms at that batch;
the stable stream does not; turned off (per model as for every model), nothing is measured."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from app_fakes import FakeRegistry, FakeRetrain, FakeStore, loader

from pipeline.app.monitor import Monitor
from pipeline.app.sources import BatchSource
from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import validate_frame
from pipeline.settings import Settings

SCHEMA = FeatureSchema(("a", "b", "c"), (), "y", 1, 0)


def _frame(rows: int, rho: float, rng: np.random.Generator) -> pd.DataFrame:
    z = rng.standard_normal((rows, 3))
    frame = pd.DataFrame({"a": z[:, 0], "b": rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1], "c": z[:, 2]})
    frame["y"] = (rng.random(rows) < 1 / (1 + np.exp(-frame["c"]))).astype(int)
    return frame


def _proba(frame: pd.DataFrame) -> np.ndarray:
    """A champion that reads c alone: the flip of a and b's correlation moves none of its predictions."""
    return 1 / (1 + np.exp(-frame["c"].to_numpy(float)))


def _monitor(**settings: object) -> tuple[Monitor, FakeStore, FakeRetrain]:
    registry = FakeRegistry()
    registry.add(1, holdout_roc_auc="0.70")
    registry.champion_version = 1
    store, retrain = FakeStore(), FakeRetrain(registry)
    config = Settings(_env_file=None, refresh_fraction=0, retrain="off", **settings)  # type: ignore[call-arg]
    monitor = Monitor(config, SCHEMA, store, registry, lambda _: None, load=loader(_proba), retrain_fn=retrain)  # type: ignore[arg-type]
    return monitor, store, retrain


def _run(monitor: Monitor, rhos: list[float], seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    reference = validate_frame(_frame(4_000, 0.8, rng), SCHEMA, "reference.csv")
    sources = []
    for i, rho in enumerate(rhos, start=1):
        frame = _frame(2_000, rho, rng)
        sources.append(BatchSource(f"b{i}", lambda frame=frame, i=i: validate_frame(frame, SCHEMA, f"b{i}")))
    return monitor.run(reference, sources, "run").records


@pytest.mark.parametrize("seed", [1, 2])
def test_a_flipped_correlation_alarms_at_its_batch_and_the_stable_batches_before_it_do_not(tracking, seed):
    monitor, store, _retrain = _monitor()
    records = _run(monitor, [0.8, 0.8, -0.8], seed)
    assert [r["multivariate_drift"] for r in records] == [False, False, True]
    assert [r["drift_detected"] for r in records] == [False, False, True]
    assert records[2]["drifted_features"] == [] and records[2]["prediction_drift"] < 0.1  # nothing else sees it
    assert records[2]["multivariate_auc"] > records[2]["multivariate_edge"] > 0.5
    assert store.rows[2].multivariate_drift and store.rows[2].multivariate_p < 0.01
    alarm = next(e for e in store.events if e.kind == "alarm")
    assert alarm.batch_index == 3 and "multivariate drift" in alarm.message


def test_turned_off_the_score_is_not_measured_and_the_flip_passes(tracking):
    monitor, store, _retrain = _monitor(multivariate_drift=False)
    records = _run(monitor, [-0.8], 3)
    assert records[0]["multivariate_auc"] is None and not records[0]["multivariate_drift"]
    assert store.rows[0].multivariate_auc is None
