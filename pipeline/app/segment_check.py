"""Per-segment monitoring in the monitor's loop (``pipeline.stats.segments``): for a schema with ``segments``, every
recorded batch's segments are measured against the reference's, stored (``segment_metrics``), added to its
``--report-json`` record (``segments``) and said in one line when one alarms or the mix moved.

A segment alarm is reported, stored and shown; it does not retrain by itself (the batch's own rules decide that):
a segment is a small batch, and the retrain's challenger is judged on the whole batch's rows.

Rows: a batch read whole is measured on all its rows; a batch read in chunks (or profiled by a Spark job) on the
uniform sample the reader kept of all its rows (``PIPELINE_MULTIVARIATE_SAMPLE_ROWS``, ``pipeline.engine.reservoir``)
or, without one (multivariate drift turned off, a Spark job's result), on the newest rows it kept; said once. The
shares and the mix test are then those of the sample (a uniform sample: unbiased, with the sample's noise). Labels:
a fully labelled set of rows gives realized AUC and positive rate; a partly labelled one has none per segment. The
label-free estimate reads the champion's estimator alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pipeline.app.champion import ChampionCache
from pipeline.domain.policy_types import Rules
from pipeline.domain.values import one_line
from pipeline.engine.observe import BatchObservation
from pipeline.io.data import Batch, labels_of
from pipeline.io.store import MetricsStore
from pipeline.stats.segments import SegmentReport, measure_segments

Say = Callable[[str], None]
FIELD = "segments"  # the name in the report record


class SegmentWatch:
    """Measures, stores and reports each recorded batch's segments (nothing when the schema names none)."""

    def __init__(self, cache: ChampionCache, store: MetricsStore, say: Say = print) -> None:
        self.cache = cache
        self.store = store
        self.say = say

    def recorded(
        self, run_key: str, index: int, batch: Batch, seen: BatchObservation, rules: Rules, record: dict[str, Any]
    ) -> tuple[dict[str, Any], SegmentReport | None]:
        """The batch's record with its segments (stored), and their report; the record as it was, and None, when
        the schema names none or they failed."""
        cache = self.cache
        specs = cache.schema.segments
        if not specs:
            return record, None
        if seen.profile is not None:
            kept = "a uniform sample of its rows" if seen.uniform is not None else "the newest rows kept"
            cache.say_once("segments-kept", f"segments of a batch read in chunks are measured on {kept}")
        try:
            report = self.measure(batch, seen, rules)
        except Exception as err:  # noqa: BLE001 - a segment's failure must not stop the batch
            self.say(f"[batch {index}] warning: no segment metrics: {one_line(err, 200)}")
            return record, None
        self.store.record_segments(run_key, index, stored_rows(report))
        if report.alarmed() or any(d.moved != "none" for d in report.decompositions):
            self.say(f"[batch {index}] segments: {report.summary()}")
        return {**record, FIELD: report.as_dict()}, report

    def measure(self, batch: Batch, seen: BatchObservation, rules: Rules) -> SegmentReport:
        cache = self.cache
        profile = cache.profile()
        frame, proba = profile.reference_data()
        rows = seen.uniform if seen.uniform is not None else batch.frame
        proba_now = seen.proba
        if rows is not batch.frame or proba_now is None or len(proba_now) != batch.rows:
            proba_now = np.asarray(cache.scorer.proba(rows), dtype=np.float64)
        return measure_segments(
            cache.schema.segments,
            (rows, proba_now, all_labels(rows, cache)),
            (frame, proba, all_labels(frame, cache)),
            rules,
            norm=float(profile.prediction_profile.norm),
            estimator=cache.estimator(),
        )


def alarmed_segments(report: SegmentReport | None) -> list[tuple[str, str]] | None:
    """The report's alarmed segments as (name, reason) for the notifications; None for a batch not measured."""
    return None if report is None else [(s.name, s.reason()) for s in report.alarmed()]


def all_labels(frame: pd.DataFrame, cache: ChampionCache) -> np.ndarray | None:
    """The rows' 0/1 labels when every row has one, else None."""
    target = cache.schema.target
    if target not in frame.columns or len(frame) == 0 or frame[target].isna().any():
        return None
    return labels_of(frame, cache.schema)


def stored_rows(report: SegmentReport) -> list[dict[str, Any]]:
    """The report's segments as ``segment_metrics`` rows."""
    return [
        {**s.as_dict(), "segment_column": s.column, "segment_value": s.value, "reason": s.reason() or None}
        for s in report.segments
    ]
