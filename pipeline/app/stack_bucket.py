"""The local stack's artifact bucket: moto keeps objects in memory only, so the bucket (its objects and its
settings) is snapshotted to disk on ``down`` (and on request) and restored into an empty bucket on ``up``."""

from __future__ import annotations

import json
import shutil
from typing import Any

from pipeline.app.stack_config import LOCAL_AWS_ENV, StackConfig
from pipeline.io.paths import OutsideFolder, path_inside


def _s3(cfg: StackConfig) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=cfg.s3_endpoint,
        region_name=LOCAL_AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def ensure_bucket(cfg: StackConfig) -> None:
    """Create the artifact bucket (every start) and restore the snapshot into it when it is empty."""
    client = _s3(cfg)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if cfg.bucket not in existing:
        client.create_bucket(Bucket=cfg.bucket)
    restore_bucket(cfg, client)


def snapshot_bucket(cfg: StackConfig) -> int:
    """Copy every object of the bucket to disk (atomically replacing the previous snapshot). A key that would
    become a path outside the snapshot's folder (``..``, an absolute name) is not written: the manifest lists it
    under ``refused_keys``."""
    client = _s3(cfg)
    target = cfg.snapshot_dir
    staging = target.with_name(target.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    count, refused = 0, []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=cfg.bucket):
        for item in page.get("Contents", []):
            try:
                path = path_inside(staging / "objects", item["Key"], f"s3://{cfg.bucket}/{item['Key']}")
            except OutsideFolder:
                refused.append(item["Key"])
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(cfg.bucket, item["Key"], str(path))
            count += 1
    manifest = {
        "bucket": cfg.bucket,
        "objects": count,
        "settings": bucket_settings(client, cfg.bucket),
        "refused_keys": refused,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest))
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return count


# The bucket settings a snapshot keeps (what infra/ applies: versioning, encryption, lifecycle, public access),
# as (getter, setter, the getter's response key, the setter's argument name).
BUCKET_SETTINGS = (
    ("get_bucket_versioning", "put_bucket_versioning", None, "VersioningConfiguration"),
    (
        "get_bucket_encryption",
        "put_bucket_encryption",
        "ServerSideEncryptionConfiguration",
        "ServerSideEncryptionConfiguration",
    ),
    ("get_bucket_lifecycle_configuration", "put_bucket_lifecycle_configuration", "Rules", "LifecycleConfiguration"),
    (
        "get_public_access_block",
        "put_public_access_block",
        "PublicAccessBlockConfiguration",
        "PublicAccessBlockConfiguration",
    ),
)


def bucket_settings(client: Any, bucket: str) -> dict[str, Any]:
    """The bucket's settings that a restarted moto would lose, by setter name (absent ones left out)."""
    from botocore.exceptions import ClientError

    found: dict[str, Any] = {}
    for getter, setter, key, argument in BUCKET_SETTINGS:
        try:
            response = getattr(client, getter)(Bucket=bucket)
        except ClientError:
            continue
        if key is None:
            value = {name: response[name] for name in ("Status", "MFADelete") if name in response}
        elif key == "Rules":
            value = {"Rules": response.get("Rules", [])}
        else:
            value = response.get(key)
        if value:
            found[setter] = {argument: value}
    return found


def apply_bucket_settings(client: Any, bucket: str, settings: dict[str, Any]) -> None:
    for setter, arguments in settings.items():
        getattr(client, setter)(Bucket=bucket, **arguments)


def restore_bucket(cfg: StackConfig, client: Any | None = None) -> int:
    """Upload the snapshot into the bucket when the bucket is empty (moto restarted), its settings first."""
    objects = cfg.snapshot_dir / "objects"
    if not objects.is_dir():
        return 0
    client = client or _s3(cfg)
    if client.list_objects_v2(Bucket=cfg.bucket, MaxKeys=1).get("KeyCount", 0):
        return 0
    manifest = cfg.snapshot_dir / "manifest.json"
    if manifest.exists():
        apply_bucket_settings(client, cfg.bucket, json.loads(manifest.read_text()).get("settings", {}))
    count = 0
    for path in sorted(objects.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), cfg.bucket, path.relative_to(objects).as_posix())
            count += 1
    return count
