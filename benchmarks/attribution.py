"""Section 10: why it moved. Does the drift attribution (``pipeline.stats.attribution``) name the feature that moved
the predictions, and what does it cost?

The champion is the project's own xgboost candidate, fitted on the demo population's reference rows. The
features it relies on are measured, not assumed: for each numerical feature, the mean change in P(positive) when
that column alone is moved by half a reference standard deviation. Then, each through the path of
``pipeline explain`` (``pipeline.app.explain.explain_file``: the batch written to Parquet, read again in chunks
into a seeded sample of 2,000 rows, attributed through ``predict_proba``):

- single shifts: each of the ``relied_on`` most relied-on features moved alone by each magnitude (in reference
  standard deviations) in a fresh batch; a hit is the shifted feature ranked first by its share. The raw ranking
  by drift score is shown beside it;
- important-small vs ignored-large: a relied-on feature moved a little and a feature the model ignores moved a
  lot in the same batch; the attribution should put the relied-on one first, the drift scores put the ignored one
  first;
- cost: a 100,000-row batch explained end to end (read in chunks, sampled, attributed), and the attribution alone.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import Say, Section, Table, percent, seconds
from pipeline.app.explain import explain_file
from pipeline.demo.synth import Population, load_sample_frame
from pipeline.domain.schema import FeatureSchema, load_schema
from pipeline.io.data import Batch, validate_frame
from pipeline.model.scoring import Scorer
from pipeline.model.train import ZOO, fit
from pipeline.stats import attribution
from pipeline.stats.drift import ReferenceProfile

TARGET_HIT_RATE = 0.9  # issue 21: the shifted relied-on feature ranks first in >= 90% of single shifts


@dataclass(frozen=True)
class AttributionConfig:
    reference_rows: int = 10_000
    batch_rows: int = 10_000
    big_rows: int = 100_000
    relied_on: int = 6
    magnitudes: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    small: float = 0.25  # the relied-on feature's shift in important-small vs ignored-large
    large: float = 2.0  # the ignored feature's
    pairs: int = 6
    chunk_rows: int = 10_000
    seed: int = 21

    @classmethod
    def quick(cls) -> AttributionConfig:
        return cls(reference_rows=5_000, batch_rows=5_000, big_rows=20_000, relied_on=3, magnitudes=(0.5, 1.0), pairs=2)


@dataclass
class Outcome:
    feature: str
    magnitude: float
    rank: int  # the shifted feature's rank by share (1 = first)
    drift_rank: int  # its rank by drift score
    drop_rank: int  # its rank by drift_drop (the simplest design)
    share: float
    prediction_drift: float
    top: list[str] = field(default_factory=list)


def _rank(names: list[str], feature: str) -> int:
    return names.index(feature) + 1 if feature in names else len(names) + 1


def _shifted(frame: pd.DataFrame, moves: dict[str, float], spread: dict[str, float]) -> pd.DataFrame:
    out = frame.copy()
    for name, by in moves.items():
        out[name] = out[name] + by * spread[name]
    return out


def _explain(
    frame: pd.DataFrame, folder: Path, name: str, scorer: Scorer, reference: Batch, schema: FeatureSchema, chunk: int
) -> tuple[attribution.Attribution, list[str], float]:
    """The batch written as Parquet and explained as ``pipeline explain`` does; its features by drift score (on the
    whole batch, as the monitor scores it) and the wall time of the explanation."""
    path = folder / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    started = time.perf_counter()
    found = explain_file(
        str(path), scorer, reference, schema, None, prediction_threshold=0.1, column_threshold=0.1, chunk_rows=chunk
    )
    took = time.perf_counter() - started
    batch = validate_frame(frame, schema, name)
    profile = ReferenceProfile.scored(reference.frame, scorer, schema, prediction_threshold=0.1, column_threshold=0.1)
    scores = profile.measure(batch.frame, np.asarray(scorer.proba(batch.frame))).column_scores
    by_score = sorted(scores, key=lambda n: (-scores[n] if np.isfinite(scores[n]) else np.inf, n))
    return found, by_score, took


def _by_drop(found: attribution.Attribution) -> list[str]:
    return [s.feature for s in sorted(found.shares, key=lambda s: -s.drift_drop)]


def _reliance(scorer: Scorer, frame: pd.DataFrame, schema: FeatureSchema, spread: dict[str, float]) -> dict[str, float]:
    """Mean |change in P(positive)| when one numerical column moves by half a reference standard deviation."""
    rows = frame.iloc[:2000]
    base = np.asarray(scorer.proba(rows))
    return {
        name: float(np.nanmean(np.abs(np.asarray(scorer.proba(_shifted(rows, {name: 0.5}, spread))) - base)))
        for name in schema.numerical
        if spread[name] > 0
    }


def run(config: AttributionConfig, say: Say) -> Section:
    schema = load_schema()
    population = Population.fit(load_sample_frame(), schema)
    rng = np.random.default_rng(config.seed)
    reference = validate_frame(population.sample_batch(config.reference_rows, rng), schema, "reference")
    say(f"fitting the champion (xgboost) on {len(reference.frame)} reference rows")
    scorer = Scorer.trained(fit(ZOO["xgboost"], {}, reference.frame, schema), schema)
    spread = {name: float(np.nanstd(reference.frame[name].astype(float))) for name in schema.numerical}
    reliance = _reliance(scorer, reference.frame, schema, spread)
    ordered = sorted(reliance, key=lambda n: -reliance[n])
    relied = ordered[: config.relied_on]
    ignored = [n for n in reversed(ordered) if reliance[n] == 0.0 and reference.frame[n].notna().mean() > 0.9]
    ignored = ignored or list(reversed(ordered))
    say(f"relied on most: {', '.join(f'{n} {reliance[n]:.4f}' for n in relied)}; ignored: {', '.join(ignored[:3])}")
    singles: list[Outcome] = []
    pairs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-why-") as tmp:
        folder = Path(tmp)
        for feature in relied:
            for magnitude in config.magnitudes:
                frame = _shifted(population.sample_batch(config.batch_rows, rng), {feature: magnitude}, spread)
                found, by_score, _took = _explain(
                    frame, folder, f"{feature}-{magnitude}", scorer, reference, schema, config.chunk_rows
                )
                ranking = found.ranking()
                singles.append(
                    Outcome(
                        feature,
                        magnitude,
                        _rank(ranking, feature),
                        _rank(by_score, feature),
                        _rank(_by_drop(found), feature),
                        next(s.share for s in found.shares if s.feature == feature),
                        found.prediction_drift,
                        ranking[:3],
                    )
                )
                say(f"{feature} +{magnitude} sd: rank {singles[-1].rank} ({found.summary()})")
        for i in range(config.pairs):
            important, quiet = relied[i % len(relied)], ignored[i % len(ignored)]
            moves = {important: config.small, quiet: config.large}
            frame = _shifted(population.sample_batch(config.batch_rows, rng), moves, spread)
            found, by_score, _took = _explain(frame, folder, f"pair-{i}", scorer, reference, schema, config.chunk_rows)
            first = found.ranking()[0]
            pairs.append(
                {
                    "important": important,
                    "ignored": quiet,
                    "attribution_first": first,
                    "score_first": by_score[0],
                    "drop_first": _by_drop(found)[0],
                    "important_rank_by_score": _rank(by_score, important),
                    "summary": found.summary(),
                }
            )
            say(f"pair {important} +{config.small} sd, {quiet} +{config.large} sd: first {first} ({found.summary()})")
        big = _shifted(population.sample_batch(config.big_rows, rng), {relied[0]: 0.5}, spread)
        found, _by_score, took = _explain(big, folder, "big", scorer, reference, schema, config.chunk_rows)
        sample = validate_frame(big.iloc[: attribution.MAX_ROWS], schema, "big").frame
        profile = ReferenceProfile.scored(
            reference.frame, scorer, schema, prediction_threshold=0.1, column_threshold=0.1
        )
        started = time.perf_counter()
        attribution.attribute_to_profile(sample, profile, scorer.proba)
        alone = time.perf_counter() - started
        say(f"{config.big_rows:,}-row batch explained in {seconds(took)} (attribution alone {seconds(alone)})")
    return _section(config, singles, pairs, found, took, alone, relied, reliance)


def _section(
    config: AttributionConfig,
    singles: list[Outcome],
    pairs: list[dict[str, Any]],
    big: attribution.Attribution,
    took: float,
    alone: float,
    relied: list[str],
    reliance: dict[str, float],
) -> Section:
    hits = sum(o.rank == 1 for o in singles)
    score_hits = sum(o.drift_rank == 1 for o in singles)
    pair_hits = sum(p["attribution_first"] == p["important"] for p in pairs)
    pair_score_hits = sum(p["score_first"] == p["important"] for p in pairs)
    single_table = Table(
        [
            "shifted feature (reliance)",
            "shift (sd)",
            "rank by share",
            "its share",
            "rank by drift score",
            "first three by share",
        ]
    )
    for o in singles:
        single_table.rows.append(
            [
                f"{o.feature} ({reliance[o.feature]:.3f})",
                f"{o.magnitude:g}",
                str(o.rank),
                percent(o.share, 0),
                str(o.drift_rank),
                ", ".join(o.top),
            ]
        )
    pair_table = Table(
        [
            "relied on, +small",
            "ignored, +large",
            "first by share",
            "first by drift score",
            "relied-on rank by drift score",
            "shares",
        ]
    )
    for p in pairs:
        pair_table.rows.append(
            [
                p["important"],
                p["ignored"],
                p["attribution_first"],
                p["score_first"],
                str(p["important_rank_by_score"]),
                p["summary"],
            ]
        )
    predictions = (1 + big.features_tried) * big.rows
    drop_hits = sum(o.drop_rank == 1 for o in singles)
    drop_pair_hits = sum(p["drop_first"] == p["important"] for p in pairs)
    intro = f"""
The demo's schema ({len(reliance)} numerical features with a spread, {big.features_tried} features in all), a
champion fitted by the project's xgboost candidate on {config.reference_rows:,} reference rows, batches of
{config.batch_rows:,} rows drawn fresh from the same population with the shift injected. Each batch is explained
through the path of `pipeline explain` (`pipeline.app.explain.explain_file`): written to Parquet, read again in
chunks of {config.chunk_rows:,} rows into a seeded reservoir of 20,000 rows, {attribution.MAX_ROWS:,} of them
scored, each feature in turn carried back to the reference and the prediction drift it alone causes measured
through `predict_proba`. "Reliance" is the mean change in P(positive) when the column alone moves by half a
reference standard deviation; the {len(relied)} features with the most are shifted, one at a time, by
{", ".join(f"{m:g}" for m in config.magnitudes)} reference standard deviations ({len(singles)} shifts).
"""
    return Section(
        "10. Why it moved",
        intro,
        tables=[
            (
                f"Single shifts: the shifted feature ranks first by its share in **{hits} of {len(singles)}** "
                f"({percent(hits / len(singles), 0)}); the raw drift-score ranking puts it first in {score_hits}.",
                single_table,
            ),
            (
                f"A relied-on feature moved {config.small:g} sd and an ignored one {config.large:g} sd in the same "
                f"batch: the attribution puts the relied-on one first in **{pair_hits} of {len(pairs)}**, the drift "
                f"scores in {pair_score_hits}.",
                pair_table,
            ),
        ],
        notes=[
            f"Cost on a {config.big_rows:,}-row batch: {seconds(took)} end to end as `pipeline explain` runs it "
            f"(read in chunks into the {big.rows:,}-row sample, reference scored, sample attributed), of which the "
            f"attribution itself is {seconds(alone)}: {predictions:,} predictions of the champion "
            f"({big.features_tried} features + the sample itself, {big.rows:,} rows each). The attribution does not "
            "grow with the batch; the read does.",
            "In the monitor it runs for alarmed batches only, on the rows the batch was read into (the whole batch, "
            "or for a batch read in chunks the newest `PIPELINE_WINDOW_ROWS` rows it keeps), sampled to 2,000.",
            "The share is the prediction drift a feature alone causes (its shift), over the features' sum. The "
            "simplest design, the drop in the sample's prediction drift against the reference when the feature "
            f"is carried back, ranks the shifted feature first in {drop_hits} of {len(singles)} single shifts and "
            f"{drop_pair_hits} of {len(pairs)} pairs here: for a small shift the drop is lost in the sample's own "
            "noise against the reference, which the paired shift does not see.",
        ],
        figures={
            "hits": hits,
            "shifts": len(singles),
            "hit_rate": hits / len(singles),
            "score_hits": score_hits,
            "pair_hits": pair_hits,
            "pairs": len(pairs),
            "pair_score_hits": pair_score_hits,
            "drop_hits": drop_hits,
            "drop_pair_hits": drop_pair_hits,
            "big_rows": config.big_rows,
            "big_seconds": took,
            "attribution_seconds": alone,
            "target": TARGET_HIT_RATE,
        },
    )
