"""Whose fault a batch's failure is: the batch's own (set aside) or what the run depends on (the run stops)."""

from __future__ import annotations

import pytest

from pipeline.app.batch_fault import causes, is_batch_fault, is_source_unavailable, reason
from pipeline.io.predictions import PredictionLogError
from pipeline.io.store import StoreUnavailable
from pipeline.io.tables import DataError, SourceUnavailable
from pipeline.model.scoring import ModelMismatch
from pipeline.model.tracking import TrackingUnavailable


def _raised_from(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as err:
            raise outer from err
    except Exception as err:
        return err


@pytest.mark.parametrize(
    "err",
    [
        DataError("b.csv: column 'age' holds non-numeric value 'x'"),
        TypeError("unhashable type: 'dict'"),
        KeyError("c"),
        ModelMismatch("the model could not score the rows: boom"),
        PredictionLogError("b.csv: a column changes type between chunks of the batch; prediction log not written"),
        _raised_from(DataError("b.parquet: not a readable Parquet file"), OSError("Couldn't deserialize thrift")),
    ],
)
def test_a_failure_of_the_batch_s_own_is_its_fault(err):
    assert is_batch_fault(err)


@pytest.mark.parametrize(
    "err",
    [
        SourceUnavailable("s3://in/a.csv: S3 unreachable (EndpointConnectionError)"),
        _raised_from(PredictionLogError("prediction log not written: ..."), SourceUnavailable("access denied")),
        StoreUnavailable("metrics database unreachable: connection refused"),
        TrackingUnavailable("MLflow tracking server is unreachable"),
        ConnectionError("reset by peer"),
        MemoryError(),
        OSError(28, "No space left on device"),
    ],
)
def test_a_failure_of_what_the_run_depends_on_is_not_the_batch_s(err):
    assert not is_batch_fault(err)


def test_a_file_that_could_not_be_fetched_is_told_apart_from_the_other_outside_failures():
    assert is_source_unavailable(_raised_from(PredictionLogError("not written"), SourceUnavailable("access denied")))
    assert not is_source_unavailable(StoreUnavailable("metrics database unreachable: connection refused"))
    assert not is_source_unavailable(DataError("b.csv: column 'age' holds non-numeric value 'x'"))


def test_an_mlflow_error_is_not_the_batch_s():
    from mlflow.exceptions import MlflowException

    assert not is_batch_fault(MlflowException("API request failed"))
    assert not is_batch_fault(_raised_from(ValueError("scoring failed"), MlflowException("API request failed")))


def test_the_causes_are_followed_once_even_in_a_loop():
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert list(causes(first)) == [first, second]


def test_the_reason_is_one_line_naming_the_file():
    assert reason("s3://in/a.csv", DataError("s3://in/a.csv: empty file"), 3) == "s3://in/a.csv: empty file"
    assert reason("s3://in/a.csv", ModelMismatch("classes\n[1, 2]"), 3) == "s3://in/a.csv: champion v3: classes [1, 2]"
    assert reason("s3://in/a.pq", TypeError("unhashable\ntype: 'dict'"), None) == (
        "s3://in/a.pq: TypeError: unhashable type: 'dict'"
    )
