"""Adopted models: each supported flavor registered with MLflow's ordinary API on a real server loads back with
the predictions, classes and input columns of the in-memory model; what would run code or trust unknown types
is refused with one line and loads once the operator says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlflow
import mlflow.lightgbm
import mlflow.pyfunc
import mlflow.sklearn
import mlflow.xgboost
import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from xgboost import XGBClassifier

from pipeline.model.flavors import LoadedModel, UntrustedModel, load_model
from pipeline.settings import Settings

pytestmark = pytest.mark.integration

ROWS = 80
NO_REQUIREMENTS: list[str] = []  # inferring requirements takes seconds per model and is not under test here


def visits() -> pd.DataFrame:
    """A tiny frame whose column order is not alphabetical, with one categorical column."""
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "pulse": rng.normal(90, 15, ROWS),
            "age": rng.uniform(18, 90, ROWS),
            "arrival": rng.choice(["walk-in", "ambulance", "referral"], ROWS),
        }
    )


def admitted(frame: pd.DataFrame) -> np.ndarray:
    score = (frame["age"] - 50) / 20 + (frame["arrival"] == "ambulance") + np.random.default_rng(3).normal(0, 1, ROWS)
    return np.where(score > 0, "yes", "no")


def with_encoder(estimator: Any) -> Pipeline:
    encode = ColumnTransformer(
        [("arrival", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["arrival"])],
        remainder="passthrough",
    )
    return Pipeline([("encode", encode), ("model", estimator)])


def as_int(labels: np.ndarray) -> np.ndarray:
    return (labels == "yes").astype(int)


@pytest.fixture
def registered(settings: Settings) -> Callable[[str], str]:
    """Point MLflow at the test server; gives each case its own registered model name."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment(settings.experiment_name)
    return lambda case: f"{settings.model_name}-{case}"


def log_sklearn(model: Any, name: str, **kwargs: Any) -> str:
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name, pip_requirements=NO_REQUIREMENTS, **kwargs
        )
    return f"models:/{name}/1"


# Each case: a fitted model and the skops types MLflow demands at log time (the types skops does not trust itself).
SKLEARN_CASES: dict[str, tuple[Callable[[pd.DataFrame], Any], list[str]]] = {
    "random-forest": (
        lambda frame: with_encoder(RandomForestClassifier(n_estimators=5, random_state=0)).fit(frame, admitted(frame)),
        ["sklearn.tree._tree.Tree"],
    ),
    "hist-gradient-boosting": (
        lambda frame: with_encoder(HistGradientBoostingClassifier(max_iter=5)).fit(frame, admitted(frame)),
        ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
    ),
    "xgboost-in-pipeline": (
        lambda frame: with_encoder(XGBClassifier(n_estimators=5, max_depth=2)).fit(frame, as_int(admitted(frame))),
        ["xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"],
    ),
    "lightgbm-in-pipeline": (
        lambda frame: with_encoder(LGBMClassifier(n_estimators=5, min_child_samples=5, verbose=-1)).fit(
            frame, admitted(frame)
        ),
        ["collections.OrderedDict", "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier"],
    ),
}


def assert_same_classifier(loaded: LoadedModel, original: Any, frame: pd.DataFrame, flavor: str) -> None:
    assert loaded.flavor == flavor
    np.testing.assert_array_equal(loaded.predict_matrix(frame), original.predict_proba(frame))
    assert loaded.predict_matrix(frame).dtype == np.float64
    assert loaded.classes == tuple(original.classes_.tolist())
    assert loaded.input_columns == tuple(frame.columns)


@pytest.mark.parametrize("case", SKLEARN_CASES)
def test_a_skops_sklearn_model_loads_with_the_project_trusted_types(case: str, registered):
    frame = visits()
    build, demanded = SKLEARN_CASES[case]
    original = build(frame)
    uri = log_sklearn(original, registered(case), skops_trusted_types=demanded)

    loaded = load_model(uri)

    assert_same_classifier(loaded, original, frame, "sklearn")
    if case != "xgboost-in-pipeline":
        assert loaded.classes == ("no", "yes")


def test_a_native_xgboost_classifier_loads_without_pickle(registered):
    frame = visits()[["pulse", "age"]]
    original = XGBClassifier(n_estimators=5, max_depth=2).fit(frame, as_int(admitted(visits())))
    name = registered("xgboost-native")
    with mlflow.start_run():
        mlflow.xgboost.log_model(original, name="model", registered_model_name=name, pip_requirements=NO_REQUIREMENTS)

    loaded = load_model(f"models:/{name}/1")

    assert_same_classifier(loaded, original, frame, "xgboost")
    assert loaded.classes == (0, 1)


def test_a_raw_xgboost_booster_is_refused_with_what_to_do(registered):
    frame = visits()[["pulse", "age"]]
    booster = XGBClassifier(n_estimators=2).fit(frame, as_int(admitted(visits()))).get_booster()
    name = registered("xgboost-booster")
    with mlflow.start_run():
        mlflow.xgboost.log_model(booster, name="model", registered_model_name=name, pip_requirements=NO_REQUIREMENTS)

    with pytest.raises(UntrustedModel, match="xgboost.core.Booster, a classifier is needed.*pyfunc") as refused:
        load_model(f"models:/{name}/1", allow_pickled=True)
    assert "\n" not in str(refused.value)


class AdmissionChance(mlflow.pyfunc.PythonModel):
    """A user's own model: predict returns P(positive) per row, the pyfunc contract."""

    def predict(self, context, model_input, params=None):
        return chance(model_input)


def chance(frame: pd.DataFrame) -> pd.Series:
    return 1 / (1 + np.exp(-(frame["age"] - 50) / 20))


def test_a_custom_pyfunc_is_refused_unless_allowed_then_predicts_its_own_output(registered):
    frame = visits()
    name = registered("pyfunc")
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model",
            python_model=AdmissionChance(),
            registered_model_name=name,
            signature=infer_signature(frame, chance(frame).to_numpy()),
            pip_requirements=NO_REQUIREMENTS,
        )
    uri = f"models:/{name}/1"

    with pytest.raises(UntrustedModel) as refused:
        load_model(uri)
    message = str(refused.value)
    assert message.startswith(f"{uri}: saved as a custom pyfunc; loading it runs code")
    assert "PIPELINE_ALLOW_PICKLED_MODELS=true" in message and "\n" not in message

    loaded = load_model(uri, allow_pickled=True)

    assert (loaded.flavor, loaded.classes) == ("pyfunc", None)
    assert loaded.input_columns == tuple(frame.columns)  # from the signature
    np.testing.assert_allclose(loaded.predict_matrix(frame), chance(frame).to_numpy())


def test_a_pickled_sklearn_model_is_refused_unless_allowed(registered):
    frame = visits()[["pulse", "age"]]
    original = LogisticRegression().fit(frame, admitted(visits()))
    uri = log_sklearn(original, registered("cloudpickle"), serialization_format="cloudpickle")

    with pytest.raises(UntrustedModel) as refused:
        load_model(uri)
    message = str(refused.value)
    assert message.startswith(f"{uri}: saved with cloudpickle;") and "\n" not in message
    assert "PIPELINE_ALLOW_PICKLED_MODELS=true" in message

    assert_same_classifier(load_model(uri, allow_pickled=True), original, frame, "sklearn")


def test_a_type_beyond_the_list_is_refused_naming_it_and_loads_once_trusted(registered):
    frame = visits()[["pulse", "age"]]
    clip = FunctionTransformer(np.clip, kw_args={"a_min": 0, "a_max": 120})
    original = make_pipeline(clip, LogisticRegression()).fit(frame, admitted(visits()))
    uri = log_sklearn(original, registered("custom-type"), skops_trusted_types=["numpy.clip"])

    with pytest.raises(UntrustedModel) as refused:
        load_model(uri)
    assert str(refused.value) == (
        f"{uri}: untrusted type(s) in the model file: numpy.clip; "
        "if you trust them, add them to PIPELINE_TRUSTED_TYPES (comma-separated)"
    )

    assert_same_classifier(load_model(uri, trusted_types=["numpy.clip"]), original, frame, "sklearn")


def test_an_unsupported_flavor_is_refused_listing_what_is_supported(registered):
    import lightgbm

    frame = visits()[["pulse", "age"]]
    data = lightgbm.Dataset(frame, as_int(admitted(visits())))
    booster = lightgbm.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 5}, data, num_boost_round=2)
    name = registered("lightgbm-native")
    with mlflow.start_run():
        mlflow.lightgbm.log_model(booster, name="model", registered_model_name=name, pip_requirements=NO_REQUIREMENTS)

    with pytest.raises(UntrustedModel, match=r"no supported flavor \(found: lightgbm, python_function\); supported: "):
        load_model(f"models:/{name}/1", allow_pickled=True)
