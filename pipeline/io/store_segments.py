"""The segment_metrics table (``pipeline.stats.segments``): per batch, segment column and value, the segment's
share, prediction drift with its p-value, realized and label-free ROC AUC, positive rate and whether it alarmed.
Created by the last step of ``store_schema.create_schema`` (``CREATE TABLE IF NOT EXISTS`` adds it to an older
database); written by the monitor for every batch of a schema with segments, after the batch's row; read by
``status`` and the dashboards."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg2.extras
from psycopg2 import sql

from pipeline.domain.schema import segment_name
from pipeline.io.store_batch_rows import clear_batch_rows

COLUMNS = (
    "segment_column",
    "segment_value",
    "rows",
    "share",
    "reference_share",
    "mean_prediction",
    "reference_mean_prediction",
    "prediction_drift",
    "prediction_drift_p",
    "roc_auc",
    "roc_auc_stderr",
    "reference_roc_auc",
    "roc_auc_p",
    "estimated_roc_auc",
    "positive_rate",
    "alarmed",
    "reason",
)

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS segment_metrics (
    run_key         text NOT NULL,
    batch_index     integer NOT NULL,
    ts              timestamptz NOT NULL DEFAULT now(),
    model_name      text NOT NULL,
    segment_column  text NOT NULL,
    segment_value   text NOT NULL,
    rows            integer NOT NULL,
    share           double precision NOT NULL,
    reference_share double precision,
    mean_prediction double precision,
    reference_mean_prediction double precision,
    prediction_drift double precision,
    prediction_drift_p double precision,
    roc_auc         double precision,
    roc_auc_stderr  double precision,
    reference_roc_auc double precision,
    roc_auc_p       double precision,
    estimated_roc_auc double precision,
    positive_rate   double precision,
    alarmed         boolean NOT NULL,
    reason          text,
    PRIMARY KEY (run_key, batch_index, segment_column, segment_value),
    FOREIGN KEY (run_key, batch_index) REFERENCES batch_metrics (run_key, batch_index) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS segment_metrics_model_ts ON segment_metrics (model_name, ts, batch_index);
"""


def create_table(cur: Any) -> None:
    cur.execute(TABLE_SQL)


def replace_segments(cur: Any, run_key: str, batch_index: int, segments: Sequence[Mapping[str, Any]]) -> bool:
    """The batch's segments (each a mapping with ``COLUMNS``), replacing any earlier ones; the rows carry the batch
    row's timestamp and model. False, with nothing written, when the batch is not recorded."""
    found = clear_batch_rows(cur, "segment_metrics", run_key, batch_index)
    if found is None:
        return False
    ts, model_name = found
    if segments:
        psycopg2.extras.execute_values(
            cur,
            sql.SQL("INSERT INTO segment_metrics (run_key, batch_index, ts, model_name, {}) VALUES %s").format(
                sql.SQL(", ").join(sql.Identifier(column) for column in COLUMNS)
            ),
            [(run_key, batch_index, ts, model_name, *(s.get(c) for c in COLUMNS)) for s in segments],
            page_size=500,
        )
    return True


def segment_alarms_of_run(cur: Any, run_key: str) -> dict[int, frozenset[str]]:
    """The run's batches with segments: each one's alarmed segments as ``column=value`` (empty: none alarmed)."""
    cur.execute(
        "SELECT batch_index, segment_column, segment_value, alarmed FROM segment_metrics WHERE run_key = %s",
        (run_key,),
    )
    found: dict[int, set[str]] = {}
    for index, column, value, alarmed in cur.fetchall():
        names = found.setdefault(int(index), set())
        if alarmed:
            names.add(segment_name(column, value))
    return {index: frozenset(names) for index, names in found.items()}


def worst_segments(cur: Any, model_name: str, limit: int) -> list[dict[str, Any]]:
    """The segments of the model's most recent batch with segments, alarmed first, then by their smallest
    p-value: run_key, batch_index and ``COLUMNS``."""
    cur.execute(
        sql.SQL(
            "SELECT s.run_key, s.batch_index, {} FROM segment_metrics s "
            "JOIN (SELECT run_key, batch_index FROM segment_metrics WHERE model_name = %s "
            "ORDER BY ts DESC, batch_index DESC LIMIT 1) latest USING (run_key, batch_index) "
            "ORDER BY s.alarmed DESC, LEAST(COALESCE(s.prediction_drift_p, 1), COALESCE(s.roc_auc_p, 1)), "
            "s.segment_column, s.segment_value LIMIT %s"
        ).format(sql.SQL(", ").join(sql.Identifier("s", column) for column in COLUMNS)),
        (model_name, limit),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
