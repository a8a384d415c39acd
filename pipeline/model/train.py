"""The model zoo and the training step: each candidate is a sklearn pipeline over the raw columns.

Adding a model is one entry in ``ZOO``: a builder taking hyperparameters and a hyperopt search space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import labels_of
from pipeline.model.scoring import Scorer
from pipeline.stats.metrics import quality

Params = dict[str, Any]


def _categorical_encoder() -> OneHotEncoder:
    """One-hot on the categories as read (text or int codes); a missing value is a category of its own, a
    level never seen in training scores as all zeros."""
    return OneHotEncoder(handle_unknown="ignore", min_frequency=5)


def build_logreg(schema: FeatureSchema, params: Params) -> Pipeline:
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )
    pre = ColumnTransformer(
        [("num", numeric, list(schema.numerical)), ("cat", _categorical_encoder(), list(schema.categorical))]
    )
    model = LogisticRegression(C=float(params.get("C", 1.0)), max_iter=2000)
    return Pipeline([("pre", pre), ("model", model)])


def build_xgboost(schema: FeatureSchema, params: Params) -> Pipeline:
    from xgboost import XGBClassifier

    pre = ColumnTransformer(
        [("num", "passthrough", list(schema.numerical)), ("cat", _categorical_encoder(), list(schema.categorical))]
    )
    model = XGBClassifier(
        n_estimators=int(params.get("n_estimators", 200)),
        max_depth=int(params.get("max_depth", 4)),
        learning_rate=float(params.get("learning_rate", 0.1)),
        subsample=float(params.get("subsample", 1.0)),
        min_child_weight=float(params.get("min_child_weight", 1.0)),
        reg_lambda=float(params.get("reg_lambda", 1.0)),
        tree_method="hist",
        n_jobs=None,  # XGBoost's own default: every core, or OMP_NUM_THREADS when set
        eval_metric="logloss",
    )
    return Pipeline([("pre", pre), ("model", model)])


def _no_space() -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Candidate:
    name: str
    build: Callable[[FeatureSchema, Params], Pipeline]
    defaults: Params
    space: Callable[[], dict[str, Any]] = (
        _no_space  # the hyperopt search space, built when tuning (hyperopt is slow to import)
    )


def _logreg_space() -> dict[str, Any]:
    from hyperopt import hp

    return {"C": hp.loguniform("C", np.log(1e-3), np.log(10.0))}


def _xgboost_space() -> dict[str, Any]:
    from hyperopt import hp
    from hyperopt.pyll import scope

    return {
        "n_estimators": scope.int(hp.quniform("n_estimators", 50, 400, 25)),
        "max_depth": scope.int(hp.quniform("max_depth", 2, 8, 1)),
        "learning_rate": hp.loguniform("learning_rate", np.log(0.02), np.log(0.3)),
        "subsample": hp.uniform("subsample", 0.6, 1.0),
        "min_child_weight": hp.loguniform("min_child_weight", np.log(0.5), np.log(20.0)),
        "reg_lambda": hp.loguniform("reg_lambda", np.log(0.1), np.log(20.0)),
    }


ZOO: dict[str, Candidate] = {
    "logreg": Candidate("logreg", build_logreg, {"C": 1.0}, _logreg_space),
    "xgboost": Candidate(
        "xgboost", build_xgboost, {"n_estimators": 200, "max_depth": 4, "learning_rate": 0.1}, _xgboost_space
    ),
}


@dataclass(frozen=True)
class Split:
    """A time-ordered split of the retraining window: oldest rows train, newest are held out."""

    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame

    def describe(self) -> dict[str, int]:
        return {
            "train_rows": len(self.train),
            "validation_rows": len(self.validation),
            "holdout_rows": len(self.holdout),
        }

    def whole(self) -> pd.DataFrame:
        """Every row of the window again, oldest first: train, validation, holdout."""
        return pd.concat([self.train, self.validation, self.holdout], ignore_index=True)


def split_in_time(frame: pd.DataFrame, holdout_fraction: float, validation_fraction: float) -> Split:
    """``frame`` is ordered oldest to newest. The newest slice is the holdout, the slice before it validation."""
    n = len(frame)
    n_holdout = max(1, int(round(n * holdout_fraction)))
    n_validation = max(1, int(round((n - n_holdout) * validation_fraction)))
    cut_val = n - n_holdout - n_validation
    if cut_val < 10:
        raise ValueError(f"retraining window of {n} rows is too small to split")
    return Split(
        train=frame.iloc[:cut_val].reset_index(drop=True),
        validation=frame.iloc[cut_val : n - n_holdout].reset_index(drop=True),
        holdout=frame.iloc[n - n_holdout :].reset_index(drop=True),
    )


def features_of(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    return frame[list(schema.features)]


def predict_proba(model: Any, frame: pd.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """P(positive) of a model the project fitted, for every row (the column chosen by ``pipeline.model.scoring``)."""
    return Scorer.trained(model, schema).proba(frame)


def fit(candidate: Candidate, params: Params, train: pd.DataFrame, schema: FeatureSchema) -> Pipeline:
    model = candidate.build(schema, {**candidate.defaults, **params})
    model.fit(features_of(train, schema), labels_of(train, schema))
    return model


def refit(candidate: Candidate, params: Params, split: Split, schema: FeatureSchema) -> Pipeline:
    """The chosen candidate with its chosen params fitted again on the whole window, holdout included: the model
    to register, which has seen the newest labelled rows. Its quality is measured before, on the same candidate
    fitted on the train slice alone and scored on the holdout (no model is judged on rows it was fitted on)."""
    return fit(candidate, params, split.whole(), schema)


def evaluate(model: Any, frame: pd.DataFrame, schema: FeatureSchema) -> dict[str, float]:
    return quality(labels_of(frame, schema), predict_proba(model, frame, schema))
