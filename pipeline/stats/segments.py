"""Per-segment monitoring: each segment of a batch (``FeatureSchema.segments``) judged as a small batch of its own,
and the change of the batch's mean P(positive) split into a change of the segments' mix and changes within them.

Per batch, segment column and value with at least ``MIN_ROWS`` rows:

- **share** of the batch's rows (beside its share of the reference's);
- **prediction drift**: the normed Wasserstein distance (normed by the whole reference's spread of P(positive), as
  the batch's score) between the segment's P(positive) and the reference segment's. Its p-value comes from the
  segment's own noise band: resamples of the reference segment's P(positive) at the effective size
  ``n * N / (n + N)`` of the two segments (``pipeline.stats.noise``, the column rule), so a segment of 100 rows is
  held to the noise of 100 rows, not of the batch;
- **realized ROC AUC** with its standard error (Hanley-McNeil), when the segment's labels hold both classes;
  judged (``policy.auc_test``) against the reference segment's own AUC when the reference has labels, with both
  sides' noise;
- **estimated ROC AUC**: the champion's estimator (fitted on the reference) on the segment's P(positive) alone:
  it never sees the batch's labels;
- **positive rate** and mean P(positive).

**Alarms.** A segment alarms under the batch's rules: its prediction drift at or above ``drift_threshold`` and
beyond chance, or its realized AUC below the reference segment's by more than ``auc_tolerance`` and beyond chance.
With k segments tested, chance is controlled across them: Benjamini-Hochberg at ``false_alarm_rate`` over the
segments' p-values, one family per rule. Under no change at all, the chance that any segment of the batch
alarms on a rule is then at most the rate (1% by default) as far as the p-values are exact (the bootstrap's are
approximate), at every segment's size; on either rule, at most twice the rate. Measured on 600 stable batches of
500 rows (segments of about 100 rows): 1.3% of batches with a segment's drift alarm, 0.8% with an AUC alarm, the
drift p-value at or below 1% for 1.03% of segments (``tests/unit/stats/test_segments.py``'s world).

**Mix or within.** With w the segments' shares and m their mean P(positive), 0 the reference and 1 the batch,
``m1 - m0 = sum (w1 - w0) m0 [mix] + sum w1 (m1_s - m0_s) [within]`` (a segment new to the batch counts with the
reference's overall mean). The mix's p-value is the chi-square test of the two samples' segment counts (both
sides' noise); the within part's, a z test with the segments' variances of P(positive) on both sides. ``moved``
names the parts beyond chance at the rate: a batch whose mix moved while no segment changed says ``mix``.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.domain import policy
from pipeline.domain.policy_types import Rules
from pipeline.domain.schema import SegmentSpec, segment_name
from pipeline.stats.column_profiles import NumericProfile
from pipeline.stats.noise import benjamini_hochberg, effective_rows, numeric_tail

MIN_ROWS = 100  # a segment with fewer rows in the batch (or the reference) is counted in the mix, not judged
MISSING = "(missing)"  # the segment of rows without a value


def segment_values(spec: SegmentSpec, column: pd.Series) -> np.ndarray:
    """Each row's segment: a categorical column's value as text, a numerical one's bin name; ``MISSING`` when
    the row has no value."""
    if spec.bins:
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        names = np.array(spec.bin_names(), dtype=object)
        found = names[np.searchsorted(np.asarray(spec.bins), np.nan_to_num(numbers, nan=0.0), side="right")]
        return np.where(np.isfinite(numbers), found, MISSING)
    return np.where(column.isna().to_numpy(), MISSING, column.astype(str).to_numpy(dtype=object))


@dataclass(frozen=True)
class Side:
    """One side's (reference or batch) rows of one segment: P(positive), sorted, and 0/1 labels or None."""

    proba: np.ndarray
    labels: np.ndarray | None

    @property
    def rows(self) -> int:
        return int(self.proba.size)

    def auc(self) -> tuple[float, int, int] | None:
        """(ROC AUC, positives, negatives), or None without both classes."""
        if self.labels is None:
            return None
        positives = int(self.labels.sum())
        negatives = self.labels.size - positives
        if positives == 0 or negatives == 0:
            return None
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(self.labels, self.proba)), positives, negatives


def split(spec: SegmentSpec, frame: pd.DataFrame, proba: np.ndarray, labels: np.ndarray | None) -> dict[str, Side]:
    """The rows of each segment of ``spec`` (P(positive) sorted with the labels kept in step)."""
    values = segment_values(spec, frame[spec.column])
    proba = np.asarray(proba, dtype=np.float64)
    found = {}
    for name in pd.unique(values):
        rows = values == name
        order = np.argsort(proba[rows], kind="stable")
        found[str(name)] = Side(proba[rows][order], None if labels is None else labels[rows][order])
    return found


@dataclass(frozen=True)
class SegmentMetrics:
    """One segment of one batch."""

    column: str
    value: str
    rows: int
    share: float
    reference_share: float
    mean_prediction: float
    reference_mean_prediction: float
    prediction_drift: float
    prediction_drift_p: float
    roc_auc: float | None = None
    roc_auc_stderr: float | None = None
    reference_roc_auc: float | None = None
    roc_auc_p: float | None = None
    estimated_roc_auc: float | None = None
    positive_rate: float | None = None
    drifted: bool = False
    auc_dropped: bool = False

    @property
    def alarmed(self) -> bool:
        return self.drifted or self.auc_dropped

    @property
    def name(self) -> str:
        return segment_name(self.column, self.value)

    def reason(self) -> str:
        parts = []
        if self.drifted:
            parts.append(f"prediction drift {self.prediction_drift:.3f} (p={self.prediction_drift_p:.2g})")
        if self.auc_dropped and self.roc_auc is not None and self.reference_roc_auc is not None:
            parts.append(f"ROC AUC {self.roc_auc:.3f} vs {self.reference_roc_auc:.3f} (p={self.roc_auc_p:.2g})")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        out = {k: _rounded(v) for k, v in dataclasses.asdict(self).items()}
        return {**out, "alarmed": self.alarmed}


@dataclass(frozen=True)
class Decomposition:
    """The change of one segment column's batch mean P(positive) against the reference: mix and within parts."""

    column: str
    change: float
    mix: float
    within: float
    mix_p: float
    within_p: float
    moved: str  # "mix", "within", "mix and within" or "none": the parts beyond chance

    def as_dict(self) -> dict[str, Any]:
        return {k: _rounded(v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class SegmentReport:
    """A batch's segments (judged ones only) and one decomposition per segment column."""

    segments: tuple[SegmentMetrics, ...]
    decompositions: tuple[Decomposition, ...]

    def alarmed(self) -> list[SegmentMetrics]:
        return [s for s in self.segments if s.alarmed]

    def worst(self, n: int = 3) -> list[SegmentMetrics]:
        """The ``n`` segments most beyond chance: alarmed first, then by their smallest p-value."""

        def key(s: SegmentMetrics) -> tuple[bool, float]:
            ps = [p for p in (s.prediction_drift_p, s.roc_auc_p) if p is not None and math.isfinite(p)]
            return (not s.alarmed, min(ps, default=1.0))

        return sorted(self.segments, key=key)[:n]

    def as_dict(self) -> dict[str, Any]:
        return {
            "segments": [s.as_dict() for s in self.segments],
            "decomposition": [d.as_dict() for d in self.decompositions],
            "alarmed": [s.name for s in self.alarmed()],
            "min_rows": MIN_ROWS,
        }

    def summary(self) -> str:
        alarmed = self.alarmed()
        moved = [f"{d.column}: {d.moved}" for d in self.decompositions if d.moved != "none"]
        head = ", ".join(f"{s.name} ({s.reason()})" for s in alarmed) or "no segment alarmed"
        return head + (f"; mean P(positive) moved by {', '.join(moved)}" if moved else "")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 5) if math.isfinite(value) else None
    return value


def measure_segments(
    specs: Sequence[SegmentSpec],
    batch: tuple[pd.DataFrame, np.ndarray, np.ndarray | None],
    reference: tuple[pd.DataFrame, np.ndarray, np.ndarray | None],
    rules: Rules,
    *,
    norm: float,
    estimator: Any = None,
) -> SegmentReport:
    """The batch's segments against the reference's: each (frame, P(positive), 0/1 labels or None). ``norm``: the
    whole reference's spread of P(positive) (the batch's drift score's); ``estimator``: the champion's
    label-free estimator (``pipeline.stats.estimate.Estimator``), or None."""
    found: list[SegmentMetrics] = []
    parts: list[Decomposition] = []
    for spec in specs:
        now, before = split(spec, *batch), split(spec, *reference)
        for value in sorted(now):
            if now[value].rows >= MIN_ROWS and before.get(value, _EMPTY).rows >= MIN_ROWS:
                found.append(_segment(spec.column, value, now, before, rules, norm, estimator))
        parts.append(decompose(spec.column, now, before, rules.false_alarm_rate))
    return SegmentReport(tuple(_judged(found, rules)), tuple(parts))


_EMPTY = Side(np.empty(0), None)


def _segment(
    column: str, value: str, now: dict[str, Side], before: dict[str, Side], rules: Rules, norm: float, estimator: Any
) -> SegmentMetrics:
    side, ref = now[value], before[value]
    n, big_n = sum(s.rows for s in now.values()), sum(s.rows for s in before.values())
    profile = dataclasses.replace(NumericProfile.of(ref.proba), norm=norm)
    score = profile.score(side.proba)
    seed = [zlib.crc32(f"{column}={value}".encode()), side.rows]  # the same draws in every run
    tail = numeric_tail(profile, effective_rows(side.rows, ref.rows), side.rows, seed)
    metrics = SegmentMetrics(
        column,
        value,
        side.rows,
        side.rows / n,
        ref.rows / big_n,
        float(side.proba.mean()),
        float(ref.proba.mean()),
        score,
        math.nan if tail is None else tail.p_value(score),
        positive_rate=None if side.labels is None else float(side.labels.mean()),
        estimated_roc_auc=None if estimator is None else estimator.estimate(side.proba).roc_auc,
    )
    return _with_auc(metrics, side, ref, rules)


def _with_auc(metrics: SegmentMetrics, side: Side, ref: Side, rules: Rules) -> SegmentMetrics:
    now, before = side.auc(), ref.auc()
    if now is None or side.rows < rules.min_rows_for_auc:
        return metrics
    auc, positives, negatives = now
    stderr = policy.auc_stderr(auc, positives, negatives)
    metrics = dataclasses.replace(metrics, roc_auc=auc, roc_auc_stderr=stderr)
    if before is None:
        return metrics
    test = policy.auc_test(auc, before[0], positives, negatives, rules, holdout_counts=before[1:])
    from scipy.stats import norm as normal

    p = float(normal.sf(test.z)) if math.isfinite(test.z) else 1.0
    return dataclasses.replace(metrics, reference_roc_auc=before[0], roc_auc_p=p)


def _judged(found: list[SegmentMetrics], rules: Rules) -> list[SegmentMetrics]:
    """The alarms, Benjamini-Hochberg at the rate over the segments' p-values (one family per rule)."""
    rate = rules.false_alarm_rate
    drift_ok = benjamini_hochberg({s.name: s.prediction_drift_p for s in found}, rate)
    auc_ok = benjamini_hochberg({s.name: s.roc_auc_p for s in found if s.roc_auc_p is not None}, rate)
    out = []
    for s in found:
        drifted = s.name in drift_ok and s.prediction_drift >= rules.drift_threshold
        dropped = (
            s.name in auc_ok
            and s.roc_auc is not None
            and s.reference_roc_auc is not None
            and s.reference_roc_auc - s.roc_auc > rules.auc_tolerance
        )
        out.append(dataclasses.replace(s, drifted=drifted, auc_dropped=dropped))
    return out


def decompose(column: str, now: dict[str, Side], before: dict[str, Side], rate: float) -> Decomposition:
    """The change of the mean P(positive) split into mix and within parts (module docstring), with p-values."""
    names = sorted(set(now) | set(before))
    n1 = np.array([now.get(k, _EMPTY).rows for k in names], dtype=np.float64)
    n0 = np.array([before.get(k, _EMPTY).rows for k in names], dtype=np.float64)
    if n1.sum() == 0 or n0.sum() == 0:
        return Decomposition(column, math.nan, math.nan, math.nan, math.nan, math.nan, "none")
    w1, w0 = n1 / n1.sum(), n0 / n0.sum()
    overall = float(np.concatenate([s.proba for s in before.values()]).mean())
    m1, v1 = _moments(now, names, overall)
    m0, v0 = _moments(before, names, overall)
    mix = float(np.sum((w1 - w0) * m0))
    within = float(np.sum(w1 * (m1 - m0)))
    seen = n0 > 0
    variance = float(np.sum(w1[seen] ** 2 * (v1[seen] / np.maximum(n1[seen], 1) + v0[seen] / n0[seen])))
    from scipy.stats import chi2_contingency, norm

    table = np.vstack([n0, n1])[:, (n0 + n1) > 0]
    mix_p = float(chi2_contingency(table).pvalue) if table.shape[1] > 1 else 1.0
    within_p = float(2 * norm.sf(abs(within) / math.sqrt(variance))) if variance > 0 else 1.0
    moved = [part for part, p in (("mix", mix_p), ("within", within_p)) if p <= rate]
    return Decomposition(column, mix + within, mix, within, mix_p, within_p, " and ".join(moved) or "none")


def _moments(sides: dict[str, Side], names: list[str], fallback: float) -> tuple[np.ndarray, np.ndarray]:
    """Each segment's mean and variance of P(positive) (``fallback`` and 0 for a segment without rows)."""
    means = np.array([float(sides[k].proba.mean()) if sides.get(k, _EMPTY).rows else fallback for k in names])
    spreads = np.array([float(sides[k].proba.var()) if sides.get(k, _EMPTY).rows else 0.0 for k in names])
    return means, spreads


def worse_segments(
    specs: Sequence[SegmentSpec], frame: pd.DataFrame, gain: np.ndarray, *, z: float, min_gain: float
) -> list[dict[str, Any]]:
    """The segments of a holdout (at least ``MIN_ROWS`` rows) on which a challenger is worse than the champion
    beyond noise. ``gain``: per row, the champion's log loss minus the challenger's (positive: the challenger is
    better). A segment is worse when its mean gain is below ``-min_gain`` and its one-sided p-value (the paired
    standard error) is rejected by Benjamini-Hochberg across all the segments at the promotion's own rate, the
    chance that a normal deviate exceeds ``z``."""
    from scipy.stats import norm

    tested: dict[str, tuple[str, str, int, float, float]] = {}
    p_values: dict[str, float] = {}
    for spec in specs:
        values = segment_values(spec, frame[spec.column])
        for value in pd.unique(values):
            part = gain[values == value]
            if part.size < MIN_ROWS:
                continue
            mean, stderr = float(part.mean()), float(part.std(ddof=1) / math.sqrt(part.size))
            name = f"{spec.column}={value}"
            tested[name] = (spec.column, str(value), int(part.size), mean, stderr)
            p_values[name] = float(norm.sf(-mean / stderr)) if stderr > 0 else (0.0 if mean < 0 else 1.0)
    rejected = benjamini_hochberg(p_values, float(norm.sf(z)))
    return [
        {"segment": name, "rows": rows, "gain_log_loss": round(mean, 5), "stderr": round(stderr, 5)}
        for name, (_column, _value, rows, mean, stderr) in sorted(tested.items())
        if name in rejected and mean <= -min_gain
    ]
