import numpy as np
import pytest

from pipeline.io.data import known_labels, labelled_frame, load_batch, only_labelled, unlabelled_line, validate_frame
from pipeline.io.tables import DataError


def test_the_real_sample_validates(real_sample_path, schema):
    batch = load_batch(str(real_sample_path), schema)
    assert batch.rows == 100
    assert batch.has_labels
    assert list(batch.frame.columns) == [*schema.features, schema.target]
    assert all(batch.frame[c].dtype == "float64" for c in schema.numerical)
    import csv

    header = next(csv.reader(real_sample_path.open()))
    assert len(batch.extra_columns) == len(header) - len(schema.features) - 1


def test_missing_columns_are_named(good_frame, schema):
    with pytest.raises(DataError, match=r"b\.csv: missing feature columns: age, esi"):
        validate_frame(good_frame.drop(columns=["age", "esi"]), schema, "b.csv")


def test_text_in_a_numeric_column_names_column_and_value(good_frame, schema):
    frame = good_frame.astype({"age": object})
    frame.loc[3, "age"] = "forty"
    with pytest.raises(DataError, match=r"column 'age' holds non-numeric value 'forty'"):
        validate_frame(frame, schema, "b.csv")


def test_unknown_target_value_is_refused(good_frame, schema):
    frame = good_frame.copy()
    frame.loc[0, "disposition"] = "transfer"
    with pytest.raises(DataError, match="holds 'transfer'"):
        validate_frame(frame, schema, "b.csv")


def test_header_only_and_empty_files(tmp_path, good_frame, schema):
    header_only = tmp_path / "header.csv"
    good_frame.head(0).to_csv(header_only, index=False)
    with pytest.raises(DataError, match="no rows"):
        load_batch(str(header_only), schema)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        load_batch(str(empty), schema)


def test_unreadable_inputs(tmp_path, schema):
    with pytest.raises(DataError, match="no such file"):
        load_batch(str(tmp_path / "nope.csv"), schema)
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        load_batch(str(tmp_path / "x.txt"), schema)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("age\n\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_batch(str(latin), schema)
    fake = tmp_path / "fake.parquet"
    fake.write_text("not parquet")
    with pytest.raises(DataError, match="not a readable Parquet"):
        load_batch(str(fake), schema)


def test_duplicated_column_names(tmp_path, schema):
    path = tmp_path / "dup.csv"
    path.write_text("age,age,esi\n1,2,3\n")
    with pytest.raises(DataError, match="duplicated column names: age"):
        load_batch(str(path), schema)


def test_unlabelled_batch_and_extra_columns(good_frame, schema):
    frame = good_frame.drop(columns=["disposition"]).assign(visit_id=range(len(good_frame)))
    batch = validate_frame(frame, schema, "b.csv")
    assert not batch.has_labels
    assert batch.extra_columns == ["visit_id"]
    assert "visit_id" not in batch.frame


def test_a_missing_category_is_nan_whichever_reader_gave_it(good_frame, schema):
    name = schema.categorical[0]
    frame = good_frame.astype({name: object})
    frame.loc[2, name] = None  # pyarrow's chunked and Spark readers give None for a missing text cell
    frame.loc[4, name] = np.nan  # pandas' reader gives NaN

    column = validate_frame(frame, schema, "b.csv").frame[name]

    assert column.isna()[[2, 4]].all()
    assert all(isinstance(value, float) and np.isnan(value) for value in column[column.isna()])


@pytest.mark.parametrize("nested", [{"code": "A"}, ["A", "B"]])
def test_a_nested_parquet_value_in_a_categorical_column_is_one_line(tmp_path, good_frame, schema, nested):
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = schema.categorical[0]
    table = pa.Table.from_pandas(good_frame, preserve_index=False)
    values = pa.array([nested] * len(good_frame))  # a struct (from a dict) or a list in every row
    table = table.set_column(table.column_names.index(column), column, values)
    path = tmp_path / "nested.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError) as raised:
        load_batch(str(path), schema)
    kind = "dict" if isinstance(nested, dict) else "ndarray"
    assert str(raised.value) == f"{path}: column {column!r} holds nested values ({kind}); expected one value per cell"


def test_rows_with_an_empty_target_are_unlabelled_rows_of_a_labelled_batch(good_frame, schema):
    frame = good_frame.copy()
    frame.loc[[1, 4, 7], "disposition"] = None
    frame.loc[9, "disposition"] = "  "  # blank text is empty too
    batch = validate_frame(frame, schema, "b.csv")
    assert batch.has_labels and batch.partly_labelled
    assert (batch.rows, batch.unlabelled_rows, batch.labelled_rows) == (50, 4, 46)
    assert len(batch.frame) == 50  # every row is kept: scored and drift-measured
    kept = labelled_frame(batch, schema)
    assert len(kept) == 46 and kept["disposition"].notna().all()
    mask, y = known_labels(batch, schema)
    assert mask.sum() == 46 and len(y) == 46
    assert unlabelled_line(3, batch, schema) == (
        "[batch 3] 4 of 50 rows have an empty 'disposition': unlabelled rows, scored and drift-measured; "
        "quality and training use the 46 labelled"
    )
    trained = only_labelled(batch, schema)
    assert (trained.rows, trained.unlabelled_rows) == (46, 0)


def test_a_target_empty_throughout_is_an_unlabelled_batch(good_frame, schema):
    batch = validate_frame(good_frame.assign(disposition=None), schema, "b.csv")
    assert not batch.has_labels and batch.labelled_rows == 0
    assert "disposition" not in batch.frame
    assert known_labels(batch, schema) is None
    assert "an unlabelled batch" in unlabelled_line(2, batch, schema)


def test_a_fully_labelled_batch_says_nothing_about_labels(good_frame, schema):
    batch = validate_frame(good_frame, schema, "b.csv")
    assert batch.unlabelled_rows == 0 and unlabelled_line(1, batch, schema) is None
    assert labelled_frame(batch, schema) is batch.frame
