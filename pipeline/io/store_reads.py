"""The metrics store's reads, each on a cursor inside the caller's transaction. Rows come back as dicts keyed by
column name (batch rows by BATCH_COLUMNS, with ``ts`` where asked); every statement is parameterised."""

from __future__ import annotations

from typing import Any

from psycopg2 import sql

from pipeline.domain.records import BATCH_COLUMNS

Profile = tuple[str, int, Any, str, bytes]
# The batch_metrics columns of a BatchRow, quoted, as every read of whole batch rows lists them.
_BATCH_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, BATCH_COLUMNS))


def _dicts(cur: Any) -> list[dict[str, Any]]:
    """The fetched rows as dicts keyed by the cursor's column names."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def run_mlflow_id(cur: Any, run_key: str) -> str | None:
    cur.execute("SELECT mlflow_run_id FROM monitor_runs WHERE run_key = %s", (run_key,))
    row = cur.fetchone()
    return row[0] if row and row[0] else None


def recorded_batches(cur: Any, run_key: str) -> dict[int, dict[str, Any]]:
    cur.execute(
        sql.SQL("SELECT {} FROM batch_metrics WHERE run_key = %s ORDER BY batch_index").format(_BATCH_COLUMNS),
        (run_key,),
    )
    return {row[1]: dict(zip(BATCH_COLUMNS, row, strict=True)) for row in cur.fetchall()}


def batches_of_model(cur: Any, model_name: str) -> dict[tuple[str, int], dict[str, Any]]:
    cur.execute(
        sql.SQL("SELECT ts, {} FROM batch_metrics WHERE model_name = %s ORDER BY ts, batch_index").format(
            _BATCH_COLUMNS
        ),
        (model_name,),
    )
    return {(row["run_key"], int(row["batch_index"])): row for row in _dicts(cur)}


def batches_of_run(cur: Any, run_key: str) -> list[dict[str, Any]]:
    cur.execute(
        sql.SQL("SELECT ts, {} FROM batch_metrics WHERE run_key = %s ORDER BY batch_index").format(_BATCH_COLUMNS),
        (run_key,),
    )
    return _dicts(cur)


def last_batches(cur: Any, model_name: str, limit: int) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT ts, run_key, batch_index, champion_version, n_rows, prediction_drift, drifted_columns, "
        "share_missing, drift_detected, roc_auc, action, performance_drop, prior_shift, positive_rate, "
        "mean_prediction, prediction_drift_p, drift_noise_edge, roc_auc_stderr, estimated_roc_auc, "
        "estimated_roc_auc_low, estimated_roc_auc_high, estimate_trusted, multivariate_auc, multivariate_p, "
        "multivariate_edge, multivariate_drift FROM batch_metrics "
        "WHERE model_name = %s ORDER BY ts DESC, batch_index DESC LIMIT %s",
        (model_name, limit),
    )
    return _dicts(cur)


def latest_run_key(cur: Any, model_name: str) -> str | None:
    cur.execute(
        "SELECT run_key FROM batch_metrics WHERE model_name = %s ORDER BY ts DESC, batch_index DESC LIMIT 1",
        (model_name,),
    )
    row = cur.fetchone()
    return None if row is None else str(row[0])


def stored_profiles(cur: Any, model_name: str, since: Any, until: Any) -> list[Profile]:
    cur.execute(
        "SELECT run_key, batch_index, ts, binning, profile FROM batch_profiles WHERE model_name = %s "
        "AND (%s::timestamptz IS NULL OR ts >= %s) AND (%s::timestamptz IS NULL OR ts < %s) "
        "ORDER BY ts, batch_index",
        (model_name, since, since, until, until),
    )
    return [(k, int(i), ts, b, bytes(p)) for k, i, ts, b, p in cur.fetchall()]


def known_labels(cur: Any, model_name: str) -> dict[str, int]:
    cur.execute("SELECT id, label FROM labels WHERE model_name = %s", (model_name,))
    return {str(row_id): int(label) for row_id, label in cur.fetchall()}


def drifted_features_of_run(cur: Any, run_key: str) -> dict[int, list[str]]:
    cur.execute(
        "SELECT batch_index, feature FROM feature_drift WHERE run_key = %s AND drifted "
        "ORDER BY batch_index, score DESC, feature",
        (run_key,),
    )
    found: dict[int, list[str]] = {}
    for index, feature in cur.fetchall():
        found.setdefault(index, []).append(feature)
    return found


def latest_feature_scores(cur: Any, model_name: str, limit: int) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT f.run_key, f.batch_index, f.feature, f.score, f.drifted FROM feature_drift f "
        "JOIN (SELECT run_key, batch_index FROM feature_drift WHERE model_name = %s "
        "ORDER BY ts DESC, batch_index DESC LIMIT 1) latest USING (run_key, batch_index) "
        "ORDER BY f.score DESC NULLS LAST, f.feature LIMIT %s",
        (model_name, limit),
    )
    return _dicts(cur)


def last_events(cur: Any, model_name: str, limit: int, run_key: str | None) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT ts, run_key, batch_index, kind, model_version, champion_version, message FROM events "
        "WHERE model_name = %s AND (%s::text IS NULL OR run_key = %s) ORDER BY id DESC LIMIT %s",
        (model_name, run_key, run_key, limit),
    )
    return _dicts(cur)


def events_of_run(cur: Any, run_key: str) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT id, ts, run_key, batch_index, model_name, kind, model_version, champion_version, "
        "message, details FROM events WHERE run_key = %s ORDER BY id",
        (run_key,),
    )
    return _dicts(cur)


def rejected_batches(cur: Any, run_key: str) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT ts, run_key, uri, etag, model_name, champion_version, reason FROM rejected_batches "
        "WHERE run_key = %s ORDER BY ts, uri",
        (run_key,),
    )
    return _dicts(cur)


def rejections_of_model(cur: Any, model_name: str, limit: int | None) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT ts, run_key, uri, etag, model_name, champion_version, reason FROM rejected_batches "
        "WHERE model_name = %s ORDER BY ts DESC, uri LIMIT %s",
        (model_name, limit),
    )
    return _dicts(cur)
