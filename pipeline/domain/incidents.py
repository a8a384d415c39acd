"""Incidents, not spam: which batches a person hears about. Pure: one step per batch, from what the monitor saw
and did with it to the notices it sends and the incident state it carries to the next batch.

A persisting condition is one incident. An alarm incident opens at the first alarmed batch and is notified then;
alarmed batches after it are the same incident (a cause that joins it is notified once, as the incident growing),
until its action succeeds (a promotion closes it) or the batches stop alarming (it clears, notified). Each action
taken on an alarm is notified: a promotion, a challenger held for a person, a rejected challenger, a failed
retrain. Batches that could not be monitored are an incident of their own: the first refused batch is notified,
the next refused ones are not, and the first batch monitored again clears it.

Segment alarms (a schema's ``segments``, ``pipeline.stats.segments``) are an incident of their own, since they do
not alarm the batch: it opens at the first batch with an alarmed segment, grows when a segment not yet in it
alarms, and clears at the first measured batch with none. A batch whose segments were not measured changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pipeline.domain.policy_types import Action
from pipeline.domain.records import VERDICT_COLUMNS


class Notice(StrEnum):
    """What a notification tells (its ``kind``)."""

    alarm = "alarm"  # an alarm incident opened
    alarm_grew = "alarm-grew"  # a new cause joined the open alarm incident
    cleared = "cleared"  # the alarm incident's batches stopped alarming
    promotion = "promotion"
    challenger = "challenger"  # a winner held for a person (retraining mode challenger)
    rejection = "rejection"  # the alarm's challenger lost; the champion stays
    retrain_failed = "retrain-failed"
    batch_refused = "batch-refused"  # a batch could not be monitored (nothing was written for it)
    monitoring_resumed = "monitoring-resumed"  # the first batch monitored after refused ones
    rollback = "rollback"  # by hand: `pipeline rollback`
    run_failed = "run-failed"
    message = "message"  # `pipeline notify`
    segment_alarm = "segment-alarm"  # a segment incident opened
    segment_alarm_grew = "segment-alarm-grew"  # a segment not yet in the open segment incident alarmed
    segment_cleared = "segment-cleared"  # a measured batch with no alarmed segment closed it


@dataclass(frozen=True)
class BatchFacts:
    """What the rule reads of one batch: its alarm causes (``VERDICT_COLUMNS`` that were true), the action, whether
    a retrain failed, whether the batch was refused (could not be monitored: no causes, no action)."""

    index: int
    causes: frozenset[str] = frozenset()
    action: Action = Action.none
    failed: bool = False
    refused: bool = False

    @classmethod
    def of_row(cls, index: int, row: Mapping[str, Any], failed: bool = False) -> BatchFacts:
        """The facts of a recorded batch row (or a ``BatchRow`` as a dict)."""
        causes = frozenset(name for name in VERDICT_COLUMNS if row.get(name))
        return cls(index, causes, Action(str(row["action"])), failed)


@dataclass(frozen=True)
class Incidents:
    """The open incidents: the alarm one (since which batch, its causes so far), the refused batches' and the
    segments' (since which batch, the segments, ``column=value``, that alarmed in it so far)."""

    opened_at: int | None = None
    causes: frozenset[str] = frozenset()
    refused_since: int | None = None
    refused: int = 0  # batches refused since ``refused_since``
    segments_since: int | None = None
    segments: frozenset[str] = frozenset()

    @property
    def alarm_open(self) -> bool:
        return self.opened_at is not None

    @property
    def segments_open(self) -> bool:
        return self.segments_since is not None


def step(state: Incidents, batch: BatchFacts) -> tuple[Incidents, tuple[Notice, ...]]:
    """The incident state after ``batch`` and the notices it sends, in the order they happened."""
    if batch.refused:
        if state.refused_since is not None:
            return replace(state, refused=state.refused + 1), ()
        return replace(state, refused_since=batch.index, refused=1), (Notice.batch_refused,)
    notices: list[Notice] = []
    if state.refused_since is not None:
        notices.append(Notice.monitoring_resumed)
        state = replace(state, refused_since=None, refused=0)
    if batch.causes:
        if not state.alarm_open:
            notices.append(Notice.alarm)
            state = replace(state, opened_at=batch.index, causes=batch.causes)
        elif not batch.causes <= state.causes:
            notices.append(Notice.alarm_grew)
            state = replace(state, causes=state.causes | batch.causes)
    closed = replace(state, opened_at=None, causes=frozenset())
    if batch.failed:
        notices.append(Notice.retrain_failed)
    elif batch.action is Action.retrained_promoted:
        return closed, (*notices, Notice.promotion)  # the champion changed: the alarm incident is over
    elif batch.action is Action.retrained_challenger:
        notices.append(Notice.challenger)
    elif batch.action is Action.retrained_rejected and batch.causes:
        notices.append(Notice.rejection)  # a refresh's rejection (no alarm) changes nothing a person must know
    if not batch.causes and state.alarm_open:
        return closed, (*notices, Notice.cleared)
    return state, tuple(notices)


def segment_step(
    state: Incidents, index: int, alarmed: frozenset[str] | None
) -> tuple[Incidents, tuple[Notice, ...]]:
    """The incident state after batch ``index`` whose alarmed segments are ``alarmed`` (None: not measured), and
    the notice it sends, if any."""
    if alarmed is None:
        return state, ()
    if not alarmed:
        if not state.segments_open:
            return state, ()
        return replace(state, segments_since=None, segments=frozenset()), (Notice.segment_cleared,)
    if not state.segments_open:
        return replace(state, segments_since=index, segments=alarmed), (Notice.segment_alarm,)
    if alarmed <= state.segments:
        return state, ()
    return replace(state, segments=state.segments | alarmed), (Notice.segment_alarm_grew,)
