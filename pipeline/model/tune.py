"""Hyperparameter search: hyperopt TPE over a candidate's space, selected on validation data only.

Every trial is a nested MLflow run with its parameters and validation metrics; no trial logs a model.
The holdout slice is never seen here: it is kept for the champion/challenger comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.domain.schema import FeatureSchema
from pipeline.model.train import Candidate, Params, Split, evaluate, fit


@dataclass
class TuneResult:
    params: Params
    model: Any
    validation: dict[str, float]


def tune(
    candidate: Candidate,
    split: Split,
    schema: FeatureSchema,
    *,
    trials: int,
    seed: int,
    on_trial: Callable[[int, float], None] | None = None,
) -> TuneResult:
    """Search ``trials`` parameter sets; return the one with the lowest validation log loss."""
    import mlflow
    from hyperopt import STATUS_OK, Trials, fmin, tpe

    best: dict[str, Any] = {}
    counter = {"n": 0}

    def objective(params: Params) -> dict[str, Any]:
        counter["n"] += 1
        clean = {key: (value.item() if hasattr(value, "item") else value) for key, value in params.items()}
        with mlflow.start_run(run_name=f"trial-{counter['n']:02d}", nested=True):
            mlflow.set_tag("step", "tuning-trial")
            mlflow.log_params({"candidate": candidate.name, **clean})
            model = fit(candidate, clean, split.train, schema)
            metrics = evaluate(model, split.validation, schema)
            mlflow.log_metrics({f"val_{key}": value for key, value in metrics.items()})
        loss = metrics["log_loss"]
        if not best or loss < best["loss"]:
            best.update(loss=loss, params=clean, model=model, metrics=metrics)
        if on_trial:
            on_trial(counter["n"], loss)
        return {"loss": loss, "status": STATUS_OK}

    space = candidate.space()
    if space:
        fmin(
            objective,
            space,
            algo=tpe.suggest,
            max_evals=trials,
            trials=Trials(),
            rstate=np.random.default_rng(seed),
            show_progressbar=False,
        )
    else:
        objective({})
    return TuneResult(params=best["params"], model=best["model"], validation=best["metrics"])
