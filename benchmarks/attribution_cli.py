"""Section 10 through the ``pipeline`` command, as a user runs it, against the throwaway stack (Postgres, MLflow,
moto S3): a subset of the single shifts and pairs of ``benchmarks.attribution``.

``pipeline train`` on the reference rows makes the champion; the features it relies on are measured on that very
champion (loaded in this process by the product's loader, ``pipeline.model.serving.load_version``) by permutation
importance on fresh rows; one ``pipeline monitor --current ... --report-json`` run (retraining off, so the champion
stays the one measured) goes over unshifted batches, then the shifted ones; each shifted batch is then explained by
``pipeline explain --batch N --json`` (its file read again, the version that served it, its stored reference).
The unshifted batches' prediction-drift scores, as the monitor recorded them, are the noise a shift must stand
beyond to be counted, as in the in-process part.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.attribution import (
    beyond_noise,
    ignored_features,
    permutation_reliance,
    shift_reliance,
)
from benchmarks.common import BenchStack, Say
from benchmarks.rainfall import Cli
from pipeline.demo.synth import Population, load_sample_frame
from pipeline.domain.schema import load_schema
from pipeline.io.data import validate_frame
from pipeline.model.scoring import Scorer


@dataclass(frozen=True)
class CliConfig:
    reference_rows: int = 10_000
    batch_rows: int = 10_000
    relied_on: int = 4
    magnitudes: tuple[float, ...] = (0.5, 1.0, 2.0)
    stable: int = 5
    pairs: int = 2
    small: float = 0.5
    large: float = 2.0
    reliance_rows: int = 2_000
    seed: int = 22

    @classmethod
    def quick(cls) -> CliConfig:
        return cls(reference_rows=4_000, batch_rows=4_000, relied_on=2, magnitudes=(1.0,), stable=3, pairs=1)


@dataclass
class CliShift:
    """One shifted batch as the CLI saw it."""

    moves: dict[str, float]
    feature: str  # the shifted relied-on feature
    batch: int = 0
    prediction_drift: float = float("nan")  # as the monitor recorded it
    alarmed: bool = False
    counted: bool = False
    ranking: list[str] = field(default_factory=list)  # by share, from ``pipeline explain --json``
    monitor_first: str = ""  # the first feature of the monitor's own attribution (alarmed batches)
    explain_seconds: float = float("nan")

    @property
    def rank(self) -> int:
        return self.ranking.index(self.feature) + 1 if self.feature in self.ranking else len(self.ranking) + 1


def least_relied(
    permuted: dict[str, float], moved: dict[str, float], present: dict[str, float], n: int, least: float = 0.9
) -> list[str]:
    """When the champion ignores no feature outright (a linear model weighs them all): the ``n`` features, present
    in at least ``least`` of the rows, whose larger effect (shuffled or moved) on P(positive) is the smallest."""
    kept = [name for name in permuted if present.get(name, 0.0) >= least]
    return sorted(kept, key=lambda name: (max(permuted[name], moved.get(name, 0.0)), name))[:n]


@dataclass
class _BenchCli(Cli):
    """The ``pipeline`` command with retraining off: the champion stays the one whose reliance was measured."""

    def env(self) -> dict[str, str]:
        return {**super().env(), "PIPELINE_RETRAIN": "off", "PIPELINE_REFRESH_FRACTION": "0"}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _champion(cli: _BenchCli) -> Scorer:
    """The registered champion, loaded by the product's loader as the monitor loads it."""
    from pipeline.app.collaborators import Collaborators
    from pipeline.model.serving import load_version
    from pipeline.settings import Settings

    with _environment({k: v for k, v in cli.env().items() if k.startswith(("PIPELINE_", "AWS_"))}):
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        registry = Collaborators(settings).registry
        info = registry.champion()
        if info is None:
            raise RuntimeError("pipeline train registered no champion")
        return load_version(registry, info, load_schema(), settings).scorer


def run(config: CliConfig, stack: BenchStack, say: Say) -> tuple[list[CliShift], list[CliShift], list[float]]:
    """The single shifts and the pairs through the CLI, and the unshifted batches' recorded prediction drift."""
    schema = load_schema()
    population = Population.fit(load_sample_frame(), schema)
    rng = np.random.default_rng(config.seed)
    with tempfile.TemporaryDirectory(prefix="bench-why-cli-") as tmp:
        work = Path(tmp)
        cli = _BenchCli(stack, "bench-why", "bench-why", work)
        reference = population.sample_batch(config.reference_rows, rng)
        reference_path = work / "reference.csv"
        reference.to_csv(reference_path, index=False)
        say("section 10 (CLI): `pipeline train` on the reference rows")
        cli("train", "--data", str(reference_path))
        scorer = _champion(cli)
        spread = {n: float(np.nanstd(reference[n].astype(float))) for n in schema.numerical}
        names = [n for n in schema.numerical if spread[n] > 0]
        fresh = validate_frame(population.sample_batch(config.reliance_rows, rng), schema, "reliance").frame
        reliance = permutation_reliance(scorer.proba, fresh, names, config.seed)
        relied = sorted(reliance, key=lambda n: (-reliance[n], n))[: config.relied_on]
        present = {n: float(fresh[n].notna().mean()) for n in names}
        moved = shift_reliance(scorer.proba, fresh, names, config.large, spread)
        ignored = ignored_features(reliance, moved, present) or least_relied(reliance, moved, present, config.pairs)
        say(
            f"section 10 (CLI): the champion relies most on {', '.join(relied)}; its pairs' other feature: "
            + ", ".join(f"{n} (shuffled {reliance[n]:.2g}, moved {moved[n]:.2g})" for n in ignored[: config.pairs])
        )
        singles = [CliShift({f: m}, f) for f in relied for m in config.magnitudes]
        pairs = [
            CliShift(
                {relied[i % len(relied)]: config.small, ignored[i % len(ignored)]: config.large},
                relied[i % len(relied)],
            )
            for i in range(config.pairs if ignored else 0)
        ]
        frames = [population.sample_batch(config.batch_rows, rng) for _ in range(config.stable)]
        for shift in [*singles, *pairs]:
            frame = population.sample_batch(config.batch_rows, rng)
            for name, by in shift.moves.items():
                frame[name] = frame[name] + by * spread[name]
            frames.append(frame)
        paths = []
        for i, frame in enumerate(frames, start=1):
            paths.append(work / f"batch_{i:03d}.parquet")
            frame.to_parquet(paths[-1], index=False)
        say(f"section 10 (CLI): `pipeline monitor` over {len(paths)} batches ({config.stable} unshifted)")
        _monitored, records = cli.monitor(reference_path, paths, work / "report.json", echo=say)
        stable = [float(r["prediction_drift"]) for r in records[: config.stable]]
        for offset, shift in enumerate([*singles, *pairs], start=config.stable + 1):
            _explained(cli, shift, offset, records[offset - 1], stable, work)
            say(f"section 10 (CLI): batch {offset} {shift.moves}: rank {shift.rank}, first {shift.ranking[:3]}")
    return singles, pairs, stable


def _explained(
    cli: _BenchCli, shift: CliShift, batch: int, record: dict[str, Any], stable: list[float], work: Path
) -> None:
    """The shifted batch's record from the monitor and its ``pipeline explain --json``."""
    shift.batch = batch
    shift.prediction_drift = float(record["prediction_drift"])
    shift.alarmed = bool(record.get("drift_detected", False))
    shift.counted = beyond_noise(shift.prediction_drift, stable)
    inline = record.get("drift_attribution") or []
    shift.monitor_first = str(inline[0]["feature"]) if inline else ""
    out = work / f"explain-{batch}.json"
    done = cli("explain", "--batch", str(batch), "--json", str(out))
    shift.explain_seconds = done.wall
    shift.ranking = [str(part["feature"]) for part in json.loads(out.read_text())["all_features"]]
