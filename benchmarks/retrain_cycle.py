"""Section 3: one retrain cycle, alarm to promoted champion, on a real MLflow server, registry and Postgres.

``pipeline.model.retrain.retrain`` runs unchanged; its collaborators are wrapped for the duration of the cycle
so that each call's wall time lands in one category: pure fitting (the refit on the whole window too),
validation and holdout predictions, MLflow tracking calls, ``log_model`` (signature, skops serialisation,
artifact upload), registry calls. Nested calls count once, in the outermost category. What the cycle does
besides is "other" (the TPE search itself, the time split, glue).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.common import BenchStack, Say, Section, Table, percent, seconds
from pipeline.demo.synth import DriftKind, Population, load_sample_frame
from pipeline.domain.schema import load_schema
from pipeline.io.data import validate_frame
from pipeline.model.scoring import Scorer
from pipeline.model.train import predict_proba
from pipeline.settings import Settings
from pipeline.stats.drift import ReferenceProfile

OVERHEAD = ("MLflow tracking calls", "log_model", "registry")


@dataclass(frozen=True)
class CycleConfig:
    rows: int = 50_000
    tuning_trials: int = 10
    bootstrap_rows: int = 5_000
    reference_rows: int = 10_000
    seed: int = 99

    @classmethod
    def quick(cls) -> CycleConfig:
        return cls(rows=4_000, tuning_trials=2, bootstrap_rows=2_000, reference_rows=1_000)


class CallTimer:
    """Wall time of wrapped callables by category; a call made inside another wrapped call is not counted."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._depth = 0
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, category: str) -> None:
        original = getattr(owner, name, None)
        if original is None:  # renamed since: the time lands in "other" instead
            return

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return original(*args, **kwargs)
            self._depth += 1
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._depth -= 1
                self.seconds[category] = self.seconds.get(category, 0.0) + time.perf_counter() - start
                self.calls[category] = self.calls.get(category, 0) + 1

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def restore(self) -> None:
        while self._undo:
            self._undo.pop()()


@contextmanager
def instrumented() -> Iterator[CallTimer]:
    import mlflow
    import mlflow.tracking.fluent as fluent

    from pipeline.model import registry, retrain, tracking, tune

    timer = CallTimer()
    for module in (retrain, tune):
        timer.wrap(module, "fit", "fit")
        timer.wrap(module, "evaluate", "validation predictions")
    timer.wrap(retrain, "refit", "fit")  # the chosen candidate again, on the whole window
    timer.wrap(retrain, "compare", "holdout comparison")
    timer.wrap(tracking, "log_model", "log_model")
    for name in ("start_run", "log_params", "log_metrics", "set_tag", "set_tags", "log_dict"):
        timer.wrap(mlflow, name, "MLflow tracking calls")
    timer.wrap(fluent, "end_run", "MLflow tracking calls")  # what leaving a ``with start_run()`` block calls
    for name in ("register", "set_alias", "promote", "tag_version", "champion"):
        timer.wrap(registry.Registry, name, "registry")
    try:
        yield timer
    finally:
        timer.restore()


def run(config: CycleConfig, stack: BenchStack, say: Say) -> Section:
    from mlflow import MlflowClient

    from pipeline.model import flavors, tracking
    from pipeline.model.registry import Registry
    from pipeline.model.retrain import WindowInfo, retrain

    assert stack.tracking_uri is not None
    schema = load_schema()
    model_name = f"bench-{uuid.uuid4().hex[:8]}"
    base = Settings(  # type: ignore[call-arg]
        _env_file=None,
        tracking_uri=stack.tracking_uri,
        s3_endpoint_url=stack.s3_endpoint,
        metrics_db_url=stack.metrics_dsn,
        experiment_name="benchmarks",
        model_name=model_name,
        window_rows=config.rows,
    )
    tracking.connect(base.tracking_uri, base.experiment_name)
    registry = Registry(MlflowClient(), model_name)
    population = Population.fit(load_sample_frame(), schema)
    rng = np.random.default_rng(config.seed)
    quiet: Say = lambda message: None  # noqa: E731

    say(f"bootstrapping a champion on {config.bootstrap_rows:,} rows (1 tuning trial, not timed)")
    bootstrap = validate_frame(population.sample_batch(config.bootstrap_rows, rng), schema, "bootstrap").frame
    first = retrain(
        bootstrap,
        WindowInfo(len(bootstrap), ["bootstrap"], "bootstrap"),
        training=base.model_copy(update={"tuning_trials": 1}).training,
        schema=schema,
        registry=registry,
        champion_model=None,
        say=quiet,
    )
    champion_model = Scorer.trained(first.model, schema)

    window = validate_frame(population.sample_batch(config.rows, rng, DriftKind.concept), schema, "window").frame
    settings = base.model_copy(update={"tuning_trials": config.tuning_trials})
    say(
        f"retrain cycle on {len(window):,} rows: {len(schema.features)} features, 2 candidates, "
        f"{config.tuning_trials} tuning trials"
    )
    stages: dict[str, float] = {}
    with instrumented() as timer:
        start = time.perf_counter()
        outcome = retrain(
            window,
            WindowInfo(len(window), ["window"], "benchmark: concept shift"),
            training=settings.training,
            schema=schema,
            registry=registry,
            champion_model=champion_model,
            say=quiet,
        )
        stages["retrain"] = time.perf_counter() - start
    start = time.perf_counter()
    champion = registry.champion()
    assert champion is not None
    model = flavors.load_model(f"models:/{model_name}/{champion.version}").model
    stages["load new champion"] = time.perf_counter() - start
    batch = window.iloc[-config.reference_rows :].reset_index(drop=True)
    start = time.perf_counter()
    ReferenceProfile(
        batch,
        predict_proba(model, batch, schema),
        schema,
        prediction_threshold=settings.drift_threshold,
        column_threshold=settings.column_drift_threshold,
    )
    stages["new reference profile"] = time.perf_counter() - start
    say(f"retrain cycle: {seconds(stages['retrain'])}, promoted={outcome.promoted}")
    return _section(config, timer, stages, outcome.promoted, outcome.candidate, outcome.split.describe())


def _section(
    config: CycleConfig,
    timer: CallTimer,
    stages: dict[str, float],
    promoted: bool,
    candidate: str,
    split: dict[str, int],
) -> Section:
    measured = dict(timer.seconds)
    measured["other (TPE search, split, glue)"] = stages["retrain"] - sum(measured.values())
    fit = measured.get("fit", 0.0)
    overhead = sum(measured.get(name, 0.0) for name in OVERHEAD)
    total = stages["retrain"] + stages["load new champion"] + stages["new reference profile"]
    table = Table(["stage", "calls", "time", "share of the cycle"])
    order = [
        "fit",
        "validation predictions",
        "holdout comparison",
        *OVERHEAD,
        "other (TPE search, split, glue)",
    ]
    for name in order:
        if name in measured:
            table.rows.append(
                [
                    name,
                    str(timer.calls.get(name, "")) or "–",
                    seconds(measured[name]),
                    percent(measured[name] / total),
                ]
            )
    for name in ("load new champion", "new reference profile"):
        table.rows.append([name, "1", seconds(stages[name]), percent(stages[name] / total)])
    table.rows.append(["**alarm → promoted champion**", "", f"**{seconds(total)}**", "100%"])
    share = overhead / fit if fit else float("nan")
    return Section(
        "3. Retrain cycle",
        f"""
One retrain cycle as the monitor runs it after an alarm: `pipeline.model.retrain.retrain` on a window of
{config.rows:,} labelled rows (drawn after a concept shift, so the challenger beats the champion and is
promoted), split in time into {split["train_rows"]:,} train / {split["validation_rows"]:,} validation /
{split["holdout_rows"]:,} holdout rows; 2 candidates with default parameters, {config.tuning_trials} TPE
trials on the best ({candidate}), comparison with the champion, the chosen candidate refitted on all
{config.rows:,} rows, registration and promotion, all tracked on
a real MLflow server (Postgres backend, artifacts in moto S3). Then what the monitor does on a promotion:
load the new champion from the registry and profile the new reference ({config.reference_rows:,} rows).
Promoted in this run: {"yes" if promoted else "no"}.
""",
        tables=[("", table)],
        notes=[
            f"Pure fit time {seconds(fit)}; MLflow and registry time (tracking calls, log_model, registry) "
            f"{seconds(overhead)}: {percent(share, 0)} of fit time.",
        ],
        figures={"fit": fit, "overhead": overhead, "overhead_share": share, "total": total},
    )
