"""The local stack's snapshot keeps the bucket's settings, so they survive a moto restart like its objects."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from pipeline.app.stack_bucket import apply_bucket_settings, bucket_settings


@mock_aws
def test_bucket_settings_survive_a_restart_of_the_emulator():
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="before")
    client.put_bucket_versioning(Bucket="before", VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_encryption(
        Bucket="before",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    client.put_bucket_lifecycle_configuration(
        Bucket="before",
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-noncurrent-versions",
                    "Status": "Enabled",
                    "Filter": {},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                }
            ]
        },
    )
    client.put_public_access_block(
        Bucket="before",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    saved = bucket_settings(client, "before")
    assert set(saved) == {
        "put_bucket_versioning",
        "put_bucket_encryption",
        "put_bucket_lifecycle_configuration",
        "put_public_access_block",
    }
    client.create_bucket(Bucket="after")  # what a restarted moto gets: a bare bucket
    assert bucket_settings(client, "after") == {}
    apply_bucket_settings(client, "after", saved)
    assert bucket_settings(client, "after") == saved


@mock_aws
def test_a_snapshot_never_writes_a_key_outside_its_folder(tmp_path, monkeypatch):
    from pipeline.app import stack_bucket
    from pipeline.app.stack_bucket import snapshot_bucket
    from pipeline.app.stack_config import StackConfig

    cfg = StackConfig(state_dir=tmp_path / "state", bucket="artifacts")
    client = boto3.client("s3", region_name="us-east-1")
    monkeypatch.setattr(stack_bucket, "_s3", lambda _cfg: client)  # the emulator in this process, not on :4566
    client.create_bucket(Bucket="artifacts")
    client.put_object(Bucket="artifacts", Key="mlflow/1/run/artifacts/model.skops", Body=b"model")
    client.put_object(Bucket="artifacts", Key="mlflow/../../../escaped.txt", Body=b"x")
    assert snapshot_bucket(cfg) == 1
    objects = cfg.snapshot_dir / "objects"
    assert (objects / "mlflow/1/run/artifacts/model.skops").read_bytes() == b"model"
    assert not any(path.name == "escaped.txt" for path in tmp_path.rglob("*"))
    manifest = json.loads((cfg.snapshot_dir / "manifest.json").read_text())
    assert manifest["objects"] == 1 and manifest["refused_keys"] == ["mlflow/../../../escaped.txt"]
