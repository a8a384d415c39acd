"""Load a registered model of any supported flavor safely, and expose its raw predictions.

Users adopt models they trained themselves, so the artifact store is not ours to trust. MLflow's own loader
trusts whatever the model's MLmodel file lists (skops types, pickle, the pyfunc's code), and whoever writes
the artifact writes that file. Here the MLmodel file only says where the model's file is and which flavor it
is; what may run is decided by the project (``PROJECT_TRUSTED_TYPES``) and the operator (``trusted_types``,
``allow_pickled``):

- ``sklearn`` saved with skops: loaded by skops with our trusted types, never the artifact's;
- ``sklearn`` saved with pickle or cloudpickle: unpickling runs code, so only with ``allow_pickled``;
- ``xgboost`` of an ``XGBClassifier``: rebuilt from its JSON/UBJSON file by XGBoost itself, no pickle;
- a custom pyfunc (only a ``python_function`` flavor): loading it runs its code, so only with ``allow_pickled``.

Anything else is refused with one line saying why and what to do.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.io.paths import OutsideFolder, path_inside

PROJECT_TRUSTED_TYPES: tuple[str, ...] = (
    # A dtype object in fitted estimators' attributes: a type descriptor, nothing of it runs.
    "numpy.dtype",
    # The node storage of DecisionTree, RandomForest, ExtraTrees, GradientBoosting and HistGradientBoosting models.
    # skops leaves them untrusted because a crafted file's node indices are not bounds-checked: the documented
    # risk is a crash or an out-of-bounds read at predict time, not code execution.
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # XGBoost and LightGBM classifiers: plain attributes (each checked by skops in turn) plus a booster that the
    # library's native parser rebuilds from bytes or text; a malformed booster is a parse error, not code.
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    # A dict subclass that LGBMClassifier's state holds; building one runs no code of the file's choosing.
    "collections.OrderedDict",
)

PICKLED_HINT = "set PIPELINE_ALLOW_PICKLED_MODELS=true if you trust this registry"
PICKLED_FORMATS = ("pickle", "cloudpickle")
XGBOOST_FORMATS = ("xgb", "json", "ubj")
XGBOOST_CLASSIFIERS = ("xgboost.sklearn.XGBClassifier", "xgboost.sklearn.XGBRFClassifier", "xgboost.sklearn.XGBModel")
SUPPORTED = "sklearn (skops, or pickled if allowed), xgboost (XGBClassifier), or a custom pyfunc alone (if allowed)"
PYFUNC_CONTRACT = (
    "a pyfunc model's predict must return P(positive) per row: "
    "a 1-D array, a Series, a single-column DataFrame or an (n, 1) array"
)


class UntrustedModel(RuntimeError):
    """A model that is refused: its loading would run code or trust types nobody vouched for, or it is not a
    classifier of a supported flavor. The message is one line naming the model and what to do."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model and what callers need to score with it, whatever its flavor."""

    flavor: str
    model: Any
    classes: tuple[Any, ...] | None
    input_columns: tuple[str, ...] | None

    def predict_matrix(self, features: pd.DataFrame) -> np.ndarray:
        """The model's raw output as float64: one probability column per class for sklearn and xgboost, in
        ``classes`` order; for a pyfunc one value per row, P(positive), which is the pyfunc contract."""
        if self.flavor == "pyfunc":
            return _positive_column(self.model.predict(features), len(features))
        proba = np.asarray(self.model.predict_proba(features), dtype=np.float64)
        expected = (len(features), len(self.classes or ()))
        if proba.shape != expected:
            raise ValueError(f"predict_proba returned shape {proba.shape}, expected {expected} (rows, classes)")
        return proba


def load_model(model_uri: str, *, trusted_types: Sequence[str] = (), allow_pickled: bool = False) -> LoadedModel:
    """Load the model at any MLflow model URI (``models:/name/1``, ``runs:/...``, a local folder).

    ``trusted_types`` are skops types the operator trusts beyond ``PROJECT_TRUSTED_TYPES``;
    ``allow_pickled`` lets models whose loading runs code from the artifact store load.
    Raises ``UntrustedModel`` for anything refused.
    """
    import mlflow.artifacts

    tmp = Path(tempfile.mkdtemp(prefix="model-"))
    keep = False
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(tmp)))
        conf = _read_mlmodel(local, model_uri)
        flavors = {name: value if isinstance(value, dict) else {} for name, value in _mapping(conf.get("flavors"))}
        signature_columns = _signature_columns(conf)
        if "sklearn" in flavors:
            model = _load_sklearn(local, flavors["sklearn"], model_uri, trusted_types, allow_pickled)
            return _classifier("sklearn", model, model_uri, signature_columns)
        if "xgboost" in flavors:
            model = _load_xgboost(local, flavors["xgboost"], model_uri)
            return _classifier("xgboost", model, model_uri, signature_columns)
        if set(flavors) == {"python_function"}:
            if not allow_pickled:
                raise UntrustedModel(_runs_code(model_uri, "as a custom pyfunc"))
            import mlflow.pyfunc

            model = mlflow.pyfunc.load_model(str(local))
            keep = True  # a pyfunc may read its artifacts at predict time, as with MLflow's own loader
            return LoadedModel("pyfunc", model, None, signature_columns)
        found = ", ".join(sorted(flavors)) or "none"
        raise UntrustedModel(f"{model_uri}: no supported flavor (found: {found}); supported: {SUPPORTED}")
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _runs_code(model_uri: str, how: str) -> str:
    return f"{model_uri}: saved {how}; loading it runs code from the artifact store, so it is refused ({PICKLED_HINT})"


def _read_mlmodel(local: Path, model_uri: str) -> dict[str, Any]:
    import yaml

    mlmodel = local / "MLmodel"
    if not mlmodel.is_file():
        raise UntrustedModel(f"{model_uri}: no MLmodel file; log the model with mlflow.<flavor>.log_model")
    conf = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    return conf if isinstance(conf, dict) else {}


def _mapping(value: object) -> list[tuple[str, Any]]:
    return [(str(key), item) for key, item in value.items()] if isinstance(value, dict) else []


def _inside(local: Path, relative: object, model_uri: str) -> Path:
    """The model's data file, which must be inside the downloaded folder whatever the MLmodel file says."""
    try:
        return path_inside(local, str(relative), model_uri)
    except OutsideFolder as err:
        raise UntrustedModel(f"{model_uri}: model file outside the model folder; re-log the model") from err


def _load_sklearn(
    local: Path, flavor: dict[str, Any], model_uri: str, trusted_types: Sequence[str], allow_pickled: bool
) -> Any:
    fmt = flavor.get("serialization_format")
    if fmt in PICKLED_FORMATS:
        if not allow_pickled:
            raise UntrustedModel(_runs_code(model_uri, f"with {fmt}"))
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(local))
    if fmt != "skops":
        raise UntrustedModel(f"{model_uri}: unknown sklearn serialization format {fmt!r}; re-log it with skops")
    import skops.io

    path = _inside(local, flavor.get("pickled_model", "model.skops"), model_uri)
    trusted = [*PROJECT_TRUSTED_TYPES, *trusted_types]
    untrusted = sorted(set(skops.io.get_untrusted_types(file=path)) - set(trusted))
    if not untrusted:
        try:
            return skops.io.load(path, trusted=trusted)
        except skops.io.exceptions.UntrustedTypesFoundException as err:  # skops' own, stricter view
            untrusted = [str(err).splitlines()[0]]
    raise UntrustedModel(
        f"{model_uri}: untrusted type(s) in the model file: {', '.join(untrusted)}; "
        "if you trust them, add them to PIPELINE_TRUSTED_TYPES (comma-separated)"
    )


def _load_xgboost(local: Path, flavor: dict[str, Any], model_uri: str) -> Any:
    """Rebuild an XGBClassifier from its saved file with XGBoost's own parser: MLflow would import whatever
    class the MLmodel file names, we only ever build an XGBClassifier."""
    model_class = str(flavor.get("model_class", "xgboost.core.Booster"))  # MLflow < 1.22 saved Boosters only
    if model_class not in XGBOOST_CLASSIFIERS:
        raise UntrustedModel(
            f"{model_uri}: the xgboost flavor holds a {model_class}, a classifier is needed; "
            "log an xgboost.XGBClassifier, or wrap the booster in a pyfunc that returns P(positive)"
        )
    fmt = str(flavor.get("model_format", "xgb"))
    if fmt not in XGBOOST_FORMATS:
        raise UntrustedModel(f"{model_uri}: unknown xgboost model format {fmt!r}; re-log it as ubj or json")
    import xgboost

    model = xgboost.XGBClassifier()
    model.load_model(_inside(local, flavor.get("data", f"model.{fmt}"), model_uri))
    objective = json.loads(model.get_booster().save_config())["learner"]["objective"]["name"]
    if not objective.startswith(("binary:", "multi:")):
        raise UntrustedModel(f"{model_uri}: xgboost objective {objective!r} is not a classifier's; log a classifier")
    return model


def _classifier(flavor: str, model: Any, model_uri: str, signature_columns: tuple[str, ...] | None) -> LoadedModel:
    classes = getattr(model, "classes_", None)
    if classes is None or not hasattr(model, "predict_proba"):
        raise UntrustedModel(f"{model_uri}: not a fitted classifier (no classes_ or predict_proba); log a classifier")
    values = tuple(c.item() if isinstance(c, np.generic) else c for c in classes)
    return LoadedModel(flavor, model, values, _feature_names(model) or signature_columns)


def _feature_names(model: Any) -> tuple[str, ...] | None:
    """The columns a fitted model was trained on, in its order: the pipeline's (its first step's), else those
    of the final estimator (a pipeline whose first steps were fitted without names)."""
    holders = [model]
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        holders.append(steps[-1][1])
    for holder in holders:
        names = getattr(holder, "feature_names_in_", None)
        if names is not None:
            return tuple(str(name) for name in names)
    return None


def _signature_columns(conf: dict[str, Any]) -> tuple[str, ...] | None:
    """The input column names of the MLflow signature, when it has named columns (tensor inputs have none)."""
    signature = conf.get("signature")
    inputs = signature.get("inputs") if isinstance(signature, dict) else None
    try:
        specs = json.loads(inputs) if isinstance(inputs, str) else None
    except json.JSONDecodeError:
        return None
    if not isinstance(specs, list):
        return None
    names = [spec.get("name") for spec in specs if isinstance(spec, dict)]
    found = [name for name in names if isinstance(name, str)]
    if not found or len(found) != len(names):
        return None
    return tuple(found)


def _positive_column(output: Any, rows: int) -> np.ndarray:
    """A pyfunc's output as P(positive) per row, or a one-line error stating the contract."""
    if isinstance(output, pd.DataFrame | pd.Series):
        output = output.to_numpy()
    try:
        values = np.asarray(output, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{PYFUNC_CONTRACT}; got values that are not numbers") from err
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (rows,):
        raise ValueError(f"{PYFUNC_CONTRACT}; got shape {values.shape} for {rows} rows")
    return values
