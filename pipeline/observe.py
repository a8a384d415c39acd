"""Observing a batch: the champion's P(positive), drift against the reference profile, quality on labels.

The one place that turns a validated batch into what the policy judges (``policy.Observation``) and what the
outcome records (drift details, realized quality).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.data import Batch, labels_of
from pipeline.drift import DriftResult, ReferenceProfile
from pipeline.policy import Observation
from pipeline.scoring import Scorer
from pipeline.train import quality


def finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class BatchObservation:
    observation: Observation
    drift: DriftResult
    roc_auc: float | None
    accuracy: float | None

    @property
    def positive_rate(self) -> float | None:
        return self.observation.positive_rate

    @property
    def mean_prediction(self) -> float:
        return self.observation.mean_prediction


def observe(batch: Batch, scorer: Scorer, profile: ReferenceProfile) -> BatchObservation:
    """Score the batch once, measure its drift, and its quality when it carries labels."""
    proba = scorer.proba(batch.frame)
    drift = profile.measure(batch.frame, proba)
    y = labels_of(batch.frame, scorer.schema) if batch.has_labels else None
    return observation_of(drift, proba, y)


def observation_of(drift: DriftResult, proba: np.ndarray, y: np.ndarray | None) -> BatchObservation:
    """What the policy judges, from a batch's drift, its P(positive) and its 0/1 labels (None: unlabelled)."""
    roc_auc = accuracy = None
    if y is not None:
        q = quality(y, proba)
        roc_auc, accuracy = finite(q["roc_auc"]), q["accuracy"]
    observation = Observation(
        rows=len(proba),
        prediction_drift=drift.prediction_drift,
        share_drifted_columns=drift.share_drifted_columns,
        drifted_columns=drift.drifted_columns,
        mean_prediction=float(np.mean(proba)) if len(proba) else float("nan"),
        prediction_variance=float(np.sum(proba * (1 - proba))),
        positives=None if y is None else int(y.sum()),
        roc_auc=roc_auc,
    )
    return BatchObservation(observation, drift, roc_auc, accuracy)
