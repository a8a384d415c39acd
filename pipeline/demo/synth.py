"""Synthetic triage visits with realistic marginals and injectable drift.

The population is fitted to a real frame (by default the 100 real visits shipped with the package):
per-column missingness, value ranges, level frequencies. Labels come from a fixed clinical "concept"
(a logistic model over acuity, age, history, vitals and labs), calibrated to about a third admitted.

Drift kinds, applied from a given batch on:
- ``covariate``: older, more acute patients, more ambulance arrivals, more labs ordered; the concept is
  unchanged, so labels follow the inputs.
- ``concept``: the same inputs, a new relation between inputs and admission.
- ``prior``: the admission rate rises to about 60%, with the inputs of each class unchanged (so the mix of
  inputs moves too);
- ``label``: the admission rate rises to about 60% while the inputs do not move at all (the same visits, a new
  referral pattern): every probability the champion serves is now too low, its ranking still right.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema

if TYPE_CHECKING:
    from pipeline.app.sources import BatchSource

LAB_SUFFIXES = ("_last", "_max", "_median", "_min")
TARGET_ADMIT_RATE = 0.34
PRIOR_SHIFT_ADMIT_RATE = 0.6


class DriftKind(StrEnum):
    none = "none"
    covariate = "covariate"
    concept = "concept"
    prior = "prior"
    label = "label"


@dataclass
class ColumnModel:
    kind: str  # flag | count | ordinal | continuous | lognormal
    missing: float
    params: dict[str, float] = field(default_factory=dict)
    levels: tuple[float, ...] = ()
    probs: tuple[float, ...] = ()


@dataclass
class Population:
    """Per-column generative models fitted to a real frame."""

    schema: FeatureSchema
    numeric: dict[str, ColumnModel]
    categorical: dict[str, tuple[tuple[str, ...], tuple[float, ...], float]]
    lab_groups: dict[str, tuple[str, ...]]
    intercepts: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pd.DataFrame, schema: FeatureSchema) -> Population:
        numeric = {name: _fit_numeric(name, frame[name].astype("float64")) for name in schema.numerical}
        categorical = {}
        for name in schema.categorical:
            counts = frame[name].dropna().astype(str).value_counts()
            levels = tuple(counts.index)
            weights = counts.to_numpy(dtype=float) + 0.5
            categorical[name] = (levels, tuple(weights / weights.sum()), float(frame[name].isna().mean()))
        groups: dict[str, list[str]] = {}
        for name in schema.numerical:
            for suffix in LAB_SUFFIXES:
                if name.endswith(suffix):
                    groups.setdefault(name[: -len(suffix)], []).append(name)
        lab_groups = {prefix: tuple(cols) for prefix, cols in groups.items() if len(cols) == 4}
        population = cls(schema, numeric, categorical, lab_groups)
        for concept in ("base", "shifted"):
            population.intercepts[concept] = population._calibrate(concept, TARGET_ADMIT_RATE)
        population.intercepts["label"] = population._calibrate("label", PRIOR_SHIFT_ADMIT_RATE)
        return population

    def sample_features(self, rows: int, rng: np.random.Generator, covariate_shift: bool = False) -> pd.DataFrame:
        """Draw ``rows`` visits (features only)."""
        data: dict[str, np.ndarray] = {}
        lab_columns = {col for cols in self.lab_groups.values() for col in cols}
        for name, model in self.numeric.items():
            if name not in lab_columns:
                data[name] = _draw(model, rows, rng)
        missing_scale = 0.6 if covariate_shift else 1.0
        for prefix, cols in self.lab_groups.items():
            data.update(self._draw_labs(prefix, cols, rows, rng, missing_scale))
        vitals = [name for name in self.schema.numerical if name.startswith("triage_vital_")]
        if vitals:
            rate = float(np.mean([self.numeric[v].missing for v in vitals]))
            absent = rng.random(rows) < rate
            for name in vitals:
                data[name] = np.where(absent, np.nan, _fill(data[name], self.numeric[name], rng))
        frame = pd.DataFrame(data)
        for name, (levels, probs, missing) in self.categorical.items():
            p = np.array(probs)
            if covariate_shift and name == "arrivalmode" and "ambulance" in levels:
                p[levels.index("ambulance")] *= 2.0
                p = p / p.sum()
            values = rng.choice(np.array(levels, dtype=object), size=rows, p=p)
            values[rng.random(rows) < missing] = np.nan
            frame[name] = values
        if covariate_shift:
            _shift_covariates(frame, rng)
        return frame[list(self.schema.features)]

    def _draw_labs(
        self, prefix: str, cols: tuple[str, ...], rows: int, rng: np.random.Generator, missing_scale: float
    ) -> dict[str, np.ndarray]:
        by_suffix = {suffix: f"{prefix}{suffix}" for suffix in LAB_SUFFIXES}
        median_model = self.numeric[by_suffix["_median"]]
        centre = _fill(np.full(rows, np.nan), median_model, rng)
        low = centre * (1 - np.abs(rng.normal(0, 0.08, rows)))
        high = centre * (1 + np.abs(rng.normal(0, 0.12, rows)))
        last = low + (high - low) * rng.random(rows)
        drawn = rng.random(rows) >= median_model.missing * missing_scale
        extra_last = max(0.0, self.numeric[by_suffix["_last"]].missing - median_model.missing)
        last_drawn = drawn & (rng.random(rows) >= extra_last / max(1e-9, 1 - median_model.missing))
        return {
            by_suffix["_median"]: np.where(drawn, centre, np.nan),
            by_suffix["_min"]: np.where(drawn, low, np.nan),
            by_suffix["_max"]: np.where(drawn, high, np.nan),
            by_suffix["_last"]: np.where(last_drawn, last, np.nan),
        }

    def logit(self, frame: pd.DataFrame, concept: str) -> np.ndarray:
        z = _concept_score(frame, concept)
        return z + self.intercepts.get(concept, 0.0)

    def label(self, frame: pd.DataFrame, rng: np.random.Generator, concept: str = "base") -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.logit(frame, concept)))
        admit = rng.random(len(frame)) < p
        return np.where(admit, self.schema.positive, self.schema.negative)

    def _calibrate(self, concept: str, target_rate: float) -> float:
        rng = np.random.default_rng(12345)
        frame = self.sample_features(20_000, rng)
        z = _concept_score(frame, concept)
        lo, hi = -15.0, 15.0
        for _ in range(60):
            mid = (lo + hi) / 2
            rate = float(np.mean(1 / (1 + np.exp(-(z + mid)))))
            lo, hi = (mid, hi) if rate < target_rate else (lo, mid)
        return (lo + hi) / 2

    def sample_batch(self, rows: int, rng: np.random.Generator, drift: DriftKind = DriftKind.none) -> pd.DataFrame:
        """Draw a labelled batch, with the given drift applied."""
        if drift is DriftKind.prior:
            pool = self.sample_features(rows * 4, rng)
            labels = self.label(pool, rng)
            admits = np.flatnonzero(labels == self.schema.positive)
            others = np.flatnonzero(labels != self.schema.positive)
            n_admit = min(len(admits), int(round(rows * PRIOR_SHIFT_ADMIT_RATE)))
            chosen = np.concatenate(
                [rng.choice(admits, n_admit, replace=False), rng.choice(others, rows - n_admit, replace=False)]
            )
            rng.shuffle(chosen)
            frame = pool.iloc[chosen].reset_index(drop=True)
            frame[self.schema.target] = labels[chosen]
            return frame
        frame = self.sample_features(rows, rng, covariate_shift=drift is DriftKind.covariate)
        concept = {DriftKind.concept: "shifted", DriftKind.label: "label"}.get(drift, "base")
        frame[self.schema.target] = self.label(frame, rng, concept)
        return frame


def _fit_numeric(name: str, values: pd.Series) -> ColumnModel:
    missing = float(values.isna().mean())
    present = values.dropna().to_numpy()
    if present.size == 0:
        return ColumnModel("flag", missing, {"p": 0.004})
    uniques = np.unique(present)
    integer = bool(np.all(np.equal(np.mod(present, 1), 0)))
    if name == "esi":
        levels = np.arange(1, 6, dtype=float)
        counts = np.array([np.sum(present == level) for level in levels]) + 0.5
        return ColumnModel("ordinal", missing, levels=tuple(levels), probs=tuple(counts / counts.sum()))
    if set(uniques.tolist()) <= {0.0, 1.0}:
        return ColumnModel("flag", missing, {"p": max(float(present.mean()), 0.004)})
    if integer and present.min() >= 0 and present.mean() < 15:
        return ColumnModel(
            "count",
            missing,
            {"mean": float(present.mean()), "var": float(present.var()), "hi": 2 * float(present.max())},
        )
    lo, hi = float(present.min()), float(present.max())
    span = hi - lo if hi > lo else abs(hi) + 1.0
    bounds = {"lo": max(0.0, lo - 0.25 * span) if lo >= 0 else lo - 0.25 * span, "hi": hi + 0.25 * span}
    positive = present[present > 0]
    if positive.size >= 3 and np.mean(present) > 1.3 * np.median(present):
        logs = np.log(positive)
        return ColumnModel(
            "lognormal", missing, {"mu": float(logs.mean()), "sigma": float(max(logs.std(), 0.1)), **bounds}
        )
    std = float(present.std()) if present.size > 2 and present.std() > 0 else 0.1 * abs(float(present.mean())) + 0.01
    return ColumnModel(
        "continuous", missing, {"mean": float(present.mean()), "std": std, "integer": float(integer), **bounds}
    )


def _fill(base: np.ndarray, model: ColumnModel, rng: np.random.Generator) -> np.ndarray:
    """Values for every row, ignoring missingness (used where missingness is drawn per group)."""
    return _values(model, len(base), rng)


def _values(model: ColumnModel, rows: int, rng: np.random.Generator) -> np.ndarray:
    p = model.params
    if model.kind == "flag":
        return (rng.random(rows) < p["p"]).astype(float)
    if model.kind == "ordinal":
        return rng.choice(np.array(model.levels), size=rows, p=np.array(model.probs))
    if model.kind == "count":
        mean, var = max(p["mean"], 1e-3), max(p["var"], 1e-3)
        if var > mean:
            size = mean**2 / (var - mean)
            counts = rng.negative_binomial(size, size / (size + mean), rows)
        else:
            counts = rng.poisson(mean, rows)
        return np.minimum(counts, p.get("hi", np.inf)).astype(float)
    if model.kind == "lognormal":
        values = rng.lognormal(p["mu"], p["sigma"], rows)
    else:
        values = rng.normal(p["mean"], p["std"], rows)
    values = np.clip(values, p["lo"], p["hi"])
    return np.round(values) if p.get("integer") else np.round(values, 3)


def _draw(model: ColumnModel, rows: int, rng: np.random.Generator) -> np.ndarray:
    values = _values(model, rows, rng)
    values[rng.random(rows) < model.missing] = np.nan
    return values


def _shift_covariates(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    """Older, more acute patients with faster hearts: the covariate shift."""
    if "age" in frame:
        frame["age"] = np.clip(frame["age"] + rng.normal(14, 4, len(frame)), 18, 105).round()
    if "esi" in frame:
        acute = rng.random(len(frame)) < 0.45
        frame["esi"] = np.where(acute, np.clip(frame["esi"] - 1, 1, 5), frame["esi"])
    if "triage_vital_hr" in frame:
        frame["triage_vital_hr"] = frame["triage_vital_hr"] + 10
    if "n_admissions" in frame:
        frame["n_admissions"] = frame["n_admissions"] + rng.poisson(1.0, len(frame))


def _col(frame: pd.DataFrame, name: str, default: float = 0.0) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), default)
    return frame[name].astype("float64").fillna(default).to_numpy()


def _flag(frame: pd.DataFrame, name: str, level: str) -> np.ndarray:
    if name not in frame:
        return np.zeros(len(frame))
    return (frame[name].astype(str) == level).to_numpy(dtype=float)


def _present(frame: pd.DataFrame, pattern: str) -> np.ndarray:
    cols = [c for c in frame.columns if re.match(pattern, str(c))]
    if not cols:
        return np.zeros(len(frame))
    return frame[cols].notna().any(axis=1).to_numpy(dtype=float)


def _concept_score(frame: pd.DataFrame, concept: str) -> np.ndarray:
    """The admission log-odds without intercept. ``base`` is the usual concept (``label`` too: only its
    intercept differs); ``shifted`` a new policy."""
    esi = _col(frame, "esi", 3)
    age = _col(frame, "age", 50)
    admissions = np.minimum(_col(frame, "n_admissions"), 6)
    hr = _col(frame, "triage_vital_hr", 85)
    o2 = _col(frame, "triage_vital_o2", 98)
    wbc = _col(frame, "wbc_last", 8)
    troponin = np.maximum(_col(frame, "troponini(poc)_max"), _col(frame, "troponint_max"))
    albumin = _col(frame, "albumin_min", 4)
    ambulance = _flag(frame, "arrivalmode", "ambulance")
    previous_admit = _flag(frame, "previousdispo", "admit")
    labs = _present(frame, r"^(platelets|wbc|rbc)_")
    visits = np.minimum(_col(frame, "n_edvisits"), 20)
    if concept == "shifted":
        return 0.9 * (esi - 3) - 0.04 * (age - 50) + 2.0 * labs - 1.0 * previous_admit + 0.15 * visits - 0.8 * ambulance
    return (
        -1.2 * (esi - 3)
        + 0.035 * (age - 50)
        + 0.35 * admissions
        + 0.6 * ambulance
        + 0.8 * previous_admit
        + 0.05 * np.maximum(hr - 100, 0)
        + 0.2 * np.maximum(95 - o2, 0)
        + 0.7 * (wbc > 11)
        + 1.5 * (troponin > 0.04)
        + 0.9 * (albumin < 3.4)
        + 0.6 * labs
    )


def load_sample_frame() -> pd.DataFrame:
    """The 100 real visits shipped with the package (schema columns and target only)."""
    with resources.files("pipeline.demo").joinpath("triage_sample.csv").open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle)


def generate_stream(
    population: Population,
    *,
    rows: int,
    batches: int,
    drift_at: int | None,
    kind: DriftKind,
    seed: int,
) -> list[pd.DataFrame]:
    """Batches 1..K; from batch ``drift_at`` on, the given drift is applied."""
    rng = np.random.default_rng(seed)
    stream = []
    for index in range(1, batches + 1):
        drifted = drift_at is not None and kind is not DriftKind.none and index >= drift_at
        stream.append(population.sample_batch(rows, rng, kind if drifted else DriftKind.none))
    return stream


def simulated_sources(
    reference: pd.DataFrame,
    schema: FeatureSchema,
    *,
    batches: int,
    rows: int,
    drift_at: int | None,
    kind: DriftKind,
    seed: int,
) -> list[BatchSource]:
    """A stream sampled from a population fitted to the reference data set, drift injected from ``drift_at``: the
    monitor's batches when it is given neither files nor an inbox."""
    from pipeline.app.sources import BatchSource
    from pipeline.io.data import validate_frame

    population = Population.fit(reference, schema)
    frames = generate_stream(population, rows=rows, batches=batches, drift_at=drift_at, kind=kind, seed=seed)
    label = f"drift={kind.value}@{drift_at}" if drift_at and kind is not DriftKind.none else "stable"
    # each batch recorded as its name: a rerun of the same stream recognises the batches it recorded
    names = [f"simulated:{i:03d}:{label}" for i in range(1, len(frames) + 1)]
    return [
        BatchSource(name, functools.partial(validate_frame, frame, schema, name))
        for name, frame in zip(names, frames, strict=True)
    ]
