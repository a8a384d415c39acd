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
from dataclasses import dataclass

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
    stable_batches: int = 10  # per stable stream
    before_flip: int = 3  # stable batches of a flipped stream before the flip
    batch_rows: int = 2_000
    reference_rows: int = 20_000
    cost_rows: int = 100_000
    cost_runs: int = 5

    @classmethod
    def quick(cls) -> MultivariateConfig:
        return cls(streams=3, stable_batches=3, before_flip=1, cost_rows=20_000, cost_runs=2)


def correlated(rows: int, rho: float, rng: np.random.Generator) -> pd.DataFrame:
    z = rng.standard_normal((rows, 3))
    b = rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    return pd.DataFrame({"a": z[:, 0], "b": b, "c": z[:, 2], "kind": rng.choice(["x", "y", "z"], rows)})


def _alarms(classifier: DomainClassifier, batch: pd.DataFrame, index: int, rules: Rules) -> tuple[bool, float]:
    """The monitor's verdict on the batch's multivariate score (nothing else moves), and the AUC."""
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
    return policy.judge(index, observation, PolicyState(), rules, None).multivariate_drift, result.auc


def _interval(hits: int, trials: int) -> str:
    """The 95% Clopper-Pearson interval of a rate."""
    low = 0.0 if hits == 0 else float(beta.ppf(0.025, hits, trials - hits + 1))
    high = 1.0 if hits == trials else float(beta.ppf(0.975, hits + 1, trials - hits))
    return f"[{percent(low)}, {percent(high)}]"


def run(config: MultivariateConfig, say: Say) -> Section:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    rules = Rules.of(settings.policy)
    flipped_hits, flipped_early, stable_alarms, stable_batches = 0, 0, 0, 0
    flip_aucs: list[float] = []
    marginal_p: list[float] = []
    fit_seconds: list[float] = []
    for stream in range(config.streams):
        rng = np.random.default_rng(1_000 + stream)
        reference = correlated(config.reference_rows, 0.8, rng)
        started = time.perf_counter()
        classifier = DomainClassifier.fit(reference, SCHEMA, settings.multivariate_sample_rows)
        fit_seconds.append(time.perf_counter() - started)
        for index in range(1, config.stable_batches + 1):
            stable_alarms += _alarms(classifier, correlated(config.batch_rows, 0.8, rng), index, rules)[0]
            stable_batches += 1
        for index in range(1, config.before_flip + 1):
            flipped_early += _alarms(classifier, correlated(config.batch_rows, 0.8, rng), index, rules)[0]
        flipped = correlated(config.batch_rows, -0.8, rng)
        marginal_p.append(min(ks_2samp(flipped[c], reference[c]).pvalue for c in ("a", "b", "c")))
        hit, auc = _alarms(classifier, flipped, config.before_flip + 1, rules)
        flipped_hits += hit
        flip_aucs.append(auc)
        say(f"section 11: stream {stream + 1}/{config.streams}: flipped batch AUC {auc:.3f}, alarmed {hit}")
    whole, chunked = _cost(config, settings)
    streams = config.streams
    early = streams * config.before_flip
    table = Table(
        ["stream", "batches judged", "alarmed", "rate (95% interval)"],
        [
            ["flipped (correlation +0.8 -> -0.8), the flipped batch", str(streams), str(flipped_hits),
             f"{percent(flipped_hits / streams)} {_interval(flipped_hits, streams)}"],
            ["flipped, its stable batches before the flip", str(early), str(flipped_early),
             f"{percent(flipped_early / early)} {_interval(flipped_early, early)}"],
            ["stable", str(stable_batches), str(stable_alarms),
             f"{percent(stable_alarms / stable_batches)} {_interval(stable_alarms, stable_batches)}"],
        ],
    )  # fmt: skip
    cost = Table(
        ["step", "seconds (median)"],
        [
            [f"fit per reference ({config.reference_rows:,} rows)", seconds(median(fit_seconds))],
            [f"one batch of {config.cost_rows:,} rows read whole", seconds(median(whole))],
            [f"one batch of {config.cost_rows:,} rows in chunks of 10,000 (reservoir, measure)",
             seconds(median(chunked))],
        ],
    )  # fmt: skip
    return Section(
        "11. Multivariate drift",
        __doc__.split("\n\n", 1)[1],
        [
            (
                f"{streams} streams of {config.batch_rows:,}-row batches, reference {config.reference_rows:,} rows, "
                f"sample {settings.multivariate_sample_rows:,} rows a side, false-alarm rate "
                f"{percent(rules.false_alarm_rate)}, AUC threshold {rules.multivariate_threshold}:",
                table,
            ),
            ("Cost:", cost),
        ],
        notes=[
            f"The flipped batch's AUC: median {median(flip_aucs):.3f}, lowest {min(flip_aucs):.3f}; the smallest "
            f"KS p-value of its three marginals against the reference's, over all the streams (unchanged by "
            f"construction): {min(marginal_p):.2g}.",
            "The stated rate is per batch that did not drift; the interval is Clopper-Pearson's.",
        ],
        figures={
            "hit_rate": flipped_hits / streams,
            "false_alarm_rate": (stable_alarms + flipped_early) / (stable_batches + early),
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
