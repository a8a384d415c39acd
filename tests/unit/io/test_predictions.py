"""The prediction log's rows, its keys (a rerun overwrites, never doubles) and its columns, in a local folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.domain.schema import parse_schema
from pipeline.io.data import validate_frame
from pipeline.io.predictions import FEATURE_PREFIX, PredictionLog, PredictionLogError, features_of_log, log_frame

SCHEMA = parse_schema(
    {
        "target": {"column": "y", "positive": "bad", "negative": "good"},
        "numerical": ["amount"],
        "categorical": ["region"],
        "id": "loan_id",
    },
    "test schema",
)


def batch(labelled: bool = True, region=("1", "2", "x")):
    frame = pd.DataFrame({"loan_id": [10, 11.0, " 12"], "amount": [1.5, None, 3.0], "region": list(region)})
    if labelled:
        frame["y"] = ["bad", "good", "bad"]
    return validate_frame(frame, SCHEMA, "b.csv")


def test_a_batch_is_logged_with_its_ids_probabilities_labels_and_features(tmp_path):
    log = PredictionLog(str(tmp_path / "predictions"))
    frame = log_frame(batch(), SCHEMA, np.array([0.9, 0.2, 0.7]), run_key="r1", index=3, version=2)
    uri = log.write(frame, "loans", "r1", 3)

    assert uri == str(tmp_path / "predictions" / "loans" / "r1" / "batch-00003.parquet")
    read = log.read(uri)
    assert read["id"].tolist() == ["10", "11", "12"]  # ids as id_key reads them
    assert read["label"].tolist() == [1, 0, 1]  # 1 = the schema's positive label
    assert read["p_positive"].tolist() == [0.9, 0.2, 0.7]
    assert set(read["batch"]) == {3} and set(read["champion_version"]) == {2} and set(read["run_key"]) == {"r1"}
    assert [c for c in read.columns if c.startswith(FEATURE_PREFIX)] == ["feature:amount", "feature:region"]
    back = features_of_log(read, SCHEMA)
    pd.testing.assert_frame_equal(back, batch().frame[list(SCHEMA.features)], check_dtype=False)


def test_a_rerun_of_a_batch_overwrites_its_log(tmp_path):
    log = PredictionLog(str(tmp_path))
    for p in (0.1, 0.4):
        log.write(log_frame(batch(False), SCHEMA, np.full(3, p), run_key="r", index=1, version=1), "m", "r", 1)
    log.write(log_frame(batch(False), SCHEMA, np.full(3, 0.5), run_key="r", index=2, version=1), "m", "r", 2)

    assert [u.rsplit("/", 1)[1] for u in log.uris("m")] == ["batch-00001.parquet", "batch-00002.parquet"]
    first = log.read(log.uris("m")[0])
    assert first["p_positive"].tolist() == [0.4] * 3 and first["label"].isna().all()
    assert log.uris("other model") == []


def test_a_category_read_as_numbers_and_text_is_logged_as_text(tmp_path):
    mixed = batch(region=(1, 2.0, "unknown"))
    log = PredictionLog(str(tmp_path))
    uri = log.write(log_frame(mixed, SCHEMA, np.zeros(3), run_key="r", index=1, version=1), "m", "r", 1)

    assert log.read(uri)["feature:region"].tolist() == ["1", "2.0", "unknown"]


def test_an_unreachable_bucket_is_one_line(tmp_path):
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        log = PredictionLog("s3://no-such-bucket/predictions", s3)
        frame = log_frame(batch(), SCHEMA, np.zeros(3), run_key="r", index=1, version=1)
        with pytest.raises(PredictionLogError, match="prediction log not written") as err:
            log.write(frame, "m", "r", 1)
        assert "\n" not in str(err.value)


def test_a_row_with_an_empty_target_is_logged_without_a_label(tmp_path):
    frame = pd.DataFrame(
        {"loan_id": [1, 2, 3], "amount": [1.0, 2.0, 3.0], "region": ["a", "b", "c"], "y": ["bad", None, "good"]}
    )
    partial = validate_frame(frame, SCHEMA, "b.csv")
    log = PredictionLog(str(tmp_path / "predictions"))
    uri = log.write(log_frame(partial, SCHEMA, np.array([0.9, 0.5, 0.1]), run_key="r", index=1, version=1), "l", "r", 1)
    labels = log.read(uri)["label"]
    assert labels.isna().tolist() == [False, True, False]
    assert labels.dropna().tolist() == [1, 0]
