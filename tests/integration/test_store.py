"""The metrics store on a real Postgres: feature scores land with their batch, once, or not at all; the event
kinds and the batch_metrics columns of an existing database follow the current schema."""

from __future__ import annotations

import math
from typing import Any

import psycopg2
import pytest

from pipeline.domain.records import BATCH_COLUMNS, EVENT_KINDS, BatchRow, Event, FeatureScore
from pipeline.io.store import MetricsStore
from pipeline.io.store_schema import EVENT_KIND_CHECK

pytestmark = pytest.mark.integration

MODEL = "triage"

# The events table as the first schema created it: the kinds written by hand into a column CHECK.
OLD_EVENTS_SQL = """
CREATE TABLE events (
    id              bigserial PRIMARY KEY,
    ts              timestamptz NOT NULL DEFAULT now(),
    run_key         text NOT NULL,
    batch_index     integer NOT NULL DEFAULT -1,
    model_name      text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('bootstrap','alarm','retrain','promotion','rejection','rollback')),
    model_version   integer,
    champion_version integer,
    message         text NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (run_key, batch_index, kind)
);
INSERT INTO events (run_key, model_name, kind, message) VALUES ('old-run', 'triage', 'rollback', 'moved back');
"""

# batch_metrics as the schema created it before the monitor stored its prior-shift verdict, with one row in it.
OLD_BATCH_METRICS_SQL = """
CREATE TABLE batch_metrics (
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
    PRIMARY KEY (run_key, batch_index)
);
INSERT INTO batch_metrics (run_key, batch_index, model_name, champion_version, source, n_rows, prediction_drift,
    drift_threshold, drifted_columns, share_drifted_columns, share_missing, drift_detected, roc_auc, accuracy,
    performance_drop, action)
VALUES ('run', 0, 'triage', 1, 'batch-0.csv', 100, 0.05, 0.1, 1, 0.1, 0.0, false, 0.84, 0.8, false, 'none');
"""


def _batch(run_key: str, index: int, model: str = MODEL) -> BatchRow:
    return BatchRow(
        run_key, index, model, 1, f"batch-{index}.csv", 100, 0.05, 0.1, 1, 0.1, 0.0, 0, False, None, None, False, "none"
    )


def _query(dsn: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        rows = cur.fetchall()
    conn.close()
    return rows


def _execute(dsn: str, statement: str) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


def _insert_event_of_kind(dsn: str, kind: str) -> None:
    """Straight into the table, past Event's own check: what the database alone accepts."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO events (run_key, model_name, kind, message) VALUES ('r', 'm', %s, 'x')", (kind,))
    conn.close()


def _count(dsn: str, table: str) -> int:
    # A test helper over a fixed set of table names: never user input.
    return _query(dsn, f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608


@pytest.fixture
def store(pg_dsn: str) -> MetricsStore:
    metrics = MetricsStore(pg_dsn)
    metrics.create_schema()
    return metrics


def test_feature_scores_land_with_their_batch_and_its_timestamp(store: MetricsStore, pg_dsn: str) -> None:
    features = [FeatureScore("age", 0.31, True), FeatureScore("gender", 0.02, False)]
    alarm = Event("run", MODEL, "alarm", "drift on batch 0", batch_index=0)

    assert store.record_batch(_batch("run", 0), [alarm], features=features)

    rows = _query(
        pg_dsn,
        "SELECT f.feature, f.score, f.drifted, f.model_name, f.ts = b.ts FROM feature_drift f "
        "JOIN batch_metrics b USING (run_key, batch_index) ORDER BY f.feature",
    )
    assert rows == [("age", 0.31, True, MODEL, True), ("gender", 0.02, False, MODEL, True)]
    assert _count(pg_dsn, "events") == 1


def test_existing_callers_record_a_batch_without_features(store: MetricsStore, pg_dsn: str) -> None:
    assert store.record_batch(_batch("run", 0), [Event("run", MODEL, "alarm", "drift", batch_index=0)])
    assert _count(pg_dsn, "batch_metrics") == 1
    assert _count(pg_dsn, "feature_drift") == 0
    assert store.latest_feature_scores(MODEL) == []


def test_a_rerun_of_a_recorded_batch_writes_nothing_twice(store: MetricsStore, pg_dsn: str) -> None:
    first = [FeatureScore("age", 0.31, True), FeatureScore("gender", 0.02, False)]
    rerun = [FeatureScore("age", 0.99, True), FeatureScore("albumin_last", 0.5, True)]
    assert store.record_batch(_batch("run", 0), [Event("run", MODEL, "alarm", "drift", batch_index=0)], first)

    assert not store.record_batch(_batch("run", 0), [Event("run", MODEL, "retrain", "again", batch_index=0)], rerun)

    assert _query(pg_dsn, "SELECT feature, score FROM feature_drift ORDER BY feature") == [
        ("age", 0.31),
        ("gender", 0.02),
    ]
    assert _count(pg_dsn, "events") == 1


@pytest.mark.parametrize(
    ("features", "events"),
    [
        pytest.param(
            [FeatureScore("age", 0.3, True), FeatureScore("gender", 0.1, True), FeatureScore("age", 0.2, True)],
            [],
            id="a feature named twice",
        ),
        pytest.param(
            [FeatureScore("age", 0.3, True)],
            [Event("run", MODEL, "alarm", None, batch_index=0)],  # type: ignore[arg-type]  # message is NOT NULL
            id="an event the table refuses",
        ),
    ],
)
def test_a_failure_inside_the_transaction_leaves_no_trace_of_the_batch(
    store: MetricsStore, pg_dsn: str, features: list[FeatureScore], events: list[Event]
) -> None:
    with pytest.raises(psycopg2.IntegrityError):
        store.record_batch(_batch("run", 0), events, features)

    assert _count(pg_dsn, "batch_metrics") == 0
    assert _count(pg_dsn, "feature_drift") == 0
    assert _count(pg_dsn, "events") == 0
    # Nothing half-written blocks the corrected batch.
    assert store.record_batch(_batch("run", 0), [], [FeatureScore("age", 0.3, True)])


def test_a_nan_score_is_stored_as_null_and_listed_last(store: MetricsStore, pg_dsn: str) -> None:
    features = [
        FeatureScore("age", math.nan, False),
        FeatureScore("gender", 0.02, False),
        FeatureScore("bmi", None, False),
    ]
    store.record_batch(_batch("run", 0), features=features)

    assert _query(pg_dsn, "SELECT feature FROM feature_drift WHERE score IS NULL ORDER BY feature") == [
        ("age",),
        ("bmi",),
    ]
    assert [(r["feature"], r["score"]) for r in store.latest_feature_scores(MODEL)] == [
        ("gender", 0.02),
        ("age", None),
        ("bmi", None),
    ]


def test_hundreds_of_features_a_batch_all_land(store: MetricsStore, pg_dsn: str) -> None:
    features = [FeatureScore(f"f{i:04d}", i / 1000, i >= 100) for i in range(1200)]
    assert store.record_batch(_batch("run", 0), features=features)
    assert _count(pg_dsn, "feature_drift") == 1200
    assert _query(pg_dsn, "SELECT count(*) FROM feature_drift WHERE drifted")[0][0] == 1100


def test_latest_feature_scores_reads_the_models_newest_batch_highest_first(store: MetricsStore) -> None:
    store.record_batch(_batch("run-a", 0), features=[FeatureScore("age", 0.9, True)])
    store.record_batch(_batch("run-a", 1), features=[FeatureScore(f"f{i}", i / 10, i >= 1) for i in range(4)])
    store.record_batch(_batch("run-a", 2))  # recorded without feature scores: passed over
    store.record_batch(_batch("run-x", 0, model="another"), features=[FeatureScore("zeta", 0.95, True)])

    latest = store.latest_feature_scores(MODEL)
    assert [(r["run_key"], r["batch_index"]) for r in latest] == [("run-a", 1)] * 4
    assert [(r["feature"], r["score"], r["drifted"]) for r in latest] == [
        ("f3", 0.3, True),
        ("f2", 0.2, True),
        ("f1", 0.1, True),
        ("f0", 0.0, False),
    ]
    assert [r["feature"] for r in store.latest_feature_scores(MODEL, limit=2)] == ["f3", "f2"]
    assert [r["feature"] for r in store.latest_feature_scores("another")] == ["zeta"]
    assert store.latest_feature_scores("unknown") == []


def test_latest_feature_scores_breaks_a_timestamp_tie_by_batch_index(store: MetricsStore, pg_dsn: str) -> None:
    store.record_batch(_batch("run", 0), features=[FeatureScore("age", 0.5, True)])
    store.record_batch(_batch("run", 1), features=[FeatureScore("gender", 0.01, False)])
    _execute(pg_dsn, "UPDATE feature_drift SET ts = '2026-01-01T00:00:00Z'")

    assert [(r["batch_index"], r["feature"]) for r in store.latest_feature_scores(MODEL)] == [(1, "gender")]


def _kind_check(dsn: str) -> list[tuple[Any, ...]]:
    return _query(
        dsn,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'events'::regclass AND contype = 'c'",
    )


def test_a_new_database_allows_exactly_the_event_kinds(store: MetricsStore, pg_dsn: str) -> None:
    ((name, definition),) = _kind_check(pg_dsn)
    assert name == EVENT_KIND_CHECK
    assert all(f"'{kind}'" in definition for kind in EVENT_KINDS)
    assert store.record_event(Event("run", MODEL, "adoption", "v7 adopted as champion", model_version=7))


def test_an_old_events_table_is_migrated_to_the_new_kinds_once(pg_dsn: str) -> None:
    _execute(pg_dsn, OLD_EVENTS_SQL)
    store = MetricsStore(pg_dsn)
    with pytest.raises(psycopg2.errors.CheckViolation):
        _insert_event_of_kind(pg_dsn, "adoption")

    store.create_schema()
    migrated = _kind_check(pg_dsn)
    store.create_schema()

    assert _kind_check(pg_dsn) == migrated, "a second run changes nothing"
    ((name, definition),) = migrated
    assert name == EVENT_KIND_CHECK and "'adoption'" in definition
    assert store.record_event(Event("run", MODEL, "adoption", "v7 adopted as champion", model_version=7))
    assert [e["kind"] for e in store.events_of_run("old-run")] == ["rollback"], "old events are kept"
    with pytest.raises(psycopg2.errors.CheckViolation):
        _insert_event_of_kind(pg_dsn, "bogus")
    # The tables the old database lacked are there too.
    assert store.record_batch(_batch("run", 0), features=[FeatureScore("age", 0.3, True)])
    assert [r["feature"] for r in store.latest_feature_scores(MODEL)] == ["age"]


def test_the_event_class_and_the_table_accept_the_same_kinds() -> None:
    assert "adoption" in EVENT_KINDS
    with pytest.raises(ValueError, match="unknown event kind"):
        Event("run", MODEL, "bogus", "x")


def _batch_metrics_columns(dsn: str) -> list[tuple[str, str, str, str | None]]:
    return _query(
        dsn,
        "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_name = 'batch_metrics' ORDER BY ordinal_position",
    )


# The columns batch_metrics gained after its first release, as information_schema describes them.
NEW_BATCH_COLUMNS = [
    ("prior_shift", "boolean", "NO", "false"),
    ("positive_rate", "double precision", "YES", None),
    ("mean_prediction", "double precision", "YES", None),
    ("estimated_roc_auc", "double precision", "YES", None),
    ("estimated_accuracy", "double precision", "YES", None),
    ("estimated_drop", "boolean", "NO", "false"),
    ("labelled_rows", "integer", "YES", None),
    ("estimation_error", "double precision", "YES", None),
    ("labels_at", "timestamp with time zone", "YES", None),
    ("prediction_drift_p", "double precision", "YES", None),
    ("drift_noise_edge", "double precision", "YES", None),
    ("roc_auc_stderr", "double precision", "YES", None),
    ("estimated_roc_auc_low", "double precision", "YES", None),
    ("estimated_roc_auc_high", "double precision", "YES", None),
    ("estimate_trusted", "boolean", "YES", None),
    ("multivariate_auc", "double precision", "YES", None),
    ("multivariate_p", "double precision", "YES", None),
    ("multivariate_edge", "double precision", "YES", None),
    ("multivariate_drift", "boolean", "NO", "false"),
]


def test_a_new_database_has_the_verdict_and_calibration_columns(store: MetricsStore, pg_dsn: str) -> None:
    assert _batch_metrics_columns(pg_dsn)[-len(NEW_BATCH_COLUMNS) :] == NEW_BATCH_COLUMNS


def test_a_batch_keeps_its_multivariate_drift_score_and_verdict(store: MetricsStore) -> None:
    row = BatchRow(
        **{
            **_batch("run", 0).__dict__,
            "drift_detected": True,
            "multivariate_auc": 0.91,
            "multivariate_p": 1e-30,
            "multivariate_edge": 0.53,
            "multivariate_drift": True,
        }
    )
    assert store.record_batch(row)
    (kept,) = store.last_batches(MODEL, 1)
    assert (kept["multivariate_auc"], kept["multivariate_edge"], kept["multivariate_drift"]) == (0.91, 0.53, True)
    assert store.recorded_batches("run")[0]["multivariate_p"] == 1e-30


def test_a_batch_keeps_its_prior_shift_verdict_and_calibration(store: MetricsStore) -> None:
    row = BatchRow(**{**_batch("run", 0).__dict__, "prior_shift": True, "positive_rate": 0.34, "mean_prediction": 0.21})
    assert store.record_batch(row)

    (stored,) = store.batches_of_run("run")
    assert (stored["prior_shift"], stored["positive_rate"], stored["mean_prediction"]) == (True, 0.34, 0.21)
    assert store.recorded_batches("run")[0] == {name: getattr(row, name) for name in BATCH_COLUMNS}
    (latest,) = store.last_batches(MODEL)
    assert (latest["prior_shift"], latest["positive_rate"], latest["mean_prediction"]) == (True, 0.34, 0.21)


def test_a_batch_built_without_the_new_fields_is_no_shift_and_unlabelled(store: MetricsStore) -> None:
    assert store.record_batch(_batch("run", 0))

    (stored,) = store.batches_of_run("run")
    assert (stored["prior_shift"], stored["positive_rate"], stored["mean_prediction"]) == (False, None, None)


def test_an_old_batch_metrics_table_gains_the_new_columns_once(pg_dsn: str) -> None:
    _execute(pg_dsn, OLD_BATCH_METRICS_SQL)
    store = MetricsStore(pg_dsn)

    store.create_schema()
    migrated = _batch_metrics_columns(pg_dsn)
    store.create_schema()

    assert _batch_metrics_columns(pg_dsn) == migrated, "a second run changes nothing"
    assert migrated[-len(NEW_BATCH_COLUMNS) :] == NEW_BATCH_COLUMNS, "the same columns as a new database has"
    assert {name for name, *_ in migrated} >= set(BATCH_COLUMNS)
    new = BatchRow(**{**_batch("run", 1).__dict__, "prior_shift": True, "positive_rate": 0.4, "mean_prediction": 0.2})
    assert store.record_batch(new, features=[FeatureScore("age", 0.3, True)])
    old, written = store.batches_of_run("run")
    assert (old["batch_index"], old["roc_auc"], old["action"]) == (0, 0.84, "none"), "the old row is kept"
    assert (old["prior_shift"], old["positive_rate"], old["mean_prediction"]) == (False, None, None)
    assert (written["prior_shift"], written["positive_rate"], written["mean_prediction"]) == (True, 0.4, 0.2)
    assert sorted(store.recorded_batches("run")) == [0, 1]


def test_a_refused_login_fails_at_once_naming_the_settings_while_a_lost_server_is_waited_for(pg_dsn, monkeypatch):
    """The real server refuses a database that does not exist: one attempt, not a minute of retries, and a line
    that says which settings to check; a connection that drops is still retried."""
    from pipeline.io.store import StoreUnavailable

    wrong = MetricsStore(pg_dsn.rsplit("/", 1)[0] + "/no_such_database")
    attempts = []
    connect = wrong._connect
    monkeypatch.setattr(wrong, "_connect", lambda: attempts.append(1) or connect())
    with pytest.raises(StoreUnavailable) as raised:
        wrong.create_schema()
    assert len(attempts) == 1
    assert "metrics database refused the login" in str(raised.value)
    assert "PIPELINE_METRICS_DB_PASSWORD" in str(raised.value)

    lost = MetricsStore(pg_dsn)
    calls = []

    def flaky() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg2.OperationalError("server closed the connection unexpectedly")
        return psycopg2.connect(pg_dsn)

    monkeypatch.setattr(lost, "_connect", flaky)
    lost.create_schema()
    assert len(calls) == 2


def _segment(column: str, value: str, alarmed: bool) -> dict[str, Any]:
    from pipeline.io.store_segments import COLUMNS

    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    return {**row, "segment_column": column, "segment_value": value, "rows": 50, "share": 0.5, "alarmed": alarmed}


def test_a_runs_segment_alarms_by_batch_measured_batches_only(store: MetricsStore) -> None:
    """What a resumed run rebuilds its open segment incident from: each batch with segments, its alarmed ones."""
    for index in (1, 2, 3):
        assert store.record_batch(_batch("run", index))
    assert store.record_batch(_batch("other", 1))
    assert store.record_segments("run", 1, [_segment("age", ">=80", False), _segment("region", "north", False)])
    assert store.record_segments("run", 2, [_segment("age", ">=80", True), _segment("region", "north", False)])
    assert store.record_segments("other", 1, [_segment("region", "north", True)])
    assert store.segment_alarms_of_run("run") == {1: frozenset(), 2: frozenset({"age=>=80"})}  # 3: not measured
