import threading
from pathlib import Path

import pandas as pd
import pytest

from pipeline.domain.schema import FeatureSchema
from pipeline.engine.local_readers import check_before_reading, read_ahead, read_chunks
from pipeline.io.tables import DataError, InputLimits


def _chunks(count, *, fail_at=None, closed=None):
    try:
        for i in range(count):
            if i == fail_at:
                raise DataError(f"day.csv: column 'age' holds non-numeric value 'x{i}'")
            yield pd.DataFrame({"i": [i, i]})
    finally:
        if closed is not None:
            closed.set()


def _readers():
    return [thread for thread in threading.enumerate() if thread.name == "read-ahead"]


def test_the_chunks_come_in_order_and_the_reader_stops():
    got = [int(chunk["i"].iloc[0]) for chunk in read_ahead(_chunks(7))]

    assert got == list(range(7))
    assert _readers() == []


def test_a_readers_error_reaches_the_caller_after_the_chunks_before_it():
    got = []
    with pytest.raises(DataError, match="holds non-numeric value 'x3'"):
        for chunk in read_ahead(_chunks(7, fail_at=3)):
            got.append(int(chunk["i"].iloc[0]))

    assert got == [0, 1, 2]
    assert _readers() == []


def test_closing_early_stops_the_reader_and_closes_its_source():
    closed = threading.Event()
    chunks = read_ahead(_chunks(1_000, closed=closed))
    assert int(next(chunks)["i"].iloc[0]) == 0

    chunks.close()

    assert closed.is_set()
    assert _readers() == []


SCHEMA = FeatureSchema(numerical=("x",), categorical=("c",), target="y", positive=1, negative=0)


def test_a_chunked_csv_s_header_line_is_read_no_further_than_its_cap(tmp_path, monkeypatch):
    path = tmp_path / "one_line.csv"
    path.write_bytes(b"x," * 500_000)  # a 1 MB header with no end
    asked: list[int] = []
    real_open = Path.open

    def spy(self, *args, **kwargs):
        handle = real_open(self, *args, **kwargs)
        real_readline = handle.readline

        def readline(size=-1):
            asked.append(size)
            return real_readline(size)

        handle.readline = readline
        return handle

    monkeypatch.setattr(Path, "open", spy)
    with pytest.raises(DataError) as raised:
        list(read_chunks(path, "s3://in/one_line.csv", 100, SCHEMA, InputLimits(header_bytes=4096)))
    assert str(raised.value) == "s3://in/one_line.csv: the header line is over 4,096 bytes (PIPELINE_MAX_HEADER_BYTES)"
    assert asked == [4098]


def test_a_chunked_csv_over_the_column_or_row_cap_is_refused(tmp_path):
    path = tmp_path / "b.csv"
    pd.DataFrame({"x": range(250), "c": "a", "y": 1}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"b\.csv: 3 columns, over the limit of 2 \(PIPELINE_MAX_COLUMNS\)"):
        list(read_chunks(path, "b.csv", 100, SCHEMA, InputLimits(columns=2)))
    with pytest.raises(DataError, match=r"b\.csv: 250 rows, over the limit of 200 \(PIPELINE_MAX_ROWS\)"):
        list(read_chunks(path, "b.csv", 100, SCHEMA, InputLimits(rows=200)))
    assert sum(len(chunk) for chunk in read_chunks(path, "b.csv", 100, SCHEMA, InputLimits(rows=250))) == 250


def test_a_chunked_parquet_file_over_the_row_cap_is_refused_before_a_row_group_is_read(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    path = tmp_path / "b.parquet"
    pd.DataFrame({"x": [1.0] * 3000, "c": "a", "y": 1}).to_parquet(path)

    def no_data(*args, **kwargs):
        raise AssertionError("a row group was read")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", no_data)
    with pytest.raises(DataError, match=r"b\.parquet: 3,000 rows, over the limit of 2,999 \(PIPELINE_MAX_ROWS\)"):
        list(read_chunks(path, "b.parquet", 100, SCHEMA, InputLimits(rows=2999)))


@pytest.mark.parametrize(
    "message",
    [
        "In CSV column #1: CSV conversion error to double: invalid value 'forty'",  # read on several threads
        "In CSV column #1: Row #4002: CSV conversion error to double: invalid value 'forty'",  # on one thread
    ],
)
def test_pyarrow_s_conversion_error_names_the_column_however_many_threads_read(message):
    from pipeline.engine.local_readers import _arrow_message

    assert _arrow_message("b.csv", message, ["id", "age"]) == "b.csv: column 'age' holds non-numeric value 'forty'"


class RangedStore:
    """An S3 client holding objects in memory that serves ranged reads only, and counts the bytes it sent."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects, self.sent = objects, 0

    def head_object(self, *, Bucket, Key):  # noqa: N803 - boto3's names
        return {"ContentLength": len(self.objects[Key])}

    def get_object(self, *, Bucket, Key, Range):  # noqa: N803
        import io

        start, end = (int(part) for part in Range.removeprefix("bytes=").split("-"))
        data = self.objects[Key][start : end + 1]
        self.sent += len(data)
        return {"Body": io.BytesIO(data)}


def test_an_s3_csv_over_the_header_cap_is_refused_from_its_first_bytes_alone():
    store = RangedStore(
        {"one-line.csv": b"x" * (8 << 20), "wide.csv": (",".join(f"c{i}" for i in range(50)) + "\n1").encode()}
    )
    with pytest.raises(
        DataError, match=r"one-line\.csv: the header line is over 1,024 bytes \(PIPELINE_MAX_HEADER_BYTES\)"
    ):
        check_before_reading("s3://b/one-line.csv", store, InputLimits(header_bytes=1024))
    assert store.sent <= 1026  # the cap and a line end: never the object
    with pytest.raises(DataError, match=r"wide\.csv: 50 columns, over the limit of 10 \(PIPELINE_MAX_COLUMNS\)"):
        check_before_reading("s3://b/wide.csv", store, InputLimits(header_bytes=1024, columns=10))
    check_before_reading("s3://b/wide.csv", store, InputLimits(header_bytes=1024, columns=50))


def test_an_s3_parquet_file_over_the_row_cap_is_refused_from_its_footer(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "claims.parquet"
    pq.write_table(pa.table({"x": pa.nulls(3_000_000, pa.int8()), "y": pa.array([1] * 3_000_000, pa.int8())}), path)
    store = RangedStore({"claims.parquet": path.read_bytes()})
    with pytest.raises(
        DataError, match=r"claims\.parquet: 3,000,000 rows, over the limit of 2,999,999 \(PIPELINE_MAX_ROWS\)"
    ):
        check_before_reading("s3://b/claims.parquet", store, InputLimits(rows=2_999_999))
    with pytest.raises(DataError, match=r"claims\.parquet: 2 columns, over the limit of 1 \(PIPELINE_MAX_COLUMNS\)"):
        check_before_reading(str(path), None, InputLimits(columns=1))
    check_before_reading("s3://b/claims.parquet", store, InputLimits(rows=3_000_000, columns=2))


def test_a_local_csv_is_checked_before_reading_and_other_filesystems_are_left_to_the_engine(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match=r"wide\.csv: 3 columns, over the limit of 2 \(PIPELINE_MAX_COLUMNS\)"):
        check_before_reading(str(path), None, InputLimits(columns=2))
    check_before_reading("hdfs://cluster/wide.csv", None, InputLimits(columns=2))
