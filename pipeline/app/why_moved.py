"""Why it moved, in the monitor's loop: an alarmed batch's drift attribution (``pipeline.stats.attribution``) for
the champion serving it, put in the alarm event (and so in its notification), stored per batch and feature
(``drift_attribution``, beside ``feature_drift``) and added to the batch's ``--report-json`` record.

Computed for alarmed batches only, which bounds its cost: one call of the champion's ``predict_proba`` on
``(1 + features) x 2,000`` rows. A batch read whole is sampled from all its rows; a batch read in chunks from the
rows the reader kept (its newest ``PIPELINE_WINDOW_ROWS``). An attribution that fails (a user's model refusing
the carried-back rows) is one warning line: the batch and its alarm go on without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pipeline.app.champion import ChampionCache
from pipeline.domain.records import Event
from pipeline.domain.values import one_line
from pipeline.engine.observe import BatchObservation
from pipeline.io.data import Batch
from pipeline.io.store import MetricsStore
from pipeline.stats.attribution import Attribution, attribute_to_profile

Say = Callable[[str], None]
FIELD = "drift_attribution"  # the name in the report record, the alarm event's details and the notification
SHOWN, SHOWN_FLOOR = 10, 0.01  # the features they list: the 10 highest shares above 1% (the store keeps all)


class WhyMoved:
    """Attributes the run's alarmed batches and stores what it found; ``pending`` holds the latest, by batch."""

    def __init__(self, cache: ChampionCache, store: MetricsStore, say: Say = print) -> None:
        self.cache = cache
        self.store = store
        self.say = say
        self.pending: dict[int, Attribution] = {}

    def explain(self, index: int, batch: Batch, seen: BatchObservation) -> Attribution | None:
        """The batch's attribution for the champion serving it, or None (said in one line) when it failed."""
        cache = self.cache
        try:
            found = attribute_to_profile(batch.frame, cache.profile(), cache.scorer.proba, seen.drift.column_scores)
        except Exception as err:  # noqa: BLE001 - a user's model may fail in any way; the alarm goes on
            self.say(f"[batch {index}] warning: no drift attribution: {one_line(err, 200)}")
            return None
        found = dataclasses.replace(found, batch_rows=seen.observation.rows)
        self.pending[index] = found
        self.say(f"[batch {index}] why it moved ({found.rows} rows sampled): {found.summary()}")
        return found

    def alarm_event(self, event: Event, batch: Batch, seen: BatchObservation) -> Event:
        """The alarm event with the batch's attribution in its details (none when it failed)."""
        found = self.explain(event.batch_index, batch, seen)
        if found is None:
            return event
        return dataclasses.replace(event, details={**event.details, **details_of(found)})

    def recorded(self, run_key: str, index: int, record: dict[str, Any]) -> dict[str, Any]:
        """Once the batch is recorded: its attribution stored and added to its report record, if it has one."""
        found = self.pending.pop(index, None)
        if found is None:
            return record
        shares = [(s.feature, s.share, s.prediction_shift, s.drift_drop) for s in found.shares]
        self.store.record_attribution(run_key, index, shares, found.rows, found.method)
        return {**record, FIELD: details_of(found)[FIELD]}


def details_of(found: Attribution) -> dict[str, Any]:
    """The attribution as the alarm event and the report carry it: the features with the highest shares (at most
    ``SHOWN``, each above ``SHOWN_FLOOR``), highest first, and how it was drawn."""
    return {
        FIELD: [s.as_dict() for s in found.top(SHOWN, SHOWN_FLOOR)],
        "drift_attribution_sample": {
            "rows": found.rows,
            "of_rows": found.batch_rows,
            "features_tried": found.features_tried,
            "method": found.method,
            "sample_prediction_drift": round(found.prediction_drift, 5),
        },
    }
