"""Tables read and written at local paths or s3://: CSV as pandas reads it, Parquet, one-line errors."""

import io

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from pipeline.io.data import load_batch
from pipeline.io.tables import DataError, InputLimits, SourceUnavailable, duplicated, read_table, write_table


def test_csv_and_parquet_round_trip_locally(tmp_path, good_frame, schema):
    for name in ("b.csv", "b.parquet"):
        write_table(good_frame, str(tmp_path / name))
        back = load_batch(str(tmp_path / name), schema)
        pd.testing.assert_frame_equal(
            back.frame[list(schema.numerical)], good_frame[list(schema.numerical)].astype(float)
        )


@mock_aws
def test_s3_round_trip_and_errors(good_frame, schema):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="data")
    write_table(good_frame, "s3://data/batches/b1.parquet", client)
    batch = load_batch("s3://data/batches/b1.parquet", schema, client)
    assert batch.rows == len(good_frame) and batch.has_labels
    raw = client.get_object(Bucket="data", Key="batches/b1.parquet")["Body"].read()
    assert pd.read_parquet(io.BytesIO(raw)).shape == good_frame.shape
    with pytest.raises(DataError, match="s3://data/missing.csv: no such key in bucket data"):
        read_table("s3://data/missing.csv", client)
    with pytest.raises(DataError, match="bucket nobucket does not exist"):
        read_table("s3://nobucket/x.csv", client)
    with pytest.raises(DataError, match="needs the form"):
        read_table("s3://justbucket.csv", client)


@pytest.mark.parametrize("separator", [",", ";", "\t", "|"])
def test_csv_separators_and_a_byte_order_mark_are_read(tmp_path, separator):
    path = tmp_path / "b.csv"
    path.write_bytes(
        ("\ufeff" + separator.join(["a", "b", "c"]) + "\n1" + separator + "x" + separator + "2.5\n").encode()
    )
    frame = read_table(str(path))
    assert list(frame.columns) == ["a", "b", "c"] and frame.iloc[0].tolist() == [1, "x", 2.5]


@pytest.mark.parametrize(
    ("header", "names"),
    [
        ("Amount, EUR;Date;Paid", ["Amount, EUR", "Date", "Paid"]),  # a semicolon export, a comma in a name
        ('"Amount, EUR";Date;Paid', ["Amount, EUR", "Date", "Paid"]),
        ('"a;b",c,d', ["a;b", "c", "d"]),  # a comma file, a quoted semicolon in a name
        ("a;b,c,d", ["a;b", "c", "d"]),  # as many names either way: the comma
    ],
)
def test_the_separator_is_the_one_that_splits_the_header_into_most_names(tmp_path, header, names):
    from pipeline.io.tables import csv_separator

    separator = csv_separator(header)
    row = separator.join(["1", "2", "3"])
    path = tmp_path / "b.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")

    frame = read_table(str(path))

    assert list(frame.columns) == names
    assert frame.iloc[0].tolist() == [1, 2, 3]


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_the_local_endpoint_needs_no_credentials_and_aws_says_when_they_are_missing(no_aws_credentials):
    from pipeline.io.tables import make_s3_client

    local = make_s3_client("http://127.0.0.1:4566", "us-east-1")
    assert local._request_signer._credentials.access_key == "test"
    aws = make_s3_client(None, "us-east-1")
    with pytest.raises(DataError, match=r"s3://bucket/b\.csv: no AWS credentials found") as caught:
        read_table("s3://bucket/b.csv", aws)
    assert "\n" not in str(caught.value)


TRICKY_CSVS = {
    "numbers, text and a gap": "a,b,c\n1,2.5,x\n3,,y\n",
    "integers with a gap": "a,b\n1,2\n,3\n",
    "booleans": "a,b\nTrue,1\nfalse,0\n",
    "booleans and text with gaps": "a,b,c\nTrue,x,1\n,,2\nFalse,y,3\n",
    "dates stay text": "d,v\n2024-01-01,1\n2024-02-03,2\n",
    "timestamps stay text": "d,v\n2024-01-01 10:00:00,1\n2024-02-03T11:00:00,2\n",
    "a column with no value": "a,b\n,1\n,2\n",
    "spaces around numbers": "a,b\n 1.5,x\n2 ,y\n",
    "infinities": "a,b\ninf,1\n-Infinity,2\n",
    "missing-value words": "a,b\nNA,None\n1,<NA>\n",
    "quoted separators and empty quotes": 'a,b\n"1",",x"\n"2",""\n',
    "a blank cell in a numeric column": "a,b\n1, \n2,3\n",
    "a trailing separator": "a,b,\n1,2,\n3,4,\n",
    "a short row": "a,b,c\n1,2\n3,4,5\n",
    "blank lines": "a,b\n1,2\n\n3,4\n",
    "mixed text and numbers": "a,b\n1,x\ny,2\n",
    "leading zeros": "a,b\n007,1\n010,2\n",
    "Windows line ends": "a,b\r\n1,2\r\n3,x\r\n",
    "a line break in quotes": 'a,b\n1,"x\ny"\n2,z\n',
    "digits that need correct rounding": "a\n0.1\n0.30000000000000004\n1.7976931348623157e308\n",
}


@pytest.mark.parametrize("name", sorted(TRICKY_CSVS))
def test_a_csv_reads_as_pandas_reads_it(tmp_path, name):
    path = tmp_path / "batch.csv"
    path.write_text(TRICKY_CSVS[name], encoding="utf-8", newline="")
    expected = pd.read_csv(path, low_memory=False, float_precision="round_trip")
    got = read_table(str(path))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    for name in expected.columns:  # and missing cells as pandas has them: NaN, not None (equal to the above)
        assert [type(value) for value in got[name]] == [type(value) for value in expected[name]], name


def test_a_plain_csv_is_read_by_pyarrow_not_pandas(tmp_path, good_frame, monkeypatch):
    path = tmp_path / "batch.csv"
    good_frame.to_csv(path, index=False)
    expected = pd.read_csv(path, low_memory=False, float_precision="round_trip")

    def refuse(*args, **kwargs):
        raise AssertionError("pandas' parser was used")

    monkeypatch.setattr(pd, "read_csv", refuse)
    pd.testing.assert_frame_equal(read_table(str(path)), expected, check_exact=True)


def _header(columns: int) -> str:
    return ",".join(f"c{i}" for i in range(columns))


def test_a_header_line_over_its_cap_is_refused_before_it_is_parsed(tmp_path):
    limits = InputLimits(header_bytes=2048)
    one_line = tmp_path / "one_line.csv"
    one_line.write_bytes(b"a" * 100_000)  # one line far over the cap, no newline at all
    with pytest.raises(DataError) as raised:
        read_table(str(one_line), limits=limits)
    assert str(raised.value) == f"{one_line}: the header line is over 2,048 bytes (PIPELINE_MAX_HEADER_BYTES)"
    fits = tmp_path / "fits.csv"
    fits.write_text(_header(300) + "\r\n" + ",".join("1" * 300) + "\n")  # 1,489 bytes of header
    assert read_table(str(fits), limits=limits).shape == (1, 300)


def test_a_header_of_exactly_the_cap_fits_and_one_byte_more_does_not():
    limits = InputLimits(header_bytes=1024)
    assert limits.header_end("b.csv", b"x" * 1024 + b"\r\nrow") == 1025
    assert limits.header_end("b.csv", b"x" * 1024) == -1
    with pytest.raises(DataError, match="over 1,024 bytes"):
        limits.header_end("b.csv", b"x" * 1025 + b"\n")


def test_more_columns_than_the_cap_are_refused_and_duplicates_are_found_among_many(tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text(_header(101) + "\n" + ",".join("1" * 101) + "\n")
    with pytest.raises(DataError) as raised:
        read_table(str(wide), limits=InputLimits(columns=100))
    assert str(raised.value) == f"{wide}: 101 columns, over the limit of 100 (PIPELINE_MAX_COLUMNS)"
    names = [f"c{i}" for i in range(100_000)] + ["c7", "c99999", "c7"]
    assert duplicated(names) == ["c7", "c99999"]
    many = tmp_path / "many.csv"
    many.write_text(",".join(names) + "\n")
    with pytest.raises(DataError, match="duplicated column names: c7, c99999$"):
        read_table(str(many))


def test_a_csv_with_more_rows_than_the_cap_is_refused(tmp_path):
    path = tmp_path / "rows.csv"
    pd.DataFrame({"a": range(11)}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"rows\.csv: 11 rows, over the limit of 10 \(PIPELINE_MAX_ROWS\)"):
        read_table(str(path), limits=InputLimits(rows=10))
    assert len(read_table(str(path), limits=InputLimits(rows=11))) == 11


def test_a_parquet_file_over_a_cap_is_refused_from_its_metadata_before_any_data_is_read(tmp_path, monkeypatch):
    path = tmp_path / "many.parquet"
    pd.DataFrame({"a": [1] * 5000, "b": ["x"] * 5000}).to_parquet(path)

    def no_data(*args, **kwargs):
        raise AssertionError("the data was read")

    monkeypatch.setattr(pd, "read_parquet", no_data)
    with pytest.raises(DataError) as raised:
        read_table(str(path), limits=InputLimits(rows=4999))
    assert str(raised.value) == f"{path}: 5,000 rows, over the limit of 4,999 (PIPELINE_MAX_ROWS)"
    with pytest.raises(DataError, match=r"2 columns, over the limit of 1 \(PIPELINE_MAX_COLUMNS\)"):
        read_table(str(path), limits=InputLimits(columns=1))


def test_the_caps_come_from_the_settings():
    from pipeline.settings import Settings

    settings = Settings(_env_file=None, max_header_bytes=4096, max_columns=50, max_rows=10)  # type: ignore[call-arg]
    assert InputLimits.of(settings.engine) == InputLimits(header_bytes=4096, columns=50, rows=10)
    defaults = InputLimits.of(Settings(_env_file=None).engine)  # type: ignore[call-arg]
    assert defaults == InputLimits(header_bytes=1_048_576, columns=10_000, rows=5_000_000)


@mock_aws
def test_a_file_s3_will_not_give_is_the_source_s_failure_not_the_file_s():
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="data")
    for source in ("s3://data/missing.csv", "s3://nobucket/x.csv"):
        with pytest.raises(SourceUnavailable):
            read_table(source, client)
    with pytest.raises(SourceUnavailable, match="no S3 client configured"):
        read_table("s3://data/x.csv")


def test_an_unreachable_s3_names_its_endpoint_and_the_setting():
    """Real S3 tried through the local emulator's default endpoint: the line says where it tried and what to set."""
    from pipeline.io.tables import SourceUnavailable, make_s3_client, read_bytes

    client = make_s3_client("http://127.0.0.1:9", "us-east-1")
    with pytest.raises(SourceUnavailable) as raised:
        read_bytes("s3://bucket/a.csv", client)
    said = str(raised.value)
    assert said.startswith("s3://bucket/a.csv: S3 unreachable at http://127.0.0.1:9 (EndpointConnectionError)")
    assert "PIPELINE_S3_ENDPOINT_URL" in said and "\n" not in said
