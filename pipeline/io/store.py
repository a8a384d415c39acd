"""Postgres tables for batch metrics, per-feature drift and events: created idempotently, written with
parameterised SQL.

One transaction per batch: the batch's metrics row, its feature scores and its events land together or not at
all. The key (run_key, batch_index) makes a rerun of the same monitor run skip what is already recorded.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TypeVar

import psycopg2
import psycopg2.extras
from psycopg2 import sql
from tenacity import RetryCallState, retry, retry_if_exception_type, stop_after_delay, wait_exponential

from pipeline.domain.records import BATCH_COLUMNS, EVENT_KINDS, BatchRow, Event, FeatureScore, LateLabelled
from pipeline.domain.values import finite, one_line

EVENT_KIND_CHECK = "events_kind_check"  # the name Postgres gave the column CHECK of the first schema

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS monitor_runs (
    run_key        text PRIMARY KEY,
    model_name     text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    threshold      double precision NOT NULL,
    sources        jsonb NOT NULL DEFAULT '[]'::jsonb,
    mlflow_run_id  text
);
CREATE TABLE IF NOT EXISTS batch_metrics (
    run_key                 text NOT NULL,
    batch_index             integer NOT NULL,
    ts                      timestamptz NOT NULL DEFAULT now(),
    model_name              text NOT NULL,
    champion_version        integer,
    source                  text NOT NULL,
    n_rows                  integer NOT NULL,
    prediction_drift        double precision NOT NULL,
    drift_threshold         double precision NOT NULL,
    drifted_columns         integer NOT NULL,
    share_drifted_columns   double precision NOT NULL,
    share_missing           double precision NOT NULL,
    unseen_categories       integer NOT NULL DEFAULT 0,
    drift_detected          boolean NOT NULL,
    roc_auc                 double precision,
    accuracy                double precision,
    performance_drop        boolean NOT NULL DEFAULT false,
    action                  text NOT NULL,
    prior_shift             boolean NOT NULL DEFAULT false,
    positive_rate           double precision,
    mean_prediction         double precision,
    estimated_roc_auc       double precision,
    estimated_accuracy      double precision,
    estimated_drop          boolean NOT NULL DEFAULT false,
    labelled_rows           integer,
    estimation_error        double precision,
    labels_at               timestamptz,
    prediction_drift_p      double precision,
    drift_noise_edge        double precision,
    roc_auc_stderr          double precision,
    estimated_roc_auc_low   double precision,
    estimated_roc_auc_high  double precision,
    estimate_trusted        boolean,
    PRIMARY KEY (run_key, batch_index)
);
CREATE INDEX IF NOT EXISTS batch_metrics_model_ts ON batch_metrics (model_name, ts);
CREATE TABLE IF NOT EXISTS events (
    id              bigserial PRIMARY KEY,
    ts              timestamptz NOT NULL DEFAULT now(),
    run_key         text NOT NULL,
    batch_index     integer NOT NULL DEFAULT -1,
    model_name      text NOT NULL,
    kind            text NOT NULL,
    model_version   integer,
    champion_version integer,
    message         text NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (run_key, batch_index, kind)
);
CREATE INDEX IF NOT EXISTS events_model_ts ON events (model_name, ts);
CREATE TABLE IF NOT EXISTS feature_drift (
    run_key         text NOT NULL,
    batch_index     integer NOT NULL,
    ts              timestamptz NOT NULL DEFAULT now(),
    model_name      text NOT NULL,
    feature         text NOT NULL,
    score           double precision,
    drifted         boolean NOT NULL,
    PRIMARY KEY (run_key, batch_index, feature),
    FOREIGN KEY (run_key, batch_index) REFERENCES batch_metrics (run_key, batch_index) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS feature_drift_model_ts ON feature_drift (model_name, ts, batch_index);
CREATE INDEX IF NOT EXISTS feature_drift_model_feature_ts ON feature_drift (model_name, feature, ts);
CREATE TABLE IF NOT EXISTS batch_profiles (
    run_key         text NOT NULL,
    batch_index     integer NOT NULL,
    ts              timestamptz NOT NULL DEFAULT now(),
    model_name      text NOT NULL,
    binning         text NOT NULL,
    profile         bytea NOT NULL,
    PRIMARY KEY (run_key, batch_index),
    FOREIGN KEY (run_key, batch_index) REFERENCES batch_metrics (run_key, batch_index) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS batch_profiles_model_ts ON batch_profiles (model_name, ts);
CREATE TABLE IF NOT EXISTS labels (
    model_name      text NOT NULL,
    id              text NOT NULL,
    label           smallint NOT NULL CHECK (label IN (0, 1)),
    received_at     timestamptz NOT NULL DEFAULT now(),
    delivery        text NOT NULL,
    PRIMARY KEY (model_name, id)
);
"""
# The kinds the events table's CHECK constraint currently allows, as Postgres prints the constraint.
EVENT_KIND_CHECK_SQL = (
    "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
    "WHERE c.conrelid = 'events'::regclass AND c.conname = %s AND c.contype = 'c'"
)

# Columns added to batch_metrics after its first release, as ADD COLUMN clauses: create_schema adds the missing
# ones to an existing table. Each must be nullable or carry a default, so that rows already stored stay valid.
BATCH_COLUMNS_ADDED = (
    "prior_shift boolean NOT NULL DEFAULT false",
    "positive_rate double precision",
    "mean_prediction double precision",
    "estimated_roc_auc double precision",
    "estimated_accuracy double precision",
    "estimated_drop boolean NOT NULL DEFAULT false",
    "labelled_rows integer",
    "estimation_error double precision",
    "labels_at timestamptz",
    "prediction_drift_p double precision",
    "drift_noise_edge double precision",
    "roc_auc_stderr double precision",
    "estimated_roc_auc_low double precision",
    "estimated_roc_auc_high double precision",
    "estimate_trusted boolean",
)


class StoreUnavailable(RuntimeError):
    """The metrics database cannot be reached."""


def _allowed_kinds(definition: str | None) -> set[str] | None:
    """The kinds a CHECK definition as printed by Postgres allows, or None when there is no constraint."""
    if definition is None:
        return None
    return set(re.findall(r"'([^']*)'", definition))


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


_transient = retry(
    retry=retry_if_exception_type((psycopg2.OperationalError, psycopg2.InterfaceError)),
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
            raise StoreUnavailable(f"metrics database unreachable: {one_line(err)}") from err
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
            raise StoreUnavailable(f"metrics database unreachable: {one_line(err)}") from err

    def create_schema(self) -> None:
        """Create the tables if they do not exist (never drops a table), add the batch_metrics columns an older
        table lacks, and bring the events table's list of kinds up to EVENT_KINDS.

        The advisory lock makes concurrent monitors take turns, so two of them never race on the migration.
        """

        def work(cur: Any) -> None:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('pipeline-schema'))")
            cur.execute(SCHEMA_SQL)
            self._migrate_batch_columns(cur)
            self._migrate_event_kinds(cur)

        self._in_transaction(work)

    @staticmethod
    def _migrate_batch_columns(cur: Any) -> None:
        """Add to batch_metrics the columns of BATCH_COLUMNS_ADDED it lacks.

        A table created by an older release has none of them, and every INSERT names all of BATCH_COLUMNS. The
        catalogue is read first so that a table already up to date is not altered: ADD COLUMN IF NOT EXISTS
        would still take the table's exclusive lock on every start of a monitor.
        """
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'batch_metrics'"
        )
        present = {row[0] for row in cur.fetchall()}
        missing = [clause for clause in BATCH_COLUMNS_ADDED if clause.split()[0] not in present]
        if not missing:
            return
        # The clauses are constants of this module, never input: composed as SQL text on purpose.
        cur.execute(
            sql.SQL("ALTER TABLE batch_metrics {}").format(
                sql.SQL(", ").join(sql.SQL("ADD COLUMN IF NOT EXISTS {}").format(sql.SQL(c)) for c in missing)
            )
        )

    @staticmethod
    def _migrate_event_kinds(cur: Any) -> None:
        """Replace the events table's kind CHECK when it allows other kinds than EVENT_KINDS.

        Databases created before the list was built here carry a hand-written CHECK of the same name; a new
        kind (such as "adoption") would fail against it. Nothing is altered when the constraint already matches,
        so the table's exclusive lock is taken only once per change of the list.
        """
        cur.execute(EVENT_KIND_CHECK_SQL, (EVENT_KIND_CHECK,))
        row = cur.fetchone()
        if _allowed_kinds(row[0] if row else None) == set(EVENT_KINDS):
            return
        cur.execute(sql.SQL("ALTER TABLE events DROP CONSTRAINT IF EXISTS {}").format(sql.Identifier(EVENT_KIND_CHECK)))
        cur.execute(
            sql.SQL("ALTER TABLE events ADD CONSTRAINT {} CHECK (kind IN ({}))").format(
                sql.Identifier(EVENT_KIND_CHECK), sql.SQL(", ").join(map(sql.Literal, EVENT_KINDS))
            )
        )

    def start_run(self, run_key: str, model_name: str, threshold: float, sources: Sequence[str]) -> None:
        self._in_transaction(
            lambda cur: cur.execute(
                "INSERT INTO monitor_runs (run_key, model_name, threshold, sources) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (run_key) DO NOTHING",
                (run_key, model_name, threshold, json.dumps(list(sources))),
            )
        )

    def set_run_mlflow_id(self, run_key: str, mlflow_run_id: str) -> None:
        self._in_transaction(
            lambda cur: cur.execute(
                "UPDATE monitor_runs SET mlflow_run_id = %s WHERE run_key = %s", (mlflow_run_id, run_key)
            )
        )

    def run_mlflow_id(self, run_key: str) -> str | None:
        """The MLflow run of a monitor run, once it has one."""

        def work(cur: Any) -> str | None:
            cur.execute("SELECT mlflow_run_id FROM monitor_runs WHERE run_key = %s", (run_key,))
            row = cur.fetchone()
            return row[0] if row and row[0] else None

        return self._in_transaction(work)

    def recorded_batches(self, run_key: str) -> dict[int, dict[str, Any]]:
        """Batches of this run already recorded, by index."""

        def work(cur: Any) -> dict[int, dict[str, Any]]:
            cur.execute(
                sql.SQL("SELECT {} FROM batch_metrics WHERE run_key = %s ORDER BY batch_index").format(
                    sql.SQL(", ").join(map(sql.Identifier, BATCH_COLUMNS))
                ),
                (run_key,),
            )
            return {row[1]: dict(zip(BATCH_COLUMNS, row, strict=True)) for row in cur.fetchall()}

        return self._in_transaction(work)

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
        values = asdict(row)
        # NaN is stored as NULL: Postgres orders NaN above every number, which would put unscored features first.
        feature_rows = [(f.feature, finite(f.score), bool(f.drifted)) for f in features]

        def work(cur: Any) -> bool:
            cur.execute(
                sql.SQL("INSERT INTO batch_metrics ({}) VALUES ({}) ON CONFLICT DO NOTHING RETURNING ts").format(
                    sql.SQL(", ").join(map(sql.Identifier, BATCH_COLUMNS)),
                    sql.SQL(", ").join(sql.Placeholder() * len(BATCH_COLUMNS)),
                ),
                [values[name] for name in BATCH_COLUMNS],
            )
            inserted = cur.fetchone()
            if inserted is None:
                return False
            if feature_rows:
                self._insert_features(cur, row, inserted[0], feature_rows)
            if profile is not None:
                cur.execute(
                    "INSERT INTO batch_profiles (run_key, batch_index, ts, model_name, binning, profile) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        row.run_key,
                        row.batch_index,
                        inserted[0],
                        row.model_name,
                        profile[0],
                        psycopg2.Binary(profile[1]),
                    ),
                )
            for event in events:
                self._insert_event(cur, event)
            return True

        return self._in_transaction(work)

    @staticmethod
    def _insert_features(
        cur: Any, row: BatchRow, ts: Any, feature_rows: Sequence[tuple[str, float | None, bool]]
    ) -> None:
        """One multi-row INSERT per page of features: hundreds of columns a batch cost a few round trips.

        The rows carry the batch row's own timestamp, so a feature's history lines up with the batch's.
        """
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO feature_drift (run_key, batch_index, ts, model_name, feature, score, drifted) VALUES %s",
            [(row.run_key, row.batch_index, ts, row.model_name, *values) for values in feature_rows],
            page_size=500,
        )

    def record_event(self, event: Event) -> bool:
        return self._in_transaction(lambda cur: self._insert_event(cur, event))

    def stored_profiles(
        self, model_name: str, since: Any = None, until: Any = None
    ) -> list[tuple[str, int, Any, str, bytes]]:
        """The batch profiles of the model recorded in [since, until) (either open), oldest first:
        (run key, batch index, ts, binning, profile bytes)."""

        def work(cur: Any) -> list[tuple[str, int, Any, str, bytes]]:
            cur.execute(
                "SELECT run_key, batch_index, ts, binning, profile FROM batch_profiles WHERE model_name = %s "
                "AND (%s::timestamptz IS NULL OR ts >= %s) AND (%s::timestamptz IS NULL OR ts < %s) "
                "ORDER BY ts, batch_index",
                (model_name, since, since, until, until),
            )
            return [(k, int(i), ts, b, bytes(p)) for k, i, ts, b, p in cur.fetchall()]

        return self._in_transaction(work)

    def known_labels(self, model_name: str) -> dict[str, int]:
        """Every late label recorded for the model: {row id: 0/1}."""

        def work(cur: Any) -> dict[str, int]:
            cur.execute("SELECT id, label FROM labels WHERE model_name = %s", (model_name,))
            return {str(row_id): int(label) for row_id, label in cur.fetchall()}

        return self._in_transaction(work)

    def batches_of_model(self, model_name: str) -> dict[tuple[str, int], dict[str, Any]]:
        """Every batch row of the model, by (run key, batch index), with its timestamp."""

        def work(cur: Any) -> dict[tuple[str, int], dict[str, Any]]:
            cur.execute(
                sql.SQL("SELECT ts, {} FROM batch_metrics WHERE model_name = %s ORDER BY ts, batch_index").format(
                    sql.SQL(", ").join(map(sql.Identifier, BATCH_COLUMNS))
                ),
                (model_name,),
            )
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            return {(row["run_key"], int(row["batch_index"])): row for row in rows}

        return self._in_transaction(work)

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

        def work(cur: Any) -> None:
            psycopg2.extras.execute_values(
                cur,
                "INSERT INTO labels (model_name, id, label, delivery) VALUES %s ON CONFLICT DO NOTHING",
                [(model_name, row_id, int(label), delivery) for row_id, label in labels],
                page_size=1000,
            )
            for batch in batches:
                cur.execute(
                    "UPDATE batch_metrics SET labelled_rows = %s, roc_auc = %s, accuracy = %s, positive_rate = %s, "
                    "estimation_error = %s, performance_drop = performance_drop OR %s, labels_at = now() "
                    "WHERE run_key = %s AND batch_index = %s",
                    (
                        batch.labelled_rows,
                        batch.roc_auc,
                        batch.accuracy,
                        batch.positive_rate,
                        batch.estimation_error,
                        batch.performance_drop,
                        batch.run_key,
                        batch.batch_index,
                    ),
                )
            for event in events:
                self._insert_event(cur, event)

        self._in_transaction(work)

    @staticmethod
    def _insert_event(cur: Any, event: Event) -> bool:
        cur.execute(
            "INSERT INTO events (run_key, batch_index, model_name, kind, model_version, champion_version, "
            "message, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                event.run_key,
                event.batch_index,
                event.model_name,
                event.kind,
                event.model_version,
                event.champion_version,
                event.message,
                json.dumps(event.details, default=str),
            ),
        )
        return bool(cur.rowcount)

    def last_batches(self, model_name: str, limit: int = 10) -> list[dict[str, Any]]:
        with self.transaction() as cur:
            cur.execute(
                "SELECT ts, run_key, batch_index, champion_version, n_rows, prediction_drift, drifted_columns, "
                "share_missing, drift_detected, roc_auc, action, performance_drop, prior_shift, positive_rate, "
                "mean_prediction, prediction_drift_p, drift_noise_edge, roc_auc_stderr, estimated_roc_auc, "
                "estimated_roc_auc_low, estimated_roc_auc_high, estimate_trusted FROM batch_metrics "
                "WHERE model_name = %s ORDER BY ts DESC, batch_index DESC LIMIT %s",
                (model_name, limit),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def drifted_features_of_run(self, run_key: str) -> dict[int, list[str]]:
        """Each recorded batch's drifted features, highest score first (what its report record lists)."""
        with self.transaction() as cur:
            cur.execute(
                "SELECT batch_index, feature FROM feature_drift WHERE run_key = %s AND drifted "
                "ORDER BY batch_index, score DESC, feature",
                (run_key,),
            )
            found: dict[int, list[str]] = {}
            for index, feature in cur.fetchall():
                found.setdefault(index, []).append(feature)
            return found

    def latest_feature_scores(self, model_name: str, limit: int = 10) -> list[dict[str, Any]]:
        """The features of the model's most recent batch that has feature scores, highest score first
        (unscored features last, then by name): which features drifted, asked before anything else.

        "Most recent" orders batches by ts then batch_index, as ``last_batches`` does; a batch recorded without
        feature scores is passed over rather than shown as an empty answer. Each dict has run_key,
        batch_index, feature, score (None when unscored) and drifted.
        """
        with self.transaction() as cur:
            cur.execute(
                "SELECT f.run_key, f.batch_index, f.feature, f.score, f.drifted FROM feature_drift f "
                "JOIN (SELECT run_key, batch_index FROM feature_drift WHERE model_name = %s "
                "ORDER BY ts DESC, batch_index DESC LIMIT 1) latest USING (run_key, batch_index) "
                "ORDER BY f.score DESC NULLS LAST, f.feature LIMIT %s",
                (model_name, limit),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def last_events(self, model_name: str, limit: int = 10, run_key: str | None = None) -> list[dict[str, Any]]:
        with self.transaction() as cur:
            cur.execute(
                "SELECT ts, run_key, batch_index, kind, model_version, champion_version, message FROM events "
                "WHERE model_name = %s AND (%s::text IS NULL OR run_key = %s) ORDER BY id DESC LIMIT %s",
                (model_name, run_key, run_key, limit),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def latest_run_key(self, model_name: str) -> str | None:
        """The run of this model whose newest batch is the most recent, or None if it has no batches."""
        with self.transaction() as cur:
            cur.execute(
                "SELECT run_key FROM batch_metrics WHERE model_name = %s ORDER BY ts DESC, batch_index DESC LIMIT 1",
                (model_name,),
            )
            row = cur.fetchone()
            return None if row is None else str(row[0])

    def batches_of_run(self, run_key: str) -> list[dict[str, Any]]:
        """Every batch row of one run, oldest first, with its timestamp."""
        with self.transaction() as cur:
            cur.execute(
                sql.SQL("SELECT ts, {} FROM batch_metrics WHERE run_key = %s ORDER BY batch_index").format(
                    sql.SQL(", ").join(map(sql.Identifier, BATCH_COLUMNS))
                ),
                (run_key,),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def events_of_run(self, run_key: str) -> list[dict[str, Any]]:
        """Every event of one run, run-level ones included, in the order they were written."""
        with self.transaction() as cur:
            cur.execute(
                "SELECT id, ts, run_key, batch_index, model_name, kind, model_version, champion_version, "
                "message, details FROM events WHERE run_key = %s ORDER BY id",
                (run_key,),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

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
    def _session_lock(self, kind: str, model_name: str) -> Iterator[bool]:
        try:
            conn = _transient(self._connect)()
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as err:
            raise StoreUnavailable(f"metrics database unreachable: {one_line(err)}") from err
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
