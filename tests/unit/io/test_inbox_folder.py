"""An inbox folder: batch files in key order, each identified by its content, pending until recorded; and a file
given alone, identified the same way."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.io.inbox import folder_inbox, identify, inbox_folders, list_inbox, pending, uri_of
from pipeline.io.tables import DataError, SourceUnavailable


def test_batch_files_are_listed_in_path_order_and_other_files_are_left_out(tmp_path):
    (tmp_path / "b.csv").write_text("a\n1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.parquet").write_bytes(b"PAR1")
    (tmp_path / "notes.txt").write_text("not a batch")
    (tmp_path / ".hidden.csv").write_text("a\n1\n")
    found = list_inbox(str(tmp_path), None)
    assert [item.uri for item in found] == [str(tmp_path / "b.csv"), str(tmp_path / "sub" / "a.parquet")]
    assert uri_of(found[0].identity) == str(tmp_path / "b.csv")


def test_a_file_written_again_with_new_content_is_pending_again(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("a\n1\n")
    recorded = {item.identity for item in list_inbox(str(tmp_path), None)}
    assert pending(list_inbox(str(tmp_path), None), recorded) == []
    path.write_text("a\n2\n")
    assert [item.uri for item in pending(list_inbox(str(tmp_path), None), recorded)] == [str(path)]


def test_a_missing_inbox_folder_is_one_line(tmp_path):
    with pytest.raises(DataError, match="no such inbox folder"):
        list_inbox(str(tmp_path / "nowhere"), None)


def test_a_file_given_alone_is_identified_as_the_inbox_identifies_it(tmp_path):
    (tmp_path / "today.csv").write_text("a\n1\n")
    (listed,) = list_inbox(str(tmp_path), None)
    alone = identify(str(tmp_path / "today.csv"), None)
    assert alone == listed and alone.etag == hashlib.md5(b"a\n1\n", usedforsecurity=False).hexdigest()
    (tmp_path / "today.csv").write_text("a\n2\n")  # tomorrow's file under the same name
    assert identify(str(tmp_path / "today.csv"), None).identity != alone.identity
    with pytest.raises(DataError, match="no such file"):
        identify(str(tmp_path / "gone.csv"), None)


class _HeadOnly:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def head_object(self, *, Bucket: str, Key: str) -> dict:  # noqa: N803 - boto3's names
        if self.error is not None:
            raise self.error
        return {"ETag": f'"{Bucket}-{Key}-tag"'}


def test_an_s3_object_given_alone_is_its_key_and_etag_and_an_unreachable_s3_is_one_line():
    from botocore.exceptions import EndpointConnectionError

    found = identify("s3://bucket/in/today.csv", _HeadOnly())  # type: ignore[arg-type]
    assert found.identity == "s3://bucket/in/today.csv#bucket-in/today.csv-tag"
    with pytest.raises(SourceUnavailable):
        identify("s3://bucket/in/today.csv", _HeadOnly(EndpointConnectionError(endpoint_url="http://x")))  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no S3 client"):
        identify("s3://bucket/in/today.csv", None)


def test_a_root_inbox_s_folders_are_its_sub_folders_by_name_files_and_hidden_ones_left_out(tmp_path):
    for name in ("loans", "churn", ".trash"):
        (tmp_path / name).mkdir()
    (tmp_path / "loans" / "deep").mkdir()
    (tmp_path / "stray.csv").write_text("a\n1\n")
    assert inbox_folders(str(tmp_path), None) == ["churn", "loans"]
    assert folder_inbox(str(tmp_path), "loans") == str(tmp_path / "loans")
    with pytest.raises(DataError, match="no such inbox folder"):
        inbox_folders(str(tmp_path / "nowhere"), None)


@pytest.mark.parametrize("root", ["s3://bkt/inbox/", "s3://bkt/inbox"])
def test_an_s3_root_inbox_s_folders_are_the_prefixes_under_it_each_a_model_s_inbox(root):
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bkt")
        for key in ("inbox/loans/2026-12-01.csv", "inbox/loans/old/x.csv", "inbox/churn/a.parquet", "inbox/s.csv"):
            s3.put_object(Bucket="bkt", Key=key, Body=b"a\n1\n")
        s3.put_object(Bucket="bkt", Key="inboxes/other/a.csv", Body=b"a\n1\n")  # a sibling prefix, not under root
        assert inbox_folders(root, s3) == ["churn", "loans"]
    assert folder_inbox(root, "loans") == "s3://bkt/inbox/loans/"


def test_a_bucket_s_root_is_its_top_level_prefixes():
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bkt")
        s3.put_object(Bucket="bkt", Key="loans/a.csv", Body=b"a\n1\n")
        assert inbox_folders("s3://bkt/", s3) == ["loans"]
        assert inbox_folders("s3://bkt", s3) == ["loans"]
