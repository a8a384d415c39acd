"""The inbox files set aside (``RejectedBatch``): which of them a user names, and clearing them so that the next
``pipeline monitor --inbox`` reads them again (``pipeline inbox retry``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.io.store import MetricsStore


def names_file(uri: str, key: str) -> bool:
    """Whether ``key`` names the file ``uri``: the URI itself, an S3 object's key (the URI without
    ``s3://bucket/``), or a local path to the same file."""
    if uri == key:
        return True
    if uri.startswith("s3://"):
        return uri.split("/", 3)[3:] == [key.lstrip("/")]
    return not key.startswith("s3://") and Path(uri).resolve() == Path(key).resolve()


def matching(rejected: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The rejections (rows of ``MetricsStore.rejections_of_model``) of the file ``key`` names."""
    return [row for row in rejected if names_file(str(row["uri"]), key)]


def retry(store: MetricsStore, model_name: str, key: str) -> list[dict[str, Any]]:
    """Clear the rejections of the model's file ``key`` names (every content of it, in every inbox); the rows
    cleared. A ``LookupError`` naming the files set aside when ``key`` names none of them."""
    rejected = store.rejections_of_model(model_name)
    found = matching(rejected, key)
    if not found:
        shown = sorted({str(row["uri"]) for row in rejected})
        listed = ", ".join(shown[:5]) + (f" (+{len(shown) - 5} more)" if len(shown) > 5 else "")
        raise LookupError(
            f"{key}: no rejected batch of {model_name} is that file; "
            + (f"the rejected ones: {listed}" if shown else "none is set aside")
        )
    store.clear_rejections(model_name, sorted({str(row["uri"]) for row in found}))
    return found
