"""Why the prediction moved: the share of a batch's prediction drift that each feature explains.

A column's own drift score answers "which inputs changed", not "which change moved the predictions": a column the
model ignores can drift a lot and move nothing, and a small shift in the model's most important feature moves
every prediction. This module asks the model itself, through its P(positive) alone (any ``predict_proba``, no
internals), one feature at a time:

1. a seeded sample of the batch, at most ``max_rows`` rows (the cost does not grow with the batch);
2. for each feature (all of them up to ``max_features``, else the ``max_features`` with the highest drift
   scores), the sample with that one column *carried back to the reference*, every other column untouched, is
   scored again;
3. the feature's ``prediction_shift`` is the prediction drift that column alone causes: the normed Wasserstein
   distance (the monitor's own prediction-drift score) between the sample's P(positive) and its P(positive) with
   that column carried back. Both are the same rows, so the sampling noise of the batch against the reference
   cancels, and a shift too small to stand out of that noise is still measured;
4. a feature's ``share`` is its shift over the sum of the features' shifts: the shares sum to 1, highest first.
   ``drift_drop`` is also kept: how much the sample's prediction drift against the reference falls when the
   column is carried back (what the shares would be made of in the simplest design; noisier for small shifts,
   ``docs/benchmarks.md`` section 10).

"Carried back" is the least change that gives the column the reference's distribution (an optimal transport),
computed on the whole of the rows given (the batch, not only the sample, so the sample's own noise does not move
a column that did not drift): a numerical column's finite values take the reference's values at the quantiles
they have in the batch (ties broken at random, ranks kept; missing values stay missing); a categorical column
moves only rows of the levels the batch has more of than the reference, each with the chance that brings the level
to the reference's share, to the levels it has fewer of, in proportion to the shortfall. A column that did not
drift barely changes, so its shift is about 0 rather than the noise of redrawing every value; its rows keep their
order within the column, so its ties to the other columns are kept as far as its new distribution allows.

Cost: ``(1 + features) * rows`` predictions (at most 101 x 2,000 = 202,000 at the defaults), in calls of the
model of at most ``CALL_ROWS`` rows, whatever the batch's size (``docs/benchmarks.md``, "Why it moved").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_ROWS = 2_000  # the batch's rows the attribution scores (a seeded sample)
MAX_FEATURES = 100  # the features tried: all up to this many, else this many with the highest drift scores
CALL_ROWS = 50_000  # the rows given to the model in one call (the copies of the sample, stacked)
METHOD = "transport"  # one column at a time carried back to the reference's distribution

Proba = Callable[[pd.DataFrame], Any]  # a frame's rows -> the model's P(positive) per row
Drift = Callable[[np.ndarray], float]  # a sample's P(positive) -> its prediction drift against the reference


@dataclass(frozen=True)
class FeatureShare:
    """One feature's part: the prediction drift it alone causes, its share of the features' sum, and the drop in the
    batch's prediction drift when it alone is carried back."""

    feature: str
    share: float
    drift_drop: float
    prediction_shift: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "share": round(self.share, 4),
            "prediction_shift": round(self.prediction_shift, 5),
            "drift_drop": round(self.drift_drop, 5),
        }


@dataclass(frozen=True)
class Attribution:
    """A batch's attribution: ``shares`` highest first (every feature tried, zero shares last)."""

    shares: tuple[FeatureShare, ...]
    prediction_drift: float  # the sample's own prediction drift against the reference
    rows: int  # the sample's rows
    batch_rows: int  # the rows it was drawn from
    features_tried: int
    method: str = METHOD

    def top(self, n: int = 5, floor: float = 0.0) -> list[FeatureShare]:
        """The ``n`` features with the highest shares, those with a share above ``floor`` only."""
        return [s for s in self.shares if s.share > floor][:n]

    def ranking(self) -> list[str]:
        return [s.feature for s in self.shares]

    def as_list(self, n: int | None = None) -> list[dict[str, Any]]:
        """The ``drift_attribution`` of a report record: features with their shares, highest first."""
        kept = self.shares if n is None else self.shares[:n]
        return [s.as_dict() for s in kept]

    def summary(self, n: int = 3) -> str:
        """One line: ``age 72%, pain 20%, ...``, or that no feature explains the drift."""
        top = self.top(n)
        if not top:
            return "no single feature explains the prediction drift"
        return ", ".join(f"{s.feature} {s.share:.0%}" for s in top)


def attribute(
    batch: pd.DataFrame,
    reference: pd.DataFrame,
    proba: Proba,
    drift: Drift,
    *,
    numerical: Sequence[str],
    categorical: Sequence[str] = (),
    column_scores: Mapping[str, float] | None = None,
    max_rows: int = MAX_ROWS,
    max_features: int = MAX_FEATURES,
    seed: int = 0,
    norm: float = 1.0,
) -> Attribution:
    """The share of ``batch``'s prediction drift each feature explains (module docstring), for the model whose
    P(positive) ``proba`` gives and the reference ``drift`` measures against. ``column_scores`` (the batch's
    drift scores) choose the features tried when there are more than ``max_features``; ``norm`` scales the
    prediction shifts as the monitor's score does (the reference's standard deviation of P(positive))."""
    rng = np.random.default_rng(seed)
    sample = _sample(batch, max_rows, rng)
    features = _features_tried(numerical, categorical, column_scores, max_features)
    kinds = {name: "num" for name in numerical} | {name: "cat" for name in categorical}
    per_call = max(1, CALL_ROWS // max(len(sample), 1))
    scored: list[np.ndarray] = []
    copies = [sample]
    for name in features:
        moved = sample.copy()
        if kinds[name] == "num":
            moved[name] = transport_numeric(sample[name], reference[name], rng, batch[name])
        else:
            moved[name] = transport_categorical(sample[name], reference[name], rng, batch[name])
        copies.append(moved)
        if len(copies) >= per_call:
            scored.extend(_score(proba, copies))
            copies = []
    scored.extend(_score(proba, copies))
    base = drift(scored[0])
    drops = [base - drift(row) for row in scored[1:]]
    shifts = [paired_drift(scored[0], row, norm) for row in scored[1:]]
    return _shares(features, shifts, drops, base, rows=len(sample), batch_rows=len(batch))


def paired_drift(before: np.ndarray, after: np.ndarray, norm: float = 1.0) -> float:
    """The normed Wasserstein distance between two scorings of the same rows (rows finite in both)."""
    finite = np.isfinite(before) & np.isfinite(after)
    if not finite.any():
        return 0.0
    return float(np.mean(np.abs(np.sort(before[finite]) - np.sort(after[finite]))) / norm)


def _score(proba: Proba, copies: list[pd.DataFrame]) -> list[np.ndarray]:
    """Each copy's P(positive), from one call of the model on the copies stacked."""
    if not copies:
        return []
    scores = np.asarray(proba(pd.concat(copies, ignore_index=True)), dtype=np.float64)
    return list(scores.reshape(len(copies), -1))


def _sample(batch: pd.DataFrame, max_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(batch) <= max_rows:
        return batch.reset_index(drop=True)
    picked = np.sort(rng.choice(len(batch), size=max_rows, replace=False))
    return batch.iloc[picked].reset_index(drop=True)


def _features_tried(
    numerical: Sequence[str], categorical: Sequence[str], scores: Mapping[str, float] | None, limit: int
) -> list[str]:
    names = [*numerical, *categorical]
    if len(names) <= limit:
        return names
    by_score = scores or {}

    def key(name: str) -> tuple[float, str]:
        score = by_score.get(name, float("nan"))
        return (-score if np.isfinite(score) else np.inf, name)

    return sorted(names, key=key)[:limit]


def _shares(
    features: Sequence[str],
    shifts: Sequence[float],
    drops: Sequence[float],
    base: float,
    *,
    rows: int,
    batch_rows: int,
) -> Attribution:
    moved = [max(float(v), 0.0) if np.isfinite(v) else 0.0 for v in shifts]
    total = sum(moved)
    parts = [
        FeatureShare(name, shift / total if total > 0 else 0.0, float(drop) if np.isfinite(drop) else 0.0, shift)
        for name, shift, drop in zip(features, moved, drops, strict=True)
    ]
    parts.sort(key=lambda s: (-s.share, -s.drift_drop, s.feature))
    return Attribution(tuple(parts), float(base), rows, batch_rows, len(features))


def transport_numeric(
    column: pd.Series, reference: pd.Series, rng: np.random.Generator, within: pd.Series | None = None
) -> np.ndarray:
    """The column's finite values carried to the reference's at the same quantiles of ``within`` (the batch the
    column's rows are drawn from; default the column itself), ties broken at random: the monotone map, so ranks
    are kept. Missing and infinite values stay; a reference without finite values leaves the column as it is."""
    values = _numbers(column)
    ref = _numbers(reference)
    ref = np.sort(ref[np.isfinite(ref)])
    base = values if within is None else _numbers(within)
    base = np.sort(base[np.isfinite(base)])
    out = values.copy()
    finite = np.isfinite(values)
    if not finite.any() or ref.size == 0 or base.size == 0:
        return out
    kept = values[finite]
    low = np.searchsorted(base, kept, side="left")
    high = np.searchsorted(base, kept, side="right")
    quantile = (low + rng.random(kept.size) * (high - low)) / base.size
    out[finite] = ref[np.minimum((quantile * ref.size).astype(np.int64), ref.size - 1)]
    return out


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def transport_categorical(
    column: pd.Series, reference: pd.Series, rng: np.random.Generator, within: pd.Series | None = None
) -> np.ndarray:
    """Rows moved at random from the levels ``within`` (the batch the rows are drawn from; default the column
    itself) has more of than the reference, each with the chance that takes its level down to the reference's
    share, to the levels it has fewer of (in proportion to the shortfall). Missing values stay."""
    values = column.astype(object).to_numpy(copy=True)
    present = ~pd.isna(values)
    base = (column if within is None else within).dropna().astype(object)
    ref = reference.dropna().astype(object)
    if not present.any() or ref.empty or base.empty:
        return values
    target = ref.value_counts(normalize=True)
    have = base.value_counts(normalize=True)
    levels = target.index.union(have.index)
    gap = have.reindex(levels, fill_value=0.0) - target.reindex(levels, fill_value=0.0)
    short = gap[gap < 0]
    if short.empty:
        return values
    chance = pd.Series(values).map((gap[gap > 0] / have.reindex(gap[gap > 0].index)).to_dict())
    moved = np.flatnonzero(present & (rng.random(values.size) < chance.fillna(0.0).to_numpy(dtype=np.float64)))
    if moved.size:
        weights = (-short / -short.sum()).to_numpy(dtype=np.float64)
        values[moved] = np.asarray(short.index, dtype=object)[rng.choice(len(short), size=moved.size, p=weights)]
    return values


def prediction_drift_of(profile: Any) -> Drift:
    """The monitor's prediction-drift score against a ``ReferenceProfile``'s P(positive)."""
    predictions = profile.prediction_profile

    def drift(proba: np.ndarray) -> float:
        values = np.asarray(proba, dtype=np.float64)
        return float(predictions.score(np.sort(values[np.isfinite(values)])))

    return drift


def attribute_to_profile(
    batch: pd.DataFrame,
    profile: Any,
    proba: Proba,
    column_scores: Mapping[str, float] | None = None,
    *,
    max_rows: int = MAX_ROWS,
    max_features: int = MAX_FEATURES,
    seed: int = 0,
) -> Attribution:
    """``attribute`` against a ``ReferenceProfile`` (``pipeline.stats.drift``): its rows, its schema's features
    and its prediction-drift score, as the monitor and ``pipeline explain`` call it."""
    reference, _ = profile.reference_data()
    schema = profile.schema
    return attribute(
        batch,
        reference,
        proba,
        prediction_drift_of(profile),
        numerical=schema.numerical,
        categorical=schema.categorical,
        column_scores=column_scores,
        max_rows=max_rows,
        max_features=max_features,
        seed=seed,
        norm=float(profile.prediction_profile.norm),
    )
