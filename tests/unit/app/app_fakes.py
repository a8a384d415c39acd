"""Fakes of the loop's collaborators (registry, metrics store, a registered model, the retrain cycle), in memory:
the monitor's own logic runs unchanged against them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema
from pipeline.model.evaluate import Decision
from pipeline.model.registry import VersionInfo
from pipeline.model.retrain import RetrainOutcome
from pipeline.model.train import Split


class OracleScorer:
    """P(positive) from a function of the frame (the demo population's own model)."""

    def __init__(self, proba: Any, schema: FeatureSchema) -> None:
        self._proba = proba
        self.schema = schema
        self.model = type("LoadedModel", (), {"flavor": "oracle"})()

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._proba(frame), dtype="float64")


@dataclass
class FakeServing:
    info: VersionInfo
    scorer: OracleScorer

    @property
    def holdout_roc_auc(self) -> float | None:
        return self.info.metric("holdout_roc_auc")

    @property
    def version(self) -> int:
        return self.info.version


@dataclass
class FakeRegistry:
    """Versions by number, the champion alias, tags; ``find_version`` by the tags a retrain is given."""

    name: str = "m"
    versions: dict[int, VersionInfo] = field(default_factory=dict)
    champion_version: int | None = None
    promotions: list[int] = field(default_factory=list)
    model_tag_values: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)

    def model_tags(self) -> dict[str, str]:
        return dict(self.model_tag_values)

    def tag_model(self, key: str, value: str) -> None:
        self.model_tag_values[key] = value

    def add(self, version: int, **tags: str) -> VersionInfo:
        self.versions[version] = VersionInfo(version, f"run-{version}", dict(tags))
        return self.versions[version]

    def champion(self) -> VersionInfo | None:
        return None if self.champion_version is None else self.versions[self.champion_version]

    def version(self, number: int) -> VersionInfo:
        return self.versions[number]

    def promote(self, number: int) -> int | None:
        before, self.champion_version = self.champion_version, number
        self.promotions.append(number)
        return before

    def versions_with(self, tags: dict[str, str]) -> list[VersionInfo]:
        return [
            info
            for _number, info in sorted(self.versions.items())
            if all(info.tags.get(key) == value for key, value in tags.items())
        ]

    def find_version(self, tags: dict[str, str]) -> VersionInfo | None:
        found = self.versions_with(tags)
        return found[-1] if found else None

    def tag_version(self, number: int, key: str, value: str) -> None:
        self.versions[number].tags[key] = value

    def ensure_model(self) -> None: ...


@dataclass
class FakeStore:
    """What the loop writes and reads of the metrics store, kept in lists."""

    rows: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    recorded: dict[int, dict[str, Any]] = field(default_factory=dict)
    lock_free: bool = True
    mlflow_ids: dict[str, str] = field(default_factory=dict)
    rejections: list[Any] = field(default_factory=list)
    attributions: dict[int, list[Any]] = field(default_factory=dict)
    segments: dict[int, list[Any]] = field(default_factory=dict)

    def create_schema(self) -> None: ...

    def start_run(self, run_key: str, model_name: str, threshold: float, sources: Any) -> None: ...

    def recorded_batches(self, run_key: str) -> dict[int, dict[str, Any]]:
        return dict(self.recorded)

    def drifted_features_of_run(self, run_key: str) -> dict[int, list[str]]:
        return {}

    def segment_alarms_of_run(self, run_key: str) -> dict[int, frozenset[str]]:
        return {
            index: frozenset(f"{s['segment_column']}={s['segment_value']}" for s in rows if s["alarmed"])
            for index, rows in self.segments.items()
        }

    def run_mlflow_id(self, run_key: str) -> str | None:
        return self.mlflow_ids.get(run_key)

    def set_run_mlflow_id(self, run_key: str, run_id: str) -> None:
        self.mlflow_ids[run_key] = run_id

    def record_batch(self, row: Any, events: list[Any], features: Any, profile: Any) -> None:
        self.rows.append(row)
        self.events.extend(events)

    def record_attribution(self, run_key: str, index: int, shares: Any, sample_rows: int, method: str) -> bool:
        self.attributions[index] = list(shares)
        return True

    def record_segments(self, run_key: str, index: int, segments: Any) -> bool:
        self.segments[index] = list(segments)
        return True

    def record_rejection(self, rejected: Any) -> bool:
        self.rejections.append(rejected)
        return True

    @contextlib.contextmanager
    def retrain_lock(self, model_name: str) -> Iterator[bool]:
        yield self.lock_free

    def batches_of_run(self, run_key: str) -> list[dict[str, Any]]:
        return []

    def events_of_run(self, run_key: str) -> list[dict[str, Any]]:
        return []


@dataclass
class FakeRetrain:
    """The retrain cycle: registers the next version in the fake registry, promoted or not as told."""

    registry: FakeRegistry
    promote: bool = True
    fail_with: BaseException | None = None
    calls: list[int] = field(default_factory=list)

    def __call__(
        self, window: pd.DataFrame, info: Any, *, origin: dict[str, str], promote: bool = True, **_: Any
    ) -> RetrainOutcome:
        self.calls.append(len(window))
        if self.fail_with is not None:
            raise self.fail_with
        number = max(self.registry.versions) + 1
        held = self.promote and not promote
        self.registry.add(number, decision="held" if held else "promoted" if self.promote else "rejected", **origin)
        self.registry.aliases["challenger"] = number
        if self.promote and promote:
            self.registry.promote(number)
        decision = Decision(self.promote, "won" if self.promote else "lost", 0.01, 0.001, None, {}, 10)
        split = Split(window.iloc[:0], window.iloc[:0], window)
        promoted = self.promote and promote
        return RetrainOutcome(number, promoted, decision, "fake", {}, f"run-{number}", None, split, held=held)


def loader(proba: Any):
    """A ``load_version`` that serves every version with the same oracle."""

    def load(registry: Any, info: VersionInfo, schema: FeatureSchema, settings: Any, **_: Any) -> FakeServing:
        return FakeServing(info, OracleScorer(proba, schema))

    return load


class Kept:
    """A notifier that keeps what it is given."""

    def __init__(self) -> None:
        self.notes: list[Any] = []

    def notify(self, notification: Any) -> bool:
        self.notes.append(notification)
        return True
