"""The feature schema: which columns are numerical features, which categorical, and the binary target.

A schema is an input. Its file format (``features.json``) is public and documented in docs/own-model.md::

    {"target": {"column": "income", "positive": ">50K", "negative": "<=50K"},
     "numerical": ["age", "hours_per_week"],
     "categorical": ["workclass", "region_code"]}

``positive`` and ``negative`` may be JSON strings, numbers or booleans. They are matched against the target
values as read from CSV or Parquet by ``label_key``: ``1`` matches ``1``, ``"1"`` and ``1.0``; ``true`` matches
``True``. Columns the schema does not name are ignored (a timestamp, free text).

An optional ``"id": "visit_id"`` names the column that identifies a row. It is not a feature: the monitor writes
it to the prediction log with the row's P(positive), so that labels arriving later (``pipeline labels``) can be
joined to the predictions they judge. Ids compare like labels (``id_key``): ``17``, ``17.0`` and ``"17"`` are one id.

An optional ``"segments": ["region", {"column": "age", "bins": [40, 65]}]`` names the slices of the rows the
monitor also watches one by one (``pipeline.stats.segments``): a categorical feature by its levels, a numerical
feature by the bins its edges cut (``<40``, ``40-65``, ``>=65``). Not the model's business either.

Without a schema file the package's own demo schema is used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

Label = str | int | float | bool
SCHEMA_KEYS = ("target", "numerical", "categorical")
OPTIONAL_KEYS = ("id", "segments")
TARGET_KEYS = ("column", "positive", "negative")


class SchemaError(ValueError):
    """A schema that cannot be used. The message is one line naming the file and the mistake."""


@dataclass(frozen=True)
class SegmentSpec:
    """A column whose values slice the rows into segments: a categorical feature's levels, or (with ``bins``,
    ascending edges) a numerical feature's intervals."""

    column: str
    bins: tuple[float, ...] = ()

    def to_raw(self) -> str | dict[str, Any]:
        return {"column": self.column, "bins": list(self.bins)} if self.bins else self.column

    def bin_names(self) -> list[str]:
        """The names of a numerical segment's intervals, lowest first: ``<40``, ``40-65``, ``>=65``."""
        edges = [f"{edge:g}" for edge in self.bins]
        if not edges:
            return []
        return [f"<{edges[0]}", *(f"{a}-{b}" for a, b in zip(edges, edges[1:], strict=False)), f">={edges[-1]}"]


def segment_name(column: str, value: str) -> str:
    """A segment as it is named everywhere (reports, the store, notifications): ``column=value``."""
    return f"{column}={value}"


def label_key(value: Any) -> str | None:
    """The canonical form of a target value, so that values read from CSV, Parquet and JSON compare equal.

    Numbers compare by value (``1``, ``1.0`` and ``"1"`` are ``"1"``), booleans by truth (``true``, ``True``
    and ``"TRUE"`` are ``"true"``), other text as itself without surrounding blanks. Missing is ``None``.
    """
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    text = str(value).strip()
    if not text:
        return None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered
    try:
        number = float(text)
    except ValueError:
        return text
    return label_key(number) if math.isfinite(number) else text


def id_key(value: Any) -> str | None:
    """The canonical form of a row id: as ``label_key`` (``17``, ``17.0`` and ``" 17"`` are ``"17"``), except that
    text is kept as it is apart from surrounding blanks (an id ``"TRUE"`` stays ``"TRUE"``)."""
    key = label_key(value)
    if key in ("true", "false") and isinstance(value, str):
        return value.strip()
    return key


@dataclass(frozen=True)
class FeatureSchema:
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    positive: Label
    negative: Label
    id: str | None = None  # the row id column (not a feature), for the prediction log and late labels
    segments: tuple[SegmentSpec, ...] = ()  # the slices of the rows watched one by one (not the model's business)

    @property
    def features(self) -> tuple[str, ...]:
        return self.numerical + self.categorical

    @property
    def labels(self) -> tuple[Label, Label]:
        return (self.positive, self.negative)

    @property
    def positive_key(self) -> str:
        return str(label_key(self.positive))

    @property
    def negative_key(self) -> str:
        return str(label_key(self.negative))

    def to_dict(self) -> dict[str, Any]:
        """The schema in its file format."""
        raw: dict[str, Any] = {
            "target": {"column": self.target, "positive": self.positive, "negative": self.negative},
            "numerical": list(self.numerical),
            "categorical": list(self.categorical),
        }
        if self.id is not None:
            raw["id"] = self.id
        if self.segments:
            raw["segments"] = [spec.to_raw() for spec in self.segments]
        return raw

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    def differences(self, other: FeatureSchema) -> list[str]:
        """What differs from ``other`` for the model, one short phrase per difference (empty when the two are the
        same). The id column is not the model's business: it may be named later (``with_id``)."""
        found = []
        if self.target != other.target:
            found.append(f"target {self.target!r} vs {other.target!r}")
        if (self.positive_key, self.negative_key) != (other.positive_key, other.negative_key):
            found.append(f"labels {self.positive!r}/{self.negative!r} vs {other.positive!r}/{other.negative!r}")
        for kind in ("numerical", "categorical"):
            mine, theirs = getattr(self, kind), getattr(other, kind)
            only_mine = [name for name in mine if name not in theirs]
            only_theirs = [name for name in theirs if name not in mine]
            if only_mine:
                found.append(f"{kind} only here: {shorten(only_mine)}")
            if only_theirs:
                found.append(f"{kind} only in the other: {shorten(only_theirs)}")
        return found


def shorten(names: Sequence[str], limit: int = 5) -> str:
    """Names for a one-line message: the first ``limit``, then how many more."""
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _names(raw: dict[str, Any], key: str, source: str) -> tuple[str, ...]:
    value = raw[key]
    if not isinstance(value, list) or not all(isinstance(name, str) and name.strip() for name in value):
        raise SchemaError(f"{source}: {key!r} must be a list of column names (non-empty strings)")
    repeated = sorted({name for name in value if value.count(name) > 1})
    if repeated:
        raise SchemaError(f"{source}: {key!r} names {shorten(repeated)} more than once")
    return tuple(value)


def _label(target: dict[str, Any], key: str, source: str) -> Label:
    value = target[key]
    if isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value)):
        return value
    if isinstance(value, str) and value.strip():
        return value
    raise SchemaError(f"{source}: target {key!r} must be a string, a number or a boolean, not {value!r}")


def _check_keys(
    raw: dict[str, Any], keys: tuple[str, ...], prefix: str, what: str, source: str, optional: tuple[str, ...] = ()
) -> None:
    allowed = ", ".join([*keys, *(f"optionally {key}" for key in optional)])
    missing = [key for key in keys if key not in raw]
    if missing:
        raise SchemaError(f"{source}: missing key '{prefix}{missing[0]}' ({what} has {allowed})")
    unknown = sorted(key for key in raw if key not in keys and key not in optional)
    if unknown:
        raise SchemaError(f"{source}: unknown key '{prefix}{unknown[0]}' ({what} has {allowed})")


def parse_schema(raw: Any, source: str) -> FeatureSchema:
    """Check a schema in its file format and return it, or raise ``SchemaError`` (one line)."""
    if not isinstance(raw, dict):
        raise SchemaError(f"{source}: a schema is a JSON object with keys {', '.join(SCHEMA_KEYS)}")
    _check_keys(raw, SCHEMA_KEYS, "", "a schema", source, OPTIONAL_KEYS)
    target = raw["target"]
    if not isinstance(target, dict):
        raise SchemaError(f"{source}: 'target' must be an object with keys {', '.join(TARGET_KEYS)}")
    _check_keys(target, TARGET_KEYS, "target.", "target", source)
    column = target["column"]
    if not isinstance(column, str) or not column.strip():
        raise SchemaError(f"{source}: 'target.column' must be a column name")
    positive, negative = _label(target, "positive", source), _label(target, "negative", source)
    if label_key(positive) == label_key(negative):
        raise SchemaError(f"{source}: target positive {positive!r} and negative {negative!r} are the same value")
    numerical, categorical = _names(raw, "numerical", source), _names(raw, "categorical", source)
    both = [name for name in numerical if name in categorical]
    if both:
        raise SchemaError(f"{source}: {shorten(both)} listed as both numerical and categorical")
    if column in numerical or column in categorical:
        raise SchemaError(f"{source}: the target {column!r} is also listed as a feature")
    if not numerical and not categorical:
        raise SchemaError(f"{source}: no feature columns (both 'numerical' and 'categorical' are empty)")
    row_id = raw.get("id")
    if row_id is not None:
        if not isinstance(row_id, str) or not row_id.strip():
            raise SchemaError(f"{source}: 'id' must be a column name")
        if row_id in numerical or row_id in categorical or row_id == column:
            raise SchemaError(f"{source}: the id column {row_id!r} is also the target or a feature")
    segments = _segments(raw.get("segments", []), numerical, categorical, source)
    return FeatureSchema(numerical, categorical, column, positive, negative, row_id, segments)


def _segments(value: Any, numerical: Sequence[str], categorical: Sequence[str], source: str) -> tuple[SegmentSpec, ...]:
    """The ``segments`` entry checked: a list of categorical feature names and ``{"column", "bins"}`` objects
    for numerical features (bins: ascending finite edges), each column once."""
    if not isinstance(value, list):
        raise SchemaError(f"{source}: 'segments' must be a list of columns")
    specs = [_segment(entry, numerical, categorical, source) for entry in value]
    columns = [spec.column for spec in specs]
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise SchemaError(f"{source}: 'segments' names {shorten(repeated)} more than once")
    return tuple(specs)


def _segment(entry: Any, numerical: Sequence[str], categorical: Sequence[str], source: str) -> SegmentSpec:
    if isinstance(entry, str):
        if entry in categorical:
            return SegmentSpec(entry)
        if entry in numerical:
            raise SchemaError(f"{source}: segment {entry!r} is numerical: name its bins ({{'column', 'bins'}})")
        raise SchemaError(f"{source}: segment {entry!r} is not a feature of the schema")
    if not isinstance(entry, dict) or sorted(entry) != ["bins", "column"]:
        raise SchemaError(f"{source}: a segment is a categorical column's name or an object with keys column, bins")
    column, bins = entry["column"], entry["bins"]
    if not isinstance(column, str) or column not in numerical:
        raise SchemaError(f"{source}: segment bins are for a numerical feature, not {column!r}")
    edges = bins if isinstance(bins, list) else []
    numbers = [b for b in edges if isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b)]
    rising = all(low < high for low, high in zip(numbers, numbers[1:], strict=False))
    if not edges or len(numbers) != len(edges) or not rising:
        raise SchemaError(f"{source}: segment {column!r} bins must be a non-empty list of increasing numbers")
    return SegmentSpec(column, tuple(float(b) for b in numbers))


def read_schema(path: str | Path) -> FeatureSchema:
    """Read and check a local schema file (``pipeline.io.data.read_schema_at`` reads one in S3 too)."""
    source = str(path)
    file = Path(path)
    if not file.is_file():
        raise SchemaError(f"{source}: no such schema file")
    return schema_from_bytes(file.read_bytes(), source)


def schema_from_bytes(data: bytes, source: str) -> FeatureSchema:
    """Parse and check a schema file's bytes; ``source`` names it in the one-line ``SchemaError``."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise SchemaError(f"{source}: not UTF-8 text") from err
    except json.JSONDecodeError as err:
        raise SchemaError(f"{source}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from err
    return parse_schema(raw, source)


@cache
def builtin_schema() -> FeatureSchema:
    """The demo's schema shipped with the package (``pipeline/demo/features.json``)."""
    text = resources.files("pipeline.demo").joinpath("features.json").read_text(encoding="utf-8")
    return parse_schema(json.loads(text), "built-in demo schema")


def is_builtin(schema: FeatureSchema) -> bool:
    return not schema.differences(builtin_schema())


def load_schema(path: str | Path | None = None) -> FeatureSchema:
    """The schema in ``path``, or the built-in demo schema when no path is given."""
    return builtin_schema() if path is None else read_schema(path)
