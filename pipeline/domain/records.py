"""The records the monitor writes: a batch as measured and judged, a feature's drift score, an event, a batch's
late-labelled quality, an inbox file set aside. Plain values; ``pipeline.io.store`` maps them to its tables.

A batch's columns are spelled once, as BatchRow's fields: BATCH_COLUMNS is read from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# The one list of event kinds: Event checks it, and the events table's CHECK constraint is built from it.
EVENT_KINDS = (
    "bootstrap",
    "alarm",
    "retrain",
    "promotion",
    "rejection",
    "rollback",
    "adoption",
    "labels",
    "challenger",  # a winner held for a person (retraining mode challenger)
)
RUN_LEVEL = -1  # batch_index of events that belong to no batch (bootstrap, rollback)


@dataclass
class BatchRow:
    """One batch as the monitor measured and judged it: a row of batch_metrics.

    The fields added after the first release come last, with defaults, so callers that build a row by position
    keep working. ``positive_rate`` is the observed share of positives and is None unless the batch was
    labelled; ``mean_prediction`` is the champion's mean P(positive) on the batch (None only in old rows);
    ``prior_shift`` is the monitor's verdict that the two differ beyond its tolerance. ``estimated_roc_auc`` and
    ``estimated_accuracy`` come from the champion's probabilities alone (``pipeline.stats.estimate``), on every batch;
    ``estimated_drop`` is the alarm on them. ``labelled_rows`` counts the rows whose label is known (all of a
    labelled batch; those of late labels, ``pipeline labels``) and ``estimation_error`` is estimated minus
    realized ROC AUC once they are. ``prediction_drift_p`` is the chance of a prediction drift at least as large
    under no drift at the batch's size, and ``drift_noise_edge`` the score chance reaches at the false-alarm rate
    (``pipeline.stats.noise``); ``roc_auc_stderr`` the realized AUC's standard error; ``estimated_roc_auc_low`` and
    ``_high`` the estimate's interval, and ``estimate_trusted`` whether recent labels kept within such intervals
    (None: no labels yet to tell). ``multivariate_auc`` is the domain classifier's held-out ROC AUC, reference
    rows against the batch's (``pipeline.stats.multivariate``; None: not measured), ``multivariate_p`` its chance
    under no change and ``multivariate_edge`` the AUC chance reaches at the false-alarm rate, both at the sample's
    size; ``multivariate_drift`` the verdict on it (an input-drift alarm: ``drift_detected`` is set with it).
    """

    run_key: str
    batch_index: int
    model_name: str
    champion_version: int | None
    source: str
    n_rows: int
    prediction_drift: float
    drift_threshold: float
    drifted_columns: int
    share_drifted_columns: float
    share_missing: float
    unseen_categories: int
    drift_detected: bool
    roc_auc: float | None
    accuracy: float | None
    performance_drop: bool
    action: str
    prior_shift: bool = False
    positive_rate: float | None = None
    mean_prediction: float | None = None
    estimated_roc_auc: float | None = None
    estimated_accuracy: float | None = None
    estimated_drop: bool = False
    labelled_rows: int | None = None
    estimation_error: float | None = None
    prediction_drift_p: float | None = None
    drift_noise_edge: float | None = None
    roc_auc_stderr: float | None = None
    estimated_roc_auc_low: float | None = None
    estimated_roc_auc_high: float | None = None
    estimate_trusted: bool | None = None
    multivariate_auc: float | None = None
    multivariate_p: float | None = None
    multivariate_edge: float | None = None
    multivariate_drift: bool = False


# The columns of a batch_metrics row as the monitor writes it: BatchRow's fields, in their order.
BATCH_COLUMNS = tuple(f.name for f in fields(BatchRow))
# The monitor's verdict on a batch: it alarmed when any of these is true. The dashboard's alert, its alarm counts
# and the run report read these columns rather than re-deciding from the scores.
VERDICT_COLUMNS = ("drift_detected", "performance_drop", "prior_shift", "estimated_drop")


@dataclass(frozen=True)
class LateLabelled:
    """A batch's realized quality from labels that arrived after it was monitored (``pipeline labels``)."""

    run_key: str
    batch_index: int
    labelled_rows: int
    roc_auc: float | None
    accuracy: float
    positive_rate: float
    estimation_error: float | None
    performance_drop: bool


@dataclass
class Event:
    run_key: str
    model_name: str
    kind: str
    message: str
    batch_index: int = RUN_LEVEL
    model_version: int | None = None
    champion_version: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}; expected one of {', '.join(EVENT_KINDS)}")


@dataclass(frozen=True)
class FeatureScore:
    """One feature's drift score in one batch. ``score`` is None where it could not be computed (NaN: a side of
    the comparison had no values); ``drifted`` is the verdict against the column threshold, kept as decided so
    that the dashboard does not have to know the threshold the run used."""

    feature: str
    score: float | None
    drifted: bool


@dataclass(frozen=True)
class RejectedBatch:
    """An inbox file set aside: reading, validating or scoring it failed for a reason of its own, which would fail
    every later run the same way. One row per monitor run (the model's inbox), file (``uri``) and content
    (``etag``): the inbox does not read it again until it is cleared (``pipeline inbox retry``); the same file
    written again with new content is a new batch. ``reason`` is the failure's one line."""

    run_key: str
    model_name: str
    uri: str
    etag: str
    reason: str
    champion_version: int | None = None
