"""What a monitor run returns: its batches' records, the batches refused (and of those, the inbox files set aside)
and the run's failures, and the exit code the ``monitor`` command ends with (``--fail-on-alarm`` for
schedulers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.records import VERDICT_COLUMNS

EXIT_OK = 0
EXIT_FAILED = 1  # a batch failed validation (without --fail-on-alarm), or the run failed (a retrain, tracking,
# an inbox file that could not be fetched: the run stopped there)
# 2: an error before any work (``pipeline.cli.common.clean_errors``); Click's usage errors exit 2 as well
EXIT_ALARM = 3  # --fail-on-alarm: at least one batch alarmed, none was rejected and nothing failed
EXIT_REJECTED = 4  # --fail-on-alarm: at least one batch failed validation (nothing was written for it)

# Most serious first: a failed run (or a model that could not be monitored), a rejected batch, an alarm, all well.
SEVERITY = (EXIT_FAILED, EXIT_REJECTED, EXIT_ALARM, EXIT_OK)


def worst_exit(codes: list[int]) -> int:
    """The exit code of several runs (a root inbox's models): the most serious of theirs (``SEVERITY``); 0 for
    none."""
    return min(codes, key=SEVERITY.index, default=EXIT_OK)


@dataclass
class MonitorResult:
    """``errors``: the one-line reasons of the batches refused (read, validated or scored in vain), among them the
    inbox files set aside in this run, whose names (URI and ETag) are ``rejected``: a file set aside counts here
    once, in the run that refused it; later runs do not read it. ``failures``: the run's own (a retrain, the
    tracking side, an inbox file that could not be fetched)."""

    run_key: str
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    mlflow_run_id: str | None = None
    tracking_uri: str = ""
    skipped: int = 0
    notified: int = 0  # notifications that reached every sink
    notify_failures: list[str] = field(default_factory=list)  # notifications that did not (never a failed run)

    @property
    def alarms(self) -> int:
        return sum(1 for r in self.records if any(r.get(name) for name in VERDICT_COLUMNS))

    @property
    def retrains(self) -> int:
        return sum(1 for r in self.records if str(r.get("action", "")).startswith("retrained"))

    def exit_code(self, *, fail_on_alarm: bool = False) -> int:
        """The monitor command's exit code: ``EXIT_FAILED`` when the run itself failed (a retrain, the tracking
        side), else ``EXIT_REJECTED`` for a batch that failed validation, else ``EXIT_ALARM`` for an alarmed batch;
        the last two only with ``fail_on_alarm`` (without it a rejected batch is ``EXIT_FAILED``, an alarm 0)."""
        if self.failures:
            return EXIT_FAILED
        if self.errors:
            return EXIT_REJECTED if fail_on_alarm else EXIT_FAILED
        return EXIT_ALARM if fail_on_alarm and self.alarms else EXIT_OK
