"""What a monitor run reads: its batch sources (files, an inbox's new objects), each named by its identity (key and
ETag, or path and MD5: ``pipeline.io.inbox``), and the key that names the run."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import Batch, load_batch
from pipeline.io.inbox import identify
from pipeline.io.tables import NO_LIMITS, DataError, InputLimits, ObjectStore


@dataclass(frozen=True)
class BatchSource:
    """A batch to monitor: its name (what it is recorded as, and recognised by in a later run: a file's identity)
    and how to load (and validate) it whole; for a file, where it is, so that a large one is read in chunks instead
    (``pipeline.engine.local``). ``etag``: an inbox file's content identity, under which it is set aside when it
    fails for a reason of its own (None: not an inbox file)."""

    name: str
    load: Callable[[], Batch]
    uri: str | None = None
    s3: ObjectStore | None = None
    max_mb: float | None = None
    etag: str | None = None


def file_sources(
    paths: Sequence[str],
    schema: FeatureSchema,
    s3_client: ObjectStore | None,
    max_mb: float | None = None,
    limits: InputLimits = NO_LIMITS,
) -> list[BatchSource]:
    """The files given, each named and recorded by its identity (path and MD5, or key and ETag), so that a later run
    given the same file skips it and one given a new file, under the same name or not, monitors it. A file whose
    identity cannot be known (not there, S3 will not say) keeps its path as its name: reading it fails in its turn,
    and the run goes on."""

    def load(uri: str, name: str) -> Batch:
        batch = load_batch(uri, schema, s3_client, max_mb, limits)
        batch.source = name
        return batch

    sources = []
    for path in paths:
        try:
            name = identify(path, s3_client).identity
        except DataError:
            name = path
        sources.append(BatchSource(name, functools.partial(load, path, name), path, s3_client, max_mb))
    return sources


def model_run_key(model_name: str) -> str:
    """The model's monitor run, continued by every run given files without a run key: its batches are the files
    of every such run, so the policy's state (cooldown, episode, retraining window) is the model's, not a run's."""
    return "model-" + hashlib.sha256(model_name.encode()).hexdigest()[:12]


def inbox_run_key(model_name: str, inbox: str) -> str:
    """One monitor run per model and inbox, resumed by every timer run: its batches are the inbox's files."""
    return "inbox-" + hashlib.sha256(f"{model_name}\n{inbox.rstrip('/')}".encode()).hexdigest()[:12]


def inbox_sources(
    inbox: str,
    done: set[str],
    schema: FeatureSchema,
    s3_client: ObjectStore | None,
    max_mb: float | None = None,
    limits: InputLimits = NO_LIMITS,
) -> list[BatchSource]:
    """The inbox's files whose identity (URI and ETag) is not in ``done`` (recorded, or set aside), in key order;
    each batch is recorded as its identity."""
    from pipeline.io.inbox import list_inbox, pending

    def load(uri: str, identity: str) -> Batch:
        batch = load_batch(uri, schema, s3_client, max_mb, limits)
        batch.source = identity
        return batch

    return [
        BatchSource(
            item.identity,
            functools.partial(load, item.uri, item.identity),
            item.uri,
            s3_client,
            max_mb,
            etag=item.etag,
        )
        for item in pending(list_inbox(inbox, s3_client), done)
    ]


def run_key_for(model_name: str, reference: str, sources: Sequence[str], extra: str = "") -> str:
    """A deterministic key for a monitor run of given inputs (the demo's simulated stream: its parameters in
    ``extra``): the same inputs give the same key, so a rerun never double-counts."""
    parts = [model_name, reference, extra]
    for source in [reference, *sources]:
        path = Path(source)
        stat = path.stat() if not source.startswith("s3://") and path.exists() else None
        parts.append(f"{source}:{stat.st_size}:{stat.st_mtime_ns}" if stat else source)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
