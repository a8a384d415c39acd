"""Infer a feature schema from a table, as a first draft that a person reads and edits.

The rules are deliberately simple so that the notes can say exactly why a column was left out:

- the target must hold exactly two distinct values, one of which matches ``positive`` by ``label_key``;
- numbers are numerical, text and booleans categorical; ``categorical`` turns numeric columns (integer-coded
  categories such as census codes or ICD groups, which a file cannot tell apart from amounts) into categorical;
- left out, each with a note: columns with no value, timestamps, ids (a non-float column unique on every row of
  a table of at least ``ID_MIN_ROWS`` rows), unsupported types, and the ``ignore`` list.

Float columns are never taken for ids: continuous measurements are unique on every row too.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from pipeline.domain.schema import FeatureSchema, Label, SchemaError, label_key, parse_schema, shorten

ID_MIN_ROWS = 20  # below this, a tiny file would lose every text column to the id rule
TIMESTAMP_SAMPLE = 200  # non-missing values looked at to decide whether a text column holds dates
TIMESTAMP_SHARE = 0.95  # share of the sample that must parse as a date/time
# Text that parses as a date must also look like one: dateutil alone accepts "May", "Mon" or "10-20" (an age band).
_DATE_LIKE = re.compile(r"\d{4}|\d{1,2}:\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}")


def split_names(values: Iterable[str], columns: Iterable[str]) -> list[str]:
    """Column names from ``--categorical a,b`` style options, in the order given, without repeats.

    A value that is itself a column name is taken whole, since real column names contain commas
    (``bloodculture,routine_count``); any other value is split on commas.
    """
    known = set(columns)
    names: list[str] = []
    for value in values:
        parts = [value.strip()] if value.strip() in known else [part.strip() for part in value.split(",")]
        names.extend(part for part in parts if part and part not in names)
    return names


def _as_label(value: Any) -> Label:
    """A target value as the JSON type it was read with: 1.0 becomes 1, text loses surrounding blanks.

    Blanks are stripped because labels are matched without them (``label_key``).
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    return str(value).strip()


def _present(column: pd.Series) -> pd.Series:
    """Rows holding a value: not missing and not blank text."""
    mask = column.notna()
    if column.dtype == object or pd.api.types.is_string_dtype(column):
        blank = column[mask].astype(str).str.strip() == ""
        mask = mask & ~blank.reindex(column.index, fill_value=False)
    return mask


def _target_labels(column: pd.Series, target: str, positive: str, source: str) -> tuple[Label, Label, int]:
    """The positive and negative label as read, and how many rows have no label."""
    by_key: dict[str, Label] = {}
    missing = 0
    for value in column.tolist():
        key = label_key(value)
        if key is None:
            missing += 1
        elif key not in by_key:
            by_key[key] = _as_label(value)
    shown = shorten([repr(value) for value in by_key.values()])
    if len(by_key) != 2:
        count = len(by_key)
        held = f"{count} distinct value{'s' if count != 1 else ''}: {shown}" if by_key else "no values"
        raise SchemaError(f"{source}: target {target!r} holds {held}; a binary target holds exactly two")
    wanted = label_key(positive)
    if wanted not in by_key:
        raise SchemaError(f"{source}: --positive {positive!r} is not a value of target {target!r}, which holds {shown}")
    (negative_key,) = [key for key in by_key if key != wanted]
    return by_key[wanted], by_key[negative_key], missing


def _looks_like_timestamps(values: pd.Series) -> bool:
    """Whether at least ``TIMESTAMP_SHARE`` of a sample of the non-missing values are dates or times."""
    step = max(1, len(values) // TIMESTAMP_SAMPLE)
    sample = values.iloc[::step].iloc[:TIMESTAMP_SAMPLE].astype(str).str.strip()
    if sample.empty:
        return False
    date_like = sample[sample.str.contains(_DATE_LIKE)]
    if len(date_like) < TIMESTAMP_SHARE * len(sample):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(date_like, errors="coerce", format="mixed", utc=True)
        except (ValueError, TypeError, OverflowError):
            return False
    return int(parsed.notna().sum()) >= TIMESTAMP_SHARE * len(sample)


def _is_id(column: pd.Series, present: pd.Series) -> bool:
    rows = len(column)
    return rows >= ID_MIN_ROWS and bool(present.all()) and column.nunique(dropna=True) == rows


def _id_note(name: str) -> str:
    return (
        f"column {name!r} left out: its values are unique on every row, like an id; to join late labels by it, "
        f"pass --id {name}"
    )


def infer_schema(
    frame: pd.DataFrame,
    *,
    target: str,
    positive: str,
    categorical: Sequence[str] = (),
    ignore: Sequence[str] = (),
    row_id: str | None = None,
    source: str = "data",
    segments: Sequence[str] = (),
) -> tuple[FeatureSchema, list[str]]:
    """A schema for ``frame`` and the notes to show (one line each), or ``SchemaError`` (one line).

    ``row_id`` (``--id``) names the column that identifies a row: the schema's ``id``, never a feature.
    ``segments`` (``--segment``) names categorical features watched segment by segment (a numerical one needs bins,
    written in the schema file by hand).
    The result passes ``parse_schema`` and keeps the data's column order within each list.
    """
    columns = [str(name) for name in frame.columns]
    _check_names(columns, target, categorical, ignore, source)
    if row_id is not None:
        _check_id(columns, target, categorical, ignore, row_id, source)
    frame = frame.set_axis(columns, axis=1)

    positive_label, negative_label, unlabelled = _target_labels(frame[target], target, positive, source)
    notes: list[str] = []
    if unlabelled:
        notes.append(f"target {target!r} is empty on {unlabelled} of {len(frame)} rows; those rows cannot train")

    kinds: dict[str, list[str]] = {"numerical": [], "categorical": [], "empty": []}
    for name in columns:
        if name in (target, row_id) or name in ignore:
            continue
        kind, note = _column_kind(name, frame[name], asked=name in categorical)
        if kind is not None:
            kinds[kind].append(name)
        if note is not None:
            notes.append(note)
    numerical, categories, empty = kinds["numerical"], kinds["categorical"], kinds["empty"]
    if empty:
        notes.append(f"{len(empty)} column(s) left out because they have no value at all: {shorten(empty)}")
    if ignore:
        notes.append(f"left out as asked (--ignore): {', '.join(name for name in columns if name in ignore)}")
    if not numerical and not categories:
        raise SchemaError(f"{source}: no feature columns left besides the target {target!r}")
    raw = {
        "target": {"column": target, "positive": positive_label, "negative": negative_label},
        "numerical": numerical,
        "categorical": categories,
        **({"id": row_id} if row_id else {}),
        **({"segments": list(segments)} if segments else {}),
    }
    return parse_schema(raw, source), notes


def _check_names(
    columns: list[str], target: str, categorical: Sequence[str], ignore: Sequence[str], source: str
) -> None:
    """Refuse repeated column names, a missing target, and options naming unknown columns or the target."""
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if repeated:
        raise SchemaError(f"{source}: duplicated column names: {shorten(repeated)}")
    if target not in columns:
        raise SchemaError(f"{source}: no target column {target!r}; the columns are {shorten(columns, 10)}")
    for option, names in (("--categorical", categorical), ("--ignore", ignore)):
        unknown = [name for name in names if name not in columns]
        if unknown:
            raise SchemaError(f"{source}: {option} names columns that are not in the data: {shorten(unknown)}")
        if target in names:
            raise SchemaError(f"{source}: {option} names the target {target!r}, which cannot be a feature")
    both = [name for name in categorical if name in ignore]
    if both:
        raise SchemaError(f"{source}: {shorten(both)} named in both --categorical and --ignore")


def _check_id(
    columns: list[str], target: str, categorical: Sequence[str], ignore: Sequence[str], row_id: str, source: str
) -> None:
    """Refuse an ``--id`` that is not a column, is the target, or is also named as a feature or left out."""
    if row_id not in columns:
        raise SchemaError(f"{source}: --id names {row_id!r}, which is not in the data")
    if row_id == target:
        raise SchemaError(f"{source}: --id names the target {target!r}")
    for option, names in (("--categorical", categorical), ("--ignore", ignore)):
        if row_id in names:
            raise SchemaError(f"{source}: {row_id!r} named in both --id and {option}")


def _column_kind(name: str, column: pd.Series, *, asked: bool) -> tuple[str | None, str | None]:
    """What a feature column becomes: ``numerical``, ``categorical``, ``empty`` (no value at all) or None (left
    out), with the note to show, if any. ``asked``: named by ``--categorical``."""
    present = _present(column)
    if not present.any():
        return "empty", None
    if pd.api.types.is_datetime64_any_dtype(column):
        return None, f"column {name!r} left out: it holds dates/times (a timestamp is not a feature)"
    if pd.api.types.is_bool_dtype(column):
        return "categorical", None
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_complex_dtype(column):
        if asked:
            return "categorical", None
        if pd.api.types.is_integer_dtype(column) and _is_id(column, present):
            return None, _id_note(name)
        return "numerical", None
    if column.dtype == object or pd.api.types.is_string_dtype(column) or isinstance(column.dtype, pd.CategoricalDtype):
        if asked:
            return "categorical", None
        if _looks_like_timestamps(column[present]):
            return None, f"column {name!r} left out: it looks like a timestamp; to keep it, pass --categorical {name}"
        if _is_id(column, present):
            return None, _id_note(name)
        return "categorical", None
    return None, f"column {name!r} left out: its type {column.dtype} is neither a number nor text"


def label_text(value: Label) -> str:
    """A label as it appears in the JSON file (``">50K"``, ``1``, ``true``), for summaries."""
    return json.dumps(value, ensure_ascii=False)
