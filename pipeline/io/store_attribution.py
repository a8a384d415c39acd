"""The drift_attribution table (``pipeline.stats.attribution``): per batch and feature, the share of the batch's
prediction drift the feature explains, beside its drift score in feature_drift. Created by the last step of
``store_schema.create_schema`` (a table added since: ``CREATE TABLE IF NOT EXISTS`` adds it to an older database);
written for an alarmed batch by the monitor and on demand by ``pipeline explain`` (which replaces the batch's
rows); read by ``status``, the report and the dashboards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg2.extras

from pipeline.io.store_batch_rows import clear_batch_rows

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS drift_attribution (
    run_key         text NOT NULL,
    batch_index     integer NOT NULL,
    ts              timestamptz NOT NULL DEFAULT now(),
    model_name      text NOT NULL,
    feature         text NOT NULL,
    rank            integer NOT NULL,
    share           double precision NOT NULL,
    prediction_shift double precision,
    drift_drop      double precision,
    sample_rows     integer NOT NULL,
    method          text NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_key, batch_index, feature),
    FOREIGN KEY (run_key, batch_index) REFERENCES batch_metrics (run_key, batch_index) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS drift_attribution_model_ts ON drift_attribution (model_name, ts, batch_index);
"""

Share = tuple[str, float, float | None, float | None]  # feature, share, prediction_shift, drift_drop: highest first


def create_table(cur: Any) -> None:
    cur.execute(TABLE_SQL)


def replace_attribution(
    cur: Any, run_key: str, batch_index: int, shares: Sequence[Share], sample_rows: int, method: str
) -> bool:
    """The batch's attribution, replacing any earlier one; the rows carry the batch row's timestamp and model.
    False, with nothing written, when the batch is not recorded."""
    found = clear_batch_rows(cur, "drift_attribution", run_key, batch_index)
    if found is None:
        return False
    ts, model_name = found
    psycopg2.extras.execute_values(
        cur,
        "INSERT INTO drift_attribution (run_key, batch_index, ts, model_name, feature, rank, share, prediction_shift, "
        "drift_drop, sample_rows, method) VALUES %s",
        [
            (run_key, batch_index, ts, model_name, feature, rank, share, shift, drop, sample_rows, method)
            for rank, (feature, share, shift, drop) in enumerate(shares, start=1)
        ],
        page_size=500,
    )
    return True


def attribution_of_run(cur: Any, run_key: str) -> dict[int, list[dict[str, Any]]]:
    """Each attributed batch of the run: its features with share and drift_drop, highest share first."""
    cur.execute(
        "SELECT batch_index, feature, share, prediction_shift, drift_drop FROM drift_attribution "
        "WHERE run_key = %s ORDER BY batch_index, rank",
        (run_key,),
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for index, feature, share, shift, drop in cur.fetchall():
        found.setdefault(index, []).append(
            {"feature": feature, "share": share, "prediction_shift": shift, "drift_drop": drop}
        )
    return found


def latest_attribution(cur: Any, model_name: str, limit: int) -> list[dict[str, Any]]:
    """The features of the model's most recent attributed batch, highest share first: run_key, batch_index,
    feature, share, prediction_shift, drift_drop, sample_rows."""
    cur.execute(
        "SELECT a.run_key, a.batch_index, a.feature, a.share, a.prediction_shift, a.drift_drop, a.sample_rows "
        "FROM drift_attribution a "
        "JOIN (SELECT run_key, batch_index FROM drift_attribution WHERE model_name = %s "
        "ORDER BY ts DESC, batch_index DESC LIMIT 1) latest USING (run_key, batch_index) "
        "ORDER BY a.rank LIMIT %s",
        (model_name, limit),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
