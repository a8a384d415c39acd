"""A schema file at a local path or in S3 (in-process moto): the same checks, one-line failures, a size bound."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from pipeline.cli.common import given_schema
from pipeline.domain.schema import SchemaError, builtin_schema, read_schema
from pipeline.io.schema_file import MAX_SCHEMA_MB, read_schema_at
from pipeline.settings import Settings

SCHEMA = {
    "target": {"column": "churned", "positive": "yes", "negative": "no"},
    "numerical": ["tenure", "spend"],
    "categorical": ["plan"],
}


@pytest.fixture
def bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        yield s3


def test_a_schema_in_s3_reads_as_the_same_file_would_locally(bucket, tmp_path):
    text = json.dumps(SCHEMA)
    bucket.put_object(Bucket="models", Key="churn/features.json", Body=text.encode())
    (tmp_path / "features.json").write_text(text)
    from_s3 = read_schema_at("s3://models/churn/features.json", bucket)
    assert from_s3 == read_schema(tmp_path / "features.json")
    assert from_s3.target == "churned" and from_s3.numerical == ("tenure", "spend")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "s3://models/f.json: not valid JSON"),
        (b"\xff\xfe", "s3://models/f.json: not UTF-8 text"),
        (json.dumps({"numerical": ["a"]}).encode(), "s3://models/f.json"),
        (b" " * int(MAX_SCHEMA_MB * 1024 * 1024 + 1), f"over the {MAX_SCHEMA_MB:g} MB a schema file may hold"),
    ],
)
def test_a_bad_schema_object_is_one_line_naming_it(bucket, body, says):
    bucket.put_object(Bucket="models", Key="f.json", Body=body)
    with pytest.raises(SchemaError) as raised:
        read_schema_at("s3://models/f.json", bucket)
    assert says in str(raised.value) and "\n" not in str(raised.value)


def test_a_missing_object_is_one_line(bucket):
    with pytest.raises(SchemaError, match=r"^s3://models/none.json: "):
        read_schema_at("s3://models/none.json", bucket)


def test_the_cli_takes_an_s3_schema_from_the_option_or_the_setting(bucket, monkeypatch):
    """``--schema s3://...`` keeps its double slash (not a local path), and PIPELINE_SCHEMA_PATH may name S3 too."""
    bucket.put_object(Bucket="models", Key="churn/features.json", Body=json.dumps(SCHEMA).encode())
    settings = Settings(_env_file=None, s3_endpoint_url=None, aws_region="us-east-1")  # type: ignore[call-arg]
    schema, source = given_schema("s3://models/churn/features.json", settings)
    assert schema is not None and schema.categorical == ("plan",)
    assert source == "--schema s3://models/churn/features.json"
    configured = Settings(  # type: ignore[call-arg]
        _env_file=None, s3_endpoint_url=None, aws_region="us-east-1", schema_path="s3://models/churn/features.json"
    )
    schema, source = given_schema(None, configured)
    assert schema is not None and source == "PIPELINE_SCHEMA_PATH s3://models/churn/features.json"
    assert given_schema(None, Settings(_env_file=None, schema_path=""))[0] is None  # type: ignore[call-arg]
    assert builtin_schema().target != schema.target
