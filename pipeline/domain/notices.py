"""A notification as a person and a program read it: ``text`` for a chat (Slack, Teams: a headline, a blank line,
a short list, bare links), and the same facts as fields (model, version, batch, causes, scores, links). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.incidents import Notice

TITLES = {
    Notice.alarm: "ALARM",
    Notice.alarm_grew: "ALARM, new cause",
    Notice.cleared: "Alarm cleared",
    Notice.promotion: "Promoted",
    Notice.challenger: "Challenger waits for a person",
    Notice.rejection: "Challenger rejected",
    Notice.retrain_failed: "Retrain FAILED",
    Notice.batch_refused: "Batch refused",
    Notice.monitoring_resumed: "Monitoring resumed",
    Notice.rollback: "Rolled back",
    Notice.run_failed: "Run FAILED",
    Notice.message: "Message",
    Notice.segment_alarm: "SEGMENT ALARM",
    Notice.segment_alarm_grew: "SEGMENT ALARM, new segment",
    Notice.segment_cleared: "Segment alarm cleared",
}
TOP_FEATURES = 5  # drifted features named in the text (the record holds all it was given)
SUBJECT_LIMIT = 100  # SNS's limit on a subject


@dataclass(frozen=True)
class Notification:
    """One message. ``summary`` says what happened in a line; ``version`` is the champion that served the batch
    (or the version a promotion or rollback made champion); ``causes`` the alarm's reasons as the monitor words
    them; ``scores`` the batch's numbers by report-field name; ``links`` by name (mlflow, grafana, ...)."""

    kind: Notice
    model: str
    summary: str
    version: int | None = None
    batch: int | None = None
    run_key: str | None = None
    source: str | None = None
    causes: tuple[str, ...] = ()
    drifted_features: tuple[tuple[str, float], ...] = ()
    drift_attribution: tuple[tuple[str, float], ...] = ()  # (feature, share of the prediction drift), highest first
    scores: Mapping[str, float | int | None] = field(default_factory=dict)
    action: str | None = None
    links: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    time: str | None = None  # ISO 8601, set by whoever sends it

    @property
    def headline(self) -> str:
        where = [self.model + (f" v{self.version}" if self.version is not None else "")]
        if self.batch is not None:
            where.append(f"batch {self.batch}" + (f" ({self.source})" if self.source else ""))
        return f"{TITLES[self.kind]}: {', '.join(where)}"

    @property
    def subject(self) -> str:
        """The headline within SNS's subject limit (one line)."""
        line = " ".join(self.headline.split())
        return line if len(line) <= SUBJECT_LIMIT else line[: SUBJECT_LIMIT - 3] + "..."

    def text(self) -> str:
        lines = [self.headline, "", f"- {self.summary}"]
        if self.causes:
            lines.append(f"- causes: {'; '.join(self.causes)}")
        if self.drifted_features:
            top = sorted(self.drifted_features, key=lambda item: -item[1])[:TOP_FEATURES]
            more = len(self.drifted_features) - len(top)
            named = ", ".join(f"{name} ({score:.3f})" for name, score in top) + (f" and {more} more" if more else "")
            lines.append(f"- top drifted features: {named}")
        if self.drift_attribution:
            named = ", ".join(f"{name} {share:.0%}" for name, share in self.drift_attribution[:TOP_FEATURES])
            lines.append(f"- why it moved (share of the prediction drift): {named}")
        shown = [f"{name} {_number(value)}" for name, value in self.scores.items() if value is not None]
        if shown:
            lines.append(f"- scores: {', '.join(shown)}")
        if self.action:
            lines.append(f"- action: {self.action}")
        if self.run_key:
            lines.append(f"- monitor run: {self.run_key}")
        lines.extend(f"- {name}: {url}" for name, url in self.links.items())
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        """The JSON body of the webhook (and the SNS message of programs): ``text`` and the fields."""
        return {
            "text": self.text(),
            "kind": self.kind.value,
            "model": self.model,
            "version": self.version,
            "batch": self.batch,
            "run_key": self.run_key,
            "source": self.source,
            "summary": self.summary,
            "causes": list(self.causes),
            "drifted_features": [{"feature": name, "score": score} for name, score in self.drifted_features],
            "drift_attribution": [{"feature": name, "share": share} for name, share in self.drift_attribution],
            "scores": dict(self.scores),
            "action": self.action,
            "links": dict(self.links),
            "details": dict(self.details),
            "time": self.time,
        }


def _number(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"
