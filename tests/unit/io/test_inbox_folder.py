"""An inbox folder: batch files in key order, each identified by its content, pending until recorded."""

from __future__ import annotations

import pytest

from pipeline.io.inbox import list_inbox, pending, uri_of
from pipeline.io.tables import DataError


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
