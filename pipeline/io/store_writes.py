"""The metrics store's writes, each on a cursor inside the caller's transaction: a run, a batch with its feature
scores, profile and events, an event, a delivery of late labels. Every statement is parameterised, and every
write is idempotent (keys and ON CONFLICT DO NOTHING), so a transaction whose commit was lost is safe to rerun."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import psycopg2
import psycopg2.extras
from psycopg2 import sql

from pipeline.domain.records import BATCH_COLUMNS, BatchRow, Event, FeatureScore, LateLabelled, RejectedBatch
from pipeline.domain.values import finite

FeatureRow = tuple[str, float | None, bool]


def start_run(cur: Any, run_key: str, model_name: str, threshold: float, sources: Sequence[str]) -> None:
    cur.execute(
        "INSERT INTO monitor_runs (run_key, model_name, threshold, sources) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (run_key) DO NOTHING",
        (run_key, model_name, threshold, json.dumps(list(sources))),
    )


def set_run_mlflow_id(cur: Any, run_key: str, mlflow_run_id: str) -> None:
    cur.execute("UPDATE monitor_runs SET mlflow_run_id = %s WHERE run_key = %s", (mlflow_run_id, run_key))


def batch_values(row: BatchRow) -> list[Any]:
    """The row's values in the order of BATCH_COLUMNS."""
    values = asdict(row)
    return [values[name] for name in BATCH_COLUMNS]


def feature_rows(features: Sequence[FeatureScore]) -> list[FeatureRow]:
    """The feature scores as feature_drift values. NaN is stored as NULL: Postgres orders NaN above every number,
    which would put unscored features first."""
    return [(f.feature, finite(f.score), bool(f.drifted)) for f in features]


def insert_batch(
    cur: Any,
    row: BatchRow,
    values: Sequence[Any],
    features: Sequence[FeatureRow],
    events: Sequence[Event],
    profile: tuple[str, bytes] | None,
) -> bool:
    """The batch's row (``values``: ``batch_values(row)``), then its features, profile and events; False, with
    nothing written, when the row is already there."""
    cur.execute(
        sql.SQL("INSERT INTO batch_metrics ({}) VALUES ({}) ON CONFLICT DO NOTHING RETURNING ts").format(
            sql.SQL(", ").join(map(sql.Identifier, BATCH_COLUMNS)),
            sql.SQL(", ").join(sql.Placeholder() * len(BATCH_COLUMNS)),
        ),
        values,
    )
    inserted = cur.fetchone()
    if inserted is None:
        return False
    if features:
        insert_features(cur, row, inserted[0], features)
    if profile is not None:
        cur.execute(
            "INSERT INTO batch_profiles (run_key, batch_index, ts, model_name, binning, profile) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (row.run_key, row.batch_index, inserted[0], row.model_name, profile[0], psycopg2.Binary(profile[1])),
        )
    for event in events:
        insert_event(cur, event)
    return True


def insert_features(cur: Any, row: BatchRow, ts: Any, features: Sequence[FeatureRow]) -> None:
    """One multi-row INSERT per page of features: hundreds of columns a batch cost a few round trips.

    The rows carry the batch row's own timestamp, so a feature's history lines up with the batch's.
    """
    psycopg2.extras.execute_values(
        cur,
        "INSERT INTO feature_drift (run_key, batch_index, ts, model_name, feature, score, drifted) VALUES %s",
        [(row.run_key, row.batch_index, ts, row.model_name, *values) for values in features],
        page_size=500,
    )


def insert_event(cur: Any, event: Event) -> bool:
    """True if the event was written, False if the run already has one of its kind at its batch."""
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


def record_late_labels(
    cur: Any,
    model_name: str,
    delivery: str,
    labels: Sequence[tuple[str, int]],
    batches: Sequence[LateLabelled],
    events: Sequence[Event],
) -> None:
    """The new labels (an id already labelled keeps its first label), the realized quality of the batches they
    complete (a performance drop once recorded stays), and the delivery's events."""
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
        insert_event(cur, event)


def insert_rejection(cur: Any, rejected: RejectedBatch) -> bool:
    """True if the file was set aside now, False if it already was (its first reason stays)."""
    cur.execute(
        "INSERT INTO rejected_batches (run_key, uri, etag, model_name, champion_version, reason) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            rejected.run_key,
            rejected.uri,
            rejected.etag,
            rejected.model_name,
            rejected.champion_version,
            rejected.reason,
        ),
    )
    return bool(cur.rowcount)


def delete_rejections(cur: Any, model_name: str, uris: Sequence[str]) -> int:
    """Clear every rejection of the model's files ``uris`` (any content, any inbox); how many were cleared."""
    cur.execute("DELETE FROM rejected_batches WHERE model_name = %s AND uri = ANY(%s)", (model_name, list(uris)))
    return int(cur.rowcount)
