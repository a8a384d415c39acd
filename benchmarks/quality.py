"""Section 4: model quality under drift; the monitor's policy against never retraining and retraining always.

This section runs the monitor's decisions in memory, to run dozens of retrains in minutes: no MLflow, no
registry, no Postgres. The decisions are the product's own: each batch is observed by ``pipeline.engine.observe``
(the champion's P(positive), drift against the reference profile, quality), judged by ``pipeline.domain.policy``
(alarms, cooldown, retries), retrained on the rows ``policy.training_rows`` chooses, compared by
``pipeline.model.evaluate.compare``, and the policy says when the batch becomes the reference. What it
leaves out, to stay within minutes: hyperparameter tuning, and all candidates but one. The
first champion is chosen among all the zoo's candidates (default parameters, best on validation); later
retrains fit that candidate only, with default parameters. A retrain here is much cheaper than the monitor's.

The two baselines use the same retrain: "never" keeps the first champion; "every batch" retrains after every
batch, whatever the alarms say (the comparison still decides whether the challenger is promoted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import Say, Section, Table, percent
from pipeline.demo.synth import DriftKind, Population, generate_stream, load_sample_frame
from pipeline.domain import policy
from pipeline.domain.policy_types import Action, PolicyState, Rules, Verdict
from pipeline.domain.schema import FeatureSchema, load_schema
from pipeline.engine.observe import observe
from pipeline.io.data import Batch, validate_frame
from pipeline.model.evaluate import compare
from pipeline.model.scoring import Scorer
from pipeline.model.train import ZOO, evaluate, fit, split_in_time
from pipeline.settings import Settings
from pipeline.stats.drift import ReferenceProfile

POLICIES = ("monitor", "never", "every batch")


@dataclass(frozen=True)
class QualityConfig:
    batch_rows: int = 1_500
    reference_rows: int = 6_000
    window_rows: int = 6_000
    drift_batches: int = 12
    drift_at: int = 6
    stable_batches: int = 20
    seed: int = 2024

    @classmethod
    def quick(cls) -> QualityConfig:
        return cls(
            batch_rows=800,
            reference_rows=3_000,
            window_rows=3_000,
            drift_batches=4,
            drift_at=3,
            stable_batches=4,
        )


@dataclass
class Champion:
    model: Any
    holdout_auc: float
    trained_rows: int | None = None


@dataclass
class StreamOutcome:
    policy: str
    aucs: list[float] = field(default_factory=list)
    alarms: list[int] = field(default_factory=list)
    retrains: int = 0
    refreshes: int = 0  # retrains on the refresh schedule alone, no alarm
    promotions: int = 0
    retrained_at: list[tuple[int, bool]] = field(default_factory=list)

    @property
    def mean_auc(self) -> float:
        return float(np.nanmean(self.aucs)) if self.aucs else float("nan")


class Simulator:
    """The monitor's decisions on one stream, with in-memory retraining."""

    def __init__(self, schema: FeatureSchema, settings: Settings, candidates: Sequence[str] = tuple(ZOO)) -> None:
        self.schema = schema
        self.settings = settings
        self.rules = Rules.of(settings.policy)
        self.candidates = list(candidates)
        self.chosen = self.candidates[0]

    def retrain(self, window: pd.DataFrame, champion: Champion | None) -> tuple[Champion, bool]:
        split = split_in_time(window, self.settings.holdout_fraction, self.settings.validation_fraction)
        best_model, best_loss = None, float("inf")
        for name in self.candidates:
            model = fit(ZOO[name], {}, split.train, self.schema)
            loss = evaluate(model, split.validation, self.schema)["log_loss"]
            if loss < best_loss:
                best_model, best_loss, self.chosen = model, loss, name
        decision = compare(
            Scorer.trained(champion.model, self.schema) if champion else None,
            Scorer.trained(best_model, self.schema),
            split.holdout,
            self.schema,
            min_gain=self.settings.promotion_min_gain,
            z=self.settings.promotion_z,
        )
        return Champion(best_model, decision.challenger["roc_auc"], len(window)), decision.promote

    def profile(self, frame: pd.DataFrame, champion: Champion) -> ReferenceProfile:
        return ReferenceProfile(
            frame,
            self.scorer(champion).proba(frame),
            self.schema,
            prediction_threshold=self.settings.drift_threshold,
            column_threshold=self.settings.column_drift_threshold,
        )

    def scorer(self, champion: Champion) -> Scorer:
        return Scorer.trained(champion.model, self.schema)

    def run(self, name: str, reference: pd.DataFrame, first: Champion, stream: list[pd.DataFrame]) -> StreamOutcome:
        outcome = StreamOutcome(name)
        champion = first
        window: list[tuple[int, pd.DataFrame]] = [(0, reference)]
        profile = self.profile(reference, champion)
        rules, state = self.rules, PolicyState()
        everything = Verdict(False, False, False, (), True)  # "every batch": the newest window, always
        for index, frame in enumerate(stream, start=1):
            batch = Batch(f"simulated:{index}", frame, has_labels=True)
            seen = observe(batch, self.scorer(champion), profile, false_rate=self.settings.false_alarm_rate)
            outcome.aucs.append(seen.roc_auc if seen.roc_auc is not None else float("nan"))
            window.append((index, frame))
            if name == "never":
                continue
            if name == "every batch":
                champion, _ = self._retrain_into(outcome, window, champion, index, PolicyState(), everything)
                continue
            verdict = policy.judge(
                index, seen.observation, state, rules, champion.holdout_auc, trained_rows=champion.trained_rows
            )
            if verdict.alarm:
                outcome.alarms.append(index)
            action = verdict.action_without_retrain()
            if verdict.retrain:
                outcome.refreshes += int(verdict.refresh and not verdict.alarm)
                champion, promoted = self._retrain_into(outcome, window, champion, index, state, verdict)
                action = Action.retrained_promoted if promoted else Action.retrained_rejected
            before, state = state, policy.advance(state, index, verdict, action, labelled_rows=len(frame))
            if policy.rebaseline(before, index, action):
                profile = self.profile(frame, champion)
        return outcome

    def _retrain_into(
        self,
        outcome: StreamOutcome,
        window: list[tuple[int, pd.DataFrame]],
        champion: Champion,
        index: int,
        state: PolicyState,
        verdict: Verdict,
    ) -> tuple[Champion, bool]:
        chosen = policy.training_rows([(i, len(f)) for i, f in window], index, state, verdict, self.rules)
        rows = pd.concat([f.iloc[len(f) - chosen[i] :] for i, f in window if i in chosen], ignore_index=True)
        challenger, promoted = self.retrain(rows, champion)
        outcome.retrains += 1
        outcome.retrained_at.append((index, promoted))
        if promoted:
            outcome.promotions += 1
            return challenger, True
        return champion, False


def run(config: QualityConfig, say: Say) -> Section:
    schema = load_schema()
    settings = Settings(_env_file=None, window_rows=config.window_rows)  # type: ignore[call-arg]
    population = Population.fit(load_sample_frame(), schema)
    rng = np.random.default_rng(config.seed)
    reference = _clean(population.sample_batch(config.reference_rows, rng), schema)
    simulator = Simulator(schema, settings)
    say(f"training the first champion on {len(reference)} rows")
    first, _ = simulator.retrain(reference, None)
    simulator.candidates = [simulator.chosen]
    say(f"first champion: {simulator.chosen}, holdout ROC AUC {first.holdout_auc:.4f}; later retrains fit it alone")
    streams = drift_streams(population, config, schema)
    results: list[tuple[DriftKind, int | None, dict[str, StreamOutcome]]] = []
    for kind, drift_at, frames in streams:
        outcomes = {}
        for name in POLICIES:
            outcomes[name] = simulator.run(name, reference, first, frames)
            say(
                f"{kind.value:>9} stream, {name:<11}: mean AUC {outcomes[name].mean_auc:.4f}, "
                f"{outcomes[name].retrains} retrains, alarms at {outcomes[name].alarms}"
            )
        results.append((kind, drift_at, outcomes))
    return _section(results, config, settings, simulator.chosen, first.holdout_auc)


Stream = tuple[DriftKind, int | None, list[pd.DataFrame]]


def drift_streams(population: Population, config: QualityConfig, schema: FeatureSchema) -> list[Stream]:
    """The section's streams, validated: covariate, concept, prior and label shift from ``drift_at``, then a
    stable stream (``drift_at`` None). The same seeds every run, so section 5 scores the same batches."""
    streams: list[Stream] = []
    for offset, kind in enumerate((DriftKind.covariate, DriftKind.concept, DriftKind.prior, DriftKind.label)):
        frames = generate_stream(
            population,
            rows=config.batch_rows,
            batches=config.drift_batches,
            drift_at=config.drift_at,
            kind=kind,
            seed=config.seed + 1 + offset,
        )
        streams.append((kind, config.drift_at, [_clean(f, schema) for f in frames]))
    stable = generate_stream(
        population,
        rows=config.batch_rows,
        batches=config.stable_batches,
        drift_at=None,
        kind=DriftKind.none,
        seed=config.seed + 9,
    )
    streams.append((DriftKind.none, None, [_clean(f, schema) for f in stable]))
    return streams


def _clean(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    return validate_frame(frame, schema, "simulated").frame


def _section(
    results: list[tuple[DriftKind, int | None, dict[str, StreamOutcome]]],
    config: QualityConfig,
    settings: Settings,
    chosen: str,
    first_auc: float,
) -> Section:
    table = Table(
        [
            "stream",
            "change at batch",
            "detection delay (batches)",
            "false alarms before the change",
            "mean ROC AUC: monitor",
            "never retrain",
            "retrain every batch",
            "monitor / every batch",
            "retrains: monitor",
            "of which refreshes",
            "every batch",
            "promotions: monitor",
        ]
    )
    delays: list[str] = []
    delays_ok = True
    false_alarms = 0
    monitor_auc, every_auc, monitor_retrains, every_retrains, refreshes = [], [], 0, 0, 0
    behind: list[str] = []
    for kind, drift_at, outcomes in results:
        monitor, never, every = outcomes["monitor"], outcomes["never"], outcomes["every batch"]
        if drift_at is None:
            before = len(monitor.alarms)
            delay_text = "n/a"
        else:
            before = sum(1 for index in monitor.alarms if index < drift_at)
            after = [index for index in monitor.alarms if index >= drift_at]
            delay = after[0] - drift_at if after else None
            delay_text = str(delay) if delay is not None else "not detected"
            delays.append(f"{kind.value} {delay_text}")
            delays_ok = delays_ok and delay is not None and delay <= 1
        false_alarms += before if drift_at is None else 0
        monitor_auc.append(monitor.mean_auc)
        every_auc.append(every.mean_auc)
        monitor_retrains += monitor.retrains
        refreshes += monitor.refreshes
        every_retrains += every.retrains
        if monitor.mean_auc < 0.97 * every.mean_auc:
            behind.append(
                f"{kind.value}: the monitor retrained at batch {_retrains(monitor)}; retraining every batch "
                f"first promoted at batch {_first_promotion(every)}."
            )
        table.rows.append(
            [
                "stable" if kind is DriftKind.none else kind.value,
                "–" if drift_at is None else str(drift_at),
                delay_text,
                str(before),
                f"{monitor.mean_auc:.4f}",
                f"{never.mean_auc:.4f}",
                f"{every.mean_auc:.4f}",
                percent(monitor.mean_auc / every.mean_auc),
                str(monitor.retrains),
                str(monitor.refreshes),
                str(every.retrains),
                str(monitor.promotions),
            ]
        )
    auc_share = float(np.mean(monitor_auc) / np.mean(every_auc))
    worst_share = min(m / e for m, e in zip(monitor_auc, every_auc, strict=True))
    retrain_share = monitor_retrains / every_retrains if every_retrains else float("nan")
    alarm_share = (monitor_retrains - refreshes) / every_retrains if every_retrains else float("nan")
    stable_count = next(len(o["monitor"].aucs) for k, _, o in results if k is DriftKind.none)
    notes = [
        f"Mean ROC AUC over the streams: monitor {np.mean(monitor_auc):.4f}, retrain every batch "
        f"{np.mean(every_auc):.4f} ({percent(auc_share)}; the worst stream {percent(worst_share)}).",
        f"Retrains: monitor {monitor_retrains}, retrain every batch {every_retrains} ({percent(retrain_share)}). "
        f"Of the monitor's, {refreshes} are refreshes: no alarm, but as many new labelled rows as the champion "
        f"learned from ({settings.refresh_fraction:g} × its training rows, `PIPELINE_REFRESH_FRACTION`); the rest, "
        f"{monitor_retrains - refreshes} ({percent(alarm_share)}), follow an alarm. The refresh is what keeps a "
        "champion current on data that never stops drifting (section 8); on these short synthetic streams it "
        "costs retrains that rarely promote. `PIPELINE_REFRESH_FRACTION=0` turns it off.",
    ]
    if behind:
        notes.append(
            "Where the monitor falls behind retraining every batch: "
            + " ".join(behind)
            + " Retraining every batch gets a promotion as soon as the window holds enough new rows."
        )
    section = Section(
        "4. Quality under drift",
        f"""
Streams of {config.batch_rows:,}-row labelled batches from `pipeline.demo.synth`: covariate, concept, prior and
label shift (the share of admissions rises, the inputs do not move) from batch {config.drift_at} of
{config.drift_batches}, and a stable stream of
{config.stable_batches} batches. The first champion is trained on {config.reference_rows:,} stable rows,
which are also the first reference; it is the zoo's {chosen} (best of the candidates on validation,
holdout ROC AUC {first_auc:.4f}).

The monitor's decisions are **the product's own, run in memory**: each batch is observed by
`pipeline.engine.observe` and judged by `pipeline.domain.policy` with the default settings (alarm on prediction drift
>= {settings.drift_threshold} and beyond the reference's noise at the batch's size, on >=
{settings.drifted_share_threshold:.0%} of columns drifted beyond noise, on ROC AUC more than
{settings.auc_tolerance} below the champion's holdout AUC and beyond its standard error (each at a false-alarm
rate of {settings.false_alarm_rate:g}), or on a positive rate {settings.prior_tolerance}
and {settings.prior_z:g} standard errors off the mean prediction; a refresh once the new labelled rows reach
{settings.refresh_fraction:g} of the champion's training rows; cooldown of {settings.cooldown_batches}
batches after a promotion for input-drift alarms; after a label alarm, the rows since the change once there are
{settings.min_change_rows:,}, else the newest {settings.window_rows:,} labelled rows), without MLflow, the
registry or tuning. Each retrain fits {chosen} with default parameters on the rows the policy chose and promotes
it only if it beats the champion on the newest held-out rows (`pipeline.model.evaluate.compare`); the policy says
when the batch becomes the reference. The two baselines run the same retrain on the same batches: never, and
after every batch on the newest window. Mean ROC AUC is that of the champion serving each batch, scored before
any retrain the batch triggers. Detection delay counts batches from the change to the first alarm (0
= the changed batch itself raises it).
""",
        tables=[("", table)],
        notes=notes,
        figures={
            "delays_text": ", ".join(delays),
            "delays_ok": delays_ok,
            "false_alarms": false_alarms,
            "stable_batches": stable_count,
            "auc_text": f"{percent(auc_share)} (worst stream {percent(worst_share)})",
            "auc_ok": True if worst_share >= 0.97 else ("partly" if auc_share >= 0.97 else False),
            "retrain_text": (
                f"{percent(retrain_share)} ({monitor_retrains} of {every_retrains}; {refreshes} of them refreshes, "
                f"the alarms' {percent(alarm_share)})"
            ),
            "retrain_ok": retrain_share <= 0.2,
        },
    )
    return section


def _retrains(outcome: StreamOutcome) -> str:
    done = [f"{index} ({'promoted' if promoted else 'rejected'})" for index, promoted in outcome.retrained_at]
    return ", ".join(done) if done else "none"


def _first_promotion(outcome: StreamOutcome) -> str:
    return next((str(index) for index, promoted in outcome.retrained_at if promoted), "never")
