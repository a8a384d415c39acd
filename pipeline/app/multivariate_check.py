"""The monitor's multivariate drift score on a batch: the glue between the champion cache's domain classifier
(fitted once per reference, ``pipeline.stats.multivariate``) and the batch's observation.

A batch read whole is sampled from all its rows; a batch read in chunks from the uniform sample the local engine
kept of all its rows (``pipeline.engine.reservoir``), or, without one (a Spark engine's result), from the newest
rows it kept. The batch's index seeds the draw: a batch monitored again is measured the same.
"""

from __future__ import annotations

import pandas as pd

from pipeline.app.champion import ChampionCache
from pipeline.engine.observe import BatchObservation


def measured(cache: ChampionCache, rows: pd.DataFrame | None, index: int, seen: BatchObservation) -> BatchObservation:
    """``seen`` with the multivariate drift score of ``rows`` (the batch, or a sample of it) against the
    reference; unchanged when the score is turned off or there are no rows."""
    classifier = cache.domain_classifier()
    if classifier is None or rows is None:
        return seen
    return seen.with_multivariate(classifier.measure(rows, seed=index))
