"""P(positive) from any model: the one place that decides which probability column is the positive class.

A classifier's ``predict_proba`` columns follow its own ``classes_`` (sorted labels), so "column 1" is the
positive class only by accident: a model fitted on ``"admit"``/``"discharge"`` has the positive label first.
``positive_column`` picks the column by matching ``classes_`` against the labels (with ``label_key``, so
``1``, ``1.0`` and ``"1"`` agree), and refuses a model that does not have both.

Which labels a model's classes are matched against:
- a model the user trained (adopted): the schema's own ``positive`` and ``negative`` values;
- a model the project trained: ``1`` and ``0``, because the project fits its candidates on the target
  encoded as 1 = the schema's positive label (XGBoost accepts no other labels);
- a custom pyfunc model: no classes; its ``predict`` returns P(positive) by contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema, Label, label_key, shorten
from pipeline.io.data import model_input
from pipeline.model.flavors import LoadedModel

ENCODED_POSITIVE: Label = 1  # the project's own models are fitted on 1 = positive, 0 = negative
ENCODED_NEGATIVE: Label = 0


class ModelMismatch(ValueError):
    """A model that cannot serve this schema (its classes or its columns). One line."""


def positive_column(classes: Sequence[Any], positive: Label, negative: Label) -> int:
    """The index of the positive label in a model's ``classes_``."""
    keys = [label_key(value) for value in classes]
    if len(keys) != 2 or label_key(positive) not in keys or label_key(negative) not in keys:
        shown = [value.item() if hasattr(value, "item") else value for value in classes]
        raise ModelMismatch(
            f"the model's classes are {shown}; the schema expects the two labels {positive!r} (positive) "
            f"and {negative!r}"
        )
    return keys.index(label_key(positive))


@dataclass(frozen=True)
class Scorer:
    """A model ready to give P(positive) on validated frames of one schema."""

    model: LoadedModel
    schema: FeatureSchema
    positive: int | None  # the probability column of the positive class; None when predict is P(positive)

    @classmethod
    def trained(cls, estimator: Any, schema: FeatureSchema) -> Scorer:
        """A classifier the project fitted on the encoded target (1 = positive)."""
        classes = tuple(getattr(estimator, "classes_", ()))
        loaded = LoadedModel("sklearn", estimator, classes, None)
        return cls(loaded, schema, positive_column(classes, ENCODED_POSITIVE, ENCODED_NEGATIVE))

    @classmethod
    def of(cls, loaded: LoadedModel, schema: FeatureSchema, *, project_trained: bool) -> Scorer:
        """A model loaded from the registry; refuses one whose classes do not match the labels."""
        if loaded.classes is None:
            return cls(loaded, schema, None)
        labels = (ENCODED_POSITIVE, ENCODED_NEGATIVE) if project_trained else schema.labels
        return cls(loaded, schema, positive_column(loaded.classes, *labels))

    @property
    def estimator(self) -> Any:
        return self.model.model

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        wanted = self.model.input_columns
        unknown = [name for name in wanted or () if name not in self.schema.features]
        if unknown:
            raise ModelMismatch(f"the model takes columns the schema does not name: {shorten(unknown)}")
        return model_input(frame, self.schema, wanted)

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(positive) for every row of a validated frame, in one vectorised call.

        A model that fails on the rows (a user's encoder refusing a new category, a pyfunc breaking its
        contract) raises ``ModelMismatch`` with the model's own error in one line.
        """
        features = self.features(frame)
        try:
            out = self.model.predict_matrix(features)
            proba = np.asarray(out if self.positive is None else out[:, self.positive], dtype="float64").reshape(-1)
        except Exception as err:  # a user's model can fail in any way; the caller gets one line
            text = " ".join(str(err).split()) or err.__class__.__name__
            raise ModelMismatch(f"the model could not score the rows: {text[:200]}") from err
        if proba.shape != (len(frame),):
            raise ModelMismatch(f"the model returned {proba.size} probabilities for {len(frame)} rows")
        return proba
