"""Observing a batch: the champion's P(positive), drift against the reference profile, quality on labels.

The one place that turns a validated batch into what the policy judges (``policy.Observation``) and what the
outcome records (drift details, realized quality).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pipeline.domain import policy
from pipeline.domain.policy_types import Observation
from pipeline.domain.values import finite
from pipeline.io.data import Batch, known_labels
from pipeline.model.scoring import Scorer
from pipeline.stats.auc_interval import Estimate
from pipeline.stats.drift import DriftResult, ReferenceProfile
from pipeline.stats.estimate import Estimator
from pipeline.stats.metrics import quality
from pipeline.stats.multivariate import MultivariateResult
from pipeline.stats.profile import BatchProfile


@dataclass(frozen=True)
class BatchObservation:
    observation: Observation
    drift: DriftResult
    roc_auc: float | None
    accuracy: float | None
    estimate: Estimate | None = None
    proba: np.ndarray | None = None  # the champion's P(positive) per row (for the prediction log)
    profile: BatchProfile | None = None  # the batch's mergeable profile, when it was read in chunks
    estimate_trusted: bool | None = None  # whether recent labels kept within the estimate's intervals
    multivariate: MultivariateResult | None = None  # the domain classifier's score (None: not measured)
    uniform: pd.DataFrame | None = None  # a uniform sample of a batch read in chunks, when the reader kept one

    def with_multivariate(self, result: MultivariateResult | None) -> BatchObservation:
        """This observation with the batch's multivariate drift score, for the policy and the record."""
        observation = replace(
            self.observation,
            multivariate_auc=None if result is None else finite(result.auc),
            multivariate_p=None if result is None else finite(result.p_value),
        )
        return replace(self, observation=observation, multivariate=result)

    @property
    def estimated_roc_auc(self) -> float | None:
        return None if self.estimate is None else finite(self.estimate.roc_auc)

    @property
    def estimated_accuracy(self) -> float | None:
        return None if self.estimate is None else finite(self.estimate.accuracy)

    @property
    def estimated_roc_auc_low(self) -> float | None:
        return None if self.estimate is None else finite(getattr(self.estimate, "roc_auc_low", None))

    @property
    def estimated_roc_auc_high(self) -> float | None:
        return None if self.estimate is None else finite(getattr(self.estimate, "roc_auc_high", None))

    @property
    def roc_auc_stderr(self) -> float | None:
        """The realized AUC's standard error (Hanley-McNeil at its own value), when it was measured."""
        o = self.observation
        if self.roc_auc is None or o.positives is None:
            return None
        return finite(policy.auc_stderr(self.roc_auc, o.positives, o.label_rows - o.positives))

    @property
    def estimation_error(self) -> float | None:
        """Estimated minus realized ROC AUC, when both are known."""
        estimated = self.estimated_roc_auc
        return None if estimated is None or self.roc_auc is None else estimated - self.roc_auc

    @property
    def positive_rate(self) -> float | None:
        return self.observation.positive_rate

    @property
    def mean_prediction(self) -> float:
        return self.observation.mean_prediction


def observe(
    batch: Batch,
    scorer: Scorer,
    profile: ReferenceProfile,
    estimator: Estimator | None = None,
    false_rate: float | None = None,
) -> BatchObservation:
    """Score the batch once, measure its drift, estimate its performance (when an estimator is given), and its
    quality when it carries labels. With ``false_rate``, the drift scores are judged against the reference's
    noise band at the batch's size (``pipeline.stats.noise``) at that false-alarm rate."""
    proba = scorer.proba(batch.frame)
    drift = profile.measure(batch.frame, proba)
    if false_rate is not None:
        drift = drift.judged(profile.noise.band(len(proba)), false_rate)
    known = known_labels(batch, scorer.schema)
    if known is None or not batch.unlabelled_rows:
        return observation_of(drift, proba, None if known is None else known[1], estimator)
    return observation_of(drift, proba, known[1], estimator, labelled=known[0])


def observation_of(
    drift: DriftResult,
    proba: np.ndarray,
    y: np.ndarray | None,
    estimator: Estimator | None = None,
    labelled: np.ndarray | None = None,
) -> BatchObservation:
    """What the policy judges, from a batch's drift (judged against its noise band or not), its P(positive), its
    0/1 labels (None: unlabelled) and the champion's estimator (None: no estimate). ``labelled``: which rows the
    labels belong to, when some rows have none (quality is then on those rows)."""
    estimate = estimator.estimate(proba) if estimator is not None and len(proba) else None
    roc_auc = accuracy = None
    scored = proba if labelled is None else proba[labelled]
    if y is not None:
        q = quality(y, scored)
        roc_auc, accuracy = finite(q["roc_auc"]), q["accuracy"]
    part = None
    if labelled is not None and len(scored):
        part = (len(scored), float(np.mean(scored)), float(np.sum(scored * (1 - scored))))
    return assemble(
        drift,
        rows=len(proba),
        mean_prediction=float(np.mean(proba)) if len(proba) else float("nan"),
        prediction_variance=float(np.sum(proba * (1 - proba))),
        positives=None if y is None else int(y.sum()),
        roc_auc=roc_auc,
        accuracy=accuracy,
        estimate=estimate,
        proba=proba,
        labelled=part,
    )


def assemble(
    drift: DriftResult,
    *,
    rows: int,
    mean_prediction: float,
    prediction_variance: float,
    positives: int | None,
    roc_auc: float | None,
    accuracy: float | None,
    estimate: Estimate | None,
    proba: np.ndarray | None = None,
    profile: BatchProfile | None = None,
    labelled: tuple[int, float, float] | None = None,
) -> BatchObservation:
    """The one place an observation is put together, from a batch read whole or a merged profile. ``labelled``:
    a partly labelled batch's labelled rows, their mean P(positive) and sum of p(1-p)."""
    observation = Observation(
        rows=rows,
        prediction_drift=drift.prediction_drift,
        prediction_drift_p=drift.prediction_p,
        share_drifted_columns=drift.share_drifted_columns,
        drifted_columns=drift.drifted_columns,
        mean_prediction=mean_prediction,
        prediction_variance=prediction_variance,
        positives=positives,
        roc_auc=roc_auc,
        estimated_roc_auc=None if estimate is None else finite(estimate.roc_auc),
        labelled_rows=None if labelled is None else labelled[0],
        labelled_prediction=None if labelled is None else labelled[1:],
    )
    return BatchObservation(observation, drift, roc_auc, accuracy, estimate, proba, profile)
