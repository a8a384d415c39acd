"""Notifications as the loop and the commands send them: a ``Notifier`` (what the monitor is given), the one that
sends to the configured sinks (``Dispatcher``: a sink's failure is one line and a count, never an error), and the
notifications of a batch, a refused batch, a failed run and a recorded event, with their links."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from pipeline.domain.incidents import Incidents, Notice
from pipeline.domain.notices import Notification
from pipeline.domain.records import BatchRow, Event
from pipeline.domain.values import finite, one_line
from pipeline.io.notify import Sink, sinks_of
from pipeline.settings import NotifySettings

Say = Callable[[str], None]
GRAFANA_DASHBOARD = "model-monitoring"  # the provisioned dashboard's uid (grafana/dashboards)
CAUSE_NAMES = {
    "drift_detected": "input drift",
    "performance_drop": "a drop in ROC AUC",
    "prior_shift": "a shift in the positive rate",
    "estimated_drop": "a drop in estimated ROC AUC",
}
SCORES = (
    "prediction_drift",
    "drift_threshold",
    "drifted_columns",
    "share_drifted_columns",
    "roc_auc",
    "estimated_roc_auc",
    "positive_rate",
    "mean_prediction",
)


class Notifier(Protocol):
    """What the monitor needs of a notifier: send one notification; False when it did not reach every sink.
    It never raises (the monitor guards against one that does all the same)."""

    def notify(self, notification: Notification) -> bool: ...


class Dispatcher:
    """Sends each notification to every sink. A sink that fails is said in one line (``failures``) and the others
    are still tried; ``sent`` counts the notifications every sink took."""

    def __init__(self, sinks: Sequence[Sink], say: Say = print) -> None:
        self.sinks = list(sinks)
        self.say = say
        self.sent = 0
        self.failures: list[str] = []

    def notify(self, notification: Notification) -> bool:
        if notification.time is None:
            notification = replace(notification, time=datetime.now(UTC).isoformat(timespec="seconds"))
        delivered = True
        for sink in self.sinks:
            try:
                sink.send(notification)
            except Exception as err:  # noqa: BLE001 - a notification never fails the work it reports on
                delivered = False
                line = f"{notification.kind} notification not sent to {sink.name}: {one_line(err, 200)}"
                self.failures.append(line)
                self.say(f"warning: {line}")
        self.sent += delivered
        return delivered


def notifier_of(settings: NotifySettings, say: Say = print, sns_client: Any = None) -> Dispatcher | None:
    """The dispatcher to the configured sinks, or None when none is configured (nothing to send, nothing to count).
    A refused webhook URL raises ``pipeline.io.notify.NotifyError``."""
    sinks = sinks_of(settings) if sns_client is None else sinks_of(settings, sns_client)
    return Dispatcher(sinks, say) if sinks else None


@dataclass(frozen=True)
class Links:
    """Where a person looks next: the MLflow run or version, Grafana's dashboard for the model (when known)."""

    tracking_uri: str
    model: str
    grafana_url: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None

    @classmethod
    def of(cls, settings: NotifySettings, model: str) -> Links:
        return cls(settings.tracking_uri, model, settings.notify_grafana_url)

    def __call__(self, version: int | None = None) -> dict[str, str]:
        links: dict[str, str] = {}
        base = self.tracking_uri.rstrip("/")
        if base.startswith("http"):
            if self.run_id and self.experiment_id:
                links["mlflow_run"] = f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
            if version is not None:
                links["mlflow_version"] = f"{base}/#/models/{quote(self.model)}/versions/{version}"
        if self.grafana_url:
            links["grafana"] = f"{self.grafana_url.rstrip('/')}/d/{GRAFANA_DASHBOARD}?var-model={quote(self.model)}"
        return links


def batch_notification(
    notice: Notice,
    row: BatchRow,
    incidents: Incidents,
    links: Links,
    *,
    causes: Sequence[str] = (),
    drifted: Sequence[tuple[str, float]] = (),
    events: Sequence[Event] = (),
) -> Notification:
    """A monitored batch's notification: ``causes`` are the verdict's reasons, ``drifted`` the drifted features
    with their scores, ``events`` the batch's (a retrain's decision is read from them)."""
    index = row.batch_index
    version = row.champion_version
    event = _decision_event(notice, events)
    if event is not None and notice is Notice.promotion:
        version = event.model_version
    summary = _summary(notice, row, incidents, event)
    scores = {name: _score(getattr(row, name)) for name in SCORES}
    return Notification(
        kind=notice,
        model=row.model_name,
        summary=summary,
        version=version,
        batch=index,
        run_key=row.run_key,
        source=row.source,
        causes=tuple(causes) if notice in (Notice.alarm, Notice.alarm_grew) else (),
        drifted_features=tuple((name, float(score)) for name, score in drifted)
        if notice in (Notice.alarm, Notice.alarm_grew)
        else (),
        drift_attribution=_attribution(events) if notice in (Notice.alarm, Notice.alarm_grew) else (),
        scores=scores,
        action=row.action,
        links=links(version if event is not None else None),
        details={
            "incident_opened_at": incidents.opened_at,
            "incident_causes": sorted(incidents.causes),
            **({"event": event.message, **event.details} if event is not None else {}),
        },
    )


def segment_notification(
    notice: Notice, row: BatchRow, segments: Sequence[tuple[str, str]], incidents: Incidents, links: Links
) -> Notification:
    """A segment incident's notification: ``segments`` are the batch's alarmed segments with their reasons,
    ``incidents`` the segment incident as it stands (as it stood, for ``segment-cleared``)."""
    index = row.batch_index
    named = [f"{name} ({reason})" if reason else name for name, reason in segments]
    if notice is Notice.segment_alarm:
        summary = (
            f"segments alarmed: {', '.join(named)}; a segment alarm does not retrain by itself (the batch's rules "
            "decide), and later batches with the same segments are not notified until no segment alarms"
        )
    elif notice is Notice.segment_alarm_grew:
        summary = f"the segment alarm open since batch {incidents.segments_since} now also has: {', '.join(named)}"
    else:
        opened = incidents.segments_since
        summary = f"batch {index} has no segment alarmed: the segment alarm open since batch {opened} is cleared"
    return Notification(
        kind=notice,
        model=row.model_name,
        summary=summary,
        version=row.champion_version,
        batch=index,
        run_key=row.run_key,
        source=row.source,
        causes=tuple(named),
        links=links(),
        details={
            "segments": [{"segment": name, "reason": reason} for name, reason in segments],
            "segment_incident_opened_at": incidents.segments_since,
            "segment_incident_segments": sorted(incidents.segments),
        },
    )


def _attribution(events: Sequence[Event]) -> tuple[tuple[str, float], ...]:
    """The alarm's drift attribution (``pipeline.app.why_moved``), as its event carries it: (feature, share)."""
    alarm = next((event for event in events if event.kind == "alarm"), None)
    found = [] if alarm is None else alarm.details.get("drift_attribution") or []
    return tuple((str(item["feature"]), float(item["share"])) for item in found)


def _decision_event(notice: Notice, events: Sequence[Event]) -> Event | None:
    kind = {
        Notice.promotion: "promotion",
        Notice.challenger: "challenger",
        Notice.rejection: "rejection",
        Notice.retrain_failed: "rejection",
    }.get(notice)
    return next((event for event in events if event.kind == kind), None)


def _summary(notice: Notice, row: BatchRow, incidents: Incidents, event: Event | None) -> str:
    index = row.batch_index
    if event is not None:
        return event.message
    if notice is Notice.alarm:
        named = [CAUSE_NAMES[name] for name in sorted(incidents.causes)]
        return (
            f"the monitor alarmed on {', '.join(named)}; later batches with the same causes are not notified "
            "until the alarm clears or a retrain decides"
        )
    if notice is Notice.alarm_grew:
        named = [CAUSE_NAMES[name] for name in sorted(incidents.causes)]
        return f"the alarm open since batch {incidents.opened_at} now has these causes: {', '.join(named)}"
    if notice is Notice.cleared:
        return f"batch {index} no longer alarms: the alarm open since batch {incidents.opened_at} is cleared"
    if notice is Notice.monitoring_resumed:
        return f"batch {index} was monitored again after refused batches"
    return f"batch {index}: {notice.value}"


def _score(value: Any) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    return value if isinstance(value, int) else finite(float(value))


def refused_notification(model: str, run_key: str, index: int, source: str, error: str, links: Links) -> Notification:
    return Notification(
        kind=Notice.batch_refused,
        model=model,
        summary=f"{error}; nothing was written for this batch and the run goes on. Further refused batches are not "
        "notified until a batch is monitored again",
        batch=index,
        run_key=run_key,
        source=source,
        links=links(),
        details={"error": error},
    )


def run_failed_notification(model: str, error: str, links: Links, run_key: str | None = None) -> Notification:
    return Notification(
        kind=Notice.run_failed, model=model, summary=error, run_key=run_key, links=links(), details={"error": error}
    )


def event_notification(notice: Notice, event: Event, links: Links) -> Notification:
    """A recorded event's notification (a promotion or rollback by hand)."""
    return Notification(
        kind=notice,
        model=event.model_name,
        summary=event.message,
        version=event.model_version,
        links=links(event.model_version),
        details={"previous_champion": event.champion_version, **event.details},
    )


def message_notification(record: Mapping[str, Any], model: str, links: Links) -> Notification:
    """``pipeline notify``'s message: ``text`` (or ``summary``) and any of the record's own fields."""
    summary = str(record.get("summary") or record.get("text") or "").strip() or "(no text)"
    kind = record.get("kind")
    notice = Notice(kind) if kind in {n.value for n in Notice} else Notice.message
    version, batch = record.get("version"), record.get("batch")
    return Notification(
        kind=notice,
        model=str(record.get("model") or model),
        summary=summary,
        version=int(version) if isinstance(version, int) else None,
        batch=int(batch) if isinstance(batch, int) else None,
        run_key=record.get("run_key"),
        source=record.get("source"),
        links={**links(), **dict(record.get("links") or {})},
        details=dict(record.get("details") or {}),
    )
