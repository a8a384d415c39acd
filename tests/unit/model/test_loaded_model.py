"""The pyfunc contract of ``LoadedModel.predict_matrix``: P(positive) per row in any of the usual shapes, a one-line
error otherwise; and the project's trusted types stay free of anything that runs code."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.model.flavors import PROJECT_TRUSTED_TYPES, LoadedModel

FRAME = pd.DataFrame({"age": [20.0, 50.0, 80.0]})
CHANCE = [0.1, 0.5, 0.9]


class Returns:
    """A stand-in pyfunc whose predict returns a fixed value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def predict(self, features: pd.DataFrame) -> Any:
        return self.value


def pyfunc(value: Any) -> LoadedModel:
    return LoadedModel("pyfunc", Returns(value), None, None)


@pytest.mark.parametrize(
    "output",
    [
        np.array(CHANCE, dtype=np.float32),
        pd.Series(CHANCE, name="p"),
        pd.DataFrame({"p": CHANCE}),
        np.array(CHANCE).reshape(-1, 1),
        CHANCE,
    ],
    ids=["1-d array", "series", "one-column frame", "n-by-1 array", "list"],
)
def test_a_pyfunc_output_of_any_usual_shape_is_one_float64_column(output: Any):
    values = pyfunc(output).predict_matrix(FRAME)
    assert values.dtype == np.float64 and values.shape == (3,)
    np.testing.assert_allclose(values, CHANCE, rtol=1e-6)


@pytest.mark.parametrize(
    "output",
    [
        np.array([CHANCE, CHANCE]).T,
        pd.DataFrame({"no": CHANCE, "yes": CHANCE}),
        np.array(CHANCE[:2]),
        np.array(["yes", "no", "yes"]),
        0.5,
    ],
    ids=["two columns", "two-column frame", "too few rows", "labels", "scalar"],
)
def test_anything_else_from_a_pyfunc_is_a_one_line_error_stating_the_contract(output: Any):
    with pytest.raises(ValueError, match="predict must return P\\(positive\\) per row") as err:
        pyfunc(output).predict_matrix(FRAME)
    assert "\n" not in str(err.value)


def test_predict_proba_of_the_wrong_width_is_an_error():
    class TwoClasses:
        def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
            return np.full((len(features), 2), 0.5)

    with pytest.raises(ValueError, match="expected \\(3, 3\\)"):
        LoadedModel("sklearn", TwoClasses(), ("a", "b", "c"), None).predict_matrix(FRAME)


def test_no_trusted_type_is_a_builtin_or_a_function_that_runs_code():
    assert not [name for name in PROJECT_TRUSTED_TYPES if name.startswith(("builtins.", "operator.", "functools."))]
    assert len(set(PROJECT_TRUSTED_TYPES)) == len(PROJECT_TRUSTED_TYPES)
