"""The uniform sample of a batch read in chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.engine.reservoir import Reservoir


def _stream(rows: int, chunk: int):
    for start in range(0, rows, chunk):
        yield pd.DataFrame({"row": np.arange(start, min(start + chunk, rows))})


def _sample(rows: int, chunk: int, limit: int, seed: int = 0) -> pd.DataFrame:
    reservoir = Reservoir(limit, seed)
    for frame in _stream(rows, chunk):
        reservoir.add(frame)
    sample = reservoir.frame()
    assert sample is not None
    return sample


def test_the_sample_is_bounded_and_has_distinct_rows_from_the_whole_stream():
    sample = _sample(50_000, 7_000, 1_000)
    assert len(sample) == 1_000 and sample["row"].is_unique
    # uniform: every tenth of the stream holds about a tenth of the sample (the newest rows are not favoured)
    counts = np.bincount(sample["row"].to_numpy() // 5_000, minlength=10)
    assert counts.min() > 50 and counts.max() < 150


def test_a_short_stream_is_kept_whole_and_the_same_seed_gives_the_same_sample():
    assert sorted(_sample(300, 100, 1_000)["row"]) == list(range(300))
    assert _sample(20_000, 3_000, 500, seed=4).equals(_sample(20_000, 3_000, 500, seed=4))


def test_a_reservoir_of_no_rows_keeps_nothing():
    assert Reservoir(0).frame() is None
    empty = Reservoir(0)
    empty.add(pd.DataFrame({"row": [1, 2]}))
    assert empty.frame() is None
