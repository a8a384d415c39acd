"""Temporary stand-in (replaced by the full loader)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline import tracking

UntrustedModel = tracking.UntrustedModel
PROJECT_TRUSTED_TYPES = tuple(tracking.SKOPS_TRUSTED_TYPES)


@dataclass(frozen=True)
class LoadedModel:
    flavor: str
    model: Any
    classes: tuple[Any, ...] | None
    input_columns: tuple[str, ...] | None

    def predict_matrix(self, features: pd.DataFrame) -> np.ndarray:
        if self.classes is None:
            return np.asarray(self.model.predict(features), dtype="float64").reshape(-1)
        return np.asarray(self.model.predict_proba(features), dtype="float64")


def load_model(model_uri: str, *, trusted_types: Sequence[str] = (), allow_pickled: bool = False) -> LoadedModel:
    model = tracking.load_model(model_uri)
    names = getattr(model, "feature_names_in_", None)
    return LoadedModel(
        "sklearn",
        model,
        tuple(c.item() if hasattr(c, "item") else c for c in model.classes_),
        tuple(names) if names is not None else None,
    )
