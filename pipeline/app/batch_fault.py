"""Whose fault a batch's failure is: the batch's own, which would fail every later run the same way (an inbox file
is then set aside: ``RejectedBatch``), or what the run depends on, which a later run may find working again.

Not the batch's fault, whatever the step: the metrics database (``StoreUnavailable``, any psycopg2 error), the
tracking side (``TrackingUnavailable``, ``tracking.is_tracking_failure``: MLflow, HTTP, S3 client errors),
the file's place (``SourceUnavailable``: S3 unreachable or refusing, no credentials, the file gone), anywhere in
the error's causes; and the host itself (out of memory, a disk or OS error outside the readers, which turn a
file's own unreadable bytes into ``DataError``). Everything else raised while reading, validating or scoring a
batch is the batch's: a ``DataError``, a ``ModelMismatch`` (the champion cannot score its rows), and any other
exception type (a nested Parquet value that breaks a library, say).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import requests

from pipeline.domain.values import one_line
from pipeline.io.store import StoreUnavailable
from pipeline.io.tables import DataError, SourceUnavailable
from pipeline.model import tracking
from pipeline.model.scoring import ModelMismatch

_NOT_THE_BATCH = (SourceUnavailable, StoreUnavailable, tracking.TrackingUnavailable, psycopg2.Error)
# What every model of a run depends on, gone: the metrics database, the tracking server, a connection refused.
_OUTAGES = (
    StoreUnavailable,
    tracking.TrackingUnavailable,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    ConnectionError,
    requests.ConnectionError,
    requests.Timeout,
)


def causes(err: BaseException) -> Iterator[BaseException]:
    """The error, then what it was raised from (or during), to the first."""
    seen: set[int] = set()
    link: BaseException | None = err
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ if link.__cause__ is not None or link.__suppress_context__ else link.__context__


def is_batch_fault(err: BaseException) -> bool:
    """Whether ``err``, raised while reading, validating or scoring a batch, is the batch's own fault."""
    if isinstance(err, ModelMismatch):  # the model's own error on these rows, whatever it was
        return True
    if any(isinstance(link, _NOT_THE_BATCH) or tracking.is_tracking_failure(link) for link in causes(err)):
        return False
    return not isinstance(err, (MemoryError, OSError))


def is_outage(err: BaseException) -> bool:
    """Whether ``err`` is an outage of what every model depends on (the metrics database, the MLflow server, a
    connection refused or timed out), anywhere in the error's causes: a run over several models stops there,
    since every model after would fail the same way."""
    return any(isinstance(link, _OUTAGES) for link in causes(err))


def is_source_unavailable(err: BaseException) -> bool:
    """Whether the batch's file could not be fetched (S3 unreachable or refusing, no credentials, the file gone),
    anywhere in the error's causes."""
    return any(isinstance(link, SourceUnavailable) for link in causes(err))


def reason(uri: str, err: BaseException, champion_version: int | None) -> str:
    """The failure in one line naming the file: a ``DataError``'s own line (it names the file), the champion's
    version for a model that cannot score the rows, the error's type for anything else."""
    if isinstance(err, ModelMismatch):
        return f"{uri}: champion v{champion_version}: {one_line(err)}"
    if isinstance(err, DataError):
        return one_line(err, 500)
    return f"{uri}: {err.__class__.__name__}: {one_line(err)}"
