"""P(positive) is chosen from the model's own classes, never by position."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import validate_frame
from pipeline.model.flavors import LoadedModel
from pipeline.model.scoring import ModelMismatch, Scorer, positive_column


@pytest.mark.parametrize(
    ("classes", "positive", "negative", "expected"),
    [
        (["admit", "discharge"], "admit", "discharge", 0),  # the positive label sorts first
        (["admit", "discharge"], "discharge", "admit", 1),
        ([0, 1], 1, 0, 1),
        ([0, 1], 0, 1, 0),
        ([0.0, 1.0], "1", "0", 1),  # JSON "1" matches a float class 1.0
        (np.array([False, True]), True, False, 1),
        (np.array(["0", "1"]), 1, 0, 1),
        ([" no", " yes"], "yes", "no", 1),  # blanks around text labels do not matter
    ],
)
def test_the_positive_column_follows_the_classes(classes, positive, negative, expected):
    assert positive_column(classes, positive, negative) == expected


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (["yes", "no"], r"classes are \['yes', 'no'\]; the schema expects the two labels 'admit'"),
        (["admit"], "classes are"),
        (["admit", "discharge", "transfer"], "classes are"),
    ],
)
def test_a_model_without_both_labels_is_refused_in_one_line(classes, message):
    with pytest.raises(ModelMismatch, match=message) as caught:
        positive_column(classes, "admit", "discharge")
    assert "\n" not in str(caught.value)


def _labelled(rng: np.random.Generator, rows: int = 400) -> pd.DataFrame:
    x = rng.normal(size=rows)
    y = np.where(x + rng.normal(scale=0.5, size=rows) > 0, "admitted", "went home")
    return pd.DataFrame({"x": x, "ward": rng.choice([1, 2, 3], size=rows), "outcome": y})


SCHEMA = FeatureSchema(("x",), ("ward",), "outcome", "admitted", "went home")


def test_a_model_fitted_on_text_labels_is_not_read_inverted():
    """The positive label 'admitted' sorts first: column 1 of predict_proba is P('went home')."""
    frame = _labelled(np.random.default_rng(0))
    model = LogisticRegression().fit(frame[["x"]], frame["outcome"])
    assert list(model.classes_) == ["admitted", "went home"]
    loaded = LoadedModel("sklearn", model, tuple(model.classes_), ("x",))
    scorer = Scorer.of(loaded, SCHEMA, project_trained=False)
    batch = validate_frame(frame, SCHEMA, "b.csv")
    proba = scorer.proba(batch.frame)
    np.testing.assert_allclose(proba, model.predict_proba(frame[["x"]])[:, 0])
    assert proba[frame["x"] > 1].mean() > 0.8  # large x means admitted


def test_models_get_categories_as_read_in_their_own_column_order():
    frame = _labelled(np.random.default_rng(1))
    frame.loc[::7, "ward"] = np.nan  # int-coded categories read as floats where values are missing
    frame["ward_as_int"] = frame["ward"]
    batch = validate_frame(frame, SCHEMA, "b.csv")
    seen: list[pd.DataFrame] = []

    class Spy:
        classes_ = np.array(["admitted", "went home"])

        def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
            seen.append(features)
            return np.tile([0.3, 0.7], (len(features), 1))

    loaded = LoadedModel("sklearn", Spy(), tuple(Spy.classes_), ("ward", "x"))
    np.testing.assert_allclose(Scorer.of(loaded, SCHEMA, project_trained=False).proba(batch.frame), 0.3)
    assert list(seen[0].columns) == ["ward", "x"]
    assert seen[0]["ward"].dropna().isin([1, 2, 3]).all() and seen[0]["ward"].isna().sum() == len(frame[::7])
