"""Champion against challenger on the same held-out, most recent labelled rows.

The comparison uses per-row log loss (it rewards both ranking and calibration, so it sees prior shift,
which ROC AUC cannot). The challenger is promoted only if its mean log loss is lower by at least
``min_gain`` nats per row AND by at least ``z`` paired standard errors: a one-sided test at about 97.7%
for z = 2, so a challenger that is better only by noise on this holdout stays a challenger.

With a schema's segments, the same holdout is also read per segment (``pipeline.stats.segments.worse_segments``):
the segments on which the challenger is worse beyond noise are named in the decision (its reason and
``worse_segments``, so in the promotion's event and notification). They do not hold the challenger back: it is
better on the rows as a whole, and keeping the champion would keep every other segment on the worse model; the
segments named are the ones to watch (their segment metrics) after the promotion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import labels_of
from pipeline.model.scoring import Scorer
from pipeline.stats.metrics import quality
from pipeline.stats.segments import worse_segments


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    gain: float
    stderr: float
    champion: dict[str, float] | None
    challenger: dict[str, float]
    holdout_rows: int
    worse_segments: list[dict[str, Any]] = field(default_factory=list)  # where the challenger is worse beyond noise

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_log_loss(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    p = np.clip(proba, 1e-7, 1 - 1e-7)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def compare(
    champion: Scorer | None,
    challenger: Scorer,
    holdout: pd.DataFrame,
    schema: FeatureSchema,
    *,
    min_gain: float,
    z: float,
) -> Decision:
    y = labels_of(holdout, schema)
    challenger_proba = challenger.proba(holdout)
    challenger_quality = quality(y, challenger_proba)
    if champion is None:
        return Decision(True, "no champion yet", float("nan"), float("nan"), None, challenger_quality, len(y))
    champion_proba = champion.proba(holdout)
    champion_quality = quality(y, champion_proba)
    diff = row_log_loss(y, champion_proba) - row_log_loss(y, challenger_proba)
    gain = float(diff.mean())
    stderr = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    if gain >= min_gain and gain >= z * stderr:
        reason = f"log loss better by {gain:.4f} (>= {min_gain} and >= {z}x s.e. {stderr:.4f})"
        promote = True
    else:
        reason = f"log loss gain {gain:.4f} below the margin (min {min_gain}, {z}x s.e. = {z * stderr:.4f})"
        promote = False
    worse = worse_segments(schema.segments, holdout, diff, z=z, min_gain=min_gain) if schema.segments else []
    if worse:
        named = ", ".join(f"{w['segment']} (log loss {-w['gain_log_loss']:+.4f})" for w in worse)
        reason += f"; worse beyond noise on {named}"
    return Decision(promote, reason, gain, stderr, champion_quality, challenger_quality, len(y), worse)
