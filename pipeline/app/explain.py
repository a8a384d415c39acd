"""``pipeline explain``: why a recorded batch's predictions moved, on demand (``pipeline.stats.attribution``).

The batch is read again from its file (its recorded ``source``) chunk by chunk, keeping a uniform sample of at
most ``KEPT_ROWS`` rows (a seeded reservoir: memory bounded whatever the file's size), whose distribution the
columns are carried back from and of which ``attribution.MAX_ROWS`` are scored; it is scored by
the version that served it, against that version's stored reference (or one given), and the attribution is
stored for the batch (``drift_attribution``, replacing an earlier one) and returned. A simulated batch (its rows
never stored) cannot be explained.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.app.report import batch_file
from pipeline.domain.schema import FeatureSchema
from pipeline.engine.local import conform, numeric_categories
from pipeline.engine.local_readers import local_copy, read_chunks
from pipeline.io.data import Batch, validate_frame
from pipeline.io.store import MetricsStore
from pipeline.io.tables import ObjectStore
from pipeline.model.registry import Registry
from pipeline.model.scoring import Scorer
from pipeline.settings import Settings
from pipeline.stats import attribution
from pipeline.stats.attribution import Attribution
from pipeline.stats.drift import ReferenceProfile

KEPT_ROWS = 20_000  # the rows of a batch file kept while reading it (a reservoir), of which 2,000 are scored


@dataclass(frozen=True)
class Explained:
    """A recorded batch's attribution, with the prediction drift of the sample it was drawn on."""

    run_key: str
    batch_index: int
    version: int
    source: str
    found: Attribution
    recorded_prediction_drift: float

    def record(self) -> dict[str, Any]:
        """The JSON ``pipeline explain --json`` writes."""
        from pipeline.app.why_moved import details_of

        return {
            "run_key": self.run_key,
            "batch": self.batch_index,
            "champion_version": self.version,
            "source": self.source,
            "prediction_drift": self.recorded_prediction_drift,
            **details_of(self.found),
            "all_features": self.found.as_list(),
        }


def sample_file(
    source: str,
    schema: FeatureSchema,
    s3_client: ObjectStore | None,
    numeric: frozenset[str],
    *,
    rows: int = KEPT_ROWS,
    chunk_rows: int = 100_000,
    seed: int = 0,
) -> tuple[Batch, int]:
    """A uniform sample of at most ``rows`` validated rows of a batch file, read ``chunk_rows`` at a time (each row
    drawn a seeded random key, the ``rows`` smallest kept), and the file's row count."""
    rng = np.random.default_rng(seed)
    kept: pd.DataFrame | None = None
    keys = np.empty(0)
    total = 0
    with tempfile.TemporaryDirectory(prefix="explain-") as folder:
        path = local_copy(source, s3_client, folder)
        for raw in read_chunks(path, source, chunk_rows, schema):
            total += len(raw)
            chunk_keys = rng.random(len(raw))
            frame = raw if kept is None else pd.concat([kept, raw], ignore_index=True)
            keys = np.concatenate([keys, chunk_keys])
            order = np.argsort(keys, kind="stable")[:rows]
            order.sort()
            kept, keys = frame.iloc[order].reset_index(drop=True), keys[order]
    if kept is None:
        kept = pd.DataFrame(columns=list(schema.features))
    return validate_frame(conform(kept, schema, numeric), schema, source), total


def explain_batch(
    *,
    batch: Mapping[str, Any],
    registry: Registry,
    settings: Settings,
    schema: FeatureSchema,
    reference: Batch,
    s3_client: ObjectStore | None,
    store: MetricsStore | None,
) -> Explained:
    """The attribution of one recorded batch (a row of ``batches_of_run``) for the version that served it, stored
    for the batch when ``store`` is given."""
    from pipeline.model.serving import load_version

    index = int(batch["batch_index"])
    source = batch_file(str(batch["source"]))
    info = registry.version(int(batch["champion_version"]))
    scorer = load_version(registry, info, schema, settings).scorer
    found = explain_file(
        source,
        scorer,
        reference,
        schema,
        s3_client,
        prediction_threshold=float(batch["drift_threshold"]),
        column_threshold=settings.column_drift_threshold,
        chunk_rows=settings.chunk_rows,
    )
    if store is not None:
        shares = [(s.feature, s.share, s.prediction_shift, s.drift_drop) for s in found.shares]
        store.record_attribution(str(batch["run_key"]), index, shares, found.rows, found.method)
    return Explained(str(batch["run_key"]), index, info.version, source, found, float(batch["prediction_drift"]))


def explain_file(
    source: str,
    scorer: Scorer,
    reference: Batch,
    schema: FeatureSchema,
    s3_client: ObjectStore | None,
    *,
    prediction_threshold: float,
    column_threshold: float,
    chunk_rows: int,
) -> Attribution:
    """The attribution of a batch file for ``scorer``'s model against ``reference``: the file read in chunks into
    a seeded sample (``sample_file``), whose own drift scores choose the features tried when there are many."""
    profile = ReferenceProfile.scored(
        reference.frame,
        scorer,
        schema,
        prediction_threshold=prediction_threshold,
        column_threshold=column_threshold,
    )
    numeric = numeric_categories(reference.frame, schema)
    sample, rows = sample_file(source, schema, s3_client, numeric, rows=KEPT_ROWS, chunk_rows=chunk_rows)
    scores = profile.measure(sample.frame, np.asarray(scorer.proba(sample.frame))).column_scores
    found = attribution.attribute_to_profile(sample.frame, profile, scorer.proba, scores)
    return Attribution(found.shares, found.prediction_drift, found.rows, rows, found.features_tried, found.method)
