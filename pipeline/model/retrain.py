"""One retraining cycle: candidates with defaults -> tune the best -> compare -> refit -> register -> promote.

The window is split in time (oldest rows train, then validation, the newest rows are the holdout). Candidates
are fitted on the train slice and selected and tuned on validation; the chosen candidate, still fitted on the
train slice, is compared with the champion on the holdout. What is registered is that candidate with the same
params refitted on the whole window, holdout included, so the new version has seen the newest labelled rows:
the comparison judges the procedure (candidate and params), never a model on rows it was fitted on.

Everything is tracked in MLflow under one ``retrain`` run: each candidate is a nested run (params,
validation metrics, its model), each tuning trial a nested run (params, metrics, no model), and the
refitted challenger is the model of the retrain run itself. The registry version carries tags saying which
data window trained it and why it was made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import labels_of
from pipeline.model import tracking
from pipeline.model.evaluate import Decision, compare
from pipeline.model.registry import CHALLENGER, Registry, VersionInfo
from pipeline.model.scoring import Scorer
from pipeline.model.serving import (
    LABELS_ENCODED,
    TAG_CALIBRATION,
    TAG_LABELS,
    TAG_REFERENCE,
    TAG_SCHEMA,
    holdout_tags,
    log_calibration,
    log_reference,
    log_schema,
)
from pipeline.model.train import ZOO, Split, evaluate, features_of, fit, predict_proba, refit, split_in_time
from pipeline.model.tune import tune
from pipeline.settings import TrainingSettings

Say = Callable[[str], None]
RUN_NAME_LIMIT = 250  # the longest run name MLflow stores (its runs.name column on a database)


@dataclass(frozen=True)
class WindowInfo:
    """Where the training rows came from, for tags and descriptions."""

    rows: int
    sources: list[str]
    reason: str

    def describe(self) -> str:
        first, last = (self.sources[0], self.sources[-1]) if self.sources else ("?", "?")
        return f"{self.rows} rows, oldest from {first}, newest from {last}"


@dataclass(frozen=True)
class RetrainOutcome:
    """``model`` is the registered one (refitted on the whole window); ``decision`` judged the same candidate
    and params fitted on ``split.train`` alone, on ``split.holdout``."""

    version: int
    promoted: bool
    decision: Decision
    candidate: str
    params: dict[str, Any]
    run_id: str
    model: Any
    split: Split
    held: bool = False  # the comparison says promote, the model's mode says a person decides


def _train_candidates(
    split: Split, schema: FeatureSchema, say: Say
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    import mlflow

    scores: dict[str, dict[str, float]] = {}
    models: dict[str, Any] = {}
    for name, candidate in ZOO.items():
        with mlflow.start_run(run_name=f"candidate-{name}", nested=True):
            mlflow.set_tag("step", "candidate")
            mlflow.log_params({"candidate": name, **candidate.defaults})
            model = fit(candidate, {}, split.train, schema)
            metrics = evaluate(model, split.validation, schema)
            mlflow.log_metrics({f"val_{key}": value for key, value in metrics.items()})
            head = split.train.head(50)
            tracking.log_model(model, features_of(head, schema), predict_proba(model, head, schema))
        scores[name] = metrics
        models[name] = model
        say(f"  candidate {name:<8} val log loss {metrics['log_loss']:.4f}  ROC AUC {metrics['roc_auc']:.4f}")
    return scores, models


def retrain(
    window: pd.DataFrame,
    info: WindowInfo,
    *,
    training: TrainingSettings,
    schema: FeatureSchema,
    registry: Registry,
    champion_model: Scorer | None,
    say: Say = print,
    origin: dict[str, str] | None = None,
    promote: bool = True,
) -> RetrainOutcome:
    """Train, tune, compare, refit on the whole window, register and (if the comparison says so) promote; without
    ``promote`` (retraining mode ``challenger``) a winner is only registered, ``held`` for a person.

    The decision and the version's ``holdout_*`` tags are those of the chosen candidate fitted on the train
    slice and scored on the holdout, the newest rows it never saw; the registered model is that candidate with
    the same params refitted on every row of the window (``fit_rows``). The calibration the label-free
    estimator is fitted on (``calibration_uri``) stays out of sample: the holdout P(positive) of the
    train-slice model and the holdout labels, not scores of the refit on rows it was fitted on. The reference
    (``reference_uri``) is the holdout rows, the newest.

    The order makes a crash at any point safe: the model's artifacts are uploaded before a version is
    registered (no version points at missing files); the version is born with its decision and
    ``origin`` tags (which monitor run and batch made it), so a rerun finds and finishes it instead of
    training again; promotion comes last, the one ``champion`` switch.
    """
    import mlflow

    split = split_in_time(window, training.holdout_fraction, training.validation_fraction)
    champion = registry.champion()
    run_name = f"retrain ({info.reason})"
    if len(run_name) > RUN_NAME_LIMIT:  # a verdict with several reasons; the tag and the parameter keep it whole
        run_name = run_name[: RUN_NAME_LIMIT - 4] + "...)"
    with mlflow.start_run(run_name=run_name, nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags({"step": "retrain", "reason": info.reason, "model_name": registry.name})
        fit_rows = len(window)  # the registered model's training rows: the whole window
        mlflow.log_params({**split.describe(), "window_rows": info.rows, "fit_rows": fit_rows, "reason": info.reason})
        best_name, judged, params = _choose_candidate(split, schema, training, say)
        judged_scorer = Scorer.trained(judged, schema)
        decision = _judge_challenger(champion_model, judged_scorer, split, schema, training)
        say(f"  refitting {best_name} with the chosen params on all {fit_rows} rows of the window")
        model = refit(ZOO[best_name], params, split, schema)
        head = split.train.head(50)
        model_info = tracking.log_model(model, features_of(head, schema), predict_proba(model, head, schema))
        tags = {
            TAG_SCHEMA: log_schema(schema),
            TAG_REFERENCE: log_reference(split.holdout, schema, training.reference_rows),
            TAG_CALIBRATION: log_calibration(judged_scorer.proba(split.holdout), labels_of(split.holdout, schema)),
            TAG_LABELS: LABELS_ENCODED,
            **_version_tags(info, best_name, fit_rows, decision, params, champion, origin, promote),
        }
        description = _description(info, best_name, decision, len(split.train), fit_rows)
        version = _register(registry, model_info.model_uri, run.info.run_id, tags, description, decision, promote)
    held = decision.promote and not promote
    return RetrainOutcome(
        version, decision.promote and promote, decision, best_name, params, run.info.run_id, model, split, held
    )


def _choose_candidate(
    split: Split, schema: FeatureSchema, training: TrainingSettings, say: Say
) -> tuple[str, Any, dict[str, Any]]:
    """The candidate with the best validation log loss, tuned: (its name, the model the comparison judges, its
    params). The tuned model unless its defaults did at least as well on validation."""
    import mlflow

    scores, defaults = _train_candidates(split, schema, say)
    best_name = min(scores, key=lambda name: scores[name]["log_loss"])
    say(f"  tuning {best_name} with {training.tuning_trials} TPE trials on validation data")
    tuned = tune(
        ZOO[best_name],
        split,
        schema,
        trials=training.tuning_trials,
        seed=training.seed,
        on_trial=lambda i, loss: say(f"    trial {i:02d} val log loss {loss:.4f}"),
    )
    judged, params = tuned.model, tuned.params
    if scores[best_name]["log_loss"] <= tuned.validation["log_loss"]:
        judged, params = defaults[best_name], dict(ZOO[best_name].defaults)
    mlflow.log_params({"candidate": best_name, **{f"best_{k}": v for k, v in params.items()}})
    return best_name, judged, params


def _judge_challenger(
    champion_model: Scorer | None, judged: Scorer, split: Split, schema: FeatureSchema, training: TrainingSettings
) -> Decision:
    """The comparison with the champion on the holdout, its metrics logged to the retrain run."""
    import mlflow

    decision = compare(
        champion_model,
        judged,
        split.holdout,
        schema,
        min_gain=training.promotion_min_gain,
        z=training.promotion_z,
    )
    mlflow.log_metrics({f"holdout_{k}": v for k, v in decision.challenger.items()})
    if decision.champion:
        mlflow.log_metrics({f"champion_holdout_{k}": v for k, v in decision.champion.items()})
    return decision


def _version_tags(
    info: WindowInfo,
    best_name: str,
    fit_rows: int,
    decision: Decision,
    params: dict[str, Any],
    champion: VersionInfo | None,
    origin: dict[str, str] | None,
    promote: bool = True,
) -> dict[str, str]:
    """The new version's tags saying why and from which window it was made, and what the comparison decided."""
    return {
        "reason": info.reason,
        "candidate": best_name,
        "window": info.describe(),
        "window_rows": str(info.rows),
        "window_first_source": info.sources[0] if info.sources else "",
        "window_last_source": info.sources[-1] if info.sources else "",
        "fit_rows": str(fit_rows),
        **holdout_tags(decision.challenger),
        "params": json.dumps(params, default=str),
        "decision": decision_tag(decision, promote),
        "gain_log_loss": f"{decision.gain:.6f}",  # the challenger's holdout log-loss gain over the champion
        "gain_stderr": f"{decision.stderr:.6f}",
        **({"compared_with": str(champion.version)} if champion is not None else {}),
        **(origin or {}),
    }


def _description(info: WindowInfo, best_name: str, decision: Decision, train_rows: int, fit_rows: int) -> str:
    return (
        f"{best_name} trained because: {info.reason}. Window: {info.describe()}. "
        f"Holdout ROC AUC {decision.challenger['roc_auc']:.4f}, log loss {decision.challenger['log_loss']:.4f} "
        f"(fitted on the {train_rows} oldest rows); registered refitted on all {fit_rows} rows."
    )


def decision_tag(decision: Decision, promote: bool) -> str:
    """The version's ``decision`` tag: promoted, held (a winner a person promotes) or rejected."""
    if not decision.promote:
        return "rejected"
    return "promoted" if promote else "held"


def _register(
    registry: Registry,
    model_uri: str,
    run_id: str,
    tags: dict[str, str],
    description: str,
    decision: Decision,
    promote: bool = True,
) -> int:
    """Register the version (born with its tags) as the challenger, record the decision on the run, and promote
    last when the comparison says so."""
    import mlflow

    version = registry.register(model_uri, run_id, tags, description)
    registry.set_alias(CHALLENGER, version)
    mlflow.set_tags(
        {
            "registered_version": str(version),
            "decision": decision_tag(decision, promote),
            "decision_reason": decision.reason,
        }
    )
    mlflow.log_dict(decision.as_dict(), "decision.json")
    if decision.promote and promote:
        registry.promote(version)
    return version
