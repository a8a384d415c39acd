"""Names from outside become paths inside their folder only: keys with ``..``, absolute or encoded names."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from pipeline.engine.spark_job import _local_model
from pipeline.io.paths import OutsideFolder, path_inside
from pipeline.io.tables import DataError


@pytest.mark.parametrize("name", ["model.skops", "sub/dir/model.json", "%2e%2e/x", "a/../b", "..a", "a..b/c"])
def test_relative_names_stay_inside(tmp_path, name):
    folder = tmp_path / "folder"
    folder.mkdir()
    path = path_inside(folder, name, "test")
    assert folder.resolve() in path.parents


@pytest.mark.parametrize(
    "name", ["../escape", "a/../../escape", "/etc/passwd", "\\\\host\\share", "", ".", "a/..", "x\x00"]
)
def test_names_that_leave_the_folder_or_name_it_are_refused_in_one_line(tmp_path, name):
    with pytest.raises(OutsideFolder) as refused:
        path_inside(tmp_path / "folder", name, "s3://b/k")
    assert str(refused.value).startswith("s3://b/k: ") and "\n" not in str(refused.value)


@mock_aws
def test_the_spark_jobs_model_download_refuses_a_key_that_climbs_out(tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="models/m1/MLmodel", Body=b"flavors: {}")
    s3.put_object(Bucket="artifacts", Key="models/m1/../../escaped.txt", Body=b"x")
    folder = tmp_path / "job" / "model"
    folder.mkdir(parents=True)
    with pytest.raises(DataError, match="would be written outside"):
        _local_model("s3://artifacts/models/m1", s3, str(folder))
    assert not any(path.name == "escaped.txt" for path in tmp_path.rglob("*"))


@mock_aws
def test_the_spark_jobs_model_download_copies_a_well_formed_folder(tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="models/m1/MLmodel", Body=b"flavors: {}")
    s3.put_object(Bucket="artifacts", Key="models/m1/data/model.skops", Body=b"bytes")
    s3.put_object(Bucket="artifacts", Key="models/m1/empty/", Body=b"")
    folder = tmp_path / "model"
    folder.mkdir()
    assert _local_model("s3://artifacts/models/m1", s3, str(folder)) == str(folder)
    assert (folder / "data" / "model.skops").read_bytes() == b"bytes" and (folder / "MLmodel").exists()
