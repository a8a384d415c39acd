"""Batch files by their identity, and an inbox of them: every CSV or Parquet object under one S3 prefix (or one
local folder), in key order.

A batch file's identity is its key and its ETag (for a local file, the MD5 of its bytes, which is what S3's ETag
is for an object put in one part), for an inbox's files (``list_inbox``) and for files given one by one
(``identify``) alike: a batch is monitored once per identity, so a rerun, a crash mid-way or a file written again
with new content behave as a user expects: nothing lost, nothing twice, a changed file anew.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.io.tables import SUPPORTED_SUFFIXES, DataError, ObjectStore, s3_errors, split_s3

IDENTITY_SEPARATOR = "#"


@dataclass(frozen=True)
class InboxObject:
    uri: str  # what to read: s3://bucket/key or a local path
    etag: str

    @property
    def identity(self) -> str:
        """What the batch is recorded as (its ``source``): the URI and the ETag."""
        return f"{self.uri}{IDENTITY_SEPARATOR}{self.etag}"


def uri_of(identity: str) -> str:
    return identity.rsplit(IDENTITY_SEPARATOR, 1)[0]


def local_etag(path: Path) -> str:
    """A local file's ETag: the MD5 of its bytes, read in blocks."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def identify(uri: str, s3_client: ObjectStore | None) -> InboxObject:
    """One batch file's identity: an S3 object's key and ETag (asked of S3), a local file's path and MD5. Raises
    ``DataError`` (``SourceUnavailable`` when S3 will not tell) for a file that is not there."""
    if uri.startswith("s3://"):
        if s3_client is None:
            raise DataError(f"{uri}: no S3 client configured")
        bucket, key = split_s3(uri)
        with s3_errors(uri, bucket):
            head = s3_client.head_object(Bucket=bucket, Key=key)
        return InboxObject(uri, str(head["ETag"]).strip('"'))
    path = Path(uri)
    if not path.is_file():
        raise DataError(f"{uri}: no such file")
    return InboxObject(uri, local_etag(path))


def _is_batch(name: str) -> bool:
    return Path(name).suffix.lower() in SUPPORTED_SUFFIXES and not Path(name).name.startswith(".")


def list_inbox(inbox: str, s3_client: ObjectStore | None) -> list[InboxObject]:
    """Every batch file in the inbox, in key (path) order."""
    if inbox.startswith("s3://"):
        if s3_client is None:
            raise DataError(f"{inbox}: no S3 client configured")
        bucket, prefix = split_s3(inbox, allow_empty_key=True)
        found = []
        with s3_errors(inbox, bucket):
            for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if _is_batch(item["Key"]):
                        found.append(InboxObject(f"s3://{bucket}/{item['Key']}", str(item["ETag"]).strip('"')))
        return sorted(found, key=lambda item: item.uri)
    folder = Path(inbox)
    if not folder.is_dir():
        raise DataError(f"{inbox}: no such inbox folder")
    files = sorted(path for path in folder.rglob("*") if path.is_file() and _is_batch(path.name))
    return [InboxObject(str(path), local_etag(path)) for path in files]


def pending(objects: list[InboxObject], recorded: set[str]) -> list[InboxObject]:
    """The objects whose identity is not recorded yet, in key order."""
    return [item for item in objects if item.identity not in recorded]


def inbox_folders(root: str, s3_client: ObjectStore | None) -> list[str]:
    """The names of the folders right under a root inbox (an S3 prefix's common prefixes, a local folder's
    sub-folders; hidden ones left out), in name order: each a model's inbox, ``<root>/<name>/``."""
    if root.startswith("s3://"):
        if s3_client is None:
            raise DataError(f"{root}: no S3 client configured")
        bucket, prefix = split_s3(root, allow_empty_key=True)
        prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
        names = []
        with s3_errors(root, bucket):
            pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(name for name in names if name and not name.startswith("."))
    folder = Path(root)
    if not folder.is_dir():
        raise DataError(f"{root}: no such inbox folder")
    return sorted(path.name for path in folder.iterdir() if path.is_dir() and not path.name.startswith("."))


def folder_inbox(root: str, name: str) -> str:
    """The inbox of the folder ``name`` under ``root``: for S3 a prefix ending in a slash (what the host's timer
    names a model's inbox, so a model has one run key whichever way it is monitored), else a local path."""
    if root.startswith("s3://"):
        return f"{root.rstrip('/')}/{name}/"
    return str(Path(root) / name)
