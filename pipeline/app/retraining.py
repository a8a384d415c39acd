"""Retraining with recovery, as the monitor runs it after an alarm or a due refresh: one retrain at a time per
model (a lock in the metrics store), a version an interrupted attempt already registered finished instead of
trained again, and a retrain the tracking side broke settled and recorded as a failed rejection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline.app import recovery
from pipeline.app.champion import ChampionCache
from pipeline.app.outcome import retrain_events
from pipeline.domain import policy
from pipeline.domain.policy_types import Action, PolicyState, Rules, Verdict
from pipeline.domain.records import Event
from pipeline.domain.retrain_mode import RetrainMode
from pipeline.io.data import Batch
from pipeline.io.store import MetricsStore
from pipeline.model import tracking
from pipeline.model.registry import VersionInfo
from pipeline.model.retrain import RetrainOutcome, WindowInfo, retrain

TRACKING_WAIT_SECONDS = 300.0
Window = list[tuple[int, str, pd.DataFrame]]  # (batch index, 0 = the reference; source; labelled rows)
RetrainFn = Callable[..., RetrainOutcome]


@dataclass(frozen=True)
class Retrained:
    action: Action
    events: list[Event] = field(default_factory=list)
    failed: bool = False  # the retrain failed (the tracking side broke), rather than lost


def training_window(
    window: Sequence[tuple[int, str, pd.DataFrame]],
    index: int,
    state: PolicyState,
    verdict: Verdict,
    rules: Rules,
) -> tuple[pd.DataFrame, list[str]]:
    """The rows the policy chose to retrain on (``policy.training_rows``), oldest first, and their sources."""
    chosen = policy.training_rows(
        [(position, len(frame)) for position, _n, frame in window], index, state, verdict, rules
    )
    frames = [frame.iloc[len(frame) - chosen[position] :] for position, _n, frame in window if position in chosen]
    names = [name for position, name, _frame in window if position in chosen]
    return pd.concat(frames, ignore_index=True), names


class Retrainer:
    """Retrains the champion of ``cache``; on promotion it serves the new champion and the batch becomes the
    reference. ``retrain_fn`` is the retrain cycle (``pipeline.model.retrain.retrain``; a test passes its own)."""

    def __init__(
        self,
        cache: ChampionCache,
        store: MetricsStore,
        *,
        tracking_wait: float = TRACKING_WAIT_SECONDS,
        retrain_fn: RetrainFn = retrain,
        mode: RetrainMode = RetrainMode.auto,
    ) -> None:
        self.cache = cache
        self.store = store
        self.registry = cache.registry
        self.settings = cache.settings
        self.say = cache.say
        self.tracking_wait = tracking_wait
        self.retrain_fn = retrain_fn
        self.mlflow_run_id: str | None = None  # the monitor's run, whose children a failed retrain settles
        self.failures: list[str] = []
        self.mode = mode  # the model's retraining mode (``pipeline.domain.retrain_mode``)

    def __call__(
        self,
        index: int,
        batch: Batch,
        run_key: str,
        verdict: Verdict,
        rows: Callable[[], tuple[pd.DataFrame, list[str]]],
    ) -> Retrained:
        """Retrain now on the rows ``rows()`` gives (the window and its sources), once the lock is held."""
        what = "alarm" if verdict.alarm else "refresh due"
        if self.mode is RetrainMode.off:
            self.say(f"[batch {index}] {what} ({verdict.why}); retraining mode off: alarm only, nothing is trained")
            return Retrained(Action.none)
        with self.store.retrain_lock(self.registry.name) as held:
            if not held:
                self.say(
                    f"[batch {index}] {what} ({verdict.why}); another monitor is retraining "
                    f"{self.registry.name}: skipped-busy, no retrain for "
                    f"{self.settings.cooldown_batches} batches, monitoring goes on"
                )
                return Retrained(Action.skipped_busy)
            origin = {"monitor_run_key": run_key, "monitor_batch": str(index), "monitor_source": batch.source}
            done = self.registry.find_version(origin)
            if done is not None:
                return self._finish(index, batch, run_key, done)
            window, names = rows()
            self.say(
                f"[batch {index}] {what} ({verdict.why}); retraining on {len(window)} rows "
                f"({len(names)} sources, newest held out)"
            )
            try:
                made = self.retrain_fn(
                    window,
                    WindowInfo(len(window), names, f"batch {index}: {verdict.why}"),
                    training=self.settings.training,
                    schema=self.cache.schema,
                    registry=self.registry,
                    champion_model=self.cache.scorer,
                    say=self.say,
                    origin=origin,
                    promote=self.mode is RetrainMode.auto,
                )
            except Exception as err:
                if not tracking.is_tracking_failure(err):
                    raise
                return self._failed(index, batch, run_key, err, origin)
        return self._decided(index, batch, run_key, made, names)

    def _decided(self, index: int, batch: Batch, run_key: str, made: RetrainOutcome, names: list[str]) -> Retrained:
        was = self.cache.version
        events = retrain_events(run_key, self.registry.name, index, was, made, names)
        if made.promoted:
            self.say(f"[batch {index}] PROMOTED v{made.version} (was v{was}): {made.decision.reason}")
            self.cache.load()
            self.cache.rebase(index, batch.frame, fitted=batch.has_labels)  # its labelled rows were in the window
            return Retrained(Action.retrained_promoted, events)
        if made.held:
            self.say(
                f"[batch {index}] CHALLENGER v{made.version} (champion stays v{was}; retraining mode challenger): "
                f"{made.decision.reason}; `pipeline promote --version {made.version}` serves it"
            )
            return Retrained(Action.retrained_challenger, events)
        self.say(f"[batch {index}] REJECTED v{made.version}: {made.decision.reason}")
        return Retrained(Action.retrained_rejected, events)

    def _finish(self, index: int, batch: Batch, run_key: str, done: VersionInfo) -> Retrained:
        """A version this run already made for this batch (before a crash): finish its story, no retrain."""
        action, events = recovery.finish_interrupted(self.registry, done, self.cache.version, index, run_key, self.say)
        if action is Action.retrained_promoted:
            self.cache.load()
            self.cache.rebase(index, batch.frame, fitted=batch.has_labels)
        return Retrained(action, events)

    def _failed(self, index: int, batch: Batch, run_key: str, err: BaseException, origin: dict[str, Any]) -> Retrained:
        """The tracking side failed mid-retrain: settle it, then record a rejection (the champion is unchanged),
        unless the version was registered after all (finish its story)."""
        line = recovery.settle_failed_retrain(
            err, index, self.settings.tracking_uri, self.mlflow_run_id, self.tracking_wait, self.say
        )
        done = self.registry.find_version(origin)
        if done is not None:
            return self._finish(index, batch, run_key, done)
        champion = self.cache.version
        message = f"retrain failed, champion v{champion} unchanged: {line}"
        self.failures.append(f"batch {index}: {message}")
        event = Event(
            run_key, self.registry.name, "rejection", message, index, None, champion, {"error": line, "failed": True}
        )
        return Retrained(Action.retrained_rejected, [event], failed=True)
