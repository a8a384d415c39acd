"""Section 11: multivariate drift, on synthetic streams whose truth is known.

Two numerical features, a and b, standard normal with correlation +0.8 in the reference; a third, c, independent;
a categorical column of three levels. A **flipped** stream has stable batches, then one whose correlation is -0.8:
every marginal is unchanged (no univariate score can see it), only how a and b move together. A **stable** stream's
batches all come from the reference's distribution. Each batch is judged as the monitor judges it: the domain
classifier fitted once per reference by the champion cache (``pipeline.stats.multivariate``, at the settings'
sample size), measured with the batch's index as seed (``pipeline.app.multivariate_check``), and the verdict of
``pipeline.domain.policy.judge`` at the settings' rules (the false-alarm rate, the AUC threshold). The cost is that
of one batch of 100,000 rows read whole (the sample drawn from it) and read in chunks (the uniform reservoir
sample of ``pipeline.engine.reservoir`` kept over the chunks, then the same measure).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta, ks_2samp

from benchmarks.common import Say, Section, Table, median, percent, seconds
from pipeline.domain import policy
from pipeline.domain.policy_types import Observation, PolicyState, Rules
from pipeline.domain.schema import FeatureSchema
from pipeline.engine.reservoir import Reservoir
from pipeline.settings import Settings
from pipeline.stats.multivariate import DomainClassifier

SCHEMA = FeatureSchema(("a", "b", "c"), ("kind",), "y", 1, 0)


@dataclass(frozen=True)
class MultivariateConfig:
    streams: int = 20
    stable_batches: int = 10  # per stable stream and batch size
    before_flip: int = 3  # stable batches of a flipped stream before the flip
    sizes: tuple[int, ...] = (200, 500, 2_000)  # the batches' rows
    reference_rows: int = 20_000
    cost_rows: int = 100_000
    cost_runs: int = 5

    @classmethod
    def quick(cls) -> MultivariateConfig:
        return cls(streams=3, stable_batches=3, before_flip=1, sizes=(200, 2_000), cost_rows=20_000, cost_runs=2)


@dataclass
class Tally:
    """One batch size's verdicts over the streams."""

    rows: int
    flipped_hits: int = 0
    flipped: int = 0
    early_alarms: int = 0
    early: int = 0
    stable_alarms: int = 0
    stable: int = 0
    flip_aucs: list[float] = field(default_factory=list)
    stable_p: list[float] = field(default_factory=list)

    @property
    def false_alarms(self) -> int:
        return self.stable_alarms + self.early_alarms

    @property
    def calm(self) -> int:
        """The batches that did not drift: the stable streams' and the flipped streams' before the flip."""
        return self.stable + self.early


def correlated(rows: int, rho: float, rng: np.random.Generator) -> pd.DataFrame:
    z = rng.standard_normal((rows, 3))
    b = rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    return pd.DataFrame({"a": z[:, 0], "b": b, "c": z[:, 2], "kind": rng.choice(["x", "y", "z"], rows)})


def _alarms(classifier: DomainClassifier, batch: pd.DataFrame, index: int, rules: Rules) -> tuple[bool, float, float]:
    """The monitor's verdict on the batch's multivariate score (nothing else moves), the AUC and its p-value."""
    result = classifier.measure(batch, seed=index)
    assert result is not None
    observation = Observation(
        rows=len(batch),
        prediction_drift=0.0,
        share_drifted_columns=0.0,
        drifted_columns=0,
        mean_prediction=0.5,
        multivariate_auc=result.auc,
        multivariate_p=result.p_value,
    )
    return policy.judge(index, observation, PolicyState(), rules, None).multivariate_drift, result.auc, result.p_value


def _interval(hits: int, trials: int) -> str:
    """The 95% Clopper-Pearson interval of a rate."""
    low = 0.0 if hits == 0 else float(beta.ppf(0.025, hits, trials - hits + 1))
    high = 1.0 if hits == trials else float(beta.ppf(0.975, hits + 1, trials - hits))
    return f"[{percent(low)}, {percent(high)}]"


def _stream(
    config: MultivariateConfig, stream: int, rules: Rules, settings: Settings, tallies: list[Tally]
) -> tuple[float, float]:
    """One stream's batches at every size, judged against one reference's classifier: its fit's seconds and the
    smallest KS p-value of a flipped batch's marginals against the reference's."""
    rng = np.random.default_rng(1_000 + stream)
    reference = correlated(config.reference_rows, 0.8, rng)
    started = time.perf_counter()
    classifier = DomainClassifier.fit(reference, SCHEMA, settings.multivariate_sample_rows)
    took = time.perf_counter() - started
    smallest = 1.0
    for tally in tallies:
        for index in range(1, config.stable_batches + 1):
            alarmed, _auc, p = _alarms(classifier, correlated(tally.rows, 0.8, rng), index, rules)
            tally.stable_alarms += alarmed
            tally.stable += 1
            tally.stable_p.append(p)
        for index in range(1, config.before_flip + 1):
            tally.early_alarms += _alarms(classifier, correlated(tally.rows, 0.8, rng), index, rules)[0]
            tally.early += 1
        flipped = correlated(tally.rows, -0.8, rng)
        smallest = min(smallest, *(float(ks_2samp(flipped[c], reference[c]).pvalue) for c in ("a", "b", "c")))
        hit, auc, _p = _alarms(classifier, flipped, config.before_flip + 1, rules)
        tally.flipped_hits += hit
        tally.flipped += 1
        tally.flip_aucs.append(auc)
    return took, smallest


def run(config: MultivariateConfig, say: Say) -> Section:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    rules = Rules.of(settings.policy)
    tallies = [Tally(rows) for rows in config.sizes]
    fit_seconds: list[float] = []
    marginal_p: list[float] = []
    for stream in range(config.streams):
        took, smallest = _stream(config, stream, rules, settings, tallies)
        fit_seconds.append(took)
        marginal_p.append(smallest)
        say(
            f"section 11: stream {stream + 1}/{config.streams}: "
            + ", ".join(f"{t.rows} rows {t.false_alarms} false of {t.calm}, flips {t.flipped_hits}" for t in tallies)
        )
    whole, chunked = _cost(config, settings)
    return _section(config, settings, rules, tallies, fit_seconds, marginal_p, whole, chunked)


def false_alarm_table(tallies: list[Tally], stated: float) -> Table:
    """Per batch size: the flipped batches caught, and the false alarms of the batches that did not drift against the
    stated rate (the rate's 95% interval; over it when the interval's low end is above it)."""
    table = Table(
        ["batch rows", "flipped batches alarmed", "stable batches alarmed", "false-alarm rate (95% interval)",
         "stated", "within"]
    )  # fmt: skip
    for t in tallies:
        rate = t.false_alarms / t.calm if t.calm else float("nan")
        table.rows.append(
            [
                f"{t.rows:,}",
                f"{t.flipped_hits} of {t.flipped}",
                f"{t.false_alarms} of {t.calm}",
                f"{percent(rate)} {_interval(t.false_alarms, t.calm)}",
                percent(stated),
                "yes" if within_rate(t.false_alarms, t.calm, stated) else "**no**",
            ]
        )
    return table


def within_rate(alarms: int, trials: int, stated: float) -> bool:
    """The measured false alarms agree with the stated rate: the low end of their 95% interval is at most it."""
    if trials == 0:
        return True
    low = 0.0 if alarms == 0 else float(beta.ppf(0.025, alarms, trials - alarms + 1))
    return low <= stated


def _section(
    config: MultivariateConfig,
    settings: Settings,
    rules: Rules,
    tallies: list[Tally],
    fit_seconds: list[float],
    marginal_p: list[float],
    whole: list[float],
    chunked: list[float],
) -> Section:
    cost = Table(
        ["step", "seconds (median)"],
        [
            [f"fit per reference ({config.reference_rows:,} rows)", seconds(median(fit_seconds))],
            [f"one batch of {config.cost_rows:,} rows read whole", seconds(median(whole))],
            [f"one batch of {config.cost_rows:,} rows in chunks of 10,000 (reservoir, measure)",
             seconds(median(chunked))],
        ],
    )  # fmt: skip
    largest = tallies[-1]
    calm = sum(t.calm for t in tallies)
    return Section(
        "11. Multivariate drift",
        __doc__.split("\n\n", 1)[1],
        [
            (
                f"{config.streams} streams at each batch size, reference {config.reference_rows:,} rows, sample at "
                f"most {settings.multivariate_sample_rows:,} rows a side, stated false-alarm rate "
                f"{percent(rules.false_alarm_rate)}, AUC threshold {rules.multivariate_threshold}; per size "
                f"{config.streams} flipped batches and {config.streams * (config.stable_batches + config.before_flip)} "
                f"that did not drift ({config.stable_batches} of each stable stream, {config.before_flip} of each "
                "flipped stream before its flip):",
                false_alarm_table(tallies, rules.false_alarm_rate),
            ),
            ("Cost:", cost),
        ],
        notes=[
            f"The flipped batch's AUC at {largest.rows:,} rows: median {median(largest.flip_aucs):.3f}, lowest "
            f"{min(largest.flip_aucs):.3f}; the smallest KS p-value of a flipped batch's three marginals against the "
            f"reference's, over all the streams and sizes (unchanged by construction): {min(marginal_p):.2g}.",
            'The stated rate is per batch that did not drift; the interval is Clopper-Pearson\'s; "within" says '
            "the interval reaches down to the stated rate.",
            "The stable batches' p-values (the Mann-Whitney null of the held-out AUC): share at or below the stated "
            "rate "
            + ", ".join(
                f"{t.rows:,} rows {percent(float(np.mean(np.asarray(t.stable_p) <= rules.false_alarm_rate)))}"
                for t in tallies
            )
            + f" ({calm:,} batches in all).",
        ],
        figures={
            "hit_rate": largest.flipped_hits / largest.flipped,
            "false_alarm_rate": sum(t.false_alarms for t in tallies) / calm,
            "by_size": {
                t.rows: {"flip": t.flipped_hits / t.flipped, "false": t.false_alarms / t.calm} for t in tallies
            },
            "stated": rules.false_alarm_rate,
            "within": {t.rows: within_rate(t.false_alarms, t.calm, rules.false_alarm_rate) for t in tallies},
            "seconds_100k": median(whole),
        },
    )


def _cost(config: MultivariateConfig, settings: Settings) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(7)
    classifier = DomainClassifier.fit(correlated(config.reference_rows, 0.8, rng), SCHEMA)
    batch = correlated(config.cost_rows, 0.8, rng)
    whole, chunked = [], []
    for run in range(config.cost_runs):
        started = time.perf_counter()
        classifier.measure(batch, seed=run)
        whole.append(time.perf_counter() - started)
        started = time.perf_counter()
        reservoir = Reservoir(settings.multivariate_sample_rows, seed=run)
        for start in range(0, len(batch), 10_000):
            reservoir.add(batch.iloc[start : start + 10_000])
        sample = reservoir.frame()
        assert sample is not None
        classifier.measure(sample, seed=run)
        chunked.append(time.perf_counter() - started)
    return whole, chunked


def with_cli(section: Section, runs: list[Any]) -> Section:
    """Section 11 with the flipped stream run through the ``pipeline`` command (``benchmarks.multivariate_cli``)."""
    table = Table(["batch rows", "stable batches alarmed", "flipped batch alarmed", "its AUC", "monitor run"])
    for run in runs:
        table.rows.append(
            [
                f"{run.rows:,}",
                f"{sum(run.stable_alarms)} of {len(run.stable_alarms)}",
                "yes" if run.flipped_alarm else "no",
                f"{run.flipped_auc:.3f}",
                seconds(run.seconds),
            ]
        )
    caption = (
        "Through the CLI (`pipeline schema infer`, `pipeline train` on the reference rows with a label depending on "
        "a and c, then per batch size one `pipeline monitor --current ... --report-json` run, retraining off, over "
        "stable batches then the flipped one; the records' `multivariate_drift`; `benchmarks/multivariate_cli.py`):"
    )
    section.tables.insert(1, (caption, table))
    section.figures["cli"] = {run.rows: (sum(run.stable_alarms), run.flipped_alarm) for run in runs}
    return section
