"""A feature schema file at a local path or ``s3://`` (``--schema``, ``PIPELINE_SCHEMA_PATH``), bounded in size."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.domain.schema import FeatureSchema, SchemaError, read_schema, schema_from_bytes

if TYPE_CHECKING:
    from pipeline.io.tables import ObjectStore

MAX_SCHEMA_MB = 1.0  # a schema names columns: a file bigger than this is not one


def read_schema_at(source: str, s3_client: ObjectStore | None = None) -> FeatureSchema:
    """The schema in the local file or S3 object ``source``; every failure one line naming it."""
    if not source.startswith("s3://"):
        return read_schema(source)
    from pipeline.io.tables import DataError, SourceUnavailable, read_bytes

    try:
        data = read_bytes(source, s3_client, max_mb=MAX_SCHEMA_MB)
    except DataError as err:  # its size, the only data error an object's fetch raises
        raise SchemaError(f"{source}: over the {MAX_SCHEMA_MB:g} MB a schema file may hold") from err
    except SourceUnavailable as err:
        raise SchemaError(str(err)) from err
    return schema_from_bytes(data, source)
