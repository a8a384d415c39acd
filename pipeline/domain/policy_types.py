"""The values the decision policy (``pipeline.domain.policy``) reads and returns: its thresholds (``Rules``), what
was measured on a batch (``Observation``), what it remembers between batches (``PolicyState``), its ``Verdict``
and the ``Action`` the monitor took. Plain frozen values, no rule."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pipeline.settings import PolicySettings


class Action(StrEnum):
    """What the monitor did with a batch (the ``action`` column and report field)."""

    none = "none"
    retrained_promoted = "retrained-promoted"
    retrained_rejected = "retrained-rejected"  # also a retrain that failed (its rejection event says so)
    retrained_challenger = "retrained-challenger"  # a winner registered as challenger: a person promotes it
    skipped_cooldown = "skipped-cooldown"
    skipped_busy = "skipped-busy"


@dataclass(frozen=True)
class Rules:
    """The thresholds of the policy (from ``Settings``)."""

    drift_threshold: float = 0.1
    false_alarm_rate: float = 0.01
    drifted_share_threshold: float = 0.5
    auc_tolerance: float = 0.05
    min_rows_for_auc: int = 200
    prior_tolerance: float = 0.1
    prior_z: float = 3.0
    cooldown_batches: int = 3
    label_retries: int = 2
    window_rows: int = 20_000
    min_change_rows: int = 1_000
    refresh_fraction: float = 1.0
    multivariate_threshold: float = 0.55

    @classmethod
    def of(cls, settings: PolicySettings, drift_threshold: float | None = None) -> Rules:
        """The rules of the settings' policy group (``Settings.policy``), with the run's drift threshold."""
        return cls(
            drift_threshold=settings.drift_threshold if drift_threshold is None else drift_threshold,
            false_alarm_rate=settings.false_alarm_rate,
            drifted_share_threshold=settings.drifted_share_threshold,
            auc_tolerance=settings.auc_tolerance,
            min_rows_for_auc=settings.min_rows_for_auc,
            prior_tolerance=settings.prior_tolerance,
            prior_z=settings.prior_z,
            cooldown_batches=settings.cooldown_batches,
            label_retries=settings.label_retries,
            window_rows=settings.window_rows,
            min_change_rows=settings.min_change_rows,
            refresh_fraction=settings.refresh_fraction,
            multivariate_threshold=settings.multivariate_threshold,
        )


@dataclass(frozen=True)
class Observation:
    """What was measured on one batch with the champion that served it."""

    rows: int
    prediction_drift: float
    share_drifted_columns: float  # of the columns drifted beyond their noise band, when judged against one
    drifted_columns: int
    mean_prediction: float
    prediction_variance: float = 0.0  # sum of p(1-p) over the rows: the spread of the positive count
    positives: int | None = None  # None: the batch carries no labels
    roc_auc: float | None = None
    estimated_roc_auc: float | None = None  # from the champion's probabilities alone (None: not estimated)
    prediction_drift_p: float | None = None  # chance of this drift under no drift at this size (None: no band)
    multivariate_auc: float | None = None  # the domain classifier's held-out AUC (None: not measured)
    multivariate_p: float | None = None  # chance of that AUC under no change at the sample's size
    # A partly labelled batch: its labelled rows, and their mean P(positive) and sum of p(1-p) (None: every row)
    labelled_rows: int | None = None
    labelled_prediction: tuple[float, float] | None = None

    @property
    def labelled(self) -> bool:
        return self.positives is not None

    @property
    def label_rows(self) -> int:
        """The rows whose label is known: what quality, the label-based rules and the refresh count."""
        if self.positives is None:
            return 0
        return self.rows if self.labelled_rows is None else self.labelled_rows

    @property
    def positive_rate(self) -> float | None:
        return None if self.positives is None or self.label_rows == 0 else self.positives / self.label_rows

    @property
    def labelled_mean_prediction(self) -> tuple[float, float]:
        """The labelled rows' mean P(positive) and sum of p(1-p): the prior-shift rule's side of the comparison."""
        if self.labelled_prediction is not None:
            return self.labelled_prediction
        return self.mean_prediction, self.prediction_variance

    @property
    def judgeable(self) -> bool:
        """Labelled, large enough, both classes: its AUC and positive rate are trusted."""
        return self.positives is not None and self.label_rows > 0 and 0 < self.positives < self.label_rows


@dataclass(frozen=True)
class PolicyState:
    """What the policy remembers between batches."""

    last_promotion: int | None = None  # batch of the last promotion (the cooldown runs from it)
    blocked_at: int | None = None  # batch of the last retrain that could not run (busy, failed)
    change_at: int | None = None  # first batch of the current episode whose labels alarmed
    rejections: int = 0  # challengers rejected in a row on label alarms since the last promotion
    last_rejection: int | None = None
    labelled_since: int = 0  # labelled rows since the champion's last retrain (promoted or not)
    follow_at: int | None = None  # batch of the last challenger rejected on input drift alone (``rebaseline``)


@dataclass(frozen=True)
class Verdict:
    drift_detected: bool
    performance_drop: bool
    prior_shift: bool
    reasons: tuple[str, ...]
    retrain: bool
    cooldown_from: int | None = None  # the batch whose cooldown holds this alarm back
    estimated_drop: bool = False
    refresh: bool = False  # a refresh is due: enough new labelled rows since the champion's last retrain
    multivariate_drift: bool = False  # the multivariate rule fired (then drift_detected too: it is input drift)

    @property
    def alarm(self) -> bool:
        return self.drift_detected or self.performance_drop or self.prior_shift or self.estimated_drop

    @property
    def label_alarm(self) -> bool:
        return self.performance_drop or self.prior_shift

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)

    @property
    def drift_only(self) -> bool:
        """An input-drift alarm without a label alarm: the case where a rejected challenger rebaselines."""
        return (self.drift_detected or self.estimated_drop) and not self.label_alarm

    def action_without_retrain(self) -> Action:
        return Action.skipped_cooldown if self.alarm and not self.retrain else Action.none
