"""Property-based tests of the validator over generated frames: whatever the frame, ``validate_frame`` either
returns a clean batch (schema columns only, numerics float64, every row kept, values unchanged) or raises a
one-line ``DataError`` naming the source; it never raises anything else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.domain.schema import load_schema
from pipeline.io.data import validate_frame
from pipeline.io.tables import DataError

SCHEMA = load_schema()
SOURCE = "s3://bucket/batch 07.csv"
PROFILE = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=False, width=32), st.integers(-1000, 1000))
numeric_text = st.one_of(
    numbers,
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(str),
    st.integers(-1000, 1000).map(str),
    st.just(""),
    st.just("  "),
)
levels = st.one_of(
    st.none(),
    st.sampled_from(["car", "walk-in", "ambulance", "female", "male", "admit", ""]),
    st.text(max_size=8),
)
junk = st.one_of(numbers, st.text(max_size=6), st.booleans())


def base_frame(rows: int) -> pd.DataFrame:
    """Schema columns, all empty: the examples fill a drawn handful (drawing all 82 columns is slow)."""
    frame = pd.DataFrame({name: [np.nan] * rows for name in SCHEMA.numerical})
    for name in SCHEMA.categorical:
        frame[name] = pd.Series([None] * rows, dtype=object)
    return frame


@st.composite
def valid_frames(draw) -> pd.DataFrame:
    rows = draw(st.integers(1, 5))
    frame = base_frame(rows)
    for name in draw(st.lists(st.sampled_from(SCHEMA.numerical), max_size=6, unique=True)):
        frame[name] = pd.Series(draw(st.lists(numeric_text, min_size=rows, max_size=rows)), dtype=object)
    for name in draw(st.lists(st.sampled_from(SCHEMA.categorical), max_size=3, unique=True)):
        frame[name] = pd.Series(draw(st.lists(levels, min_size=rows, max_size=rows)), dtype=object)
    if draw(st.booleans()):
        frame[SCHEMA.target] = draw(st.lists(st.sampled_from(SCHEMA.labels), min_size=rows, max_size=rows))
    if draw(st.booleans()):
        frame = frame[list(reversed(frame.columns))]
    return frame


@PROFILE
@given(valid_frames())
def test_a_schema_conforming_frame_validates_to_a_clean_batch(frame: pd.DataFrame):
    batch = validate_frame(frame, SCHEMA, SOURCE)
    assert batch.rows == len(frame)
    expected = [*SCHEMA.features, *([SCHEMA.target] if SCHEMA.target in frame else [])]
    assert list(batch.frame.columns) == expected
    for name in SCHEMA.numerical:
        assert batch.frame[name].dtype == "float64"
        raw = frame[name].map(lambda v: np.nan if isinstance(v, str) and not v.strip() else v)
        given_values = pd.to_numeric(raw, errors="coerce").astype("float64")
        np.testing.assert_array_equal(batch.frame[name].to_numpy(), given_values.to_numpy())
    for name in SCHEMA.categorical:  # categories as read: text unchanged, blank text missing
        expected = [None if pd.isna(v) or (isinstance(v, str) and not v.strip()) else v for v in frame[name]]
        assert [None if pd.isna(v) else v for v in batch.frame[name]] == expected


@st.composite
def broken_frames(draw) -> tuple[pd.DataFrame, str]:
    frame = draw(valid_frames())
    fault = draw(st.sampled_from(["drop", "text", "target", "duplicate"]))
    if fault == "drop":
        name = draw(st.sampled_from(SCHEMA.features))
        return frame.drop(columns=[name]), name
    if fault == "text":
        name = draw(st.sampled_from(SCHEMA.numerical))
        word = draw(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6).filter(
                lambda w: w not in ("nan", "inf", "infinity")
            )
        )
        frame = frame.astype({name: object})
        frame.iloc[draw(st.integers(0, len(frame) - 1)), frame.columns.get_loc(name)] = word
        return frame, name
    if fault == "target":
        value = draw(st.text(min_size=1, max_size=6).filter(lambda v: v.strip() not in ("", *SCHEMA.labels)))
        frame = frame.assign(**{SCHEMA.target: value})
        return frame, SCHEMA.target
    name = draw(st.sampled_from(list(frame.columns)))
    return pd.concat([frame, frame[[name]]], axis=1), name


@PROFILE
@given(broken_frames())
def test_a_broken_frame_is_refused_with_one_line_naming_source_and_column(case: tuple[pd.DataFrame, str]):
    frame, column = case
    with pytest.raises(DataError) as caught:
        validate_frame(frame, SCHEMA, SOURCE)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: ") and "\n" not in message
    assert column in message


@PROFILE
@given(st.data())
def test_any_frame_either_validates_or_raises_data_error_only(data):
    rows = data.draw(st.integers(0, 3))
    frame = base_frame(rows)
    for _ in range(data.draw(st.integers(0, 4))):
        name = data.draw(st.sampled_from([*SCHEMA.features, SCHEMA.target, "extra"]))
        frame[name] = pd.Series(data.draw(st.lists(junk, min_size=rows, max_size=rows)), dtype=object)
    dropped = data.draw(st.lists(st.sampled_from(list(frame.columns)), max_size=2, unique=True))
    frame = frame.drop(columns=dropped)
    try:
        batch = validate_frame(frame, SCHEMA, SOURCE)
    except DataError as err:
        assert str(err).startswith(f"{SOURCE}: ") and "\n" not in str(err)
    else:
        assert batch.rows == rows > 0 and set(SCHEMA.features) <= set(batch.frame.columns)
