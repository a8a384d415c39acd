"""How a monitor run reads a batch: whole, or in chunks through an engine (local or Spark) when it is large,
with the prediction log written as the rows are scored; and the batch profile stored beside its metrics."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.app import multivariate_check
from pipeline.app.champion import ChampionCache
from pipeline.app.sources import BatchSource
from pipeline.domain.schema import FeatureSchema
from pipeline.engine.local import Chunked, ChunkWork, Engine, local_engine, numeric_categories, observation_of_profile
from pipeline.engine.local_readers import object_size
from pipeline.engine.observe import BatchObservation
from pipeline.engine.spark_job import is_job_result, read_result
from pipeline.io.data import Batch, known_labels, unlabelled_line
from pipeline.io.predictions import PredictionLog, log_frame
from pipeline.io.tables import DataError
from pipeline.settings import Settings
from pipeline.stats.evidently_report import sampled_report

Read = tuple[Batch, BatchObservation, set[str]]  # the batch as kept, its observation, the columns with values


class BatchReader:
    """Reads the run's batches for the champion in ``cache``; ``engine`` reads a large one in chunks."""

    def __init__(
        self,
        settings: Settings,
        cache: ChampionCache,
        *,
        engine: Engine = local_engine,
        prediction_log: PredictionLog | None = None,
        false_alarm_rate: float,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.schema = cache.schema
        self.engine = engine
        self.prediction_log = prediction_log
        self.false_alarm_rate = false_alarm_rate

    def in_chunks(self, source: BatchSource) -> bool:
        """Whether the batch is read in chunks: always with the Spark engine; with the local one, a file over
        ``chunk_mb`` (a batch that fits in memory is read whole, and its scores are exact)."""
        if source.uri is None:
            return False
        if self.engine is not local_engine or is_job_result(source.uri):
            return True
        size = object_size(source.uri, source.s3)
        if source.max_mb is not None and size > source.max_mb * 1024 * 1024:
            raise DataError(
                f"{source.uri}: {size / 1024 / 1024:.1f} MB is over the batch limit of {source.max_mb:g} MB "
                "(--max-batch-mb)"
            )
        return size > self.settings.chunk_mb * 1024 * 1024

    def observe_in_chunks(self, index: int, source: BatchSource, run_key: str) -> Read:
        """Read, score and profile the batch chunk by chunk (the prediction log written as it goes); returns the
        batch as kept (its newest rows), its observation from the merged profile, and the columns with values."""
        cache = self.cache
        assert source.uri is not None and cache.reference is not None
        work = ChunkWork(
            self.schema,
            cache.scorer,
            cache.binned(),
            cache.estimator(),
            numeric_categories(cache.reference, self.schema),
        )
        if is_job_result(source.uri):  # profiled by a Spark job (pipeline.engine.spark_job): its result is read back
            return self._observed(index, read_result(source.uri, source.s3, cache.binned().digest))
        log = self.prediction_log if self.schema.id is not None else None
        if log is not None and self.engine is not local_engine:
            cache.say_once("no-log", "warning: the Spark engine writes no prediction log: late labels cannot join")
            log = None
        with contextlib.ExitStack() as stack:
            sink = None
            if log is not None:
                writer = stack.enter_context(log.batch_writer(cache.registry.name, run_key, index))
                version = cache.version

                def sink(chunk: Batch, proba: np.ndarray) -> None:
                    writer.add(log_frame(chunk, self.schema, proba, run_key=run_key, index=index, version=version))

            chunked = self.engine(source.uri, source.s3, work, self.settings, sink)
        return self._observed(index, chunked)

    def _observed(self, index: int, chunked: Chunked) -> Read:
        cache = self.cache
        cache.say(f"[batch {index}] read in {chunked.chunks} chunks ({chunked.rows} rows, {len(chunked.sample)} kept)")
        profile = cache.profile()
        band = profile.noise.band(chunked.rows)
        seen = observation_of_profile(cache.binned(), chunked, band, self.false_alarm_rate, estimator=cache.estimator())
        uniform = chunked.uniform if chunked.uniform is not None else chunked.sample
        seen = multivariate_check.measured(cache, uniform, index, seen)
        seen = dataclasses.replace(seen, uniform=chunked.uniform)  # the segments' rows (``segment_check``)
        sample, scorer = chunked.sample, cache.scorer
        if len(sample):  # the Evidently report of the batch, when asked for, is drawn on the rows kept

            def report() -> Any:
                return sampled_report(profile, sample, scorer.proba(sample))

            seen = dataclasses.replace(seen, drift=dataclasses.replace(seen.drift, build_report=report))
        return chunked.as_batch(), seen, chunked.columns_with_values(self.schema)

    def log_predictions(self, index: int, batch: Batch, seen: BatchObservation, run_key: str) -> None:
        """Write the batch's prediction log (when the schema names an id column), before its row is committed."""
        if self.prediction_log is None or self.schema.id is None or seen.proba is None:
            return
        if self.schema.id not in batch.frame.columns:
            self.cache.say_once(
                f"no-id-{index}",
                f"[batch {index}] warning: no id column {self.schema.id!r}: its predictions are logged without ids "
                "and no late label can be joined to them",
            )
        frame = log_frame(batch, self.schema, seen.proba, run_key=run_key, index=index, version=self.cache.version)
        self.prediction_log.write(frame, self.cache.registry.name, run_key, index)

    def stored_profile(self, batch: Batch, seen: BatchObservation) -> tuple[str, bytes] | None:
        """The batch's profile as stored next to its metrics: always for a batch read in chunks, for a batch read
        whole only with ``PIPELINE_PROFILE_WHOLE_BATCHES`` (it costs about as much as the drift scores)."""
        profile = seen.profile
        if profile is None and self.settings.profile_whole_batches and seen.proba is not None:
            labels = known_labels(batch, self.schema)
            estimator = self.cache.estimator()
            calibrated = None if estimator is None else estimator.calibrated(seen.proba)
            profile = self.cache.binned().profile(batch.frame, seen.proba, labels, calibrated)
        return None if profile is None else (profile.binning, profile.to_bytes())


def say_columns(
    say: Callable[[str], None],
    index: int,
    batch: Batch,
    schema: FeatureSchema,
    allowed_empty: list[str],
    said: set[str],
) -> None:
    """A batch's extra columns (each said once per run: ``said`` holds those said before) and its entirely empty
    ones that the reference also lacks; its rows with an empty target, with their count."""
    unlabelled = unlabelled_line(index, batch, schema)
    if unlabelled is not None:
        say(unlabelled)
    new_extra = [name for name in batch.extra_columns if name not in said]
    if new_extra:
        said.update(new_extra)
        say(
            f"[batch {index}] ignoring {len(new_extra)} extra columns (said once per run): "
            f"{', '.join(new_extra[:5])}{' ...' if len(new_extra) > 5 else ''}"
        )
    if allowed_empty:
        say(
            f"[batch {index}] warning: {len(allowed_empty)} columns entirely empty, allowed as the "
            f"reference has them missing too: {', '.join(allowed_empty[:5])}"
            f"{' ...' if len(allowed_empty) > 5 else ''}"
        )
