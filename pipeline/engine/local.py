"""Batches of any size: read in chunks, each chunk validated, scored and profiled, the profiles merged.

A batch file larger than ``PIPELINE_CHUNK_MB`` is never held whole. The local engine reads it with pyarrow's
streaming readers (``pipeline.engine.local_readers``: CSV blocks, Parquet row groups; an ``s3://`` object is
first streamed to a temporary file), ``PIPELINE_CHUNK_ROWS`` rows at a time; the Spark engine
(``pipeline.engine.spark``) does the same per partition. Both run ``ChunkWork.run`` on every chunk, so they agree:

1. conform: CSV text is read as text, then a categorical column the reference holds as numbers gets its
   numeric text as numbers (what pandas' reader does to a whole file), so a chunk's categories are the
   reference's; numerical columns are converted by ``validate_frame`` as always;
2. validate (``validate_frame``), score (the champion's P(positive)), and profile against the reference's fixed
   bins (``pipeline.stats.binned_reference``), with the calibrated probabilities the performance estimate needs;
3. keep the newest ``sample_rows`` validated rows: the sample a retrain's window and a new reference take from
   the batch (a huge batch cannot blow up a retrain), and a uniform sample of ``PIPELINE_MULTIVARIATE_SAMPLE_ROWS``
   rows (``pipeline.engine.reservoir``) that the multivariate drift score sees.

The merged profile gives the observation the policy judges (``observation_of_profile``): drift scores within
the bound proved in ``pipeline.stats.binned_reference``, ROC AUC within ``LabelQuality.roc_auc_bound``, accuracy
exact, the estimate from binned scores. A batch that fits one chunk takes the exact in-memory path instead.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema
from pipeline.domain.values import finite
from pipeline.engine.local_readers import check_before_reading, csv_header, local_copy, read_ahead, read_chunks
from pipeline.engine.observe import BatchObservation, assemble
from pipeline.engine.reservoir import Reservoir
from pipeline.io.data import Batch, known_labels, validate_frame
from pipeline.io.tables import NO_LIMITS, DataError, InputLimits, ObjectStore
from pipeline.model.scoring import Scorer
from pipeline.settings import Settings
from pipeline.stats.binned_reference import BinnedReference
from pipeline.stats.estimate import Estimator
from pipeline.stats.profile import BatchProfile

if TYPE_CHECKING:
    from pipeline.stats.noise import NoiseBand

ChunkSink = Callable[[Batch, np.ndarray], None]  # gets each chunk once scored (the prediction log's writer)
# How a batch file is observed in chunks: (uri, S3 client, the chunks' work, settings, sink) -> the merged result.
Engine = Callable[[str, "ObjectStore | None", "ChunkWork", Settings, "ChunkSink | None"], "Chunked"]


def numeric_categories(reference: pd.DataFrame, schema: FeatureSchema) -> frozenset[str]:
    """The categorical columns the reference holds as numbers (int-coded categories)."""
    return frozenset(
        name
        for name in schema.categorical
        if name in reference.columns and pd.api.types.is_numeric_dtype(reference[name])
    )


def conform(raw: pd.DataFrame, schema: FeatureSchema, numeric: frozenset[str]) -> pd.DataFrame:
    """A chunk read as text, with the categories the reference holds as numbers parsed as numbers where they
    parse (a stray text value stays text, as in a whole file pandas would read as text)."""
    names = [name for name in schema.categorical if name in numeric and name in raw.columns]
    names = [name for name in names if raw[name].dtype == object]
    if not names:
        return raw
    out = raw.copy()
    for name in names:
        text = raw[name]
        parsed = pd.to_numeric(text, errors="coerce")
        every = bool((parsed.notna() == text.notna()).all())
        out[name] = parsed if every else parsed.astype(object).where(parsed.notna(), text)
    return out


@dataclass(frozen=True)
class ChunkWork:
    """What every chunk goes through, the same in every engine (shipped once to Spark's executors)."""

    schema: FeatureSchema
    scorer: Scorer
    binned: BinnedReference
    estimator: Estimator | None
    numeric_categories: frozenset[str]

    def run(self, raw: pd.DataFrame, source: str) -> tuple[Batch, np.ndarray, BatchProfile]:
        """Validate, score and profile one chunk; errors are the same one-line ``DataError`` as a whole file's."""
        batch = validate_frame(conform(raw, self.schema, self.numeric_categories), self.schema, source)
        proba = self.scorer.proba(batch.frame)
        known = known_labels(batch, self.schema)
        calibrated = None if self.estimator is None else self.estimator.calibrated(proba)
        return batch, proba, self.binned.profile(batch.frame, proba, known, calibrated)


@dataclass
class Chunked:
    """A batch observed chunk by chunk: the merged profile and what was kept of its rows."""

    source: str
    profile: BatchProfile
    sample: pd.DataFrame  # the newest validated rows, at most the sample size
    has_labels: bool
    extra_columns: list[str] = field(default_factory=list)
    chunks: int = 0
    uniform: pd.DataFrame | None = None  # a uniform sample of the validated rows (``Reservoir``), when one was kept
    unlabelled_rows: int = 0

    @property
    def rows(self) -> int:
        return self.profile.rows

    def columns_with_values(self, schema: FeatureSchema) -> set[str]:
        """The feature columns with at least one value in the batch."""
        numerical = {
            name
            for name, counts in zip(schema.numerical, self.profile.numerical, strict=True)
            if counts.missing < self.rows
        }
        return numerical | {
            name
            for name, counts in zip(schema.categorical, self.profile.categorical, strict=True)
            if counts.missing < self.rows
        }

    def as_batch(self) -> Batch:
        """The batch as the monitor keeps it: the sample's rows, the whole batch's row count."""
        return Batch(
            source=self.source,
            frame=self.sample,
            has_labels=self.has_labels,
            extra_columns=self.extra_columns,
            total_rows=self.rows,
            unlabelled_rows=self.unlabelled_rows,
        )


class Newest:
    """The newest ``limit`` rows of a stream of frames."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[pd.DataFrame] = []
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        self.parts.append(frame.iloc[max(0, len(frame) - self.limit) :])
        self.rows += len(self.parts[-1])
        while self.parts and self.rows - len(self.parts[0]) >= self.limit:
            self.rows -= len(self.parts.pop(0))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame()
        joined = pd.concat(self.parts, ignore_index=True)
        return joined.iloc[max(0, len(joined) - self.limit) :].reset_index(drop=True)


def observe_chunks(
    chunks: Iterator[pd.DataFrame],
    source: str,
    work: ChunkWork,
    sample_rows: int,
    on_chunk: ChunkSink | None = None,
    uniform_rows: int = 0,
) -> Chunked:
    """Run every chunk through ``work`` and merge; ``on_chunk`` gets each validated chunk and its P(positive)
    (the prediction log); ``uniform_rows``: the size of the uniform sample of the rows kept besides the newest
    (0: none). A chunk whose labels are all empty is unlabelled rows of a batch labelled elsewhere."""
    merged: BatchProfile | None = None
    newest = Newest(sample_rows)
    uniform = Reservoir(uniform_rows)
    labelled, unlabelled = False, 0
    extra: list[str] | None = None
    count = 0
    for raw in chunks:
        batch, proba, profile = work.run(raw, source)
        del raw
        labelled, unlabelled = labelled or batch.has_labels, unlabelled + batch.unlabelled_rows
        if extra is None:
            extra = batch.extra_columns
        merged = profile if merged is None else merged.merge(profile)  # one profile held, however many chunks
        newest.add(batch.frame)
        uniform.add(batch.frame)
        if on_chunk is not None:
            on_chunk(batch, proba)
        count += 1
    if merged is None:
        raise DataError(f"{source}: no rows (header only or empty)")
    return Chunked(
        source,
        merged,
        newest.frame(),
        labelled,
        extra or [],
        count,
        uniform=uniform.frame(),
        unlabelled_rows=unlabelled,
    )


def observation_of_profile(
    binned: BinnedReference,
    chunked: Chunked,
    band: NoiseBand | None = None,
    false_rate: float = 0.01,
    estimator: Estimator | None = None,
) -> BatchObservation:
    """What the policy judges, from a merged profile: the fields of ``observe.observation_of`` (the drift scores
    judged against ``band``, the reference's noise at the batch's size, when one is given). The estimate's
    interval counts the calibration's own spread when given the ``estimator`` the chunks were calibrated with."""
    profile = chunked.profile
    roc_auc = accuracy = None
    positives: int | None = None
    labelled: tuple[int, float, float] | None = None
    if chunked.has_labels:
        quality = binned.quality(profile)
        roc_auc, accuracy, positives = finite(quality.roc_auc), quality.accuracy, quality.positives
        if chunked.unlabelled_rows:
            labelled = (quality.labelled, *profile.labels.prediction_summary())
    estimate = profile.expected.estimated(estimator) if int(profile.expected.rows.sum()) else None
    return assemble(
        binned.measure(profile).judged(band, false_rate),
        rows=profile.rows,
        mean_prediction=profile.mean_prediction,
        prediction_variance=profile.proba_spread,
        positives=positives,
        roc_auc=roc_auc,
        accuracy=accuracy,
        estimate=estimate,
        profile=profile,
        labelled=labelled,
    )


def chunked_file(
    source: str,
    s3_client: ObjectStore | None,
    work: ChunkWork,
    *,
    chunk_rows: int,
    sample_rows: int,
    on_chunk: ChunkSink | None = None,
    limits: InputLimits = NO_LIMITS,
    uniform_rows: int = 0,
) -> Chunked:
    """Observe a batch file chunk by chunk with the local engine (refused when over ``limits``)."""
    check_before_reading(source, s3_client, limits)  # refused before an S3 object is fetched
    with tempfile.TemporaryDirectory(prefix="batch-") as folder:
        path = local_copy(source, s3_client, folder)
        with closing(read_ahead(read_chunks(path, source, chunk_rows, work.schema, limits))) as chunks:
            chunked = observe_chunks(chunks, source, work, sample_rows, on_chunk, uniform_rows)
        if path.suffix.lower() == ".csv":
            known = {*work.schema.features, work.schema.target, *([work.schema.id] if work.schema.id else [])}
            chunked.extra_columns = [name for name in csv_header(path)[0] if name not in known]
        return chunked


def local_engine(
    uri: str, s3: ObjectStore | None, work: ChunkWork, settings: Settings, sink: ChunkSink | None
) -> Chunked:
    """The local engine: pyarrow's readers in this process."""
    return chunked_file(
        uri,
        s3,
        work,
        chunk_rows=settings.chunk_rows,
        sample_rows=settings.window_rows,
        on_chunk=sink,
        limits=InputLimits.of(settings.engine),
        uniform_rows=settings.multivariate_sample_rows if settings.multivariate_drift else 0,
    )
