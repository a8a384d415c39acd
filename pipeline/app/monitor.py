"""The monitoring loop: score each batch with the champion, measure drift, decide, retrain when needed.

Data flows one way per batch: load -> validate -> observe (score, drift, quality: ``pipeline.engine.observe``) ->
decide (``pipeline.domain.policy``: alarms, cooldown, which rows to retrain on) -> (retrain -> tune -> register ->
compare -> promote) -> store. Each batch is written to Postgres in one transaction, keyed by (run key, batch
index): rerunning the same monitor run skips what is already recorded and resumes, moving the policy's state on
from the recorded verdicts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.app import outcome, recovery
from pipeline.app.outcome import retrain_events
from pipeline.domain import policy
from pipeline.domain.policy import Action
from pipeline.domain.schema import FeatureSchema
from pipeline.domain.values import one_line
from pipeline.engine.local import (
    Chunked,
    ChunkWork,
    Engine,
    local_engine,
    numeric_categories,
    object_size,
    observation_of_profile,
)
from pipeline.engine.observe import BatchObservation, observe
from pipeline.engine.spark_job import is_job_result, read_result
from pipeline.io.data import Batch, DataError, ObjectStore, empty_columns, labels_of, load_batch
from pipeline.io.predictions import PredictionLog, PredictionLogError, log_frame
from pipeline.io.store import VERDICT_COLUMNS, Event, MetricsStore
from pipeline.model import tracking
from pipeline.model.registry import Registry, VersionInfo, require_champion
from pipeline.model.retrain import RetrainOutcome, WindowInfo, retrain
from pipeline.model.scoring import ModelMismatch
from pipeline.model.serving import TAG_REFERENCE, ServingModel, load_version, log_reference, recorded_calibration
from pipeline.settings import Settings
from pipeline.stats.drift import DriftResult, ReferenceProfile
from pipeline.stats.estimate import Estimator, estimate_trusted
from pipeline.stats.profile import BinnedReference

TRACKING_WAIT_SECONDS = 300.0
RECENT_LABELLED_ROWS = 5_000  # the newest labelled rows the estimate's calibration is tested and refitted on
Say = Callable[[str], None]


@dataclass(frozen=True)
class BatchSource:
    """A batch to monitor: its name and how to load (and validate) it whole; for a file, where it is, so that a
    large one is read in chunks instead (``pipeline.engine.local``)."""

    name: str
    load: Callable[[], Batch]
    uri: str | None = None
    s3: ObjectStore | None = None
    max_mb: float | None = None


def file_sources(
    paths: Sequence[str], schema: FeatureSchema, s3_client: ObjectStore | None, max_mb: float | None = None
) -> list[BatchSource]:
    return [
        BatchSource(path, functools.partial(load_batch, path, schema, s3_client, max_mb), path, s3_client, max_mb)
        for path in paths
    ]


def inbox_run_key(model_name: str, inbox: str) -> str:
    """One monitor run per model and inbox, resumed by every timer run: its batches are the inbox's files."""
    return "inbox-" + hashlib.sha256(f"{model_name}\n{inbox.rstrip('/')}".encode()).hexdigest()[:12]


def inbox_sources(
    inbox: str, recorded: set[str], schema: FeatureSchema, s3_client: ObjectStore | None, max_mb: float | None = None
) -> list[BatchSource]:
    """The inbox's files not recorded yet, in key order; each batch is recorded as its URI and ETag."""
    from pipeline.io.inbox import list_inbox, pending

    def load(uri: str, identity: str) -> Batch:
        batch = load_batch(uri, schema, s3_client, max_mb)
        batch.source = identity
        return batch

    return [
        BatchSource(item.identity, functools.partial(load, item.uri, item.identity), item.uri, s3_client, max_mb)
        for item in pending(list_inbox(inbox, s3_client), recorded)
    ]


def run_key_for(model_name: str, reference: str, sources: Sequence[str], extra: str = "") -> str:
    """A deterministic key for a monitor run: the same inputs give the same key, so a rerun never double-counts."""
    parts = [model_name, reference, extra]
    for source in [reference, *sources]:
        path = Path(source)
        stat = path.stat() if not source.startswith("s3://") and path.exists() else None
        parts.append(f"{source}:{stat.st_size}:{stat.st_mtime_ns}" if stat else source)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass
class MonitorResult:
    run_key: str
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    mlflow_run_id: str | None = None
    tracking_uri: str = ""
    skipped: int = 0

    @property
    def alarms(self) -> int:
        return sum(1 for r in self.records if any(r.get(name) for name in VERDICT_COLUMNS))

    @property
    def retrains(self) -> int:
        return sum(1 for r in self.records if str(r.get("action", "")).startswith("retrained"))


class Monitor:
    """Holds the collaborators (settings, store, registry) and the state of one monitor run."""

    def __init__(
        self,
        settings: Settings,
        schema: FeatureSchema,
        store: MetricsStore,
        registry: Registry,
        say: Say = print,
        tracking_wait: float = TRACKING_WAIT_SECONDS,
        prediction_log: PredictionLog | None = None,
        engine: Engine = local_engine,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.store = store
        self.registry = registry
        self.say = say
        self.champion: VersionInfo | None = None
        self.serving: ServingModel | None = None
        self.alarm_off_said = False
        self.reference: pd.DataFrame | None = None
        self.profile: ReferenceProfile | None = None
        self.window: list[tuple[int, str, pd.DataFrame]] = []  # (batch index, 0 = reference; source; rows)
        self.rules = policy.Rules.of(settings)
        self.state = policy.PolicyState()
        self.latest_alarm: tuple[int, DriftResult] | None = None  # the run's latest alarmed batch, for its HTML
        self.tracking_wait = tracking_wait
        self.baseline: pd.DataFrame | None = None
        self.reported_extra: set[str] = set()
        self.failures: list[str] = []
        self.recorded_drifted: dict[int, list[str]] = {}
        self.mlflow_run_id: str | None = None
        self.prediction_log = prediction_log
        self.estimator: Estimator | None = None
        self.binned: BinnedReference | None = None
        self.engine = engine
        self.estimator_for: int | None = None  # the champion version the estimator was fitted for
        self.holdout_counts: tuple[float, float] | None = None  # positives, negatives of the champion's holdout
        self.recent_labelled: list[tuple[np.ndarray, np.ndarray]] = []  # (P(positive), 0/1) of earlier batches
        self.recalibrated: Estimator | None = None  # the champion's estimator refitted on recent labelled rows
        self.trust_history: list[tuple[float | None, float | None, float | None]] = []  # (AUC, low, high)
        self.said_once: set[str] = set()

    # ------------------------------------------------------------ champion and reference

    def load_champion(self) -> None:
        self._serve(require_champion(self.registry))

    def _serve(self, version: VersionInfo) -> None:
        self.champion = version
        self.serving = load_version(self.registry, version, self.schema, self.settings)
        self.profile = None
        self.binned = None
        self.recent_labelled = []  # the labelled rows this champion scored: earlier batches only
        self.recalibrated = None
        self.trust_history = []
        if self.serving.holdout_roc_auc is None and not self.alarm_off_said:
            self.alarm_off_said = True
            self.say(
                f"note: v{version.version} has no recorded holdout metrics, so the performance alarm is off "
                f"until `pipeline adopt --model-name {self.registry.name} --version {version.version} --holdout "
                "PATH` records them"
            )

    def set_reference(self, frame: pd.DataFrame) -> None:
        self.reference = frame
        self.profile = None
        self.binned = None

    def _rebase(self, index: int, frame: pd.DataFrame) -> None:
        """The batch becomes the reference, and stays it for later runs: logged to the monitor run and named
        by the champion's ``reference_uri`` (a monitor without ``--reference`` starts from it)."""
        self.set_reference(frame)
        assert self.champion is not None
        try:
            uri = log_reference(
                frame, self.schema, self.settings.reference_rows, f"reference_batch_{index:03d}.parquet"
            )
            self.registry.tag_version(self.champion.version, TAG_REFERENCE, uri)
        except Exception as err:
            if not tracking.is_tracking_failure(err):
                raise
            self.say(f"[batch {index}] warning: the new reference was not stored ({one_line(err, 120)})")

    def _profile(self) -> ReferenceProfile:
        if self.profile is None:
            assert self.reference is not None
            self.profile = ReferenceProfile.scored(
                self.reference,
                self._scorer(),
                self.schema,
                prediction_threshold=self.threshold,
                column_threshold=self.settings.column_drift_threshold,
            )
        return self.profile

    def _scorer(self) -> Any:
        assert self.serving is not None
        return self.serving.scorer

    def _say_once(self, key: str, message: str) -> None:
        if key not in self.said_once:
            self.said_once.add(key)
            self.say(message)

    def _estimator(self) -> Estimator | None:
        """The estimator of the next batch: the champion's own (``_champion_estimator``), or the one recalibrated
        on the newest labelled rows of earlier batches once those showed that its calibration drifted."""
        base = self._champion_estimator()
        return base if self.recalibrated is None or base is None else self.recalibrated

    def _learn_from_labels(self, index: int, batch: Batch, seen: BatchObservation) -> None:
        """After a labelled batch read whole: its realized AUC against the interval it was estimated with (the
        trust of later estimates), and its rows among the newest labelled ones, on which the calibration is
        tested and, when it drifted, fitted anew (``Estimator.refit_if_drifted``) for the batches after it."""
        if seen.proba is None or not batch.has_labels:
            return
        self.trust_history.append((seen.roc_auc, seen.estimated_roc_auc_low, seen.estimated_roc_auc_high))
        self.recent_labelled.append((seen.proba, labels_of(batch.frame, self.schema)))
        total = 0
        for position in range(len(self.recent_labelled) - 1, -1, -1):
            total += len(self.recent_labelled[position][1])
            if total >= RECENT_LABELLED_ROWS:
                del self.recent_labelled[:position]
                break
        current = self._estimator()
        if current is None:
            return
        proba = np.concatenate([p for p, _ in self.recent_labelled])
        labels = np.concatenate([y for _, y in self.recent_labelled])
        recalibration = current.refit_if_drifted(proba[-RECENT_LABELLED_ROWS:], labels[-RECENT_LABELLED_ROWS:])
        if recalibration.estimator is not current:
            self.recalibrated, self.trust_history = recalibration.estimator, []
            self.say(f"[batch {index}] the estimate is recalibrated: {recalibration.reason}")

    def _champion_estimator(self) -> Estimator | None:
        """The champion's performance estimator, fitted once per champion on its recorded holdout scores; for a
        version without them, on the labelled reference (said once: the model may have been trained on those
        rows, so the estimate may be optimistic); without either, no estimate."""
        assert self.champion is not None
        version = self.champion.version
        if self.estimator_for == version:
            return self.estimator
        self.estimator_for, self.estimator, self.holdout_counts = version, None, None
        calibration = recorded_calibration(self.champion)
        if calibration is not None:
            positives = float(np.sum(calibration[1]))
            self.holdout_counts = (positives, len(calibration[1]) - positives)
            self.estimator = Estimator.fit(*calibration)
            return self.estimator
        reference = self.reference
        if reference is not None and self.schema.target in reference.columns and len(reference):
            from pipeline.io.data import labels_of

            self.estimator = Estimator.fit(self._scorer().proba(reference), labels_of(reference, self.schema))
            self._say_once(
                f"calibration-{version}",
                f"note: v{version} has no recorded holdout scores; performance is estimated with the reference's "
                "labels (rows it may have been trained on: the estimate may be optimistic)",
            )
        else:
            self._say_once(
                f"calibration-{version}",
                f"note: v{version} has no recorded holdout scores and the reference has no labels: "
                "no estimated performance",
            )
        return self.estimator

    def _stored_profile(self, batch: Batch, seen: BatchObservation) -> tuple[str, bytes] | None:
        """The batch's profile as stored next to its metrics: always for a batch read in chunks, for a batch read
        whole only with ``PIPELINE_PROFILE_WHOLE_BATCHES`` (it costs about as much as the drift scores)."""
        profile = seen.profile
        if profile is None and self.settings.profile_whole_batches and seen.proba is not None:
            labels = labels_of(batch.frame, self.schema) if batch.has_labels else None
            estimator = self._estimator()
            calibrated = None if estimator is None else estimator.calibrated(seen.proba)
            profile = self._binned().profile(batch.frame, seen.proba, labels, calibrated)
        return None if profile is None else (profile.binning, profile.to_bytes())

    def _binned(self) -> BinnedReference:
        if self.binned is None:
            self.binned = BinnedReference(self._profile())
        return self.binned

    def _in_chunks(self, source: BatchSource) -> bool:
        """Whether the batch is read in chunks: always with the Spark engine; with the local one, a file over
        ``chunk_mb`` (a batch that fits in memory is read whole, and its scores are exact)."""
        if source.uri is None:
            return False
        if self.engine is not local_engine or is_job_result(source.uri):
            return True
        size = object_size(source.uri, source.s3)
        if source.max_mb is not None and size > source.max_mb * 1024 * 1024:
            raise DataError(
                f"{source.uri}: {size / 1024 / 1024:.1f} MB is over the batch limit of {source.max_mb:g} MB "
                "(--max-batch-mb)"
            )
        return size > self.settings.chunk_mb * 1024 * 1024

    def _observe_in_chunks(
        self, index: int, source: BatchSource, run_key: str
    ) -> tuple[Batch, BatchObservation, set[str]]:
        """Read, score and profile the batch chunk by chunk (the prediction log written as it goes); returns the
        batch as kept (its newest rows), its observation from the merged profile, and the columns with values."""
        assert source.uri is not None and self.champion is not None and self.reference is not None
        work = ChunkWork(
            self.schema,
            self._scorer(),
            self._binned(),
            self._estimator(),
            numeric_categories(self.reference, self.schema),
        )
        if is_job_result(source.uri):  # profiled by a Spark job (pipeline.engine.spark_job): its result is read back
            chunked = read_result(source.uri, source.s3, self._binned().digest)
            return self._observed(index, chunked)
        log = self.prediction_log if self.schema.id is not None else None
        if log is not None and self.engine is not local_engine:
            self._say_once("no-log", "warning: the Spark engine writes no prediction log: late labels cannot join")
            log = None
        with contextlib.ExitStack() as stack:
            sink = None
            if log is not None:
                writer = stack.enter_context(log.batch_writer(self.registry.name, run_key, index))
                version = self.champion.version

                def sink(chunk: Batch, proba: np.ndarray) -> None:
                    writer.add(log_frame(chunk, self.schema, proba, run_key=run_key, index=index, version=version))

            chunked = self.engine(source.uri, source.s3, work, self.settings, sink)
        return self._observed(index, chunked)

    def _observed(self, index: int, chunked: Chunked) -> tuple[Batch, BatchObservation, set[str]]:
        self.say(f"[batch {index}] read in {chunked.chunks} chunks ({chunked.rows} rows, {len(chunked.sample)} kept)")
        band = self._profile().noise.band(chunked.rows)
        seen = observation_of_profile(
            self._binned(), chunked, band, self.rules.false_alarm_rate, estimator=self._estimator()
        )
        sample, profile, scorer = chunked.sample, self._profile(), self._scorer()
        if len(sample):  # the Evidently report of the batch, when asked for, is drawn on the rows kept

            def report() -> Any:
                return profile.sampled_report(sample, scorer.proba(sample))

            seen = dataclasses.replace(seen, drift=dataclasses.replace(seen.drift, build_report=report))
        return chunked.as_batch(), seen, chunked.columns_with_values(self.schema)

    def _log_predictions(self, index: int, batch: Batch, seen: BatchObservation, run_key: str) -> None:
        """Write the batch's prediction log (when the schema names an id column), before its row is committed."""
        if self.prediction_log is None or self.schema.id is None or seen.proba is None:
            return
        assert self.champion is not None
        if self.schema.id not in batch.frame.columns:
            self._say_once(
                f"no-id-{index}",
                f"[batch {index}] warning: no id column {self.schema.id!r}: its predictions are logged without ids "
                "and no late label can be joined to them",
            )
        frame = log_frame(batch, self.schema, seen.proba, run_key=run_key, index=index, version=self.champion.version)
        self.prediction_log.write(frame, self.registry.name, run_key, index)

    # ------------------------------------------------------------ the loop

    def run(
        self,
        reference: Batch,
        sources: Sequence[BatchSource],
        run_key: str,
        *,
        threshold: float | None = None,
        on_batch: Callable[[dict[str, Any]], None] | None = None,
        start: int = 1,
    ) -> MonitorResult:
        """Monitor ``sources`` as batches ``start``, ``start + 1``, ... of run ``run_key``. Batches of the run
        recorded before ``start`` (an inbox's earlier objects) move the policy on from their rows alone."""
        import mlflow

        self.threshold = threshold if threshold is not None else self.settings.drift_threshold
        self.rules = policy.Rules.of(self.settings, self.threshold)
        self.store.create_schema()
        self.store.start_run(run_key, self.registry.name, self.threshold, [s.name for s in sources])
        recorded = self.store.recorded_batches(run_key)
        self.recorded_drifted = self.store.drifted_features_of_run(run_key) if recorded else {}
        self.load_champion()
        self._resume_champion(run_key, recorded)
        self.set_reference(reference.frame)
        self.baseline = reference.frame
        if reference.has_labels:
            self.window.append((0, reference.source, reference.frame))
        result = MonitorResult(run_key=run_key, tracking_uri=self.settings.tracking_uri)
        existing = self.store.run_mlflow_id(run_key)
        with mlflow.start_run(run_id=existing, run_name=None if existing else f"monitor {run_key}") as run:
            result.mlflow_run_id = self.mlflow_run_id = run.info.run_id
            if existing:
                ended = tracking.end_running_children(existing, "KILLED")
                if ended:
                    self.say(
                        f"resuming run {run_key}: {len(ended)} MLflow runs left running by an "
                        "interrupted attempt marked KILLED"
                    )
            else:
                self.store.set_run_mlflow_id(run_key, run.info.run_id)
                mlflow.set_tags({"step": "monitor", "run_key": run_key, "model_name": self.registry.name})
                mlflow.log_params({"threshold": self.threshold, "batches": len(sources), "reference": reference.source})
            for index in sorted(i for i in recorded if i < start):
                self._replay_row(index, recorded[index])
            self._add_late_labels(run_key, recorded, start)
            for index, source in enumerate(sources, start=start):
                record = self._one_batch(index, source, run_key, recorded.get(index), result)
                result.records.append(record)
                if on_batch:
                    on_batch(record)
            try:
                self._log_run_artifacts(result)
            except Exception as err:
                if not tracking.is_tracking_failure(err):
                    raise
                self.failures.append(f"run artifacts not logged to MLflow: {one_line(err)}")
                self.say(f"warning: {self.failures[-1]}")
        result.failures = list(self.failures)
        return result

    def _add_late_labels(self, run_key: str, recorded: dict[int, dict[str, Any]], start: int) -> None:
        """The labelled rows of the run's earlier batches (an inbox's earlier timer runs), labelled in the batch or
        later (``pipeline labels``), join the retraining window, read back from the prediction log: a timer run's
        window holds more than its one new batch."""
        earlier = [i for i in sorted(recorded) if i < start and recorded[i].get("labelled_rows")]
        if not earlier or self.schema.id is None or self.prediction_log is None:
            return
        from pipeline.app.labels import late_labelled_window

        try:
            found = late_labelled_window(
                self.prediction_log,
                self.store,
                self.schema,
                self.registry.name,
                run_key,
                earlier,
                self.settings.window_rows,
            )
        except DataError as err:
            self.say(f"warning: late-labelled rows not added to the retraining window ({err})")
            return
        if found:
            self.window[len(self.window) :] = found
            rows = sum(len(frame) for _i, _n, frame in found)
            self.say(f"{rows} labelled rows of {len(found)} earlier batches of the run join the retraining window")

    def _resume_champion(self, run_key: str, recorded: dict[int, dict[str, Any]]) -> None:
        assert self.champion is not None
        found = recovery.version_to_resume_with(self.champion, run_key, recorded)
        if found is None:
            return
        before, made_at = found
        self.say(
            f"resuming run {run_key}: v{self.champion.version} was promoted at batch {made_at} by an "
            f"interrupted attempt; scoring from there with v{before}, the champion at that batch"
        )
        self._serve(self.registry.version(before))

    def _one_batch(
        self,
        index: int,
        source: BatchSource,
        run_key: str,
        recorded: dict[str, Any] | None,
        result: MonitorResult,
    ) -> dict[str, Any]:
        seen: BatchObservation | None = None
        present: set[str] | None = None
        try:
            if self._in_chunks(source):
                batch, seen, present = self._observe_in_chunks(index, source, run_key)
            else:
                batch = source.load()
            allowed_empty = [] if self.baseline is None else empty_columns(batch, self.baseline, self.schema, present)
        except DataError as err:
            return self._skip(index, source, str(err), result)
        except ModelMismatch as err:
            assert self.champion is not None
            return self._skip(index, source, f"{source.name}: champion v{self.champion.version}: {err}", result)
        new_extra = [name for name in batch.extra_columns if name not in self.reported_extra]
        if new_extra:
            self.reported_extra.update(new_extra)
            self.say(
                f"[batch {index}] ignoring {len(new_extra)} extra columns (said once per run): "
                f"{', '.join(new_extra[:5])}{' ...' if len(new_extra) > 5 else ''}"
            )
        if allowed_empty and recorded is None:
            self.say(
                f"[batch {index}] warning: {len(allowed_empty)} columns entirely empty, allowed as the "
                f"reference has them missing too: {', '.join(allowed_empty[:5])}"
                f"{' ...' if len(allowed_empty) > 5 else ''}"
            )
        if batch.has_labels:
            self.window.append((index, source.name, batch.frame))
        if recorded is not None:
            result.skipped += 1
            self._replay(index, batch, recorded)
            self.say(f"[batch {index}] already recorded in run {run_key}, skipped")
            return outcome.report_record(recorded, self.recorded_drifted.get(index, []))
        try:
            return self._measure_and_decide(index, batch, run_key, seen)
        except ModelMismatch as err:
            assert self.champion is not None
            return self._skip(index, source, f"{batch.source}: champion v{self.champion.version}: {err}", result)
        except PredictionLogError as err:
            return self._skip(index, source, str(err), result)

    def _skip(self, index: int, source: BatchSource, message: str, result: MonitorResult) -> dict[str, Any]:
        """A batch that cannot be monitored: one line, nothing written, the run goes on."""
        result.errors.append(message)
        self.say(f"[batch {index}] skipped, nothing written, the run goes on: {message}")
        return {
            "batch": index,
            "source": source.name,
            "error": message,
            "action": "none",
            "model_name": self.registry.name,
        }

    def _replay(self, index: int, batch: Batch, recorded: dict[str, Any]) -> None:
        """A batch recorded by an earlier attempt of this run: move the policy on as it moved then."""
        if self._replay_row(index, recorded):
            self.set_reference(batch.frame)  # the champion itself was loaded (as of now) when the run started

    def _replay_row(self, index: int, recorded: dict[str, Any]) -> bool:
        """Move the policy on from a recorded row; True when that batch became the reference."""
        action = Action(recorded["action"])
        verdict = policy.Verdict(
            drift_detected=bool(recorded["drift_detected"]),
            performance_drop=bool(recorded["performance_drop"]),
            prior_shift=bool(recorded.get("prior_shift")),
            estimated_drop=bool(recorded.get("estimated_drop")),
            reasons=(),
            retrain=action in (Action.retrained_promoted, Action.retrained_rejected, Action.skipped_busy),
        )
        labelled = int(recorded.get("labelled_rows") or 0) if recorded.get("roc_auc") is not None else 0
        self.state = policy.advance(self.state, index, verdict, action, labelled_rows=labelled)
        return policy.rebaseline(verdict, action)

    def _measure_and_decide(
        self, index: int, batch: Batch, run_key: str, seen: BatchObservation | None = None
    ) -> dict[str, Any]:
        """Judge, act on and record one batch; ``seen`` is its observation when it was read in chunks."""
        import mlflow

        assert self.champion is not None and self.serving is not None
        version = self.champion.version
        if seen is None:
            seen = observe(batch, self._scorer(), self._profile(), self._estimator(), self.rules.false_alarm_rate)
            self._log_predictions(index, batch, seen, run_key)
        # what the monitor would have said of its estimate before this batch's labels: from earlier batches only
        seen = dataclasses.replace(seen, estimate_trusted=estimate_trusted(self.trust_history))
        self._learn_from_labels(index, batch, seen)
        drift = seen.drift
        verdict = policy.judge(
            index,
            seen.observation,
            self.state,
            self.rules,
            self.serving.holdout_roc_auc,
            self.holdout_counts,
            trained_rows(self.champion),
        )
        if verdict.alarm:
            self.latest_alarm = (index, drift)
        events: list[Event] = []
        action, failed = verdict.action_without_retrain(), False
        if verdict.alarm:
            events.append(outcome.alarm_event(run_key, self.registry.name, index, version, seen, verdict))
        if verdict.retrain:
            action, more, failed = self._retrain(index, batch, run_key, verdict)
            events.extend(more)
        elif verdict.alarm:
            self.say(f"[batch {index}] alarm ({verdict.why}); cooldown from batch {verdict.cooldown_from}, no retrain")
        labelled = batch.rows if batch.has_labels else 0
        self.state = policy.advance(self.state, index, verdict, action, failed=failed, labelled_rows=labelled)
        if action is not Action.retrained_promoted and policy.rebaseline(verdict, action, failed=failed):
            self.say(f"[batch {index}] the champion copes with the new inputs: this batch is the new reference")
            self._rebase(index, batch.frame)
        band = self._profile().noise.band(batch.rows)
        row = outcome.batch_row(
            run_key,
            index,
            self.registry.name,
            version,
            batch,
            seen,
            verdict,
            action,
            self.threshold,
            band_edge=band.prediction_edge(self.rules.false_alarm_rate),
        )
        features = outcome.feature_scores(seen)
        self.store.record_batch(row, events, features, self._stored_profile(batch, seen))
        metrics = {
            "prediction_drift": drift.prediction_drift,
            "drifted_columns": drift.drifted_columns,
            "share_missing": drift.share_missing,
            "mean_prediction": seen.mean_prediction,
            "alarm": float(verdict.alarm),
        }
        if seen.roc_auc is not None:
            metrics["roc_auc"] = seen.roc_auc
        if seen.positive_rate is not None:
            metrics["positive_rate"] = seen.positive_rate
        if seen.estimated_roc_auc is not None:
            metrics["estimated_roc_auc"] = seen.estimated_roc_auc
        try:
            mlflow.log_metrics(metrics, step=index)
        except Exception as err:
            if not tracking.is_tracking_failure(err):
                raise
            self.say(
                f"[batch {index}] warning: metrics not mirrored to MLflow "
                f"({one_line(err, 120)}); Postgres has them"
            )
        flag = "ALARM" if verdict.alarm else "ok   "
        auc_text = f" auc={seen.roc_auc:.3f}" if seen.roc_auc is not None else ""
        if seen.estimated_roc_auc is not None:
            auc_text += f" est_auc={seen.estimated_roc_auc:.3f}"
        self.say(
            f"[batch {index}] {flag} v{version} rows={batch.rows} pred_drift={drift.prediction_drift:.3f} "
            f"drifted_cols={drift.drifted_columns}{auc_text} -> {action.value}"
        )
        return outcome.report_record(row, [name for name, _score in drift.drifted_features()])

    def _window_frame(self, index: int, verdict: policy.Verdict) -> tuple[pd.DataFrame, list[str]]:
        """The rows the policy chose to retrain on, oldest first, and the sources they came from."""
        chosen = policy.training_rows(
            [(position, len(frame)) for position, _name, frame in self.window], index, self.state, verdict, self.rules
        )
        frames = [
            frame.iloc[len(frame) - chosen[position] :] for position, _name, frame in self.window if position in chosen
        ]
        names = [name for position, name, _frame in self.window if position in chosen]
        return pd.concat(frames, ignore_index=True), names

    def _retrain(
        self, index: int, batch: Batch, run_key: str, verdict: policy.Verdict
    ) -> tuple[Action, list[Event], bool]:
        """Retrain now. Returns the action, its events, and whether the retrain failed (rather than lost)."""
        why = verdict.why
        what = "alarm" if verdict.alarm else "refresh due"
        with self.store.retrain_lock(self.registry.name) as held:
            if not held:
                self.say(
                    f"[batch {index}] {what} ({why}); another monitor is retraining "
                    f"{self.registry.name}: skipped-busy, no retrain for "
                    f"{self.settings.cooldown_batches} batches, monitoring goes on"
                )
                return Action.skipped_busy, [], False
            origin = {"monitor_run_key": run_key, "monitor_batch": str(index)}
            done = self.registry.find_version(origin)
            if done is not None:
                return (*self._finish(index, batch, run_key, done), False)
            window, names = self._window_frame(index, verdict)
            self.say(
                f"[batch {index}] {what} ({why}); retraining on {len(window)} rows "
                f"({len(names)} sources, newest held out)"
            )
            try:
                outcome: RetrainOutcome = retrain(
                    window,
                    WindowInfo(len(window), names, f"batch {index}: {why}"),
                    settings=self.settings,
                    schema=self.schema,
                    registry=self.registry,
                    champion_model=self._scorer(),
                    say=self.say,
                    origin=origin,
                )
            except Exception as err:
                if not tracking.is_tracking_failure(err):
                    raise
                return self._retrain_failed(index, batch, run_key, err, origin)
        assert self.champion is not None
        events = retrain_events(run_key, self.registry.name, index, self.champion.version, outcome, names)
        if outcome.promoted:
            self.say(
                f"[batch {index}] PROMOTED v{outcome.version} (was v{self.champion.version}): {outcome.decision.reason}"
            )
            self.load_champion()
            self._rebase(index, batch.frame)
            return Action.retrained_promoted, events, False
        self.say(f"[batch {index}] REJECTED v{outcome.version}: {outcome.decision.reason}")
        return Action.retrained_rejected, events, False

    def _finish(self, index: int, batch: Batch, run_key: str, done: VersionInfo) -> tuple[Action, list[Event]]:
        """A version this run already made for this batch (before a crash): finish its story, no retrain."""
        assert self.champion is not None
        action, events = recovery.finish_interrupted(
            self.registry, done, self.champion.version, index, run_key, self.say
        )
        if action is Action.retrained_promoted:
            self.load_champion()
            self._rebase(index, batch.frame)
        return action, events

    def _retrain_failed(
        self, index: int, batch: Batch, run_key: str, err: BaseException, origin: dict[str, str]
    ) -> tuple[Action, list[Event], bool]:
        """The tracking side failed mid-retrain: settle it, then record a rejection (the champion is unchanged),
        unless the version was registered after all (finish its story)."""
        assert self.champion is not None
        line = recovery.settle_failed_retrain(
            err, index, self.settings.tracking_uri, self.mlflow_run_id, self.tracking_wait, self.say
        )
        done = self.registry.find_version(origin)
        if done is not None:
            return (*self._finish(index, batch, run_key, done), False)
        message = f"retrain failed, champion v{self.champion.version} unchanged: {line}"
        self.failures.append(f"batch {index}: {message}")
        event = Event(
            run_key,
            self.registry.name,
            "rejection",
            message,
            index,
            None,
            self.champion.version,
            {"error": line, "failed": True},
        )
        return Action.retrained_rejected, [event], True

    def _log_run_artifacts(self, result: MonitorResult) -> None:
        """What the run logs to its MLflow run besides metrics: the batch records and the drift timeline's data
        (JSON) always; the pictures only when a batch of this run alarmed: the drift timeline PNG and the
        Evidently HTML of the latest alarmed batch against its reference, each side sampled to at most
        ``pipeline.stats.drift.HTML_SAMPLE_ROWS`` rows. A run without alarm draws nothing (``pipeline report`` draws
        both for any recorded run and batch)."""
        import mlflow

        from pipeline.app.report import plot_drift_timeline, timeline_data

        with tempfile.TemporaryDirectory() as tmp:
            records = Path(tmp) / "batches.json"
            records.write_text(json.dumps(result.records, indent=2, default=_json_default))
            mlflow.log_artifact(str(records))
            reports = Path(tmp) / "reports"
            reports.mkdir()
            if self.latest_alarm is not None and self.latest_alarm[1].build_report is not None:
                index, drift = self.latest_alarm
                drift.save_html(str(reports / f"evidently_batch_{index:03d}.html"))
            batches = self.store.batches_of_run(result.run_key)
            if batches:
                events = self.store.events_of_run(result.run_key)
                if result.alarms:
                    plotted = plot_drift_timeline(batches, events, self.threshold, reports / "drift_timeline.png")
                else:
                    plotted = timeline_data(batches, events, self.threshold)
                (reports / "drift_timeline.json").write_text(json.dumps(plotted, default=_json_default))
            mlflow.log_artifacts(str(reports), "reports")


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


def write_report_json(records: list[dict[str, Any]], path: Path) -> None:
    """The public per-batch record (see README: "The --report-json record"), atomically written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(records, indent=2, default=_json_default))
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
