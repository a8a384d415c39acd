"""The inbox files set aside: which one a key names, and clearing it (``pipeline inbox retry``)."""

from __future__ import annotations

import pytest

from pipeline.app.rejections import matching, names_file, retry


class FakeStore:
    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.cleared: list[tuple[str, list[str]]] = []

    def rejections_of_model(self, model_name: str) -> list[dict]:
        return [row for row in self.rows if row["model_name"] == model_name]

    def clear_rejections(self, model_name: str, uris: list[str]) -> int:
        self.cleared.append((model_name, uris))
        return len(uris)


def _row(uri: str, etag: str = "e1", model: str = "m") -> dict:
    return {"uri": uri, "etag": etag, "model_name": model, "reason": f"{uri}: bad"}


def test_a_file_is_named_by_its_uri_its_key_in_the_bucket_or_its_local_path(tmp_path, monkeypatch):
    assert names_file("s3://bucket/inbox/m/a.csv", "s3://bucket/inbox/m/a.csv")
    assert names_file("s3://bucket/inbox/m/a.csv", "inbox/m/a.csv")
    assert not names_file("s3://bucket/inbox/m/a.csv", "a.csv")
    assert not names_file("s3://bucket/inbox/m/a.csv", "s3://other/inbox/m/a.csv")
    monkeypatch.chdir(tmp_path)
    assert names_file(str(tmp_path / "inbox" / "a.csv"), "inbox/a.csv")
    assert not names_file(str(tmp_path / "inbox" / "a.csv"), "inbox/b.csv")


def test_retry_clears_every_content_of_the_named_file_of_that_model_only():
    store = FakeStore([_row("s3://b/in/a.csv"), _row("s3://b/in/a.csv", "e2"), _row("s3://b/in/c.csv")])
    cleared = retry(store, "m", "in/a.csv")  # type: ignore[arg-type]
    assert [row["etag"] for row in cleared] == ["e1", "e2"]
    assert store.cleared == [("m", ["s3://b/in/a.csv"])]
    assert matching(store.rows, "s3://b/in/c.csv") == [store.rows[2]]


def test_retry_of_a_file_not_set_aside_lists_the_ones_that_are():
    store = FakeStore([_row("s3://b/in/a.csv"), _row("s3://b/in/x.csv", model="other")])
    with pytest.raises(LookupError) as raised:
        retry(store, "m", "in/b.csv")  # type: ignore[arg-type]
    assert str(raised.value) == "in/b.csv: no rejected batch of m is that file; the rejected ones: s3://b/in/a.csv"
    assert store.cleared == []
    with pytest.raises(LookupError, match="none is set aside"):
        retry(FakeStore([]), "m", "in/b.csv")  # type: ignore[arg-type]
