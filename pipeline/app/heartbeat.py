"""The monitor's heartbeat: after a run that recorded batches, their number goes to the heartbeat (CloudWatch, see
``pipeline.io.heartbeat``), so that an alarm outside the host notices a model with no batch for too long. A failed
beat is one line, never a failed run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pipeline.domain.values import one_line


class Heartbeat(Protocol):
    def beat(self, model: str, batches: int) -> None: ...


def send_heartbeat(heartbeat: Heartbeat | None, model: str, batches: int, say: Callable[[str], None]) -> bool:
    """Beat for ``batches`` recorded batches of ``model``; True when the beat was sent. Nothing is sent without a
    heartbeat or without a batch (no batch is what the alarm waits for)."""
    if heartbeat is None or batches <= 0:
        return False
    try:
        heartbeat.beat(model, batches)
    except Exception as err:  # noqa: BLE001 - a heartbeat never fails the run it reports on
        say(f"warning: heartbeat of {model} not sent: {one_line(err, 200)}")
        return False
    return True
