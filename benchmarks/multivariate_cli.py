"""Section 11 through the ``pipeline`` command against the throwaway stack: the flipped-correlation stream as a user
runs it. ``pipeline schema infer`` and ``pipeline train`` on reference rows (a, b correlated +0.8, c, a categorical
kind, a label that depends on a and c), then one ``pipeline monitor --current ... --report-json`` run per batch size
(retraining off) over stable batches then one whose correlation is -0.8; the verdicts are the records'
``multivariate_drift``, as the monitor decided them with its settings (multivariate drift on by default).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.attribution_cli import _BenchCli
from benchmarks.common import BenchStack, Say
from benchmarks.multivariate import correlated


@dataclass(frozen=True)
class CliConfig:
    reference_rows: int = 20_000
    stable: int = 10  # stable batches before the flip, per run
    sizes: tuple[int, ...] = (200, 2_000)
    seed: int = 11

    @classmethod
    def quick(cls) -> CliConfig:
        return cls(reference_rows=5_000, stable=3, sizes=(2_000,))


@dataclass
class CliRun:
    """One monitor run: its stable batches' and its flipped batch's verdicts."""

    rows: int
    stable_alarms: list[bool] = field(default_factory=list)
    flipped_alarm: bool = False
    flipped_auc: float = float("nan")
    seconds: float = float("nan")


def labelled(rows: int, rho: float, rng: np.random.Generator) -> pd.DataFrame:
    """``correlated`` rows with a label that depends on a and c (the same rule on both sides of the flip)."""
    frame = correlated(rows, rho, rng)
    frame["y"] = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(frame["a"] + frame["c"])))).astype(int)
    return frame


def run(config: CliConfig, stack: BenchStack, say: Say) -> list[CliRun]:
    rng = np.random.default_rng(config.seed)
    runs: list[CliRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-mv-cli-") as tmp:
        work = Path(tmp)
        cli = _BenchCli(stack, "bench-multivariate", "bench-multivariate", work)
        reference = work / "reference.csv"
        labelled(config.reference_rows, 0.8, rng).to_csv(reference, index=False)
        schema = work / "schema.json"
        say("section 11 (CLI): `pipeline schema infer` and `pipeline train` on the reference rows")
        cli("schema", "infer", "--data", str(reference), "--target", "y", "--positive", "1", "--out", str(schema))
        cli("train", "--data", str(reference), "--schema", str(schema))
        for rows in config.sizes:
            frames = [labelled(rows, 0.8, rng) for _ in range(config.stable)] + [labelled(rows, -0.8, rng)]
            paths = []
            for i, frame in enumerate(frames, start=1):
                paths.append(work / f"rows{rows}_batch_{i:03d}.csv")
                frame.to_csv(paths[-1], index=False)
            done, records = cli.monitor(reference, paths, work / f"report-{rows}.json", echo=say)
            verdicts = [bool(r.get("multivariate_drift")) for r in records]
            run = CliRun(rows, verdicts[:-1], verdicts[-1], float(records[-1].get("multivariate_auc") or "nan"))
            run.seconds = done.wall
            runs.append(run)
            say(
                f"section 11 (CLI): {rows} rows: stable batches alarmed {sum(run.stable_alarms)} of "
                f"{len(run.stable_alarms)}, flipped batch alarmed {run.flipped_alarm} (AUC {run.flipped_auc:.3f})"
            )
    return runs
