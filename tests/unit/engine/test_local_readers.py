import threading

import pandas as pd
import pytest

from pipeline.engine.local_readers import read_ahead
from pipeline.io.tables import DataError


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
