"""Late labels: join labels that arrive after the predictions to the prediction log, and act on them.

``pipeline labels --labels PATH``: a CSV or Parquet file of (id, target) rows, local or ``s3://``, named by the
schema's ``id`` and ``target`` columns. Per delivery:

1. read: ids as ``id_key`` reads them, labels as ``label_key``; rows without an id, labels outside the two target
   values and ids given twice (once with each label: both dropped; twice with the same label: kept once) are
   counted, each a line of the report;
2. join: with the model's prediction log (``pipeline.io.predictions``). Ids found nowhere in the log are counted and
   not stored; an id labelled by an earlier delivery keeps its first label (a different one is counted);
3. measure: every monitored batch that received new labels gets its realized ROC AUC, accuracy and positive rate
   on all its labelled rows (this delivery's and earlier ones'), the labelled share, and the estimation error
   (estimated minus realized ROC AUC);
4. judge: the performance rule of ``pipeline.domain.policy`` (``auc_test``) on each such batch with at least
   ``min_rows_for_auc`` labelled rows of both classes, against the holdout AUC of the version that scored it;
5. retrain, once per delivery, when a batch scored by the current champion dropped: on the labelled rows of the
   prediction log (and the champion's labelled reference), the rows since the first dropped batch when there
   are enough (``policy.training_rows``), then register and promote as the monitor does;
6. record: the new labels, the batches' realized quality and the delivery's events in one transaction.

Idempotent: a delivery's labels already stored are not new, so the same file twice changes nothing. A crash
before step 6 leaves nothing written; the rerun finds the version step 5 registered (by its ``labels_delivery``
tag) instead of training again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.app import recovery
from pipeline.app.outcome import retrain_events
from pipeline.domain import policy
from pipeline.domain.policy_types import PolicyState, Rules, Verdict
from pipeline.domain.records import RUN_LEVEL, Event, LateLabelled
from pipeline.domain.schema import FeatureSchema, id_key, label_key
from pipeline.domain.values import finite
from pipeline.io.predictions import LOG_COLUMNS, PredictionLog, features_of_log
from pipeline.io.store import MetricsStore
from pipeline.io.tables import NO_LIMITS, DataError, InputLimits, ObjectStore, read_table
from pipeline.model.registry import Registry
from pipeline.settings import Settings
from pipeline.stats.metrics import quality

Say = Callable[[str], None]
LABEL_COLUMNS = [column for column in LOG_COLUMNS if column != "row"]  # what matching late labels reads


@dataclass
class Delivery:
    """A labels file, read and checked: {id: 0/1} and what was left out."""

    source: str
    labels: dict[str, int]
    rows: int
    missing_ids: int = 0
    bad_labels: int = 0
    duplicate_ids: int = 0  # ids given more than once with the same label (kept once)
    conflicting_ids: int = 0  # ids given with both labels (dropped)

    @property
    def key(self) -> str:
        """The delivery's identity: its labels, whatever file they came in."""
        text = "\n".join(f"{row_id}\t{label}" for row_id, label in sorted(self.labels.items()))
        return "labels-" + hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class LabelsResult:
    delivery: Delivery
    unknown_ids: int = 0
    already_labelled: int = 0  # ids labelled before (by a delivery or in their batch), not new
    relabelled: int = 0  # ids a delivery labelled before with the other label (the first label kept)
    new_labels: int = 0
    batches: list[LateLabelled] = field(default_factory=list)
    shares: dict[tuple[str, int], float] = field(default_factory=dict)
    estimated: dict[tuple[str, int], float | None] = field(default_factory=dict)
    alarms: list[str] = field(default_factory=list)
    retrained: str | None = None  # what the retrain did, one line


def read_delivery(
    source: str, schema: FeatureSchema, s3_client: ObjectStore | None, limits: InputLimits = NO_LIMITS
) -> Delivery:
    """Read and check a labels file (refused when over ``limits``, as a batch is); a file without the id or target
    column is a one-line ``DataError``."""
    if schema.id is None:
        raise DataError(
            f"{source}: the schema names no id column, so no label can be joined to a prediction; "
            'add "id": "<column>" to the schema file and pass it with --schema'
        )
    frame = read_table(source, s3_client, limits=limits)
    for name, what in ((schema.id, "id"), (schema.target, "target")):
        if name not in frame.columns:
            raise DataError(f"{source}: no {what} column {name!r}")
    ids = frame[schema.id].map(id_key)
    labels = frame[schema.target].map(label_key)
    good = labels.isin([schema.positive_key, schema.negative_key])
    has_id = ids.notna()
    table = pd.DataFrame({"id": ids[good & has_id], "label": (labels[good & has_id] == schema.positive_key)})
    per_id = table.groupby("id")["label"].agg(["nunique", "size", "first"])
    conflicting = per_id["nunique"] > 1
    kept = per_id[~conflicting]
    return Delivery(
        source=source,
        labels={str(row_id): int(label) for row_id, label in kept["first"].items()},
        rows=len(frame),
        missing_ids=int((~has_id).sum()),
        bad_labels=int((has_id & ~good).sum()),
        duplicate_ids=int((kept["size"] > 1).sum()),
        conflicting_ids=int(conflicting.sum()),
    )


class LateLabels:
    """Joins a delivery to the prediction log and acts on it; collaborators passed in."""

    def __init__(
        self,
        settings: Settings,
        schema: FeatureSchema,
        store: MetricsStore,
        registry: Registry,
        log: PredictionLog,
        say: Say = print,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.store = store
        self.registry = registry
        self.log = log
        self.say = say
        self.rules = Rules.of(settings.policy)

    def ingest(self, delivery: Delivery) -> LabelsResult:
        result = LabelsResult(delivery)
        name = self.registry.name
        known = self.store.known_labels(name)
        logged = [frame for frame in self.log.batches(name, LABEL_COLUMNS) if len(frame)]
        predictions = pd.concat(logged, ignore_index=True) if logged else pd.DataFrame(columns=LABEL_COLUMNS)
        predictions["id"] = predictions["id"].astype("object")
        new = _new_labels(delivery, known, predictions, result)
        result.new_labels = len(new)
        if not new:
            return result
        every = {**known, **new}
        touched = predictions[predictions["id"].isin(new.keys()) & predictions["label"].isna()]
        rows = self.store.batches_of_model(name)
        holdouts: dict[int, float | None] = {}
        dropped: list[tuple[str, int, int]] = []  # (run key, batch, version) of batches whose labels alarm
        for run_key, index in _in_time_order(touched, rows):
            row = rows.get((run_key, index))
            if row is None:
                continue  # a log written by an attempt whose row was never committed: a rerun rewrites it
            batch = predictions[(predictions["run_key"] == run_key) & (predictions["batch"] == index)]
            batch = batch[batch["label"].isna() & batch["id"].isin(every.keys())]
            version = self._judge_batch(run_key, index, row, batch, every, holdouts, result)
            if version is not None:
                dropped.append((run_key, index, version))
        events = _ingest_events(delivery, name, len(new), dropped, result)
        if dropped:
            events += self._retrain(delivery, dropped, predictions, every, rows, result)
        self.store.record_late_labels(name, delivery.key, sorted(new.items()), result.batches, events)
        return result

    def _judge_batch(
        self,
        run_key: str,
        index: int,
        row: Mapping[str, Any],
        batch: pd.DataFrame,
        every: dict[str, int],
        holdouts: dict[int, float | None],
        result: LabelsResult,
    ) -> int | None:
        """One batch's late-labelled quality added to ``result``, judged by the performance rule against the
        holdout AUC of the version that served it; that version when its labels alarm, else None."""
        y = batch["id"].map(every).to_numpy(dtype="int64")
        p = batch["p_positive"].to_numpy(dtype="float64")
        metrics = quality(y, p)
        realized = finite(metrics["roc_auc"])
        estimated = finite(row.get("estimated_roc_auc"))
        version = int(row["champion_version"])
        if version not in holdouts:
            holdouts[version] = self.registry.version(version).metric("holdout_roc_auc")
        holdout = holdouts[version]
        trusted = len(y) >= self.rules.min_rows_for_auc and 0 < y.sum() < len(y)
        test = None
        if trusted and realized is not None and holdout is not None:
            positives = float(y.sum())
            test = policy.auc_test(realized, holdout, positives, len(y) - positives, self.rules)
        drop = test is not None and test.dropped
        result.batches.append(
            LateLabelled(
                run_key=run_key,
                batch_index=index,
                labelled_rows=len(y),
                roc_auc=realized,
                accuracy=metrics["accuracy"],
                positive_rate=float(y.mean()),
                estimation_error=None if estimated is None or realized is None else estimated - realized,
                performance_drop=drop,
            )
        )
        result.shares[(run_key, index)] = len(y) / max(int(row["n_rows"]), 1)
        result.estimated[(run_key, index)] = estimated
        if not drop:
            return None
        assert realized is not None and holdout is not None and test is not None
        reason = policy.auc_drop_reason("late-labelled ROC AUC", realized, holdout, test, self.rules)
        result.alarms.append(f"batch {index} of run {run_key} (v{version}): {reason}")
        return version

    def _retrain(
        self,
        delivery: Delivery,
        dropped: Sequence[tuple[str, int, int]],
        predictions: pd.DataFrame,
        every: dict[str, int],
        rows: dict[tuple[str, int], dict[str, Any]],
        result: LabelsResult,
    ) -> list[Event]:
        """Retrain once on the labelled rows, when the champion is the version whose labels dropped."""
        from pipeline.model.retrain import WindowInfo, retrain
        from pipeline.model.serving import load_version

        champion = self.registry.champion()
        if champion is None or all(version != champion.version for _k, _i, version in dropped):
            result.retrained = "no retrain: the versions whose labels dropped are no longer champion"
            return []
        origin = {"labels_delivery": delivery.key}
        done = self.registry.find_version(origin)
        if done is not None:
            _action, events = recovery.finish_interrupted(
                self.registry, done, champion.version, RUN_LEVEL, delivery.key, self.say
            )
            result.retrained = f"v{done.version} found from an interrupted attempt"
            return events
        window, names = self._window(dropped, predictions, every, rows, champion)
        if len(window) < self.rules.min_rows_for_auc:
            result.retrained = f"no retrain: {len(window)} labelled rows are too few"
            return []
        serving = load_version(self.registry, champion, self.schema, self.settings)
        why = f"late labels ({delivery.key}): {result.alarms[0]}"
        self.say(f"retraining on {len(window)} labelled rows ({len(names)} sources, newest held out)")
        retrained = retrain(
            window,
            WindowInfo(len(window), names, why),
            training=self.settings.training,
            schema=self.schema,
            registry=self.registry,
            champion_model=serving.scorer,
            say=self.say,
            origin=origin,
        )
        verdict = "PROMOTED" if retrained.promoted else "REJECTED"
        result.retrained = f"{verdict} v{retrained.version}: {retrained.decision.reason}"
        return retrain_events(delivery.key, self.registry.name, RUN_LEVEL, champion.version, retrained, names)

    def _window(
        self,
        dropped: Sequence[tuple[str, int, int]],
        predictions: pd.DataFrame,
        every: dict[str, int],
        rows: dict[tuple[str, int], dict[str, Any]],
        champion: Any,
    ) -> tuple[pd.DataFrame, list[str]]:
        """The labelled rows to retrain on, oldest first: the champion's labelled reference, then each logged
        batch's labelled rows in time order; the policy picks which (rows since the first dropped batch)."""
        from pipeline.model.serving import recorded_reference

        labelled = predictions[predictions["id"].isin(every.keys()) | predictions["label"].notna()]
        keys = _in_time_order(labelled, rows)
        frames: list[tuple[int, str, pd.DataFrame]] = []
        reference = recorded_reference(champion, self.schema, self.registry.name)
        if reference is not None and reference.has_labels:
            frames.append((0, f"v{champion.version} reference", reference.frame))
        first_drop = None
        for position, (run_key, index) in enumerate(keys, start=1):
            if (run_key, index) in {(k, i) for k, i, _v in dropped} and first_drop is None:
                first_drop = position
            logged = self.log.read(self.log.uri(self.registry.name, run_key, index))
            frame = labelled_rows(logged, every, self.schema)
            frames.append((position, f"{run_key}#{index}", frame))
        state = PolicyState(change_at=first_drop)
        verdict = Verdict(False, True, False, (), True)
        last = frames[-1][0] if frames else 0
        chosen = policy.training_rows([(p, len(f)) for p, _n, f in frames], last, state, verdict, self.rules)
        picked = [f.iloc[len(f) - chosen[p] :] for p, _n, f in frames if p in chosen]
        names = [n for p, n, _f in frames if p in chosen]
        window = pd.concat(picked, ignore_index=True) if picked else pd.DataFrame()
        return window, names


def labelled_rows(logged: pd.DataFrame, known: dict[str, int], schema: FeatureSchema) -> pd.DataFrame:
    """A batch's logged rows that have a label, as a frame of the schema's features and target: the label logged
    with the batch, else a late label by id (``known``, 0/1 per id)."""
    logged = logged[logged["label"].notna() | logged["id"].isin(known.keys())]
    frame = features_of_log(logged, schema)
    y = logged["label"].astype("float64").fillna(logged["id"].map(known)).to_numpy(dtype="int64")
    frame[schema.target] = np.where(y == 1, schema.positive_key, schema.negative_key)
    return frame


def _in_time_order(logged: pd.DataFrame, rows: dict[tuple[str, int], dict[str, Any]]) -> list[tuple[str, int]]:
    """The (run key, batch) pairs of logged rows, in the order their batches were recorded."""
    keys = {(str(k), int(i)) for k, i in zip(logged["run_key"], logged["batch"], strict=True)}
    return sorted(keys, key=lambda key: (rows[key]["ts"], key[1]) if key in rows else (pd.Timestamp.max, key[1]))


def late_labelled_window(
    log: PredictionLog,
    store: MetricsStore,
    schema: FeatureSchema,
    model_name: str,
    run_key: str,
    indexes: Sequence[int],
    limit: int,
) -> list[tuple[int, str, pd.DataFrame]]:
    """The labelled rows of a run's earlier batches (labelled in the batch, or later), newest batches first until
    ``limit`` rows, as (batch index, source name, validated frame with the target), oldest first: what a monitor
    run adds to its retraining window when it resumes."""
    if not indexes:
        return []
    every = store.known_labels(model_name)
    taken: list[tuple[int, str, pd.DataFrame]] = []
    total = 0
    for index in sorted(indexes, reverse=True):
        if total >= limit:
            break
        try:
            logged = log.read(log.uri(model_name, run_key, index))
        except DataError:
            continue  # a batch recorded before its schema named an id has no log
        frame = labelled_rows(logged, every, schema)
        if frame.empty:
            continue
        frame = frame.iloc[max(0, len(frame) - (limit - total)) :].reset_index(drop=True)
        taken.append((index, f"{run_key}#{index}", frame))
        total += len(frame)
    return sorted(taken, key=lambda item: item[0])


def _new_labels(
    delivery: Delivery, known: Mapping[str, int], predictions: pd.DataFrame, result: LabelsResult
) -> dict[str, int]:
    """The delivery's labels for logged rows not labelled yet; the others counted in ``result`` (unknown ids,
    rows already labelled, of which relabelled differently)."""
    labelled_in_batch = set(predictions.loc[predictions["label"].notna(), "id"].dropna())
    in_log = set(predictions["id"].dropna())
    new: dict[str, int] = {}
    for row_id, label in delivery.labels.items():
        if row_id not in in_log:
            result.unknown_ids += 1
        elif row_id in known or row_id in labelled_in_batch:
            result.already_labelled += 1
            result.relabelled += int(row_id in known and known[row_id] != label)
        else:
            new[row_id] = label
    return new


def _ingest_events(
    delivery: Delivery, name: str, new: int, dropped: Sequence[tuple[str, int, int]], result: LabelsResult
) -> list[Event]:
    """The delivery's ``labels`` event, and an ``alarm`` event when some batches' labels alarm."""
    events = [
        Event(
            delivery.key,
            name,
            "labels",
            f"{new} late labels from {delivery.source} for {len(result.batches)} batches",
            details={"source": delivery.source, "new": new, "unknown": result.unknown_ids},
        )
    ]
    if dropped:
        events.append(
            Event(
                delivery.key,
                name,
                "alarm",
                "; ".join(result.alarms),
                details={"batches": [{"run_key": k, "batch": i, "version": v} for k, i, v in dropped]},
            )
        )
    return events
