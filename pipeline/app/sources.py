"""What a monitor run reads: its batch sources (files, an inbox's new objects) and the key that names the run."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import Batch, load_batch
from pipeline.io.tables import NO_LIMITS, InputLimits, ObjectStore


@dataclass(frozen=True)
class BatchSource:
    """A batch to monitor: its name and how to load (and validate) it whole; for a file, where it is, so that a
    large one is read in chunks instead (``pipeline.engine.local``). ``etag``: an inbox file's content identity,
    under which it is set aside when it fails for a reason of its own (None: not an inbox file)."""

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
    return [
        BatchSource(
            path, functools.partial(load_batch, path, schema, s3_client, max_mb, limits), path, s3_client, max_mb
        )
        for path in paths
    ]


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
    """A deterministic key for a monitor run: the same inputs give the same key, so a rerun never double-counts."""
    parts = [model_name, reference, extra]
    for source in [reference, *sources]:
        path = Path(source)
        stat = path.stat() if not source.startswith("s3://") and path.exists() else None
        parts.append(f"{source}:{stat.st_size}:{stat.st_mtime_ns}" if stat else source)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
