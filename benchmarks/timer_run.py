"""Section 6: the cost of one timer run, through the CLI as a user runs it.

On a host the monitor runs on a timer and usually finds one new batch, so what a user pays is one whole
``pipeline monitor`` process: start-up and imports, the registry and the champion, reading the file, the batch,
the run's artifacts. Every figure here is a subprocess, timed from its start to its exit, against a throwaway
Postgres, moto S3 and MLflow server, with the demo champion (``pipeline train`` on ``pipeline data synth``'s
reference, as ``make monitor`` bootstraps it) and CSV batches written by ``pipeline data synth``.

The marginal batch is what one more batch adds to a run: (median of the N-batch runs - median of the one-batch
runs) / (N - 1). The baseline is the per-batch work of monitoring with an Evidently report per batch, in one
warm process (no start-up counted): read and validate the CSV, score it with the same champion, run the
Evidently report (``pipeline.stats.evidently_check.measure_with_evidently``). Its drift decisions are compared
with the CLI run's own, batch by batch: the drift alarm (prediction drift, or the share of drifted columns, at
the policy's thresholds) and the drifted-column count.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import BenchStack, Say, Section, Table, median, ratio, seconds

PIPELINE = str(Path(sys.executable).with_name("pipeline"))
MODEL = "bench-timer-admission"


@dataclass(frozen=True)
class TimerConfig:
    rows: int = 100_000
    batches: int = 4  # the long run, for the marginal batch
    one_batch_runs: int = 5
    long_runs: int = 3
    startup_runs: int = 5

    @classmethod
    def quick(cls) -> TimerConfig:
        return cls(rows=5_000, batches=3, one_batch_runs=2, long_runs=1, startup_runs=2)


@dataclass(frozen=True)
class Baseline:
    """One batch of the baseline, in seconds: its three steps."""

    read: float  # read and validate the CSV
    score: float  # the champion's predict_proba
    report: float  # Evidently's report

    @property
    def total(self) -> float:
        return self.read + self.score + self.report


@dataclass
class Timed:
    wall: float
    cpu: float  # the child's user + system CPU seconds
    code: int
    output: str


def timed(args: list[str], env: dict[str, str], cwd: Path) -> Timed:
    """Run one CLI command to its exit; wall-clock and CPU seconds of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu, done.returncode, done.stdout + done.stderr)


def _env(stack: BenchStack) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINE_")}
    env.update(
        {
            "PIPELINE_TRACKING_URI": str(stack.tracking_uri),
            "PIPELINE_METRICS_DB_URL": stack.metrics_dsn,
            "PIPELINE_S3_ENDPOINT_URL": str(stack.s3_endpoint),
            "PIPELINE_ARTIFACT_BUCKET": "bench-artifacts",
            "PIPELINE_EXPERIMENT_NAME": "bench-timer",
            "PIPELINE_MODEL_NAME": MODEL,
            # the cost of monitoring: no refresh retrain (a 100,000-row labelled batch is more new rows than the
            # champion was trained on, so the default refresh would retrain in the run; section 3 times retrains)
            "PIPELINE_REFRESH_FRACTION": "0",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",  # pragma: allowlist secret (moto's fake key)
        }
    )
    return env


def _checked(result: Timed, what: str) -> Timed:
    if result.code != 0:
        raise RuntimeError(f"{what} exited {result.code}: {result.output[-2000:]}")
    return result


def run(config: TimerConfig, stack: BenchStack, say: Say) -> Section:
    env = _env(stack)
    with tempfile.TemporaryDirectory(prefix="bench-timer-") as tmp:
        work = Path(tmp)
        data = work / "demo"
        say(f"writing the demo reference and {config.batches} batches of {config.rows:,} rows (CSV)")
        _checked(
            timed(
                [
                    PIPELINE,
                    "data",
                    "synth",
                    "--out",
                    str(data),
                    "--rows",
                    str(config.rows),
                    "--batches",
                    str(config.batches),
                    "--drift-kind",
                    "none",
                ],
                env,
                work,
            ),
            "data synth",
        )
        say("training the demo champion (`pipeline train`)")
        _checked(timed([PIPELINE, "train", "--data", str(data / "reference.csv")], env, work), "train")
        batches = [str(data / f"batch_{i:03d}.csv") for i in range(1, config.batches + 1)]

        def monitor(paths: list[str]) -> tuple[Timed, list[dict[str, Any]]]:
            report = work / f"report-{uuid.uuid4().hex[:8]}.json"
            args = [PIPELINE, "monitor", "--current", *paths, "--run-id", f"timer-{uuid.uuid4().hex[:12]}"]
            result = _checked(timed([*args, "--report-json", str(report)], env, work), "monitor")
            return result, json.loads(report.read_text())

        monitor(batches[:1])  # warm-up: the first run pays the OS file cache and MLflow's first requests
        one = [monitor(batches[:1])[0] for _ in range(config.one_batch_runs)]
        say(f"one-batch run: median {seconds(median([r.wall for r in one]))}")
        long_runs = [monitor(batches) for _ in range(config.long_runs)]
        long = [result for result, _records in long_runs]
        records = long_runs[0][1]
        say(f"{config.batches}-batch run: median {seconds(median([r.wall for r in long]))}")
        helps = [timed([PIPELINE, "--help"], env, work) for _ in range(config.startup_runs)]
        down = {**env, "PIPELINE_TRACKING_URI": "http://127.0.0.1:9"}  # nothing listens on the discard port
        failing = [
            timed([PIPELINE, "monitor", "--current", batches[0]], down, work) for _ in range(config.startup_runs)
        ]
        if any(f.code == 0 for f in failing):
            raise RuntimeError("a monitor without a tracking server succeeded")
        say("baseline: score plus an Evidently report per batch, in one warm process")
        baseline, decisions = _baseline(stack, batches, records, say)
    one_wall, long_wall = median([r.wall for r in one]), median([r.wall for r in long])
    marginal = (long_wall - one_wall) / (config.batches - 1)
    base = median([b.total for b in baseline])
    read = median([b.read for b in baseline])
    score = median([b.score for b in baseline])
    report = median([b.report for b in baseline])
    speedup = base / marginal if marginal > 0 else float("inf")
    own = marginal - read - score  # what the monitor adds to reading, validating and scoring, per batch
    table = Table(["what", "runs", "wall, median", "CPU, median", "range (wall)"])

    def add(what: str, runs: list[Timed]) -> None:
        walls = [r.wall for r in runs]
        table.rows.append(
            [
                what,
                str(len(runs)),
                seconds(median(walls)),
                seconds(median([r.cpu for r in runs])),
                f"{seconds(min(walls))} – {seconds(max(walls))}",
            ]
        )

    add("`pipeline --help`", helps)
    add("`pipeline monitor` with the tracking server down (fails at once)", failing)
    add(f"`pipeline monitor --current` one batch of {config.rows:,} rows", one)
    add(f"`pipeline monitor --current` {config.batches} batches of {config.rows:,} rows", long)
    summary = Table(["figure", "value"])
    summary.rows += [
        ["one-batch timer run, process start to exit", seconds(one_wall)],
        [f"marginal batch ((N-batch - one-batch) / {config.batches - 1})", seconds(marginal)],
        ["baseline per batch: read + validate + score + Evidently report (warm process)", seconds(base)],
        [
            "of which: read + validate / the champion's predict / Evidently's report",
            " / ".join(seconds(median([getattr(b, part) for b in baseline])) for part in ("read", "score", "report")),
        ],
        ["baseline / marginal batch", ratio(speedup)],
        [
            "the marginal batch less the baseline's read + validate and predict (drift, estimate, store, log)",
            seconds(own),
        ],
        [
            "Evidently's report alone / that",
            ratio(report / own) if own > 0 else "n/a",
        ],
        ["drift decisions equal to the baseline's (batches)", f"{decisions}/{len(records)}"],
    ]
    return Section(
        "6. The cost of one timer run",
        __doc__.split("\n\n", 1)[1] if __doc__ else "",
        tables=[("Each command as a subprocess:", table), ("", summary)],
        notes=[
            "No batch alarms here (the batches are drawn like the reference), so no run renders an Evidently HTML:"
            " a run renders one only for its latest alarmed batch, on at most 5,000 rows of it and of the reference.",
        ],
        figures={
            "rows": config.rows,
            "one_batch": one_wall,
            "marginal": marginal,
            "baseline": base,
            "speedup": speedup,
            "read": read,
            "score": score,
            "report": report,
            "own": own,
            "decisions_equal": decisions == len(records),
        },
    )


def _baseline(
    stack: BenchStack, batches: list[str], records: list[dict[str, Any]], say: Say
) -> tuple[list[Baseline], int]:
    """Seconds per batch of read + validate, score, and an Evidently report, and how many batches' drift decisions
    (prediction drift alarm, drifted-column count) equal the CLI run's ``records``."""
    from pipeline.app.collaborators import Collaborators
    from pipeline.io.data import load_batch
    from pipeline.model.serving import load_version, recorded_reference, schema_for
    from pipeline.settings import Settings
    from pipeline.stats.drift import ReferenceProfile
    from pipeline.stats.evidently_check import measure_with_evidently

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        tracking_uri=str(stack.tracking_uri),
        metrics_db_url=stack.metrics_dsn,
        s3_endpoint_url=stack.s3_endpoint,
        artifact_bucket="bench-artifacts",
        experiment_name="bench-timer",
        model_name=MODEL,
    )
    registry = Collaborators(settings).registry
    champion = registry.champion()
    assert champion is not None
    schema = schema_for(registry, champion, None, "")
    scorer = load_version(registry, champion, schema, settings).scorer
    reference = recorded_reference(champion, schema, registry.name)
    assert reference is not None
    profile = ReferenceProfile(
        reference.frame,
        scorer.proba(reference.frame),
        schema,
        prediction_threshold=settings.drift_threshold,
        column_threshold=settings.column_drift_threshold,
    )
    measure_with_evidently(profile, reference.frame.head(200), scorer.proba(reference.frame.head(200)))  # warm-up
    times, equal = [], 0
    for path, record in zip(batches, records, strict=True):
        started = time.perf_counter()
        frame = load_batch(path, schema).frame
        read = time.perf_counter()
        proba = scorer.proba(frame)
        scored = time.perf_counter()
        theirs = measure_with_evidently(profile, frame, proba)
        done = time.perf_counter()
        times.append(Baseline(read - started, scored - read, done - scored))
        alarm = (
            theirs.prediction_drift >= settings.drift_threshold
            or theirs.share_drifted_columns >= settings.drifted_share_threshold
        )
        equal += int(alarm == record["drift_detected"] and theirs.drifted_columns == record["drifted_columns"])
        say(f"  baseline batch: {seconds(times[-1].total)}")
    return times, equal
