"""What the per-batch detail tables (``drift_attribution``, ``segment_metrics``) share: a batch's rows are replaced
whole, and each carries its batch row's timestamp and model."""

from __future__ import annotations

from typing import Any

from psycopg2 import sql


def clear_batch_rows(cur: Any, table: str, run_key: str, batch_index: int) -> tuple[Any, str] | None:
    """The batch row's ``(ts, model_name)``, once the batch's earlier rows in ``table`` are deleted; None, with
    nothing deleted, when the batch is not recorded."""
    cur.execute(
        "SELECT ts, model_name FROM batch_metrics WHERE run_key = %s AND batch_index = %s", (run_key, batch_index)
    )
    found = cur.fetchone()
    if found is None:
        return None
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE run_key = %s AND batch_index = %s").format(sql.Identifier(table)),
        (run_key, batch_index),
    )
    return found[0], found[1]
