"""When the monitor beats: only with a heartbeat and recorded batches; a failed beat is one line, never an error."""

from __future__ import annotations

from pipeline.app.heartbeat import send_heartbeat


class FakeHeartbeat:
    def __init__(self, error: Exception | None = None) -> None:
        self.beats: list[tuple[str, int]] = []
        self.error = error

    def beat(self, model: str, batches: int) -> None:
        if self.error is not None:
            raise self.error
        self.beats.append((model, batches))


def test_recorded_batches_are_beaten_and_nothing_else_is():
    heartbeat, said = FakeHeartbeat(), []
    assert send_heartbeat(heartbeat, "churn", 3, said.append) is True
    assert send_heartbeat(heartbeat, "churn", 0, said.append) is False  # no batch is what the alarm waits for
    assert send_heartbeat(None, "churn", 3, said.append) is False
    assert heartbeat.beats == [("churn", 3)] and said == []


def test_a_failed_beat_is_one_warning_line_and_not_raised():
    said: list[str] = []
    failing = FakeHeartbeat(RuntimeError("AccessDenied: not authorized to perform\ncloudwatch:PutMetricData"))
    assert send_heartbeat(failing, "churn", 2, said.append) is False
    (line,) = said
    assert line.startswith("warning: heartbeat of churn not sent: AccessDenied") and "\n" not in line
