"""The metrics database's tables: the DDL, created idempotently, and the migrations that bring a database made by
an older release up to it (batch_metrics columns added since, the events table's list of kinds). A table added
since (rejected_batches) needs no migration: ``CREATE TABLE IF NOT EXISTS`` adds it to an older database."""

from __future__ import annotations

import re
from typing import Any

from psycopg2 import sql

from pipeline.domain.records import EVENT_KINDS
from pipeline.io import store_attribution, store_segments

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
    multivariate_auc        double precision,
    multivariate_p          double precision,
    multivariate_edge       double precision,
    multivariate_drift      boolean NOT NULL DEFAULT false,
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
CREATE TABLE IF NOT EXISTS rejected_batches (
    run_key          text NOT NULL,
    uri              text NOT NULL,
    etag             text NOT NULL,
    ts               timestamptz NOT NULL DEFAULT now(),
    model_name       text NOT NULL,
    champion_version integer,
    reason           text NOT NULL,
    PRIMARY KEY (run_key, uri, etag)
);
CREATE INDEX IF NOT EXISTS rejected_batches_model_ts ON rejected_batches (model_name, ts);
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
    "multivariate_auc double precision",
    "multivariate_p double precision",
    "multivariate_edge double precision",
    "multivariate_drift boolean NOT NULL DEFAULT false",
)


def _allowed_kinds(definition: str | None) -> set[str] | None:
    """The kinds a CHECK definition as printed by Postgres allows, or None when there is no constraint."""
    if definition is None:
        return None
    return set(re.findall(r"'([^']*)'", definition))


def create_schema(cur: Any) -> None:
    """Create the tables if they do not exist (never drops a table), add the batch_metrics columns an older
    table lacks, and bring the events table's list of kinds up to EVENT_KINDS.

    The advisory lock makes concurrent monitors take turns, so two of them never race on the migration.
    """
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('pipeline-schema'))")
    cur.execute(SCHEMA_SQL)
    _migrate_batch_columns(cur)
    _migrate_event_kinds(cur)
    store_attribution.create_table(cur)  # drift_attribution: after batch_metrics, whose rows it refers to
    store_segments.create_table(cur)  # segment_metrics: likewise


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
