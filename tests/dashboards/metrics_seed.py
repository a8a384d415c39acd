"""A monitor run's worth of metrics and events, written through the pipeline's own store.

Twelve batches of one model: a quiet start, a drifted batch that raises an alarm, is retrained and
promotes a challenger, a cooldown, a shift in the label prior on a labelled batch (its positive rate far from the
champion's mean prediction), a second drift whose challenger is rejected, a drop in quality on a labelled batch,
and a rollback recorded by a later command. Every batch carries its feature scores: as many
features drift as the batch's drifted-columns count, one score sits exactly on the column threshold and one
feature has no score (NaN) in some batches. One batch of another model, recorded last, checks that the
dashboard's model variable filters. The data is the only thing the dashboard tests know about, so a
real monitor run can replace it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from pipeline.domain.records import BatchRow, Event, FeatureScore, LateLabelled
from pipeline.io.store import MetricsStore

MODEL = "driftloop-model"
OTHER_MODEL = "driftloop-model-shadow"
RUN_KEY = "monitor-seed-0001"
THRESHOLD = 0.1

# batch: (prediction drift, drifted columns, share missing, ROC AUC or None, champion version, mean prediction,
# positive rate or None). A labelled batch has both ROC AUC and a positive rate.
_BATCHES = [
    (0.021, 0, 0.010, 0.842, 1, 0.212, 0.205),
    (0.034, 1, 0.012, None, 1, 0.208, None),
    (0.048, 1, 0.011, 0.838, 1, 0.215, 0.224),
    (0.066, 2, 0.015, None, 1, 0.219, None),
    (0.183, 6, 0.041, 0.801, 1, 0.264, 0.251),  # drift: alarm, retrain, challenger v2 promoted
    (0.052, 1, 0.013, None, 2, 0.221, None),
    (0.047, 1, 0.012, 0.851, 2, 0.218, 0.347),  # prior shift alone: alarm, in cooldown
    (0.071, 2, 0.014, None, 2, 0.226, None),
    (0.100, 4, 0.022, 0.829, 2, 0.241, 0.236),  # exactly at the threshold: alarm, retrain, challenger v3 rejected
    (0.058, 2, 0.013, None, 2, 0.223, None),
    (0.062, 2, 0.016, 0.771, 2, 0.225, 0.219),  # quality drop below the holdout AUC: alarm, in cooldown
    (0.044, 1, 0.012, None, 2, 0.220, None),
]
# The ROC AUC estimated without labels, every batch: close to the realized one, except on batch 10, whose quality
# dropped while the champion stayed as confident (a concept shift: the estimate does not see it).
ESTIMATED_AUC = (0.839, 0.841, 0.835, 0.838, 0.812, 0.846, 0.849, 0.844, 0.826, 0.843, 0.842, 0.840)
FEATURES = (
    "age",
    "albumin_last",
    "albumin_max",
    "albumin_median",
    "albumin_min",
    "arrivalmode",
    "bloodculture,routine_count",
    "bloodculture,routine_last",
    "bloodculture,routine_npos",
    "cc_abdominalcramping",
    "cc_abdominaldistention",
    "cc_abdominalpain",
    "cc_abdominalpainpregnant",
    "gender",
    "previousdispo",
    "triage_vital_hr",
    "triage_vital_sbp",
    "triage_vital_temp",
)
N_FEATURES = len(FEATURES)
# The features that drift, in order: a batch with d drifted columns has the first d of them drifted.
DRIFTING = ("arrivalmode", "age", "previousdispo", "albumin_last", "triage_vital_hr", "gender")
UNSCORED = "cc_abdominalpainpregnant"  # no values on one side in odd batches: NaN, stored as NULL
COLUMN_THRESHOLD = 0.1
# The other model's only batch: a feature that never drifts for MODEL drifts strongly here.
OTHER_FEATURES = {"bloodculture,routine_npos": 0.55, "age": 0.91, "gender": 0.02}
HOLDOUT_AUC = 0.846
AUC_TOLERANCE = 0.05
PRIOR_TOLERANCE = 0.05  # the seed's stand-in for the monitor's rule: |positive rate - mean prediction| above it


@dataclass(frozen=True)
class SeededRun:
    dsn: str
    model: str
    run_key: str
    threshold: float
    n_batches: int
    alarms: tuple[int, ...]
    labelled: tuple[int, ...]  # batches that carry a positive rate, oldest first
    promotions: tuple[int, ...]
    rejections: tuple[int, ...]
    latest_features: tuple[FeatureScore, ...]  # the last batch's, highest score first, unscored last
    drifting_features: frozenset[str]  # every feature that drifted in some batch of MODEL
    attributed: int = -1  # the batch of MODEL whose drift attribution is stored (the latest alarm)
    attribution: tuple[tuple[str, float, float, float], ...] = ()  # (feature, share, shift, drop), highest first


def feature_scores(index: int, drifted: int) -> list[FeatureScore]:
    """Batch ``index``'s feature scores: the first ``drifted`` of DRIFTING at or above the threshold (batch 8's
    last one exactly on it), every other feature below it, UNSCORED without a score in odd batches."""
    scores = []
    for j, name in enumerate(FEATURES):
        score: float = round(0.01 + 0.004 * ((index * 7 + j * 5) % 19), 4)
        if name in DRIFTING[:drifted]:
            rank = DRIFTING.index(name)
            score = COLUMN_THRESHOLD if index == 8 and rank == drifted - 1 else round(0.12 + 0.05 * (drifted - rank), 4)
        elif name == UNSCORED and index % 2:
            score = float("nan")
        scores.append(FeatureScore(name, score, score >= COLUMN_THRESHOLD))
    return scores


def _by_score(features: list[FeatureScore]) -> tuple[FeatureScore, ...]:
    """Highest score first, unscored last, ties by name: the order the dashboard and the store promise."""
    unscored = sorted((f for f in features if f.score is None or math.isnan(f.score)), key=lambda f: f.feature)
    scored = sorted((f for f in features if f not in unscored), key=lambda f: (-(f.score or 0.0), f.feature))
    return tuple(scored + [FeatureScore(f.feature, None, f.drifted) for f in unscored])


def seed_monitor_run(dsn: str) -> SeededRun:
    store = MetricsStore(dsn)
    store.create_schema()
    store.start_run(RUN_KEY, MODEL, THRESHOLD, ["s3://driftloop-data/batches/"])
    store.record_event(
        Event(RUN_KEY, MODEL, "bootstrap", "registered v1 trained on the reference window", model_version=1)
    )
    alarms, promotions, rejections = [], [], []
    for index, (drift, drifted, missing, auc, champion, mean_prediction, positive_rate) in enumerate(_BATCHES):
        drift_detected = drift >= THRESHOLD
        performance_drop = auc is not None and auc < HOLDOUT_AUC - AUC_TOLERANCE
        prior_shift = positive_rate is not None and abs(positive_rate - mean_prediction) > PRIOR_TOLERANCE
        events: list[Event] = []
        action = "none"
        if drift_detected or performance_drop or prior_shift:
            alarms.append(index)
            reason = "prediction drift" if drift_detected else "ROC AUC drop" if performance_drop else "prior shift"
            events.append(
                Event(
                    RUN_KEY,
                    MODEL,
                    "alarm",
                    f"{reason} on batch {index}",
                    batch_index=index,
                    champion_version=champion,
                    details={"drift": drift, "roc_auc": auc, "positive_rate": positive_rate},
                )
            )
        if index == 4:
            action = "retrain"
            events.append(
                Event(
                    RUN_KEY,
                    MODEL,
                    "retrain",
                    "retrained on the last 20000 rows",
                    index,
                    model_version=2,
                    champion_version=1,
                )
            )
            events.append(
                Event(
                    RUN_KEY,
                    MODEL,
                    "promotion",
                    "v2 beat v1 by 0.011 nats/row",
                    index,
                    model_version=2,
                    champion_version=2,
                    details={"gain": 0.011},
                )
            )
            promotions.append(index)
        elif index == 8:
            action = "retrain"
            events.append(
                Event(
                    RUN_KEY,
                    MODEL,
                    "retrain",
                    "retrained on the last 20000 rows",
                    index,
                    model_version=3,
                    champion_version=2,
                )
            )
            events.append(
                Event(
                    RUN_KEY,
                    MODEL,
                    "rejection",
                    "v3 gain 0.001 below the 0.002 minimum",
                    index,
                    model_version=3,
                    champion_version=2,
                    details={"gain": 0.001},
                )
            )
            rejections.append(index)
        elif performance_drop or prior_shift:
            action = "cooldown"
        features = feature_scores(index, drifted)
        store.record_batch(
            BatchRow(
                run_key=RUN_KEY,
                batch_index=index,
                model_name=MODEL,
                champion_version=champion,
                source=f"s3://driftloop-data/batches/batch-{index:03d}.parquet",
                n_rows=2000 - 37 * (index % 3),
                prediction_drift=drift,
                drift_threshold=THRESHOLD,
                drifted_columns=drifted,
                share_drifted_columns=drifted / N_FEATURES,
                share_missing=missing,
                unseen_categories=1 if index == 4 else 0,
                drift_detected=drift_detected,
                roc_auc=auc,
                accuracy=None if auc is None else round(auc - 0.09, 3),
                performance_drop=performance_drop,
                action=action,
                prior_shift=prior_shift,
                positive_rate=positive_rate,
                mean_prediction=mean_prediction,
                estimated_roc_auc=ESTIMATED_AUC[index],
                estimated_accuracy=round(ESTIMATED_AUC[index] - 0.08, 3),
                labelled_rows=None if auc is None else 2000 - 37 * (index % 3),
                estimation_error=None if auc is None else round(ESTIMATED_AUC[index] - auc, 6),
                multivariate_auc=0.5 + 0.01 * (index % 4),
                multivariate_p=0.3,
                multivariate_edge=0.53,
            ),
            events=events,
            features=features,
        )
    # The latest alarm's attribution: a feature the model ignores (the last) has no share however much it drifted.
    attribution = (("age", 0.7, 0.07, 0.042), ("triage_vital_hr", 0.3, 0.03, 0.018), (DRIFTING[0], 0.0, 0.0, -0.001))
    store.record_attribution(RUN_KEY, alarms[-1], attribution, 2000, "transport")
    segment = {"segment_column": "arrivalmode", "rows": 400, "reference_share": 0.2, "prediction_drift": 0.05}
    store.record_segments(
        RUN_KEY,
        alarms[-1],
        [
            {**segment, "segment_value": "car", "share": 0.5, "prediction_drift_p": 0.4, "alarmed": False},
            {
                **segment,
                "segment_value": "ambulance",
                "share": 0.3,
                "prediction_drift": 0.3,
                "alarmed": True,
                "prediction_drift_p": 1e-6,
                "reason": "prediction drift 0.300 (p=1e-06)",
            },
        ],
    )
    store.record_event(
        Event(
            "rollback-seed-0001",
            MODEL,
            "rollback",
            "champion alias moved back from v2 to v1",
            model_version=1,
            champion_version=1,
        )
    )
    store.record_batch(
        BatchRow(
            "shadow-seed-0001",
            0,
            OTHER_MODEL,
            1,
            "s3://driftloop-data/batches/batch-000.parquet",
            500,
            0.012,
            THRESHOLD,
            0,
            0.0,
            0.01,
            0,
            False,
            None,
            None,
            False,
            "none",
            mean_prediction=0.197,
        ),
        features=[FeatureScore(name, score, score >= COLUMN_THRESHOLD) for name, score in OTHER_FEATURES.items()],
    )
    return SeededRun(
        dsn,
        MODEL,
        RUN_KEY,
        THRESHOLD,
        len(_BATCHES),
        tuple(alarms),
        tuple(i for i, batch in enumerate(_BATCHES) if batch[6] is not None),
        tuple(promotions),
        tuple(rejections),
        latest_features=_by_score(feature_scores(len(_BATCHES) - 1, _BATCHES[-1][1])),
        drifting_features=frozenset(DRIFTING[: max(b[1] for b in _BATCHES)]),
        attributed=alarms[-1],
        attribution=attribution,
    )


# One model per cause of the monitor's alarm, each cause firing alone, and a quiet model. Per batch:
# (drift_detected, performance_drop, prior_shift, estimated_drop). Every batch is recorded now, except that the
# quiet model also has an old prior-shift batch moved two hours back, outside the alert's hour, and the late-labels
# model's batch, recorded two hours ago, whose labels arrive now and show a drop.
COLUMNS_DRIFTED = "verdict-columns-drifted"  # drift_detected with prediction drift BELOW its threshold
PERFORMANCE_DROP = "verdict-performance-drop"
PRIOR_SHIFT = "verdict-prior-shift"
ESTIMATED_DROP = "verdict-estimated-drop"  # unlabelled batches: only the estimate speaks
LATE_LABELS = "verdict-late-labels"
QUIET = "verdict-quiet"
_VERDICTS = {
    COLUMNS_DRIFTED: [(True, False, False, False), (True, False, False, False), (False, False, False, False)],
    PERFORMANCE_DROP: [(False, True, False, False), (False, False, False, False)],
    PRIOR_SHIFT: [(False, False, True, False), (False, False, True, False), (False, False, True, False)],
    ESTIMATED_DROP: [(False, False, False, True), (False, False, False, False)],
    QUIET: [(False, False, False, False), (False, False, False, False)],
}


def _verdict_row(
    model: str, index: int, drift_detected: bool, performance_drop: bool, prior_shift: bool, estimated_drop: bool
) -> BatchRow:
    """A batch whose scores match its verdict and whose other scores stay quiet: the drift is always below the
    threshold (a drift verdict comes from drifted columns), ROC AUC is near the holdout's unless quality dropped,
    and the positive rate is near the mean prediction unless the prior shifted. The estimated-drop model's batches
    carry no labels."""
    drifted = 10 if drift_detected else 1
    mean_prediction = 0.2
    labelled = model != ESTIMATED_DROP
    return BatchRow(
        run_key=f"{model}-run",
        batch_index=index,
        model_name=model,
        champion_version=1,
        source=f"batch-{index:03d}.csv",
        n_rows=1000,
        prediction_drift=0.04,
        drift_threshold=THRESHOLD,
        drifted_columns=drifted,
        share_drifted_columns=drifted / N_FEATURES,
        share_missing=0.01,
        unseen_categories=0,
        drift_detected=drift_detected,
        roc_auc=(0.70 if performance_drop else 0.84) if labelled else None,
        accuracy=0.75 if labelled else None,
        performance_drop=performance_drop,
        action="cooldown" if drift_detected or performance_drop or prior_shift or estimated_drop else "none",
        prior_shift=prior_shift,
        positive_rate=(0.35 if prior_shift else 0.21) if labelled else None,
        mean_prediction=mean_prediction,
        estimated_roc_auc=0.71 if estimated_drop else 0.83,
        estimated_accuracy=0.78,
        estimated_drop=estimated_drop,
        labelled_rows=1000 if labelled else None,
    )


def seed_verdicts(dsn: str) -> str:
    """Record the batches of _VERDICTS through the store; returns the DSN."""
    store = MetricsStore(dsn)
    store.create_schema()
    for model, verdicts in _VERDICTS.items():
        store.start_run(f"{model}-run", model, THRESHOLD, ["batches/"])
        for index, verdict in enumerate(verdicts):
            store.record_batch(_verdict_row(model, index, *verdict))
    stale = _verdict_row(QUIET, len(_VERDICTS[QUIET]), False, False, True, False)
    store.record_batch(stale)
    store.start_run(f"{LATE_LABELS}-run", LATE_LABELS, THRESHOLD, ["batches/"])
    late = replace(
        _verdict_row(ESTIMATED_DROP, 0, False, False, False, False),
        run_key=f"{LATE_LABELS}-run",
        model_name=LATE_LABELS,
    )
    store.record_batch(late)
    with store.transaction() as cur:
        for row in (stale, late):
            cur.execute(
                "UPDATE batch_metrics SET ts = now() - interval '2 hours' WHERE run_key = %s AND batch_index = %s",
                (row.run_key, row.batch_index),
            )
    # the late batch's labels arrive now: realized AUC 0.70, below the holdout's
    labelled = LateLabelled(late.run_key, 0, 900, 0.70, 0.74, 0.22, 0.83 - 0.70, True)
    store.record_late_labels(LATE_LABELS, "labels-seed", [(str(i), i % 2) for i in range(900)], [labelled])
    return dsn


# The heartbeat: a model that recorded a batch just now, one whose last batch is 30 hours old (a monitor that
# stopped), and one silent for 40 days (retired).
FRESH = "driftloop-model-fresh"
STALLED = "driftloop-model-stalled"
RETIRED = "driftloop-model-retired"
_LAST_BATCH_AGE_HOURS = {FRESH: 0, STALLED: 30, RETIRED: 40 * 24}


def seed_heartbeats(dsn: str) -> str:
    """Two batches per model of _LAST_BATCH_AGE_HOURS, the later one as old as given; returns the DSN."""
    store = MetricsStore(dsn)
    store.create_schema()
    for model, age in _LAST_BATCH_AGE_HOURS.items():
        store.start_run(f"{model}-run", model, THRESHOLD, ["batches/"])
        for index in range(2):
            store.record_batch(_verdict_row(model, index, False, False, False, False))
        with store.transaction() as cur:
            cur.execute(
                "UPDATE batch_metrics SET ts = now() - make_interval(hours => %s + 1 - batch_index) "
                "WHERE model_name = %s",
                (age, model),
            )
    return dsn
