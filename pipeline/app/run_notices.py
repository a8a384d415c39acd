"""What one monitor run tells a person: the incidents it moves on batch by batch (``pipeline.domain.incidents``),
and the notifications it sends for them through its ``Notifier``: counted, and never raised (a notification
that fails is one warning line, the batch it reports on goes on)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipeline.app.notify import (
    Links,
    Notifier,
    batch_notification,
    refused_notification,
    run_failed_notification,
    segment_notification,
)
from pipeline.domain import incidents
from pipeline.domain.incidents import BatchFacts, Incidents, Notice
from pipeline.domain.notices import Notification
from pipeline.domain.records import BatchRow, Event
from pipeline.domain.values import one_line
from pipeline.stats.drift import DriftResult

Say = Callable[[str], None]


class RunNotices:
    """The incidents of one run and the notifications sent for them; ``notifier`` None: nothing is sent."""

    def __init__(self, notifier: Notifier | None, links: Links, model: str, say: Say = print) -> None:
        self.notifier = notifier
        self.links = links
        self.model = model
        self.say = say
        self.incidents = Incidents()
        self.notified = 0
        self.failures: list[str] = []

    def in_run(self, experiment_id: str, run_id: str) -> None:
        """Link the notifications to the run's MLflow run."""
        self.links = dataclasses.replace(self.links, experiment_id=experiment_id, run_id=run_id)

    def replayed(self, index: int, recorded: Mapping[str, Any], segments: frozenset[str] | None = None) -> None:
        """A batch recorded by an earlier attempt (``segments``: its alarmed segments, None when not measured):
        the incidents move on as they moved then, nothing sent again."""
        self.incidents, _sent_then = incidents.step(self.incidents, BatchFacts.of_row(index, dict(recorded)))
        self.incidents, _sent_then = incidents.segment_step(self.incidents, index, segments)

    def refused(self, index: int, run_key: str, source: str, message: str) -> None:
        """A batch that could not be monitored."""
        self.incidents, notices = incidents.step(self.incidents, BatchFacts(index, refused=True))
        if notices:
            self.send(refused_notification(self.model, run_key, index, source, message, self.links))

    def batch(
        self,
        row: BatchRow,
        causes: tuple[str, ...],
        drift: DriftResult,
        events: list[Event],
        failed: bool,
    ) -> None:
        """Move the incidents on by the recorded batch and send what a person must hear of it."""
        before = self.incidents
        self.incidents, notices = incidents.step(before, BatchFacts.of_row(row.batch_index, vars(row), failed))
        incident = self.incidents if self.incidents.alarm_open else before
        for notice in notices:
            self.send(
                batch_notification(
                    notice,
                    row,
                    incident,
                    self.links,
                    causes=causes,
                    drifted=drift.drifted_features(),
                    events=events,
                )
            )

    def segments(self, row: BatchRow, alarmed: Sequence[tuple[str, str]] | None) -> None:
        """Move the segment incident on by the batch's alarmed segments, (name, reason) each (None: not measured),
        and send its notice, if any."""
        before = self.incidents
        names = None if alarmed is None else frozenset(name for name, _reason in alarmed)
        self.incidents, notices = incidents.segment_step(before, row.batch_index, names)
        for notice in notices:
            told = [(name, reason) for name, reason in alarmed or () if name not in before.segments]
            incident = before if notice is Notice.segment_cleared else self.incidents
            self.send(segment_notification(notice, row, told, incident, self.links))

    def run_failed(self, message: str, run_key: str) -> None:
        self.send(run_failed_notification(self.model, message, self.links, run_key))

    def send(self, notification: Notification) -> None:
        """Send, when a notifier is configured; a notification that fails is counted, never raised."""
        if self.notifier is None:
            return
        try:
            delivered = self.notifier.notify(notification)
        except Exception as err:  # noqa: BLE001 - a notification never fails the batch it reports on
            self.say(f"warning: {notification.kind} notification not sent: {one_line(err, 200)}")
            delivered = False
        if delivered:
            self.notified += 1
        else:
            self.failures.append(f"{notification.kind} (batch {notification.batch})")
