"""A batch the monitor could not monitor: whose fault it was (``pipeline.app.batch_fault``), and what follows.

- its own fault: skipped with its one-line reason, the run goes on; an inbox file is also set aside
  (``RejectedBatch``), so that no later run reads it again until ``pipeline inbox retry``;
- its file could not be fetched (``SourceUnavailable``): an inbox run stops here, recording nothing for it
  (``Stopped``), so that the next run reads it again in its turn; given files are skipped as before;
- anything else (the database, MLflow, the host): raised, the run stops, nothing recorded for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pipeline.app import batch_fault
from pipeline.app.monitor_result import MonitorResult
from pipeline.app.run_notices import RunNotices
from pipeline.app.sources import BatchSource
from pipeline.domain.records import RejectedBatch

Say = Callable[[str], None]


class RejectionStore(Protocol):
    def record_rejection(self, rejected: RejectedBatch) -> bool: ...


class Stopped(Exception):
    """An inbox file that could not be fetched: the run stops before it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Refusals:
    """The batches of one run that could not be monitored: each said in one line, notified, and (an inbox file
    at fault) set aside."""

    def __init__(self, store: RejectionStore, model: str, notices: RunNotices, say: Say = print) -> None:
        self.store = store
        self.model = model
        self.notices = notices
        self.say = say

    def refuse(
        self,
        index: int,
        source: BatchSource,
        run_key: str,
        err: Exception,
        result: MonitorResult,
        version: int | None,
    ) -> dict[str, Any]:
        """The record of a batch that failed while read, validated or scored by champion ``version``; raises
        ``err`` when the failure is not the batch's, ``Stopped`` when an inbox file could not be fetched."""
        uri = source.uri or source.name
        message = batch_fault.reason(uri, err, version)
        if not batch_fault.is_batch_fault(err):
            if not batch_fault.is_source_unavailable(err):
                raise err
            if source.etag is not None:
                raise Stopped(message) from err
            return self.skip(index, source, message, result)
        if source.etag is None:
            return self.skip(index, source, message, result)
        self.store.record_rejection(
            RejectedBatch(run_key, self.model, uri, source.etag, message, champion_version=version)
        )
        result.rejected.append(source.name)
        return self.skip(
            index, source, message, result, f"rejected and set aside (`pipeline inbox retry {uri}` reads it again)"
        )

    def skip(
        self, index: int, source: BatchSource, message: str, result: MonitorResult, what: str = "skipped"
    ) -> dict[str, Any]:
        """A batch that cannot be monitored: one line, no metrics written, the run goes on."""
        result.errors.append(message)
        self.say(f"[batch {index}] {what}, nothing written, the run goes on: {message}")
        self.notices.refused(index, result.run_key, source.name, message)
        return self.error_record(index, source, message)

    def error_record(self, index: int, source: BatchSource, message: str) -> dict[str, Any]:
        """The report record of a batch not monitored."""
        return {"batch": index, "source": source.name, "error": message, "action": "none", "model_name": self.model}
