"""Reading a labels delivery: every mistake a labels file makes is counted, and the usable labels kept."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.app.labels import read_delivery
from pipeline.domain.schema import parse_schema
from pipeline.io.tables import DataError

BASE = {"target": {"column": "outcome", "positive": "admit", "negative": "discharge"}, "numerical": ["age"],
        "categorical": []}  # fmt: skip
SCHEMA = parse_schema({**BASE, "id": "visit_id"}, "schema")


def test_a_delivery_counts_each_mistake_and_keeps_the_rest(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame(
        {
            "visit_id": [1, 2, 2, 3, 3, None, 4, 5, "6", 7.0],
            "outcome": [
                "admit",
                "discharge",
                "discharge",
                "admit",
                "discharge",
                "admit",
                "maybe",
                "",
                " Admit",
                "admit",
            ],
        }
    ).to_csv(path, index=False)
    delivery = read_delivery(str(path), SCHEMA, None)

    assert delivery.labels == {"1": 1, "2": 0, "7": 1}  # 2 kept once; 3 said both ways, left out
    assert delivery.rows == 10
    assert (delivery.missing_ids, delivery.bad_labels) == (1, 3)  # "maybe", empty, and " Admit" (case matters)
    assert (delivery.duplicate_ids, delivery.conflicting_ids) == (1, 1)


def test_the_same_labels_are_the_same_delivery_whatever_the_file(tmp_path):
    one, two = tmp_path / "a.csv", tmp_path / "b.parquet"
    frame = pd.DataFrame({"visit_id": [5, 6], "outcome": ["admit", "discharge"], "extra": [0, 1]})
    frame.to_csv(one, index=False)
    frame.iloc[::-1].to_parquet(two, index=False)

    assert read_delivery(str(one), SCHEMA, None).key == read_delivery(str(two), SCHEMA, None).key


def test_a_delivery_needs_an_id_in_the_schema_and_both_columns_in_the_file(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"visit_id": [1], "age": [40]}).to_csv(path, index=False)

    with pytest.raises(DataError, match=r"names no id column.*\"id\""):
        read_delivery(str(path), parse_schema(BASE, "schema"), None)
    with pytest.raises(DataError, match="no target column 'outcome'"):
        read_delivery(str(path), SCHEMA, None)
    with pytest.raises(DataError, match="no such file"):
        read_delivery(str(tmp_path / "missing.csv"), SCHEMA, None)


def test_a_labels_file_over_the_caps_is_refused_naming_the_setting(tmp_path):
    from pipeline.io.tables import InputLimits

    path = tmp_path / "labels.csv"
    pd.DataFrame({"visit_id": range(30), "outcome": "admit"}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"labels\.csv: 30 rows, over the limit of 29 \(PIPELINE_MAX_ROWS\)"):
        read_delivery(str(path), SCHEMA, None, InputLimits(rows=29))
    with pytest.raises(DataError, match=r"labels\.csv: 2 columns, over the limit of 1 \(PIPELINE_MAX_COLUMNS\)"):
        read_delivery(str(path), SCHEMA, None, InputLimits(columns=1))
    assert read_delivery(str(path), SCHEMA, None, InputLimits(rows=30, columns=2)).rows == 30
