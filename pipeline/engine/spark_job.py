"""A batch profiled by a Spark job away from the host (EMR Serverless), handed back through S3.

The job talks to neither MLflow nor the metrics database. The host resolves the champion's files
(``pipeline spark-job-args``: the model's folder, its schema, its reference sample and its calibration, all
objects MLflow stored under the artifact bucket) and passes them to the job; the job (``python -m
pipeline.engine.spark_job``, the entry point ``spark_entry.py`` runs it) builds the same ``ChunkWork`` the host would,
profiles the batch with ``pipeline.engine.spark`` and writes, under its output prefix:

- ``profile.npz``: the batch's merged profile (``BatchProfile.to_bytes``);
- ``sample.parquet``: the newest validated rows (what a retrain's window and a new reference take);
- ``result.json``: the batch's source, rows, whether labelled, extra columns, chunks, and the digest of the
  reference bins the profile is on.

The host then monitors ``.../result.json`` like a batch file (``pipeline monitor --current``): it rebuilds the
bins from the same champion and reference, refuses a result made on other bins in one line, and runs the same
decide / store / retrain path on the merged profile.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.engine.local import Chunked, ChunkWork, numeric_categories
from pipeline.io.data import validate_frame
from pipeline.io.paths import OutsideFolder, path_inside
from pipeline.io.tables import DataError, ObjectStore, read_bytes, split_s3, write_bytes
from pipeline.stats.profile import BatchProfile

RESULT = "result.json"
PROFILE = "profile.npz"
SAMPLE = "sample.parquet"


def stored_at(uri: str, artifact_bucket: str) -> str:
    """Where MLflow stored an artifact: a ``models:/`` or ``runs:/`` URI resolved, and the tracking server's
    proxied ``mlflow-artifacts:/`` location mapped to its destination, ``s3://<bucket>/mlflow/`` (as the local
    stack and the AWS host start the server)."""
    if uri.startswith("models:/"):
        from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

        uri = ModelsArtifactRepository.get_underlying_uri(uri)
    if uri.startswith("runs:/"):
        from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

        uri = RunsArtifactRepository.get_underlying_uri(uri)
    if uri.startswith("mlflow-artifacts:/"):
        uri = f"s3://{artifact_bucket}/mlflow/" + uri[len("mlflow-artifacts:/") :].lstrip("/")
    return uri


def job_arguments(registry: Any, champion: Any, settings: Any, batch: str, out: str) -> list[str]:
    """The job's arguments for the champion: every file as the S3 location the job's role may read."""
    from pipeline.model.serving import (
        LABELS_ENCODED,
        TAG_CALIBRATION,
        TAG_LABELS,
        TAG_REFERENCE,
        TAG_SCHEMA,
        stored_uri,
    )

    for tag in (TAG_SCHEMA, TAG_REFERENCE, TAG_CALIBRATION):
        stored_uri(champion, tag)  # refused in one line unless it names one of the registry's own artifacts
    tags = champion.tags
    missing = [tag for tag in (TAG_SCHEMA, TAG_REFERENCE) if not tags.get(tag)]
    if missing:
        raise DataError(
            f"v{champion.version} has no {', '.join(missing)}: a Spark job needs the champion's recorded schema and "
            "reference (train or adopt it with this version of the project)"
        )
    bucket = settings.artifact_bucket
    arguments = [
        "--batch", batch,
        "--model", stored_at(registry.version_uri(champion.version), bucket),
        "--schema", stored_at(tags[TAG_SCHEMA], bucket),
        "--reference", stored_at(tags[TAG_REFERENCE], bucket),
        "--model-labels", tags.get(TAG_LABELS) or LABELS_ENCODED,
        "--out", out,
    ]  # fmt: skip
    if tags.get(TAG_CALIBRATION):
        arguments += ["--calibration", stored_at(tags[TAG_CALIBRATION], bucket)]
    return arguments


def build_work(
    model: str,
    schema_uri: str,
    reference_uri: str,
    calibration_uri: str | None,
    s3: ObjectStore | None,
    *,
    project_trained: bool = True,
    trusted_types: Sequence[str] = (),
    drift_threshold: float = 0.1,
    column_threshold: float = 0.1,
) -> ChunkWork:
    """What every chunk goes through, from the champion's files alone (the host builds the same)."""
    from pipeline.domain.schema import parse_schema
    from pipeline.model.flavors import load_model
    from pipeline.model.scoring import Scorer
    from pipeline.stats.binned_reference import BinnedReference
    from pipeline.stats.drift import ReferenceProfile
    from pipeline.stats.estimate import Estimator

    schema = parse_schema(json.loads(read_bytes(schema_uri, s3)), schema_uri)
    scorer = Scorer.of(load_model(model, trusted_types=trusted_types), schema, project_trained=project_trained)
    reference = validate_frame(pd.read_parquet(io.BytesIO(read_bytes(reference_uri, s3))), schema, reference_uri)
    profile = ReferenceProfile.scored(
        reference.frame,
        scorer,
        schema,
        prediction_threshold=drift_threshold,
        column_threshold=column_threshold,
    )
    estimator = None
    if calibration_uri:
        calibration = pd.read_parquet(io.BytesIO(read_bytes(calibration_uri, s3)))
        estimator = Estimator.fit(calibration["p_positive"].to_numpy(), calibration["label"].to_numpy())
    return ChunkWork(schema, scorer, BinnedReference(profile), estimator, numeric_categories(reference.frame, schema))


def is_job_result(uri: str) -> bool:
    return uri.rstrip("/").endswith("/" + RESULT) or uri == RESULT


def write_result(chunked: Chunked, out: str, s3: ObjectStore | None) -> str:
    """Write the profile, the sample and ``result.json`` (last: its presence means the other two are there)."""
    sample = io.BytesIO()
    chunked.sample.to_parquet(sample, index=False)
    result = {
        "source": chunked.source,
        "rows": chunked.rows,
        "has_labels": chunked.has_labels,
        "unlabelled_rows": chunked.unlabelled_rows,
        "extra_columns": chunked.extra_columns,
        "chunks": chunked.chunks,
        "binning": chunked.profile.binning,
    }
    for name, body in (
        (PROFILE, chunked.profile.to_bytes()),
        (SAMPLE, sample.getvalue()),
        (RESULT, json.dumps(result, indent=1).encode()),
    ):
        write_bytes(f"{out.rstrip('/')}/{name}", body, s3)
    return f"{out.rstrip('/')}/{RESULT}"


def read_result(uri: str, s3: ObjectStore | None, binning: str) -> Chunked:
    """A job's result as the monitor's ``Chunked``; one line if it was profiled on other bins."""
    try:
        result = json.loads(read_bytes(uri, s3))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{uri}: not a Spark job's result.json") from err
    if result.get("binning") != binning:
        raise DataError(
            f"{uri}: profiled against another reference or champion than this monitor's; submit the job again "
            "with the current champion's files (pipeline spark-job-args)"
        )
    folder = uri[: -len(RESULT)]
    profile = BatchProfile.from_bytes(read_bytes(folder + PROFILE, s3))
    sample = pd.read_parquet(io.BytesIO(read_bytes(folder + SAMPLE, s3)))
    return Chunked(
        source=str(result["source"]),
        profile=profile,
        sample=sample,
        has_labels=bool(result["has_labels"]),
        extra_columns=list(result.get("extra_columns", [])),
        chunks=int(result.get("chunks", 0)),
        unlabelled_rows=int(result.get("unlabelled_rows", 0)),
    )


def _local_model(model: str, s3: ObjectStore | None, folder: str) -> str:
    """An ``s3://`` model folder copied to ``folder`` (the loader reads local folders without MLflow's server)."""
    if not model.startswith("s3://"):
        return model
    if s3 is None:
        raise DataError(f"{model}: no S3 client configured")
    bucket, prefix = split_s3(model.rstrip("/") + "/", allow_empty_key=True)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :]
            if not relative or relative.endswith("/"):
                continue  # the folder itself, or a folder marker
            try:
                target = path_inside(Path(folder), relative, f"s3://{bucket}/{item['Key']}")
            except OutsideFolder as err:
                raise DataError(str(err)) from err
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline.engine.spark_job", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", required=True, help="the batch file (CSV or Parquet)")
    parser.add_argument("--model", required=True, help="the champion's MLflow model folder (s3:// or local)")
    parser.add_argument("--schema", required=True, help="the champion's schema.json")
    parser.add_argument("--reference", required=True, help="the champion's reference sample (Parquet)")
    parser.add_argument("--calibration", help="the champion's holdout scores (Parquet), for the estimate")
    parser.add_argument("--model-labels", default="1=positive", help="the version's model_labels tag")
    parser.add_argument("--out", required=True, help="the folder (s3:// prefix) the result is written under")
    parser.add_argument("--sample-rows", type=int, default=20_000)
    parser.add_argument("--master", default=None, help="Spark master (default: the one spark-submit gives)")
    args = parser.parse_args(argv)

    from pipeline.engine.spark import chunked_with_spark, spark_session
    from pipeline.io.tables import make_s3_client
    from pipeline.model.serving import LABELS_ENCODED
    from pipeline.settings import load_settings

    settings = load_settings()

    uris = [args.batch, args.model, args.schema, args.reference, args.calibration or "", args.out]
    s3: Any = None
    if any(uri.startswith("s3://") for uri in uris):
        s3 = make_s3_client(settings.s3_endpoint_url, settings.aws_region)
    with tempfile.TemporaryDirectory(prefix="spark-job-model-") as folder:
        work = build_work(
            _local_model(args.model, s3, folder),
            args.schema,
            args.reference,
            args.calibration,
            s3,
            project_trained=args.model_labels == LABELS_ENCODED,
            trusted_types=settings.trusted_types,
        )
    spark = spark_session(args.master)
    chunked = chunked_with_spark(spark, args.batch, work, sample_rows=args.sample_rows)
    written = write_result(chunked, args.out, s3)
    print(f"{args.batch}: {chunked.rows} rows in {chunked.chunks} chunks profiled; wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
