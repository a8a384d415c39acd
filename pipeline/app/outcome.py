"""A batch's outcome: the one place that builds its Postgres row, its feature scores, its alarm event and the
public ``--report-json`` record (from the row, so a batch replayed from Postgres reads exactly as it did)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from pipeline.domain.policy_types import Action, Verdict
from pipeline.domain.records import BatchRow, Event, FeatureScore
from pipeline.domain.values import finite
from pipeline.engine.observe import BatchObservation
from pipeline.io.data import Batch
from pipeline.model.retrain import RetrainOutcome


def batch_row(
    run_key: str,
    index: int,
    model_name: str,
    version: int,
    batch: Batch,
    seen: BatchObservation,
    verdict: Verdict,
    action: Action,
    threshold: float,
    band_edge: float | None = None,
    false_alarm_rate: float = 0.01,
) -> BatchRow:
    """``band_edge``: the prediction-drift score chance reaches at the false-alarm rate at this batch's size;
    ``false_alarm_rate``: the rate the multivariate score's edge is drawn at."""
    drift = seen.drift
    multivariate = seen.multivariate
    return BatchRow(
        run_key=run_key,
        batch_index=index,
        model_name=model_name,
        champion_version=version,
        source=batch.source,
        n_rows=batch.rows,
        prediction_drift=drift.prediction_drift,
        drift_threshold=threshold,
        drifted_columns=drift.drifted_columns,
        share_drifted_columns=drift.share_drifted_columns,
        share_missing=drift.share_missing,
        unseen_categories=drift.unseen_categories,
        drift_detected=verdict.drift_detected,
        roc_auc=seen.roc_auc,
        accuracy=seen.accuracy,
        performance_drop=verdict.performance_drop,
        action=action.value,
        prior_shift=verdict.prior_shift,
        positive_rate=seen.positive_rate,
        mean_prediction=finite(seen.mean_prediction),
        estimated_roc_auc=seen.estimated_roc_auc,
        estimated_accuracy=seen.estimated_accuracy,
        estimated_drop=verdict.estimated_drop,
        labelled_rows=batch.labelled_rows if batch.has_labels else None,
        estimation_error=seen.estimation_error,
        prediction_drift_p=finite(drift.prediction_p),
        drift_noise_edge=finite(band_edge),
        roc_auc_stderr=finite(seen.roc_auc_stderr),
        estimated_roc_auc_low=seen.estimated_roc_auc_low,
        estimated_roc_auc_high=seen.estimated_roc_auc_high,
        estimate_trusted=seen.estimate_trusted,
        multivariate_auc=None if multivariate is None else finite(multivariate.auc),
        multivariate_p=None if multivariate is None else finite(multivariate.p_value),
        multivariate_edge=None if multivariate is None else finite(multivariate.edge(false_alarm_rate)),
        multivariate_drift=verdict.multivariate_drift,
    )


def retrain_events(
    run_key: str, model_name: str, index: int, champion_version: int, retrained: RetrainOutcome, sources: Sequence[str]
) -> list[Event]:
    """The events of a retrain: ``retrain``, then ``promotion`` or ``rejection``."""
    rows = sum(retrained.split.describe().values())
    details = {
        "mlflow_run_id": retrained.run_id,
        "candidate": retrained.candidate,
        "decision": retrained.decision.as_dict(),
        "window_rows": rows,
        "sources": list(sources),
    }

    def event(kind: str, message: str) -> Event:
        return Event(run_key, model_name, kind, message, index, retrained.version, champion_version, details)

    trained = event("retrain", f"trained v{retrained.version} ({retrained.candidate}) on {rows} rows")
    if retrained.promoted:
        verdict = f"v{retrained.version} promoted over v{champion_version}: {retrained.decision.reason}"
        return [trained, event("promotion", verdict)]
    if retrained.held:
        held = (
            f"v{retrained.version} is the challenger, held for a person (retraining mode challenger): "
            f"{retrained.decision.reason}; `pipeline promote --version {retrained.version}` serves it"
        )
        return [trained, event("challenger", held)]
    return [trained, event("rejection", f"v{retrained.version} not promoted: {retrained.decision.reason}")]


def feature_scores(seen: BatchObservation) -> list[FeatureScore]:
    drift = seen.drift
    return [FeatureScore(name, finite(score), drift.is_drifted(name)) for name, score in drift.column_scores.items()]


def alarm_event(
    run_key: str, model_name: str, index: int, version: int, seen: BatchObservation, verdict: Verdict
) -> Event:
    return Event(
        run_key,
        model_name,
        "alarm",
        verdict.why,
        index,
        champion_version=version,
        details={
            "prediction_drift": seen.drift.prediction_drift,
            "prediction_drift_p": finite(seen.drift.prediction_p),
            "drifted_columns": seen.drift.drifted_columns,
            "drifted_features": {
                name: {"score": score, "p_value": finite(seen.drift.column_p.get(name))}
                for name, score in seen.drift.drifted_features()
            },
            "roc_auc_stderr": finite(seen.roc_auc_stderr),
            "estimated_roc_auc_interval": [seen.estimated_roc_auc_low, seen.estimated_roc_auc_high],
            "estimate_trusted": seen.estimate_trusted,
            "roc_auc": seen.roc_auc,
            "estimated_roc_auc": seen.estimated_roc_auc,
            "positive_rate": seen.positive_rate,
            "mean_prediction": seen.mean_prediction,
            "drift_detected": verdict.drift_detected,
            "performance_drop": verdict.performance_drop,
            "prior_shift": verdict.prior_shift,
            "estimated_drop": verdict.estimated_drop,
            "multivariate_auc": seen.observation.multivariate_auc,
            "multivariate_p": seen.observation.multivariate_p,
            "multivariate_drift": verdict.multivariate_drift,
        },
    )


def batch_line(index: int, version: int, rows: int, seen: BatchObservation, verdict: Verdict, action: Action) -> str:
    """The batch's one line in the run's output."""
    drift = seen.drift
    flag = "ALARM" if verdict.alarm else "ok   "
    auc_text = f" auc={seen.roc_auc:.3f}" if seen.roc_auc is not None else ""
    if seen.estimated_roc_auc is not None:
        auc_text += f" est_auc={seen.estimated_roc_auc:.3f}"
    return (
        f"[batch {index}] {flag} v{version} rows={rows} pred_drift={drift.prediction_drift:.3f} "
        f"drifted_cols={drift.drifted_columns}{auc_text} -> {action.value}"
    )


def report_record(row: BatchRow | Mapping[str, Any], drifted_features: Sequence[str]) -> dict[str, Any]:
    """The public per-batch record (docs/cli.md: "The --report-json record") of a batch row."""
    values = asdict(row) if isinstance(row, BatchRow) else dict(row)
    record = {
        "batch": values["batch_index"],
        "source": values["source"],
        "rows": values["n_rows"],
        "prediction_drift": values["prediction_drift"],
        "prediction_drift_p": values.get("prediction_drift_p"),
        "drift_noise_edge": values.get("drift_noise_edge"),
        "drifted_columns": values["drifted_columns"],
        "share_missing": values["share_missing"],
        "drift_detected": values["drift_detected"],
        "performance_drop": values["performance_drop"],
        "prior_shift": bool(values.get("prior_shift")),
        "estimated_drop": bool(values.get("estimated_drop")),
        "multivariate_drift": bool(values.get("multivariate_drift")),
        "multivariate_auc": values.get("multivariate_auc"),
        "multivariate_p": values.get("multivariate_p"),
        "multivariate_edge": values.get("multivariate_edge"),
        "estimated_roc_auc": values.get("estimated_roc_auc"),
        "estimated_accuracy": values.get("estimated_accuracy"),
        "estimated_roc_auc_low": values.get("estimated_roc_auc_low"),
        "estimated_roc_auc_high": values.get("estimated_roc_auc_high"),
        "estimate_trusted": values.get("estimate_trusted"),
        "unseen_categories": values["unseen_categories"],
        "drifted_features": list(drifted_features),
        "mean_prediction": values.get("mean_prediction"),
        "action": values["action"],
        "model_name": values["model_name"],
        "champion_version": values["champion_version"],
    }
    labelled = any(values.get(key) is not None for key in ("positive_rate", "roc_auc", "accuracy"))
    if labelled:
        record.update(
            roc_auc=values["roc_auc"],
            roc_auc_stderr=values.get("roc_auc_stderr"),
            accuracy=values["accuracy"],
            positive_rate=values.get("positive_rate"),
            labelled_rows=values.get("labelled_rows"),
            estimation_error=values.get("estimation_error"),
        )
    return record
