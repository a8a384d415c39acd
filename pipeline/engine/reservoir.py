"""A bounded uniform sample of a batch read in chunks: the rows the multivariate drift score sees of it
(``pipeline.stats.multivariate``), however many chunks and rows the batch has."""

from __future__ import annotations

import numpy as np
import pandas as pd


class Reservoir:
    """A uniform sample without replacement of at most ``limit`` rows of a stream of frames: every row gets a
    random key and the ``limit`` rows with the smallest keys are kept (bottom-k sampling), so the sample does not
    depend on how the stream was cut into chunks' sizes and two reservoirs merge by the same rule. Seeded: the
    same stream gives the same sample."""

    def __init__(self, limit: int, seed: int = 0) -> None:
        self.limit = limit
        self.rng = np.random.default_rng(seed)
        self.rows: pd.DataFrame | None = None
        self.keys = np.empty(0)

    def add(self, frame: pd.DataFrame) -> None:
        if self.limit <= 0 or frame.empty:
            return
        keys = self.rng.random(len(frame))
        if len(self.keys) >= self.limit:  # only rows that beat the largest kept key can enter
            fresh = keys < self.keys.max()
            frame, keys = frame[fresh], keys[fresh]
        rows = frame if self.rows is None else pd.concat([self.rows, frame], ignore_index=True)
        keys = np.concatenate([self.keys, keys])
        if len(keys) > self.limit:
            keep = np.sort(np.argpartition(keys, self.limit - 1)[: self.limit])
            rows, keys = rows.iloc[keep], keys[keep]
        self.rows, self.keys = rows.reset_index(drop=True), keys

    def frame(self) -> pd.DataFrame | None:
        """The sample (None: nothing was added)."""
        return self.rows
