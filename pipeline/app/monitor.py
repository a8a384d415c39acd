"""The monitoring loop: score each batch with the champion, measure drift, decide, retrain when needed.

Data flows one way per batch: load -> validate -> observe (score, drift, quality: ``pipeline.engine.observe``) ->
judge (``pipeline.domain.policy``: alarms, cooldown, which rows to retrain on) -> act (retrain with recovery:
``pipeline.app.retraining``) -> record (Postgres in one transaction, keyed by (run key, batch index); MLflow as a
mirror: ``pipeline.app.mirror``). A run goes on from the batches its key recorded before (an earlier attempt, an
inbox's or a schedule's earlier runs; ``pipeline.app.earlier_batches``); a source is known by its identity
(``pipeline.domain.batch_keys``). The champion and what is derived from it: ``pipeline.app.champion``; reading a
batch whole or in chunks: ``pipeline.app.reading``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.app import earlier_batches, mirror, multivariate_check, outcome, recovery, segment_check, why_moved
from pipeline.app.champion import ChampionCache, LoadVersion, trained_rows
from pipeline.app.monitor_result import MonitorResult
from pipeline.app.notify import Links, Notifier
from pipeline.app.reading import BatchReader, say_columns
from pipeline.app.refusals import Refusals, Stopped
from pipeline.app.retraining import TRACKING_WAIT_SECONDS, Retrained, Retrainer, RetrainFn, Window, training_window
from pipeline.app.run_notices import RunNotices
from pipeline.app.sources import BatchSource
from pipeline.domain import policy
from pipeline.domain.batch_keys import number_batches, processing_order
from pipeline.domain.policy_types import Action, PolicyState, Rules, Verdict
from pipeline.domain.records import Event
from pipeline.domain.retrain_mode import RetrainMode, resolve_mode
from pipeline.domain.schema import FeatureSchema
from pipeline.domain.values import one_line
from pipeline.engine.local import Engine, local_engine
from pipeline.engine.observe import BatchObservation, observe
from pipeline.io.data import Batch, empty_columns, labelled_frame
from pipeline.io.inbox import uri_of
from pipeline.io.predictions import PredictionLog
from pipeline.io.store import MetricsStore
from pipeline.model import tracking
from pipeline.model.registry import Registry
from pipeline.model.retrain import retrain
from pipeline.model.scoring import ModelMismatch
from pipeline.model.serving import load_version
from pipeline.settings import Settings
from pipeline.stats.drift import DriftResult
from pipeline.stats.estimate import estimate_trusted

Say = Callable[[str], None]


class Monitor:
    """One monitor run over a model's batches: the loop, over its collaborators (store, registry, the champion
    cache, the batch reader, the retrainer, the notifier)."""

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
        *,
        load: LoadVersion = load_version,
        retrain_fn: RetrainFn = retrain,
        notifier: Notifier | None = None,
        mode: tuple[RetrainMode, str] | None = None,
    ) -> None:
        """``load`` (a registered version made ready to score) and ``retrain_fn`` (the retrain cycle) are the
        model layer's own unless a test passes fakes; ``notifier`` hears of the incidents (``pipeline.domain.
        incidents``), none when no sink is configured. ``mode`` is the model's retraining mode and where it came
        from (``pipeline.domain.model_policy.resolve_policy``); without it, the setting ``PIPELINE_RETRAIN``'s."""
        self.settings = settings
        self.schema = schema
        self.store = store
        self.registry = registry
        self.say = say
        self.threshold = settings.drift_threshold
        self.rules = Rules.of(settings.policy)
        self.state = PolicyState()
        self.cache = ChampionCache(settings, schema, registry, say, load=load)
        self.reader = BatchReader(
            settings,
            self.cache,
            engine=engine,
            prediction_log=prediction_log,
            false_alarm_rate=self.rules.false_alarm_rate,
        )
        self.mode = mode
        self.retrainer = Retrainer(
            self.cache,
            store,
            tracking_wait=tracking_wait,
            retrain_fn=retrain_fn,
            mode=mode[0] if mode is not None else RetrainMode.auto,
        )
        self.window: Window = []
        self.baseline: Batch | None = None  # the run's first reference: which columns may be entirely empty
        self.latest_alarm: tuple[int, DriftResult] | None = None  # the run's latest alarmed batch, for its HTML
        self.reported_extra: set[str] = set()
        self.recorded_drifted: dict[int, list[str]] = {}
        self.rebased: set[int] = set()  # recorded batches that became the reference when they were monitored
        self.notices = RunNotices(notifier, Links.of(settings.notify, registry.name), registry.name, say)
        self.refusals = Refusals(store, registry.name, self.notices, say)
        self.why = why_moved.WhyMoved(self.cache, store, say)  # an alarmed batch's drift attribution
        self.segments = segment_check.SegmentWatch(self.cache, store, say)  # the schema's segments, one by one

    def run(
        self,
        reference: Batch,
        sources: Sequence[BatchSource],
        run_key: str,
        *,
        threshold: float | None = None,
        on_batch: Callable[[dict[str, Any]], None] | None = None,
        reference_fitted: bool = True,
    ) -> MonitorResult:
        """Monitor ``sources`` as the next batches of run ``run_key``. The batches the run recorded before (an
        earlier attempt's, an inbox's or a schedule's earlier runs) move the policy on from their rows alone; a
        source among them is skipped. ``reference_fitted``: the champion may have been fitted on the reference's
        rows (``ChampionCache``)."""
        import mlflow

        self.threshold = self.cache.threshold = threshold if threshold is not None else self.settings.drift_threshold
        self.rules = Rules.of(self.settings.policy, self.threshold)
        recorded = self._start(reference, sources, run_key, reference_fitted)
        result = MonitorResult(run_key=run_key, tracking_uri=self.settings.tracking_uri)
        existing = self.store.run_mlflow_id(run_key)
        with mlflow.start_run(run_id=existing, run_name=None if existing else f"monitor {run_key}") as run:
            result.mlflow_run_id = self.retrainer.mlflow_run_id = run.info.run_id
            self.notices.in_run(run.info.experiment_id, run.info.run_id)
            mirror.open_monitor_run(
                self.store,
                run_key,
                existing,
                run.info.run_id,
                self.registry.name,
                self.say,
                {"threshold": self.threshold, "batches": len(sources), "reference": reference.source},
            )
            self._replay(run_key, recorded)
            stopped = self._each_batch(sources, run_key, recorded, result, on_batch)
            self._mirror_run(result)
        result.failures = [*self.retrainer.failures, *stopped]
        result.notified, result.notify_failures = self.notices.notified, list(self.notices.failures)
        return result

    # ------------------------------------------------------------ the run's start and end

    def _start(
        self, reference: Batch, sources: Sequence[BatchSource], run_key: str, fitted: bool = True
    ) -> dict[int, dict[str, Any]]:
        """Record the run, serve the champion of the time, set the reference; the run's recorded batches."""
        self.store.create_schema()
        self.store.start_run(run_key, self.registry.name, self.threshold, [s.name for s in sources])
        recorded = self.store.recorded_batches(run_key)
        self.recorded_drifted = self.store.drifted_features_of_run(run_key) if recorded else {}
        self.cache.load()
        if self.mode is None:  # no model's own mode given: the setting's
            self.retrainer.mode, source = resolve_mode({}, self.settings.retrain)
        else:
            source = self.mode[1]
        self.say(f"{self.registry.name}: retraining mode {self.retrainer.mode.value} ({source})")
        recovery.resume_champion(self.cache, run_key, recorded, self.say)
        self.cache.set_reference(reference.frame, fitted=fitted)
        self.baseline = reference
        if reference.has_labels:
            self.window.append((0, reference.source, labelled_frame(reference, self.schema)))
        return recorded

    def _replay(self, run_key: str, recorded: dict[int, dict[str, Any]]) -> None:
        """The policy moved on from the run's recorded rows; their labelled rows join the retraining window."""
        segments = self.store.segment_alarms_of_run(run_key) if self.schema.segments else {}
        for index in sorted(recorded):
            self.state, rebased = earlier_batches.replay_row(self.state, index, recorded[index])
            self.notices.replayed(index, recorded[index], segments.get(index))
            if rebased:
                self.rebased.add(index)
        self.window.extend(
            earlier_batches.late_labelled(
                self.reader,
                self.store,
                self.schema,
                self.registry.name,
                run_key,
                recorded,
                self.settings.window_rows,
                self.say,
            )
        )

    def _mirror_run(self, result: MonitorResult) -> None:
        try:
            mirror.log_run_artifacts(result.records, result.run_key, self.store, self.threshold, self.latest_alarm)
        except Exception as err:
            if not tracking.is_tracking_failure(err):
                raise
            self.retrainer.failures.append(f"run artifacts not logged to MLflow: {one_line(err)}")
            self.say(f"warning: {self.retrainer.failures[-1]}")
            self.notices.run_failed(f"monitor run {result.run_key}: {self.retrainer.failures[-1]}", result.run_key)

    def _each_batch(
        self,
        sources: Sequence[BatchSource],
        run_key: str,
        recorded: dict[int, dict[str, Any]],
        result: MonitorResult,
        on_batch: Callable[[dict[str, Any]], None] | None,
    ) -> list[str]:
        """Each batch in turn (an interrupted attempt's first), its record added to ``result`` and given to
        ``on_batch``: a recorded source skipped, a new one monitored. Stops at an inbox file that could not be
        fetched, and returns that failure of the run (none otherwise)."""
        placed = number_batches(
            [s.name for s in sources],
            {i: str(row["source"]) for i, row in recorded.items()},
            recovery.interrupted_batches(self.registry, run_key, recorded),
        )
        for position in processing_order(placed):
            place, source = placed[position], sources[position]
            if place.index is None:
                self.say(f"{uri_of(source.name)}: given twice in this run, read once")
                continue
            index = place.index
            try:
                if place.recorded:
                    record = self._skip_recorded(index, source, run_key, recorded[index], result)
                else:
                    record = self._one_batch(index, source, run_key, result)
            except Stopped as stop:
                self.say(f"[batch {index}] not read, the run stops here: {stop.message}")
                record = self.refusals.error_record(index, source, stop.message)
                stopped = [f"{stop.message}; nothing recorded for it, the next run reads it again"]
            else:
                stopped = []
            result.records.append(record)
            if on_batch:
                on_batch(record)
            if stopped:
                return stopped
        return []

    # ------------------------------------------------------------ one batch

    def _skip_recorded(
        self, index: int, source: BatchSource, run_key: str, recorded: dict[str, Any], result: MonitorResult
    ) -> dict[str, Any]:
        """A source the run recorded before (the policy moved on from its row at the start): said in one line,
        its record as recorded (``earlier_batches.revisit``)."""
        result.skipped += 1
        self.say(f"[batch {index}] {uri_of(source.name)}: already recorded in run {run_key}, skipped")
        earlier_batches.revisit(
            index,
            source,
            recorded,
            rebased=index in self.rebased,
            window=self.window,
            cache=self.cache,
            reader=self.reader,
            say=self.say,
        )
        return outcome.report_record(recorded, self.recorded_drifted.get(index, []))

    def _one_batch(self, index: int, source: BatchSource, run_key: str, result: MonitorResult) -> dict[str, Any]:
        """Read, validate, observe (score, drift, quality), judge, act on and record one batch. A failure while
        reading, validating or scoring it is refused (``pipeline.app.refusals``)."""
        seen: BatchObservation | None = None
        present: set[str] | None = None
        try:
            if self.reader.in_chunks(source):
                batch, seen, present = self.reader.observe_in_chunks(index, source, run_key)
            else:
                batch = source.load()
            allowed_empty = (
                [] if self.baseline is None else empty_columns(batch, self.baseline.frame, self.schema, present)
            )
        except Exception as err:  # noqa: BLE001 - any failure of one batch's reading is judged by _refuse
            return self._refuse(index, source, run_key, err, result)
        say_columns(self.say, index, batch, self.schema, allowed_empty, self.reported_extra)
        try:
            seen = self._observe(index, batch, run_key, seen)
        except Exception as err:  # noqa: BLE001 - scoring the batch failed: judged by _refuse
            return self._refuse(index, source, run_key, err, result)
        if batch.has_labels:
            self.window.append((index, source.name, labelled_frame(batch, self.schema)))
        try:
            return self._decide(index, batch, run_key, seen)
        except ModelMismatch as err:  # the champion could not score the rows a retrain compares on
            return self._refuse(index, source, run_key, err, result)

    def _refuse(
        self, index: int, source: BatchSource, run_key: str, err: Exception, result: MonitorResult
    ) -> dict[str, Any]:
        version = self.cache.version if self.cache.current is not None else None
        return self.refusals.refuse(index, source, run_key, err, result, version)

    def _decide(self, index: int, batch: Batch, run_key: str, seen: BatchObservation) -> dict[str, Any]:
        """Judge, act on and record one observed batch."""
        version = self.cache.version
        verdict = self._judge(index, seen)
        events: list[Event] = []
        if verdict.alarm:
            self.latest_alarm = (index, seen.drift)
            alarm = outcome.alarm_event(run_key, self.registry.name, index, version, seen, verdict)
            events.append(self.why.alarm_event(alarm, batch, seen))
        acted = self._act(index, batch, run_key, verdict)
        events.extend(acted.events)
        row = self._record(index, batch, run_key, version, seen, verdict, acted.action, events)
        self.notices.batch(row, verdict.reasons, seen.drift, events, acted.failed)
        mirror.log_batch_metrics(index, seen, verdict, self.say)
        self.say(outcome.batch_line(index, version, batch.rows, seen, verdict, acted.action))
        record = outcome.report_record(row, [name for name, _score in seen.drift.drifted_features()])
        record = self.why.recorded(run_key, index, record)
        record, segments = self.segments.recorded(run_key, index, batch, seen, self.rules, record)
        self.notices.segments(row, segment_check.alarmed_segments(segments))
        return record

    def _observe(self, index: int, batch: Batch, run_key: str, seen: BatchObservation | None) -> BatchObservation:
        """The batch observed (once read whole; as read in chunks otherwise), its estimate's trust as the monitor
        would have said it before this batch's labels (earlier batches only), then the labels learned from."""
        cache = self.cache
        if seen is None:
            seen = observe(batch, cache.scorer, cache.profile(), cache.estimator(), self.rules.false_alarm_rate)
            seen = multivariate_check.measured(cache, batch.frame, index, seen)
            self.reader.log_predictions(index, batch, seen, run_key)
        seen = dataclasses.replace(seen, estimate_trusted=estimate_trusted(cache.trust_history))
        cache.learn_from_labels(index, batch, seen)
        return seen

    def _judge(self, index: int, seen: BatchObservation) -> Verdict:
        cache = self.cache
        assert cache.serving is not None
        return policy.judge(
            index,
            seen.observation,
            self.state,
            self.rules,
            cache.serving.holdout_roc_auc,
            cache.holdout_counts,
            trained_rows(cache.current),
        )

    def _act(self, index: int, batch: Batch, run_key: str, verdict: Verdict) -> Retrained:
        """Retrain when the verdict says so; move the policy on; rebaseline when the champion copes."""
        acted = Retrained(verdict.action_without_retrain())
        if verdict.retrain:
            state, rules = self.state, self.rules
            acted = self.retrainer(
                index, batch, run_key, verdict, lambda: training_window(self.window, index, state, verdict, rules)
            )
        elif verdict.alarm:
            self.say(f"[batch {index}] alarm ({verdict.why}); cooldown from batch {verdict.cooldown_from}, no retrain")
        labelled = batch.labelled_rows
        before = self.state
        self.state = policy.advance(
            self.state, index, verdict, acted.action, failed=acted.failed, labelled_rows=labelled
        )
        if acted.action is not Action.retrained_promoted and policy.rebaseline(before, index, acted.action):
            self.say(
                f"[batch {index}] the champion coped with the inputs that alarmed at batch {before.follow_at}: "
                "this batch, the next sample of them, is the new reference"
            )
            self.cache.rebase(index, batch.frame, fitted=False)
        return acted

    def _record(
        self,
        index: int,
        batch: Batch,
        run_key: str,
        version: int,
        seen: BatchObservation,
        verdict: Verdict,
        action: Action,
        events: list[Event],
    ) -> Any:
        """The batch's row, feature scores, events and profile, in one transaction."""
        band = self.cache.profile().noise.band(batch.rows)
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
            false_alarm_rate=self.rules.false_alarm_rate,
        )
        self.store.record_batch(row, events, outcome.feature_scores(seen), self.reader.stored_profile(batch, seen))
        return row
