"""The metrics database: Postgres tables for batch metrics, per-feature drift, profiles, events, late labels and
the inbox files set aside,
created idempotently (``store_schema``), written (``store_writes``) and read (``store_reads``) with
parameterised SQL through ``MetricsStore``, which owns the connections, their retries and the advisory locks.

One transaction per batch: the batch's metrics row, its feature scores and its events land together or not at
all. The key (run_key, batch_index) makes a rerun of the same monitor run skip what is already recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg2
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_delay, wait_exponential

from pipeline.domain.records import BatchRow, Event, FeatureScore, LateLabelled, RejectedBatch
from pipeline.domain.values import one_line
from pipeline.io import store_attribution, store_reads, store_schema, store_segments, store_writes
from pipeline.io.store_reads import Profile


class StoreUnavailable(RuntimeError):
    """The metrics database cannot be reached."""


log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_SECONDS = 60  # how long a restarting database is waited for before the run gives up


def _log_retry(state: RetryCallState) -> None:
    err = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0
    log.warning(
        "metrics database unreachable (%s); retry %d in %.1fs",
        one_line(err) if err else "?",
        state.attempt_number,
        wait,
    )


# What the server says to a login it will never accept: waiting for it to come back would not help.
_REFUSALS = ("password authentication failed", "no password supplied", "does not exist", "no pg_hba.conf entry")


def _refused(err: BaseException) -> bool:
    """Whether the server answered and refused the login (wrong password, user or database), not went away."""
    return isinstance(err, psycopg2.OperationalError) and any(text in str(err) for text in _REFUSALS)


def _worth_retrying(err: BaseException) -> bool:
    return isinstance(err, (psycopg2.OperationalError, psycopg2.InterfaceError)) and not _refused(err)


def _unavailable(err: BaseException) -> StoreUnavailable:
    """The one line for a database that could not be used: a refused login names the settings to check."""
    if _refused(err):
        return StoreUnavailable(
            f"metrics database refused the login: {one_line(err)} (check PIPELINE_METRICS_DB_URL and "
            "PIPELINE_METRICS_DB_PASSWORD)"
        )
    return StoreUnavailable(f"metrics database unreachable: {one_line(err)}")


_transient = retry(
    retry=retry_if_exception(_worth_retrying),
    wait=wait_exponential(multiplier=0.2, max=5),
    stop=stop_after_delay(RETRY_SECONDS),
    before_sleep=_log_retry,
    reraise=True,
)


class MetricsStore:
    """The metrics database. Every write is parameterised; connections are retried with backoff."""

    def __init__(self, dsn: str, connect_timeout: int = 5) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout

    def _connect(self) -> Any:
        return psycopg2.connect(self._dsn, connect_timeout=self._connect_timeout)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A connection in one transaction: committed on success, rolled back on any error.

        Connecting is retried with backoff; a connection lost inside the block is not (see ``_in_transaction``).
        """
        try:
            conn = _transient(self._connect)()
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as err:
            raise _unavailable(err) from err
        try:
            with conn, conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    def _in_transaction(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` in one transaction, the WHOLE transaction retried with backoff when the
        server goes away (restart, failover) before or during it. Every write here is idempotent (keys and
        ON CONFLICT DO NOTHING), so a transaction whose commit was lost in flight is safe to run again."""

        def attempt() -> T:
            conn = self._connect()
            try:
                with conn, conn.cursor() as cur:
                    return work(cur)
            finally:
                conn.close()

        try:
            return _transient(attempt)()
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as err:
            raise _unavailable(err) from err

    def ping(self) -> str:
        """One connection, no retry (``pipeline doctor``): the server's version, or a one-line ``StoreUnavailable``."""
        try:
            conn = self._connect()
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as err:
            raise _unavailable(err) from err
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                return str(cur.fetchone()[0])
        finally:
            conn.close()

    def create_schema(self) -> None:
        """Create the tables if they do not exist (never drops a table), add the batch_metrics columns an older
        table lacks, and bring the events table's list of kinds up to EVENT_KINDS.

        The advisory lock makes concurrent monitors take turns, so two of them never race on the migration.
        """
        self._in_transaction(store_schema.create_schema)

    def start_run(self, run_key: str, model_name: str, threshold: float, sources: Sequence[str]) -> None:
        self._in_transaction(lambda cur: store_writes.start_run(cur, run_key, model_name, threshold, sources))

    def set_run_mlflow_id(self, run_key: str, mlflow_run_id: str) -> None:
        self._in_transaction(lambda cur: store_writes.set_run_mlflow_id(cur, run_key, mlflow_run_id))

    def run_mlflow_id(self, run_key: str) -> str | None:
        """The MLflow run of a monitor run, once it has one."""
        return self._in_transaction(lambda cur: store_reads.run_mlflow_id(cur, run_key))

    def recorded_batches(self, run_key: str) -> dict[int, dict[str, Any]]:
        """Batches of this run already recorded, by index."""
        return self._in_transaction(lambda cur: store_reads.recorded_batches(cur, run_key))

    def record_batch(
        self,
        row: BatchRow,
        events: Sequence[Event] = (),
        features: Sequence[FeatureScore] = (),
        profile: tuple[str, bytes] | None = None,
    ) -> bool:
        """Write a batch's row, its feature scores and its events in one transaction. False if the batch was
        already there, in which case nothing is written: its features and events were written with it.

        Retried as a whole while the database restarts: the row, its features and its events land together,
        once. A feature named twice is an error (the whole batch is rolled back), not a silent overwrite.
        """
        values = store_writes.batch_values(row)
        feature_rows = store_writes.feature_rows(features)
        return self._in_transaction(
            lambda cur: store_writes.insert_batch(cur, row, values, feature_rows, events, profile)
        )

    def record_event(self, event: Event) -> bool:
        return self._in_transaction(lambda cur: store_writes.insert_event(cur, event))

    def record_rejection(self, rejected: RejectedBatch) -> bool:
        """Set an inbox file aside (``RejectedBatch``); False if it already was."""
        return self._in_transaction(lambda cur: store_writes.insert_rejection(cur, rejected))

    def rejected_batches(self, run_key: str) -> list[dict[str, Any]]:
        """The files the run set aside, oldest first: ts, run_key, uri, etag, model_name, champion_version,
        reason."""
        return self._in_transaction(lambda cur: store_reads.rejected_batches(cur, run_key))

    def rejections_of_model(self, model_name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The model's files set aside (any inbox), newest first."""
        return self._in_transaction(lambda cur: store_reads.rejections_of_model(cur, model_name, limit))

    def clear_rejections(self, model_name: str, uris: Sequence[str]) -> int:
        """Clear the rejections of the model's files ``uris`` (every content of each): the inbox reads them
        again. How many rows were cleared."""
        return self._in_transaction(lambda cur: store_writes.delete_rejections(cur, model_name, uris))

    def stored_profiles(self, model_name: str, since: Any = None, until: Any = None) -> list[Profile]:
        """The batch profiles of the model recorded in [since, until) (either open), oldest first:
        (run key, batch index, ts, binning, profile bytes)."""
        return self._in_transaction(lambda cur: store_reads.stored_profiles(cur, model_name, since, until))

    def known_labels(self, model_name: str) -> dict[str, int]:
        """Every late label recorded for the model: {row id: 0/1}."""
        return self._in_transaction(lambda cur: store_reads.known_labels(cur, model_name))

    def batches_of_model(self, model_name: str) -> dict[tuple[str, int], dict[str, Any]]:
        """Every batch row of the model, by (run key, batch index), with its timestamp."""
        return self._in_transaction(lambda cur: store_reads.batches_of_model(cur, model_name))

    def record_late_labels(
        self,
        model_name: str,
        delivery: str,
        labels: Sequence[tuple[str, int]],
        batches: Sequence[LateLabelled],
        events: Sequence[Event] = (),
    ) -> None:
        """One delivery of late labels, in one transaction: the new labels (an id already labelled keeps its
        first label), the realized quality of the batches they complete, and the delivery's events."""
        self._in_transaction(
            lambda cur: store_writes.record_late_labels(cur, model_name, delivery, labels, batches, events)
        )

    def last_batches(self, model_name: str, limit: int = 10) -> list[dict[str, Any]]:
        with self.transaction() as cur:
            return store_reads.last_batches(cur, model_name, limit)

    def drifted_features_of_run(self, run_key: str) -> dict[int, list[str]]:
        """Each recorded batch's drifted features, highest score first (what its report record lists)."""
        with self.transaction() as cur:
            return store_reads.drifted_features_of_run(cur, run_key)

    def latest_feature_scores(self, model_name: str, limit: int = 10) -> list[dict[str, Any]]:
        """The features of the model's most recent batch that has feature scores, highest score first
        (unscored features last, then by name): which features drifted, asked before anything else.

        "Most recent" orders batches by ts then batch_index, as ``last_batches`` does; a batch recorded without
        feature scores is passed over rather than shown as an empty answer. Each dict has run_key,
        batch_index, feature, score (None when unscored) and drifted.
        """
        with self.transaction() as cur:
            return store_reads.latest_feature_scores(cur, model_name, limit)

    def last_events(self, model_name: str, limit: int = 10, run_key: str | None = None) -> list[dict[str, Any]]:
        with self.transaction() as cur:
            return store_reads.last_events(cur, model_name, limit, run_key)

    def latest_run_key(self, model_name: str) -> str | None:
        """The run of this model whose newest batch is the most recent, or None if it has no batches."""
        with self.transaction() as cur:
            return store_reads.latest_run_key(cur, model_name)

    def batches_of_run(self, run_key: str) -> list[dict[str, Any]]:
        """Every batch row of one run, oldest first, with its timestamp."""
        with self.transaction() as cur:
            return store_reads.batches_of_run(cur, run_key)

    def events_of_run(self, run_key: str) -> list[dict[str, Any]]:
        """Every event of one run, run-level ones included, in the order they were written."""
        with self.transaction() as cur:
            return store_reads.events_of_run(cur, run_key)

    def record_attribution(
        self, run_key: str, batch_index: int, shares: Sequence[store_attribution.Share], sample_rows: int, method: str
    ) -> bool:
        """A recorded batch's drift attribution (``pipeline.stats.attribution``), replacing any earlier one; False
        when the batch is not recorded."""
        return self._in_transaction(
            lambda cur: store_attribution.replace_attribution(cur, run_key, batch_index, shares, sample_rows, method)
        )

    def record_segments(self, run_key: str, batch_index: int, segments: Sequence[Mapping[str, Any]]) -> bool:
        """A recorded batch's segments (``pipeline.stats.segments``), replacing any earlier ones; False when the
        batch is not recorded."""
        return self._in_transaction(lambda cur: store_segments.replace_segments(cur, run_key, batch_index, segments))

    def segment_alarms_of_run(self, run_key: str) -> dict[int, frozenset[str]]:
        """Each recorded batch with segments: its alarmed segments (``column=value``), none for a quiet one."""
        with self.transaction() as cur:
            return store_segments.segment_alarms_of_run(cur, run_key)

    def worst_segments(self, model_name: str, limit: int = 5) -> list[dict[str, Any]]:
        """The segments of the model's most recent batch with segments, alarmed and least likely by chance first."""
        with self.transaction() as cur:
            return store_segments.worst_segments(cur, model_name, limit)

    def attribution_of_run(self, run_key: str) -> dict[int, list[dict[str, Any]]]:
        """Each attributed batch of the run: features with share and drift_drop, highest share first."""
        with self.transaction() as cur:
            return store_attribution.attribution_of_run(cur, run_key)

    def latest_attribution(self, model_name: str, limit: int = 10) -> list[dict[str, Any]]:
        """The features of the model's most recent attributed batch, highest share first."""
        with self.transaction() as cur:
            return store_attribution.latest_attribution(cur, model_name, limit)

    @contextmanager
    def retrain_lock(self, model_name: str) -> Iterator[bool]:
        """A session-level advisory lock per model: True if this process holds it, False if another does."""
        with self._session_lock("retrain", model_name) as held:
            yield held

    @contextmanager
    def inbox_lock(self, model_name: str) -> Iterator[bool]:
        """Held by the one monitor processing a model's inbox (two timers at once: the second finds it held)."""
        with self._session_lock("inbox", model_name) as held:
            yield held

    @contextmanager
    def run_lock(self, run_key: str) -> Iterator[bool]:
        """Held by the one monitor going on with a run given files (two scheduled runs of a model at once: the
        second finds it held); runs under other keys go on side by side."""
        with self._session_lock("run", run_key) as held:
            yield held

    @contextmanager
    def _session_lock(self, kind: str, model_name: str) -> Iterator[bool]:
        try:
            conn = _transient(self._connect)()
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as err:
            raise _unavailable(err) from err
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", (kind, model_name))
                held = bool(cur.fetchone()[0])
            try:
                yield held
            finally:
                if held:
                    try:
                        with conn.cursor() as cur:
                            cur.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", (kind, model_name))
                    except (psycopg2.OperationalError, psycopg2.InterfaceError):
                        pass  # the session is gone (database restarted), and its lock with it
        finally:
            conn.close()
