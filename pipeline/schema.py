"""The feature schema shipped with the package: 78 numerical, 3 categorical features and the target."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class FeatureSchema:
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    positive: str
    negative: str

    @property
    def features(self) -> tuple[str, ...]:
        return self.numerical + self.categorical

    @property
    def labels(self) -> tuple[str, str]:
        return (self.positive, self.negative)


@cache
def load_schema() -> FeatureSchema:
    """Read ``pipeline/schema/features.json`` (read once, on first use)."""
    text = resources.files("pipeline").joinpath("schema/features.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return FeatureSchema(
        numerical=tuple(raw["numerical"]),
        categorical=tuple(raw["categorical"]),
        target=raw["target"]["column"],
        positive=raw["target"]["positive"],
        negative=raw["target"]["negative"],
    )
