"""Section 5: performance estimation without labels; ``pipeline.stats.estimate`` against NannyML's CBPE, same chunks.

NannyML is not a dependency of the project. ``make bench`` installs it into its own folder, ``.tools/nannyml``
(``pip install --target``, see mk/bench.mk), and only this module puts that folder on ``sys.path``, at the end,
so the project's own numpy, pandas and scikit-learn are the ones imported; NannyML's usage telemetry is switched
off (``NML_DISABLE_USAGE_LOGGING``) before it is imported.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from benchmarks.common import Say, Section, Table, ratio, seconds
from benchmarks.quality import QualityConfig, Simulator, _clean, drift_streams
from pipeline.demo.synth import DriftKind, Population, load_sample_frame
from pipeline.domain.schema import load_schema
from pipeline.io.data import labels_of
from pipeline.model.scoring import Scorer
from pipeline.settings import Settings
from pipeline.stats.estimate import Estimator

NANNYML_DIR = Path(__file__).resolve().parents[1] / ".tools" / "nannyml"  # `make bench-tools` installs it there


@dataclass(frozen=True)
class EstimationConfig:
    car_loan_chunk: int = 5_000  # NannyML's own examples chunk the car-loan data by 5,000 rows
    repeats: int = 5  # timings are the median of this many runs of each estimator
    streams: QualityConfig = field(default_factory=QualityConfig)  # section 4's streams and first champion

    @classmethod
    def quick(cls) -> EstimationConfig:
        return cls(repeats=1, streams=QualityConfig.quick())


@dataclass
class Case:
    """One data set: a labelled reference and equal-sized analysis chunks, as P(positive) and 0/1 labels."""

    name: str
    reference: tuple[np.ndarray, np.ndarray]
    chunks: list[tuple[np.ndarray, np.ndarray]]
    change_at: int | None = None  # the first drifted chunk (1-based), if any

    @property
    def realized(self) -> np.ndarray:
        return np.array([roc_auc_score(y, p) for p, y in self.chunks])

    @property
    def realized_accuracy(self) -> np.ndarray:
        return np.array([np.mean((p >= 0.5) == y) for p, y in self.chunks])


@dataclass
class Outcome:
    case: Case
    ours: np.ndarray
    ours_accuracy: np.ndarray
    theirs: np.ndarray
    ours_seconds: float
    theirs_seconds: float
    method: str
    theirs_calibrated: bool

    def error(self, values: np.ndarray, rows: slice = slice(None)) -> float:
        return float(np.mean(np.abs(values[rows] - self.case.realized[rows])))


def load_nannyml(folder: Path = NANNYML_DIR) -> ModuleType:
    """NannyML from the benchmark's own folder, telemetry off."""
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
    if folder.is_dir() and str(folder) not in sys.path:
        sys.path.append(str(folder))
    try:
        import nannyml
    except ImportError as err:
        raise RuntimeError(f"NannyML is not installed for the benchmark ({err}): run `make bench-tools`") from err
    return nannyml


def estimate_ours(case: Case) -> tuple[np.ndarray, np.ndarray, str]:
    estimator = Estimator.fit(*case.reference)
    estimates = [estimator.estimate(p) for p, _ in case.chunks]
    aucs = np.array([np.nan if e.roc_auc is None else e.roc_auc for e in estimates])
    return aucs, np.array([e.accuracy for e in estimates]), estimator.method


def estimate_theirs(nml: ModuleType, case: Case, frames: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[np.ndarray, bool]:
    reference, analysis = frames
    size = len(case.chunks[0][0])
    cbpe = nml.CBPE(
        y_pred_proba="proba",
        y_pred="pred",
        y_true="y",
        metrics=["roc_auc"],
        chunk_size=size,
        problem_type="classification_binary",
    )
    cbpe.fit(reference)
    result = cbpe.estimate(analysis).filter(period="analysis").to_df()
    starts = result[("chunk", "start_index")].to_numpy()
    if list(starts) != [i * size for i in range(len(case.chunks))]:
        raise RuntimeError(f"NannyML chunked {case.name} differently: starts {list(starts)}")
    return result[("roc_auc", "value")].to_numpy(dtype="float64"), bool(cbpe.needs_calibration)


def _frames(case: Case) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NannyML's input: a labelled reference frame and the chunks one after another, without labels."""

    def frame(p: np.ndarray, y: np.ndarray | None) -> pd.DataFrame:
        columns: dict[str, Any] = {"proba": p, "pred": (p >= 0.5).astype(int)}
        if y is not None:
            columns["y"] = y
        return pd.DataFrame(columns)

    analysis = np.concatenate([p for p, _ in case.chunks])
    return frame(*case.reference), frame(analysis, None)


def compare(nml: ModuleType, case: Case, repeats: int) -> Outcome:
    """Both estimators on one data set: one untimed warm-up each, then ``repeats`` rounds taking turns (so both
    share whatever else the machine is doing), the median time of each."""
    frames = _frames(case)
    runs: dict[str, Callable[[], Any]] = {
        "ours": lambda: estimate_ours(case),
        "theirs": lambda: estimate_theirs(nml, case, frames),
    }
    results = {name: run() for name, run in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - start)
    (ours, accuracy, method), (theirs, calibrated) = results["ours"], results["theirs"]
    ours_seconds, theirs_seconds = (float(statistics.median(times[name])) for name in runs)
    return Outcome(case, ours, accuracy, theirs, ours_seconds, theirs_seconds, method, calibrated)


def car_loan_case(nml: ModuleType, chunk: int) -> Case:
    """NannyML's synthetic car-loan data: 50,000 reference rows, 50,000 analysis rows with their labels."""
    reference, analysis, targets = nml.load_synthetic_car_loan_dataset()
    analysis = analysis.merge(targets, on="id")
    p, y = analysis["y_pred_proba"].to_numpy("float64"), analysis["repaid"].to_numpy("int64")
    chunks = [(p[i : i + chunk], y[i : i + chunk]) for i in range(0, len(p) - chunk + 1, chunk)]
    return Case(
        "NannyML car loan",
        (reference["y_pred_proba"].to_numpy("float64"), reference["repaid"].to_numpy("int64")),
        chunks,
    )


def stream_cases(config: QualityConfig, say: Say) -> tuple[list[Case], str]:
    """Section 4's streams scored by section 4's first champion. The estimator's reference is a fresh stable
    sample the champion was not trained on (its training rows would flatter its calibration)."""
    schema = load_schema()
    settings = Settings(_env_file=None, window_rows=config.window_rows)  # type: ignore[call-arg]
    population = Population.fit(load_sample_frame(), schema)
    rng = np.random.default_rng(config.seed)
    trained_on = _clean(population.sample_batch(config.reference_rows, rng), schema)
    simulator = Simulator(schema, settings)
    first, _ = simulator.retrain(trained_on, None)
    say(f"section 5: champion {simulator.chosen}, holdout ROC AUC {first.holdout_auc:.4f}")
    scorer = Scorer.trained(first.model, schema)
    held_out = _clean(population.sample_batch(config.reference_rows, np.random.default_rng(config.seed + 50)), schema)
    reference = (scorer.proba(held_out), labels_of(held_out, schema))
    cases = []
    for kind, drift_at, frames in drift_streams(population, config, schema):
        chunks = [(scorer.proba(frame), labels_of(frame, schema)) for frame in frames]
        name = "synth: stable" if kind is DriftKind.none else f"synth: {kind.value}"
        cases.append(Case(name, reference, chunks, drift_at))
    return cases, simulator.chosen


def run(config: EstimationConfig, say: Say) -> Section:
    nml = load_nannyml()
    say(f"section 5: NannyML {nml.__version__} from {NANNYML_DIR}")
    cases = [car_loan_case(nml, config.car_loan_chunk)]
    stream_list, chosen = stream_cases(config.streams, say)
    cases += stream_list
    outcomes = []
    for case in cases:
        outcome = compare(nml, case, config.repeats)
        say(
            f"{case.name:>18}: MAE ours {outcome.error(outcome.ours):.4f}, NannyML {outcome.error(outcome.theirs):.4f};"
            f" {seconds(outcome.ours_seconds)} vs {seconds(outcome.theirs_seconds)}"
        )
        outcomes.append(outcome)
    return _section(outcomes, config, chosen, nml.__version__)


def _split_error(outcome: Outcome) -> str:
    at = outcome.case.change_at
    if at is None:
        return "–"
    before, after = slice(0, at - 1), slice(at - 1, None)
    return f"{outcome.error(outcome.ours, before):.4f} / {outcome.error(outcome.ours, after):.4f}"


def _section(outcomes: list[Outcome], config: EstimationConfig, chosen: str, version: str) -> Section:
    table = Table(
        [
            "data set",
            "reference rows",
            "chunks × rows",
            "realized ROC AUC (range)",
            "MAE: ours",
            "NannyML CBPE",
            "largest |ours - NannyML|",
            "ours before / from the change",
            "calibration: ours",
            "NannyML",
            "time: ours",
            "NannyML",
            "speed-up",
            "accuracy MAE: ours",
        ]
    )
    for o in outcomes:
        realized = o.case.realized
        table.rows.append(
            [
                o.case.name,
                f"{len(o.case.reference[0]):,}",
                f"{len(o.case.chunks)} × {len(o.case.chunks[0][0]):,}",
                f"{realized.min():.3f}–{realized.max():.3f}",
                f"{o.error(o.ours):.4f}",
                f"{o.error(o.theirs):.4f}",
                f"{np.max(np.abs(o.ours - o.theirs)):.1e}",
                _split_error(o),
                o.method,
                "isotonic" if o.theirs_calibrated else "none",
                seconds(o.ours_seconds),
                seconds(o.theirs_seconds),
                ratio(o.theirs_seconds / o.ours_seconds),
                f"{float(np.mean(np.abs(o.ours_accuracy - o.case.realized_accuracy))):.4f}",
            ]
        )
    ours_all = np.concatenate([np.abs(o.ours - o.case.realized) for o in outcomes])
    theirs_all = np.concatenate([np.abs(o.theirs - o.case.realized) for o in outcomes])
    ours_time = sum(o.ours_seconds for o in outcomes)
    theirs_time = sum(o.theirs_seconds for o in outcomes)
    speedups = [o.theirs_seconds / o.ours_seconds for o in outcomes]
    worse = [o.case.name for o in outcomes if o.error(o.ours) > o.error(o.theirs) + 1e-4]
    mae_ours, mae_theirs = float(ours_all.mean()), float(theirs_all.mean())
    notes = [
        f"Over all {len(ours_all)} chunks: mean absolute error ours {mae_ours:.4f}, NannyML {mae_theirs:.4f}; "
        f"time ours {seconds(ours_time)}, NannyML {seconds(theirs_time)} ({ratio(theirs_time / ours_time)}; "
        f"the smallest speed-up on one data set {ratio(min(speedups))}).",
        "Both implement the same estimate, so they agree to NannyML's rounding where both calibrate (or both do "
        "not); where they differ it is the calibration decision (ours: 5-fold out-of-fold isotonic vs raw ECE; "
        "NannyML's: 10 random 10% splits, pooled) or NannyML's ordering of tied scores.",
        "Concept and label shift are the documented failure of any confidence-based estimate: P(label | score) is "
        "no longer the reference's, and the estimate, computed from the model's probabilities with the "
        "reference's calibration, does not see it (the concept stream's error from the change is the fall of "
        "its realized AUC). Only labels show these (`policy`'s performance drop and prior shift). Under prior "
        "and label shift the ranking holds, so the estimated AUC stays close, but the expected accuracy does "
        "not: the share of positives moved (the last column).",
    ]
    return Section(
        "5. Performance estimation without labels",
        f"""
Per chunk, ROC AUC estimated from the model's probabilities alone, against the realized ROC AUC on the chunk's
labels (sklearn), as mean absolute error; ours is `pipeline.stats.estimate` (`Estimator.fit` on the reference, then
`estimate` per chunk), the baseline NannyML {version}'s `CBPE` (`fit` on the same reference, `estimate` on the
same chunks, `chunk_size` equal to ours: each chunk's start row is checked), in the same process. Data sets:
NannyML's synthetic car-loan data set as it ships in the package ({config.car_loan_chunk:,}-row chunks), and
section 4's streams (covariate, concept, prior and label shift from batch {config.streams.drift_at} of
{config.streams.drift_batches}, a stable stream) scored by section 4's first champion ({chosen}); its estimator
reference is a fresh stable sample of {config.streams.reference_rows:,} rows it was not trained on. Time is
wall-clock, fit plus every chunk's estimate, median of {config.repeats} run(s) after one untimed warm-up, the
two estimators taking turns; NannyML's includes the work
it does beyond the estimate (sampling errors, thresholds on the reference's chunks). NannyML is installed in
the benchmark's own folder, not in the project's environment (`make bench-tools`), telemetry off.
""",
        tables=[("", table)],
        notes=notes,
        figures={
            "mae_ours": mae_ours,
            "mae_theirs": mae_theirs,
            "worse": worse,
            "speedup": theirs_time / ours_time,
            "min_speedup": min(speedups),
        },
    )
