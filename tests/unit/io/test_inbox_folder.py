"""An inbox folder: batch files in key order, each identified by its content, pending until recorded; and a file
given alone, identified the same way."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.io.inbox import identify, list_inbox, pending, uri_of
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
