"""The champion a monitor run serves, and what is derived from it once per champion or reference: its scorer,
the reference's profile and bins (drift scores and their noise), and the performance estimator with its
recalibration on the newest labelled rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema
from pipeline.domain.values import one_line
from pipeline.engine.observe import BatchObservation
from pipeline.io.data import Batch, known_labels, labelled_mask, labels_of
from pipeline.model import tracking
from pipeline.model.registry import Registry, VersionInfo, require_champion
from pipeline.model.serving import (
    TAG_REFERENCE,
    TAG_REFERENCE_FITTED,
    ServingModel,
    load_version,
    log_reference,
    recorded_calibration,
)
from pipeline.settings import Settings
from pipeline.stats.binned_reference import BinnedReference
from pipeline.stats.drift import ReferenceProfile
from pipeline.stats.estimate import Estimator
from pipeline.stats.multivariate import DomainClassifier

RECENT_LABELLED_ROWS = 5_000  # the newest labelled rows the estimate's calibration is tested and refitted on
Say = Callable[[str], None]
LoadVersion = Callable[[Registry, VersionInfo, FeatureSchema, Settings], ServingModel]


def trained_rows(version: VersionInfo | None) -> int | None:
    """The rows a version the project trained was fitted on (its ``fit_rows`` tag, else its window's rows);
    None for a version without them (an adopted model)."""
    if version is None:
        return None
    for tag in ("fit_rows", "window_rows"):
        value = version.tags.get(tag)
        if value and value.isdigit():
            return int(value)
    return None


class ChampionCache:
    """The serving champion of a run and what is derived from it, each computed on first use and dropped when the
    champion or the reference changes. ``load`` reads a registered version (``load_version``; a test passes its
    own)."""

    def __init__(
        self,
        settings: Settings,
        schema: FeatureSchema,
        registry: Registry,
        say: Say = print,
        *,
        load: LoadVersion = load_version,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.registry = registry
        self.say = say
        self._load = load
        self.current: VersionInfo | None = None
        self.serving: ServingModel | None = None
        self.reference: pd.DataFrame | None = None
        self.reference_fitted = True  # the champion may have been fitted on the reference's rows
        self.threshold = settings.drift_threshold
        self.holdout_counts: tuple[float, float] | None = None  # positives, negatives of the champion's holdout
        self.trust_history: list[tuple[float | None, float | None, float | None]] = []  # (AUC, low, high)
        self._profile: ReferenceProfile | None = None
        self._binned: BinnedReference | None = None
        self._domain: DomainClassifier | None = None
        self._estimator: Estimator | None = None
        self._estimator_for: int | None = None  # the champion version the estimator was fitted for
        self._calibration: tuple[int, tuple[np.ndarray, np.ndarray] | None] | None = None  # (version, scores)
        self._recent_labelled: list[tuple[np.ndarray, np.ndarray]] = []  # (P(positive), 0/1) of earlier batches
        self._recalibrated: Estimator | None = None  # the champion's estimator refitted on recent labelled rows
        self._said: set[str] = set()

    @property
    def version(self) -> int:
        assert self.current is not None, "no champion loaded"
        return self.current.version

    @property
    def scorer(self) -> Any:
        assert self.serving is not None, "no champion loaded"
        return self.serving.scorer

    def say_once(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self.say(message)

    def load(self) -> None:
        """Serve the registry's champion."""
        self.serve(require_champion(self.registry))

    def serve(self, version: VersionInfo) -> None:
        self.current = version
        self.serving = self._load(self.registry, version, self.schema, self.settings)
        self._profile = None
        self._binned = None
        self._recent_labelled = []  # the labelled rows this champion scored: earlier batches only
        self._recalibrated = None
        self.trust_history = []
        if self.serving.holdout_roc_auc is None:
            self.say_once(
                "no-holdout",
                f"note: v{version.version} has no recorded holdout metrics, so the performance alarm is off "
                f"until `pipeline adopt --model-name {self.registry.name} --version {version.version} --holdout "
                "PATH` records them",
            )

    def set_reference(self, frame: pd.DataFrame, *, fitted: bool = True) -> None:
        """Judge later batches against ``frame``. ``fitted``: the champion may have been fitted on its rows (its
        training data, a file the user gave): its scores there are then in-sample, and the prediction's noise is
        drawn from the champion's recorded out-of-sample scores (``pipeline.stats.noise``)."""
        self.reference = frame
        self.reference_fitted = fitted
        self._profile = None
        self._binned = None
        self._domain = None

    def rebase(self, index: int, frame: pd.DataFrame, *, fitted: bool) -> None:
        """The batch becomes the reference, and stays it for later runs: logged to the monitor run and named
        by the champion's ``reference_uri`` (a monitor without ``--reference`` starts from it), with
        ``reference_fitted`` saying whether the champion was fitted on its rows."""
        self.set_reference(frame, fitted=fitted)
        try:
            uri = log_reference(
                frame, self.schema, self.settings.reference_rows, f"reference_batch_{index:03d}.parquet"
            )
            self.registry.tag_version(self.version, TAG_REFERENCE, uri)
            self.registry.tag_version(self.version, TAG_REFERENCE_FITTED, "true" if fitted else "false")
        except Exception as err:
            if not tracking.is_tracking_failure(err):
                raise
            self.say(f"[batch {index}] warning: the new reference was not stored ({one_line(err, 120)})")

    def profile(self) -> ReferenceProfile:
        if self._profile is None:
            assert self.reference is not None, "no reference set"
            calibration = self.calibration() if self.reference_fitted else None
            self._profile = ReferenceProfile.scored(
                self.reference,
                self.scorer,
                self.schema,
                prediction_threshold=self.threshold,
                column_threshold=self.settings.column_drift_threshold,
                prediction_null=None if calibration is None else calibration[0],
            )
        return self._profile

    def binned(self) -> BinnedReference:
        if self._binned is None:
            self._binned = BinnedReference(self.profile())
        return self._binned

    def domain_classifier(self) -> DomainClassifier | None:
        """The multivariate drift score's classifier, on a sample of the reference; None when it is turned off
        (``PIPELINE_MULTIVARIATE_DRIFT``). It reads the reference alone: the same for any champion."""
        if not self.settings.multivariate_drift:
            return None
        if self._domain is None:
            assert self.reference is not None, "no reference set"
            self._domain = DomainClassifier.fit(self.reference, self.schema, self.settings.multivariate_sample_rows)
        return self._domain

    def estimator(self) -> Estimator | None:
        """The estimator of the next batch: the champion's own (``champion_estimator``), or the one recalibrated
        on the newest labelled rows of earlier batches once those showed that its calibration drifted."""
        base = self.champion_estimator()
        return base if self._recalibrated is None or base is None else self._recalibrated

    def learn_from_labels(self, index: int, batch: Batch, seen: BatchObservation) -> None:
        """After a labelled batch read whole: its realized AUC against the interval it was estimated with (the
        trust of later estimates), and its rows among the newest labelled ones, on which the calibration is
        tested and, when it drifted, fitted anew (``Estimator.refit_if_drifted``) for the batches after it."""
        if seen.proba is None or not batch.has_labels:
            return
        self.trust_history.append((seen.roc_auc, seen.estimated_roc_auc_low, seen.estimated_roc_auc_high))
        known = known_labels(batch, self.schema)
        if known is None:
            return
        self._recent_labelled.append((seen.proba[known[0]], known[1]))
        total = 0
        for position in range(len(self._recent_labelled) - 1, -1, -1):
            total += len(self._recent_labelled[position][1])
            if total >= RECENT_LABELLED_ROWS:
                del self._recent_labelled[:position]
                break
        current = self.estimator()
        if current is None:
            return
        proba = np.concatenate([p for p, _ in self._recent_labelled])
        labels = np.concatenate([y for _, y in self._recent_labelled])
        recalibration = current.refit_if_drifted(proba[-RECENT_LABELLED_ROWS:], labels[-RECENT_LABELLED_ROWS:])
        if recalibration.estimator is not current:
            self._recalibrated, self.trust_history = recalibration.estimator, []
            self.say(f"[batch {index}] the estimate is recalibrated: {recalibration.reason}")

    def calibration(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The champion's recorded holdout P(positive) and 0/1 labels (``calibration_uri``), read once per version."""
        assert self.current is not None, "no champion loaded"
        if self._calibration is None or self._calibration[0] != self.current.version:
            self._calibration = (self.current.version, recorded_calibration(self.current))
        return self._calibration[1]

    def champion_estimator(self) -> Estimator | None:
        """The champion's performance estimator, fitted once per champion on its recorded holdout scores; for a
        version without them, on the labelled reference (said once: the model may have been trained on those
        rows, so the estimate may be optimistic); without either, no estimate."""
        assert self.current is not None, "no champion loaded"
        version = self.current.version
        if self._estimator_for == version:
            return self._estimator
        self._estimator_for, self._estimator, self.holdout_counts = version, None, None
        calibration = self.calibration()
        if calibration is not None:
            positives = float(np.sum(calibration[1]))
            self.holdout_counts = (positives, len(calibration[1]) - positives)
            self._estimator = Estimator.fit(*calibration)
            return self._estimator
        reference = self.reference
        if reference is not None and self.schema.target in reference.columns:
            reference = reference[labelled_mask(reference, self.schema)]  # its rows with a label
        if reference is not None and self.schema.target in reference.columns and len(reference):
            self._estimator = Estimator.fit(self.scorer.proba(reference), labels_of(reference, self.schema))
            self.say_once(
                f"calibration-{version}",
                f"note: v{version} has no recorded holdout scores; performance is estimated with the reference's "
                "labels (rows it may have been trained on: the estimate may be optimistic)",
            )
        else:
            self.say_once(
                f"calibration-{version}",
                f"note: v{version} has no recorded holdout scores and the reference has no labels: "
                "no estimated performance",
            )
        return self._estimator
