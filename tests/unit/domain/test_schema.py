"""The schema file: label matching, and the mistakes people make writing one, each a one-line error."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pipeline.domain.schema import FeatureSchema, SchemaError, builtin_schema, label_key, parse_schema, read_schema

GOOD = {
    "target": {"column": "income", "positive": ">50K", "negative": "<=50K"},
    "numerical": ["age", "hours"],
    "categorical": ["workclass", "region_code"],
}


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (1, "1"),
        ("1", "1"),
        (1.0, "1"),
        (" 1 ", "1"),
        ("1.0", "1"),
        (np.int64(1), "1"),
        (np.float64(1.0), "1"),
        (True, "true"),
        (np.bool_(True), "true"),
        ("True", "true"),
        ("TRUE", "true"),
        (False, "false"),
        (2.5, "2.5"),
        ("2.5", "2.5"),
        (math.nan, None),
        (np.nan, None),
        (None, None),
        ("", None),
        ("  ", None),
        ("admit", "admit"),
        (" admit ", "admit"),
        ("inf", "inf"),
    ],
)
def test_label_key(value, key):
    assert label_key(value) == key


def test_a_good_schema_parses_and_round_trips():
    schema = parse_schema(GOOD, "features.json")
    assert schema == FeatureSchema(("age", "hours"), ("workclass", "region_code"), "income", ">50K", "<=50K")
    assert schema.features == ("age", "hours", "workclass", "region_code")
    assert parse_schema(json.loads(schema.to_json()), "again") == schema


@pytest.mark.parametrize(("positive", "negative"), [(1, 0), (True, False), (1.5, 2.5), ("yes", 0)])
def test_labels_may_be_numbers_booleans_or_text(positive, negative):
    raw = {**GOOD, "target": {"column": "y", "positive": positive, "negative": negative}}
    assert parse_schema(raw, "f.json").labels == (positive, negative)


def edit(**changes) -> dict:
    raw = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if key.startswith("target_"):
            raw["target"][key.removeprefix("target_")] = value
        else:
            raw[key] = value
    return raw


def without(key: str) -> dict:
    raw = json.loads(json.dumps(GOOD))
    if key.startswith("target."):
        del raw["target"][key.removeprefix("target.")]
    else:
        del raw[key]
    return raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(without("numerical"), "missing key 'numerical'", id="missing key"),
        pytest.param(without("target.negative"), "missing key 'target.negative'", id="missing target key"),
        pytest.param(edit(features=["age"]), "unknown key 'features'", id="unknown key"),
        pytest.param(edit(target_name="x"), "unknown key 'target.name'", id="unknown target key"),
        pytest.param(
            edit(categorical=["age", "workclass"]), "age listed as both numerical and categorical", id="in both lists"
        ),
        pytest.param(edit(numerical=["age", "income"]), "the target 'income' is also listed", id="target a feature"),
        pytest.param(edit(categorical=["a", "b", "a"]), "'categorical' names a more than once", id="duplicate name"),
        pytest.param(
            edit(target_positive=1, target_negative="1.0"),
            "target positive 1 and negative '1.0' are the same value",
            id="positive equals negative",
        ),
        pytest.param(edit(numerical="age, hours"), "'numerical' must be a list of column names", id="not a list"),
        pytest.param(edit(numerical=["age", ""]), "'numerical' must be a list of column names", id="empty name"),
        pytest.param(edit(numerical=[], categorical=[]), "no feature columns", id="no features"),
        pytest.param(edit(target_positive=None), "target 'positive' must be a string, a number", id="null label"),
        pytest.param(edit(target_column=""), "'target.column' must be a column name", id="empty target"),
        pytest.param(edit(target="income"), "'target' must be an object", id="target not an object"),
        pytest.param(["age"], "a schema is a JSON object", id="not an object"),
    ],
)
def test_mistakes_are_one_line_naming_the_file(tmp_path, raw, message):
    path = tmp_path / "features.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SchemaError) as caught:
        read_schema(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param('{"target": {"column": "y",}', "not valid JSON (line 1, column 27", id="not JSON"),
        pytest.param(b"\xff\xfe{}", "not UTF-8 text", id="not text"),
        pytest.param(None, "no such schema file", id="no such file"),
    ],
)
def test_unreadable_files_are_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "features.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SchemaError) as caught:
        read_schema(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text
    assert "\n" not in text


def test_a_folder_is_not_a_schema_file(tmp_path):
    with pytest.raises(SchemaError, match="no such schema file"):
        read_schema(tmp_path)


def test_differences_name_what_changed():
    one = parse_schema(GOOD, "a")
    assert one.differences(parse_schema(GOOD, "b")) == []
    other = parse_schema(
        edit(
            target_column="earnings",
            target_positive="rich",
            numerical=["age", "weeks"],
            categorical=["workclass", "region_code", "sex"],
        ),
        "b",
    )
    assert one.differences(other) == [
        "target 'income' vs 'earnings'",
        "labels '>50K'/'<=50K' vs 'rich'/'<=50K'",
        "numerical only here: hours",
        "numerical only in the other: weeks",
        "categorical only in the other: sex",
    ]


def test_labels_that_match_by_value_are_no_difference():
    ints = parse_schema(edit(target_positive=1, target_negative=0), "a")
    texts = parse_schema(edit(target_positive="1", target_negative="0.0"), "b")
    assert ints.differences(texts) == []


def test_long_differences_are_shortened():
    many = [f"c{i}" for i in range(8)]
    one = parse_schema(edit(numerical=["age", *many]), "a")
    assert one.differences(parse_schema(GOOD, "b"))[0] == "numerical only here: c0, c1, c2, c3, c4 (+3 more)"


def test_the_builtin_schema_is_valid():
    schema = builtin_schema()
    assert schema.target == "disposition" and (schema.positive, schema.negative) == ("admit", "discharge")
    assert schema.numerical and schema.categorical


def test_the_id_column_is_optional_travels_and_is_checked():
    base = {"target": {"column": "y", "positive": 1, "negative": 0}, "numerical": ["a"], "categorical": ["b"]}
    with_id = parse_schema({**base, "id": "row_id"}, "s.json")

    assert with_id.id == "row_id" and parse_schema(base, "s.json").id is None
    assert parse_schema(with_id.to_dict(), "again") == with_id
    assert "id" not in parse_schema(base, "s.json").to_dict()
    assert not with_id.differences(parse_schema(base, "s.json"))  # the model does not care which column is the id
    for bad, message in (
        ("a", "also the target or a feature"),
        ("y", "also the target or a feature"),
        ("", "must be a column name"),
        (7, "must be a column name"),
    ):
        with pytest.raises(SchemaError, match=message):
            parse_schema({**base, "id": bad}, "s.json")
    with pytest.raises(SchemaError, match="optionally id"):
        parse_schema({**base, "ids": "row_id"}, "s.json")


def test_a_given_schema_names_the_id_a_recorded_one_lacks():
    from pipeline.model.serving import choose_schema

    base = {"target": {"column": "y", "positive": 1, "negative": 0}, "numerical": ["a"], "categorical": ["b"]}
    recorded = parse_schema(base, "recorded")

    assert choose_schema(recorded, parse_schema({**base, "id": "k"}, "given"), "given", "m v1").id == "k"
    assert choose_schema(recorded, None, "given", "m v1") is recorded


@pytest.mark.parametrize(
    ("value", "key"), [(17, "17"), (17.0, "17"), (" 17 ", "17"), ("A-17", "A-17"), ("TRUE", "TRUE"), (None, None)]
)
def test_ids_compare_by_value(value, key):
    from pipeline.domain.schema import id_key

    assert id_key(value) == key


def test_segments_are_optional_travel_and_name_their_bins():
    raw = edit(segments=["workclass", {"column": "age", "bins": [40, 65]}])
    schema = parse_schema(raw, "f.json")
    assert [s.column for s in schema.segments] == ["workclass", "age"]
    assert schema.segments[1].bin_names() == ["<40", "40-65", ">=65"]
    assert parse_schema(schema.to_dict(), "again").segments == schema.segments
    assert parse_schema(GOOD, "f.json").segments == ()
    assert not schema.differences(parse_schema(GOOD, "f.json"))


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ("workclass", "'segments' must be a list"),
        (["nowhere"], "segment 'nowhere' is not a feature"),
        (["age"], "segment 'age' is numerical: name its bins"),
        ([{"column": "workclass", "bins": [1]}], "bins are for a numerical feature"),
        ([{"column": "age", "bins": [65, 40]}], "bins must be a non-empty list of increasing numbers"),
        ([{"column": "age", "bins": []}], "bins must be a non-empty list"),
        ([{"column": "age"}], "an object with keys column, bins"),
        (["workclass", "workclass"], "names workclass more than once"),
    ],
)
def test_bad_segments_are_one_line_errors(segments, message):
    with pytest.raises(SchemaError, match=message) as err:
        parse_schema(edit(segments=segments), "f.json")
    assert "\n" not in str(err.value) and str(err.value).startswith("f.json: ")
