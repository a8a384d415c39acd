"""``pipeline schema infer``: the pure rules first, then the command through its runner."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.domain.schema import SchemaError, parse_schema, read_schema
from pipeline.domain.schema_infer import ID_MIN_ROWS, infer_schema, split_names

ROWS = 40


def frame(**columns: list) -> pd.DataFrame:
    return pd.DataFrame(columns)


def base(rows: int = ROWS, **extra: list) -> pd.DataFrame:
    """Typical data: an amount, a text category, a 0/1 target; extra columns are appended in order."""
    rng = np.random.default_rng(0)
    data = {
        "age": rng.integers(18, 90, rows).tolist(),
        "sex": ["F", "M"] * (rows // 2),
        "admit": [0, 1] * (rows // 2),
    }
    data.update(extra)
    return pd.DataFrame(data)


def infer(data: pd.DataFrame, target: str = "admit", positive: str = "1", **options):
    return infer_schema(data, target=target, positive=positive, **options)


# ---------------------------------------------------------------- columns


@pytest.mark.parametrize(
    ("extra", "categorical", "numerical_has", "categorical_has", "note"),
    [
        pytest.param({"region": [1, 2, 3, 4] * 10}, (), "region", None, None, id="integer codes read as numbers"),
        pytest.param({"region": [1, 2, 3, 4] * 10}, ("region",), None, "region", None, id="--categorical codes"),
        pytest.param({"flag": [True, False] * 20}, (), None, "flag", None, id="booleans are categorical"),
        pytest.param({"visit_id": list(range(1000, 1040))}, (), None, None, "'visit_id' left out", id="int id"),
        pytest.param({"mrn": [f"P{i:04d}" for i in range(40)]}, (), None, None, "'mrn' left out", id="text id"),
        pytest.param({"mrn": [f"P{i:04d}" for i in range(40)]}, ("mrn",), None, "mrn", None, id="id kept on request"),
        pytest.param({"glucose": np.linspace(3.1, 9.7, 40).tolist()}, (), "glucose", None, None, id="float unique"),
        pytest.param({"whole": [float(i) for i in range(40)]}, (), "whole", None, None, id="float never an id"),
        pytest.param({"lab": [np.nan] * 40}, (), None, None, "no value at all: lab", id="empty column"),
        pytest.param({"note": [""] * 20 + [None] * 20}, (), None, None, "no value at all: note", id="blank text"),
        pytest.param(
            {"arrived": [f"2024-03-{1 + i % 28:02d} 10:{i % 60:02d}" for i in range(40)]},
            (),
            None,
            None,
            "'arrived' left out: it looks like a timestamp",
            id="text timestamps",
        ),
        pytest.param(
            {"arrived": pd.date_range("2024-01-01", periods=40, freq="h")},
            (),
            None,
            None,
            "'arrived' left out: it holds dates/times",
            id="datetime dtype",
        ),
        pytest.param(
            {"month": ["May", "June", "March", "April"] * 10}, (), None, "month", None, id="month names are categories"
        ),
        pytest.param(
            {"age_band": ["10-20", "20-30", "1-5", "6-10"] * 10}, (), None, "age_band", None, id="bands not dates"
        ),
    ],
)
def test_column_rules(extra, categorical, numerical_has, categorical_has, note):
    schema, notes = infer(base(**extra), categorical=categorical)
    name = next(iter(extra))
    kept = {*schema.numerical, *schema.categorical}
    if numerical_has:
        assert numerical_has in schema.numerical
    if categorical_has:
        assert categorical_has in schema.categorical
    if note:
        assert name not in kept
        assert any(note in line for line in notes), notes
    else:
        assert name in kept and not notes


def test_the_id_note_says_how_to_keep_the_column():
    _, notes = infer(base(visit_id=list(range(ROWS))))
    assert notes == [
        "column 'visit_id' left out: its values are unique on every row, like an id; to join late labels by it, "
        "pass --id visit_id"
    ]


def test_an_id_named_with_id_is_the_schema_s_id_and_no_feature():
    schema, notes = infer(base(visit_id=list(range(ROWS))), row_id="visit_id")
    assert schema.id == "visit_id" and "visit_id" not in schema.features and notes == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"row_id": "nope"}, "--id names 'nope', which is not in the data"),
        ({"row_id": "admit"}, "--id names the target 'admit'"),
        ({"row_id": "age", "ignore": ["age"]}, "'age' named in both --id and --ignore"),
        ({"row_id": "age", "categorical": ["age"]}, "'age' named in both --id and --categorical"),
    ],
)
def test_a_bad_id_is_one_line(options, message):
    with pytest.raises(SchemaError, match=re.escape(message)):
        infer(base(), **options)


def test_a_tiny_file_keeps_its_unique_columns():
    rows = ID_MIN_ROWS - 2
    schema, notes = infer(base(rows=rows, code=list(range(rows)), name=[f"n{i}" for i in range(rows)]))
    assert "code" in schema.numerical and "name" in schema.categorical and not notes


def test_ignored_columns_are_left_out_with_one_note():
    schema, notes = infer(base(a=[1] * ROWS, b=["x"] * ROWS), ignore=["b", "a"])
    assert "a" not in schema.features and "b" not in schema.features
    assert notes == ["left out as asked (--ignore): a, b"]


def test_lists_keep_the_data_column_order_and_round_trip():
    data = pd.DataFrame(
        {
            "z_num": [1.5, 2.5] * 20,
            "admit": [0, 1] * 20,
            "b_cat": ["x", "y"] * 20,
            "a_num": [3, 4] * 20,
            "c_code": [7, 8] * 20,
            "a_cat": ["p", "q"] * 20,
        }
    )
    schema, _ = infer(data, categorical=["c_code"])
    assert schema.numerical == ("z_num", "a_num")
    assert schema.categorical == ("b_cat", "c_code", "a_cat")
    assert parse_schema(json.loads(schema.to_json()), "again") == schema


def test_missing_labels_are_noted():
    data = base()
    data["admit"] = data["admit"].astype(float)
    data.loc[[0, 5], "admit"] = np.nan
    schema, notes = infer(data)
    assert (schema.positive, schema.negative) == (1, 0)
    assert notes == ["target 'admit' is empty on 2 of 40 rows; those rows cannot train"]


# ---------------------------------------------------------------- the target


@pytest.mark.parametrize(
    ("values", "positive", "expected"),
    [
        pytest.param([True, False], "true", (True, False), id="booleans with --positive true"),
        pytest.param([True, False], "TRUE", (True, False), id="any case"),
        pytest.param([False, True], "false", (False, True), id="positive may be false"),
        pytest.param([0, 1], "1", (1, 0), id="0/1 integers"),
        pytest.param([0.0, 1.0], "1", (1, 0), id="0.0/1.0 floats are written as integers"),
        pytest.param([0.0, 1.0], "1.0", (1, 0), id="--positive 1.0"),
        pytest.param([0.5, 1.5], "1.5", (1.5, 0.5), id="other floats stay floats"),
        pytest.param(["1", "0"], "1", ("1", "0"), id="text digits stay text"),
        pytest.param(["admit", "discharge"], "admit", ("admit", "discharge"), id="text"),
        pytest.param([" >50K", " <=50K"], ">50K", (">50K", "<=50K"), id="surrounding blanks stripped"),
    ],
)
def test_target_labels_keep_their_json_type(values, positive, expected):
    schema, _ = infer(base(admit=values * (ROWS // 2)), positive=positive)
    assert (schema.positive, schema.negative) == expected
    assert [type(value) for value in (schema.positive, schema.negative)] == [type(value) for value in expected]
    assert parse_schema(json.loads(schema.to_json()), "again") == schema


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        pytest.param(
            base(),
            {"target": "label"},
            r"^data: no target column 'label'; the columns are age, sex, admit$",
            id="no target",
        ),
        pytest.param(
            base(admit=[0, 1, 2, 3] * 10),
            {},
            r"^data: target 'admit' holds 4 distinct values: 0, 1, 2, 3; a binary target holds exactly two$",
            id="four values",
        ),
        pytest.param(
            base(admit=list(range(40))),
            {},
            r"holds 40 distinct values: 0, 1, 2, 3, 4 \(\+35 more\);",
            id="at most five shown",
        ),
        pytest.param(base(admit=[1] * 40), {}, r"holds 1 distinct value: 1;", id="one value"),
        pytest.param(base(admit=[np.nan] * 40), {}, r"target 'admit' holds no values;", id="no value"),
        pytest.param(
            base(admit=["yes", "no"] * 20),
            {"positive": "1"},
            r"^data: --positive '1' is not a value of target 'admit', which holds 'yes', 'no'$",
            id="positive not a value",
        ),
        pytest.param(base(admit=[True, False] * 20), {"positive": "1"}, r"holds True, False$", id="1 is not true"),
        pytest.param(
            base(),
            {"categorical": ["region", "age"]},
            r"^data: --categorical names columns that are not in the data: region$",
            id="unknown categorical",
        ),
        pytest.param(
            base(),
            {"ignore": ["nope", "zip"]},
            r"^data: --ignore names columns that are not in the data: nope, zip$",
            id="unknown ignore",
        ),
        pytest.param(
            base(),
            {"categorical": ["age"], "ignore": ["age"]},
            r"^data: age named in both --categorical and --ignore$",
            id="both",
        ),
        pytest.param(base(), {"categorical": ["admit"]}, r"--categorical names the target 'admit'", id="target cat"),
        pytest.param(base(), {"ignore": ["admit"]}, r"--ignore names the target 'admit'", id="target ignored"),
        pytest.param(
            base(), {"ignore": ["age", "sex"]}, r"no feature columns left besides the target", id="nothing left"
        ),
    ],
)
def test_mistakes_are_one_line_errors(data, options, message):
    options = {"target": "admit", "positive": "1", **options}
    with pytest.raises(SchemaError, match=message) as caught:
        infer_schema(data, **options)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["a,b"], ["a", "b"]),
        (["a", "b,c", "a"], ["a", "b", "c"]),
        ([" a , ,b "], ["a", "b"]),
        (["bloodculture,routine_count"], ["bloodculture,routine_count"]),
        ([], []),
    ],
)
def test_option_values_split_on_commas_unless_they_name_a_column(values, expected):
    assert split_names(values, ["a", "b", "c", "bloodculture,routine_count"]) == expected


def test_the_triage_sample_gives_the_shipped_schema(real_sample_path, schema):
    data = pd.read_csv(real_sample_path)
    inferred, _ = infer_schema(data, target="disposition", positive="admit", source=str(real_sample_path))
    shipped = [name for name in schema.features if name in inferred.features]
    assert shipped == list(schema.features)
    assert (inferred.positive, inferred.negative) == ("admit", "discharge")


# ---------------------------------------------------------------- the command


def run(*args: str):
    return CliRunner().invoke(app, ["schema", "infer", *args], env={"COLUMNS": "200"})


def test_the_command_writes_a_schema_that_reads_back(tmp_path):
    data = base(region=[1, 2, 3, 4] * 10, visit_id=list(range(ROWS)))
    data.to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "nested" / "folder" / "features.json"
    result = run("--data", str(tmp_path / "train.csv"), "--target", "admit", "--positive", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    schema = read_schema(out)
    assert schema.numerical == ("age", "region") and schema.categorical == ("sex",) and schema.id is None
    assert (schema.positive, schema.negative) == (1, 0)
    assert "note: column 'visit_id' left out" in result.output
    assert f"wrote {out}: 2 numerical, 1 categorical, target admit: positive 1, negative 0" in result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["features.json"]


def test_the_command_takes_categorical_and_ignore_lists(tmp_path):
    data = base(region=[1, 2, 3, 4] * 10, ward=[5, 6] * 20, extra=[0.5] * 40)
    data.to_parquet(tmp_path / "train.parquet", index=False)
    out = tmp_path / "features.json"
    result = run(
        *("--data", str(tmp_path / "train.parquet"), "--target", "admit", "--positive", "1", "--out", str(out)),
        *("--categorical", "region,ward", "--ignore", "extra"),
    )
    assert result.exit_code == 0, result.output
    schema = read_schema(out)
    assert schema.numerical == ("age",) and schema.categorical == ("sex", "region", "ward")


@pytest.mark.parametrize(
    ("target", "options"),
    [
        pytest.param("admit", ("--positive", "2"), id="positive not a value"),
        pytest.param("admit", ("--positive", "1", "--categorical", "nope"), id="unknown column"),
        pytest.param("label", ("--positive", "1"), id="no such target"),
    ],
)
def test_an_error_writes_nothing_and_exits_2(tmp_path, target, options):
    base().to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "out" / "features.json"
    result = run("--data", str(tmp_path / "train.csv"), "--target", target, "--out", str(out), *options)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "train.csv" in lines[0]
    assert not (tmp_path / "out").exists()


def test_an_unreadable_file_is_one_line_and_exit_2(tmp_path):
    result = run("--data", str(tmp_path / "none.csv"), "--target", "admit", "--positive", "1", "--out", "x.json")
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'none.csv'}: no such file"


def test_the_help_says_codes_must_be_marked_and_the_file_edited():
    result = CliRunner().invoke(app, ["schema", "infer", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert "Integer-coded categories (census codes, ICD groups" in text
    assert "--categorical" in text and "read and edited" in text


def test_the_command_writes_the_id_given_with_id(tmp_path):
    base(visit_id=list(range(ROWS))).to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "features.json"
    result = run(
        *("--data", str(tmp_path / "train.csv"), "--target", "admit", "--positive", "1", "--out", str(out)),
        *("--id", "visit_id"),
    )
    assert result.exit_code == 0, result.output
    assert read_schema(out).id == "visit_id" and "left out" not in result.output


def test_segments_named_with_segment_are_the_schema_s_segments():
    schema, _notes = infer(base(), segments=["sex"])
    assert [s.column for s in schema.segments] == ["sex"] and not schema.segments[0].bins
    with pytest.raises(SchemaError, match="segment 'age' is numerical: name its bins"):
        infer(base(), segments=["age"])
