"""Run the benchmarks and write ``docs/benchmarks.md``.

python -m benchmarks.run                 # everything, as `make bench` does (about 15 minutes on 2 cores)
python -m benchmarks.run --quick         # a smoke run: small sizes, few runs, minutes not tens of minutes
python -m benchmarks.run --sections 1,4  # some sections only (section 2 comes with section 1)
python -m benchmarks.run --sections 5 --no-stack  # performance estimation against NannyML (`make bench-tools`)
python -m benchmarks.run --sections 6    # the cost of one timer run, through the CLI
python -m benchmarks.run --sections 8,9  # real drift and no-drift replays, through the CLI (`make bench-tools`)
python -m benchmarks.run --sections 10 --no-stack  # why it moved: the drift attribution's hit rate and cost
python -m benchmarks.run --sections 11 --no-stack  # multivariate drift on synthetic streams
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BenchStack,
    Section,
    Table,
    load_average,
    machine,
    percent,
    ratio,
    seconds,
    versions,
)

DEFAULT_OUT = Path("docs/benchmarks.md")


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes and few runs: checks the bench runs.")
    parser.add_argument(
        "--sections", default="1,2,3,4,5,6,7,8,9,10,11", help="Comma-separated sections to run (1 includes 2)."
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"Markdown file to write (default {DEFAULT_OUT}; with --quick, a file in the temp folder).",
    )
    parser.add_argument(
        "--no-stack",
        action="store_true",
        help="Start no Postgres/MLflow: the store stage is skipped and sections 3, 6, 7, 8 and 9 cannot run.",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def _stack(needed: bool, with_mlflow: bool) -> Iterator[BenchStack | None]:
    if not needed:
        yield None
        return
    from benchmarks.common import throwaway_stack

    with throwaway_stack(with_mlflow, _say) as stack:
        yield stack


def run(argv: list[str] | None = None) -> list[Section]:
    args = parse_args(argv)
    wanted = {part.strip() for part in args.sections.split(",") if part.strip()}
    if "2" in wanted:
        wanted.add("1")
    if args.no_stack:
        wanted.discard("3")
        wanted.discard("7")
        wanted.discard("6")
        wanted.discard("8")
        wanted.discard("9")
    started = time.perf_counter()
    load_before = load_average()
    sections: list[Section] = []
    failed: list[str] = []

    def attempt(title: str, produce: Callable[[], list[Section]]) -> None:
        """Run one section; a failure is written into the document and fails the run at the end."""
        try:
            sections.extend(produce())
        except Exception as err:  # noqa: BLE001 - reported, and the exit code says so
            _say(f"{title} failed:\n{traceback.format_exc()}")
            failed.append(title)
            sections.append(Section(title, f"This section failed in this run: `{type(err).__name__}: {err}`."))

    needs_stack = bool(wanted & {"1", "3", "6", "7", "8", "9", "10", "11"})
    with_mlflow = bool(wanted & {"3", "6", "7", "8", "9", "10", "11"})
    with _stack(not args.no_stack and needs_stack, with_mlflow=with_mlflow) as stack:
        if "1" in wanted:
            from benchmarks import throughput
            from pipeline.io.store import MetricsStore

            config = throughput.ThroughputConfig.quick() if args.quick else throughput.ThroughputConfig()
            store = MetricsStore(stack.metrics_dsn) if stack else None
            _say("section 1-2: monitor throughput and agreement")
            attempt("1. Monitor throughput", lambda: list(throughput.run(config, store, _say)))
        if "4" in wanted:
            from benchmarks import quality

            config4 = quality.QualityConfig.quick() if args.quick else quality.QualityConfig()
            _say("section 4: quality under drift")
            attempt("4. Quality under drift", lambda: [quality.run(config4, _say)])
        if "5" in wanted:
            from benchmarks import estimation

            config5 = estimation.EstimationConfig.quick() if args.quick else estimation.EstimationConfig()
            _say("section 5: performance estimation without labels")
            attempt("5. Performance estimation without labels", lambda: [estimation.run(config5, _say)])
        if "10" in wanted:
            from benchmarks import attribution

            config10 = attribution.AttributionConfig.quick() if args.quick else attribution.AttributionConfig()
            _say("section 10: why it moved")
            attempt("10. Why it moved", lambda: [_why_moved(config10, stack, args.quick)])
        if "3" in wanted and stack is not None:
            from benchmarks import retrain_cycle

            config3 = retrain_cycle.CycleConfig.quick() if args.quick else retrain_cycle.CycleConfig()
            _say("section 3: retrain cycle")
            attempt("3. Retrain cycle", lambda: [retrain_cycle.run(config3, stack, _say)])
        if "6" in wanted and stack is not None:
            from benchmarks import timer_run

            config6 = timer_run.TimerConfig.quick() if args.quick else timer_run.TimerConfig()
            _say("section 6: the cost of one timer run")
            attempt("6. The cost of one timer run", lambda: [timer_run.run(config6, stack, _say)])
        if "7" in wanted and stack is not None:
            from benchmarks import bigbatch

            config7 = bigbatch.BigBatchConfig.quick() if args.quick else bigbatch.BigBatchConfig()
            _say("section 7: batches of any size")
            attempt("7. Batches of any size", lambda: [bigbatch.run(config7, stack, _say)])
        if "8" in wanted and stack is not None:
            from benchmarks import real_drift

            config8 = real_drift.RealDriftConfig.quick() if args.quick else real_drift.RealDriftConfig()
            _say("section 8: real drift")
            attempt("8. Real drift", lambda: [real_drift.run(config8, stack, _say)])
        if "9" in wanted and stack is not None:
            from benchmarks import replays

            config9 = replays.ReplayConfig.quick() if args.quick else replays.ReplayConfig()
            _say("section 9: no-drift replays")
            attempt("9. No-drift replays", lambda: [replays.run(config9, stack, _say)])
        if "11" in wanted:
            from benchmarks import multivariate

            config11 = multivariate.MultivariateConfig.quick() if args.quick else multivariate.MultivariateConfig()
            _say("section 11: multivariate drift")
            attempt("11. Multivariate drift", lambda: [_multivariate(config11, stack, args.quick)])
    sections.sort(key=_order)
    elapsed = time.perf_counter() - started
    command = (
        "make bench"
        if os.environ.get("BENCH_VIA_MAKE")
        else "python -m benchmarks.run "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    )
    document = render(
        sections,
        command=command.strip(),
        elapsed=elapsed,
        quick=args.quick,
        load=(load_before, load_average()),
    )
    out = args.out or (Path(tempfile.gettempdir()) / "benchmarks-quick.md" if args.quick else DEFAULT_OUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document, encoding="utf-8")
    _say(f"wrote {out} in {seconds(elapsed)}")
    if failed:
        raise SystemExit(f"failed sections: {', '.join(failed)}")
    return sections


def _order(section: Section) -> tuple[int, str]:
    """Sections in the order of their numbers (10 after 9), then by title."""
    number = section.title.split(".", 1)[0]
    return (int(number) if number.isdigit() else 0, section.title)


def _figure(sections: list[Section], prefix: str) -> dict[str, Any]:
    for section in sections:
        if section.title.startswith(prefix):
            return section.figures
    return {}


def targets(sections: list[Section]) -> Table:
    """Each target of issue 6 against what this run measured."""
    table = Table(["target", "measured", "met"])

    def add(target: str, measured: str, met: bool | str | None) -> None:
        shown = {None: "n/a", True: "yes", False: "**no**"}.get(met, f"**{met}**")  # type: ignore[arg-type]
        table.rows.append([target, measured, shown])

    throughput = _figure(sections, "1.")
    if throughput:
        rows = throughput["largest"]
        largest = throughput["by_rows"][rows]
        add(
            f"{rows:,}-row batch end to end ≤ 1 s",
            f"{seconds(largest['ours'])} wall ({seconds(largest['ours_cpu'])} CPU)",
            largest["ours"] <= 1.0,
        )
        add(
            f"{rows:,}-row batch ≥ 20× faster than Evidently per batch",
            f"{ratio(largest['speedup'])} end to end ({ratio(largest['drift_speedup'])} on the drift stage)",
            largest["speedup"] >= 20,
        )
    agreement = _figure(sections, "2.")
    if agreement:
        add(
            "equal decisions on ≥ 99% of (column, batch) pairs",
            percent(agreement["equal_share"], 2),
            agreement["equal_share"] >= 0.99,
        )
        if "merged_equal_share" in agreement:
            add(
                "merged batch profiles: equal decisions on ≥ 99.5% of (column, batch) pairs",
                percent(agreement["merged_equal_share"], 2),
                agreement["merged_equal_share"] >= 0.995,
            )
            add(
                "merged batch profiles: every score within 1% or 1e-3 of the exact one",
                f"largest deviation {agreement['merged_abs']:.1e} absolute, {agreement['merged_rel']:.1e} relative",
                agreement["merged_in_bound"],
            )
    cycle = _figure(sections, "3.")
    if cycle:
        add(
            "MLflow + registry overhead ≤ 50% of pure fit time",
            f"{percent(cycle['overhead_share'], 0)} ({seconds(cycle['overhead'])} over {seconds(cycle['fit'])} of fit)",
            cycle["overhead_share"] <= 0.5,
        )
    drift = _figure(sections, "4.")
    if drift:
        add("detection within 1 batch of each injected change", drift["delays_text"], drift["delays_ok"])
        add(
            f"0 false alarms over {drift['stable_batches']} stable batches",
            str(drift["false_alarms"]),
            drift["false_alarms"] == 0,
        )
        add(
            "mean ROC AUC ≥ 97% of retrain-every-batch (over the streams; on each stream)",
            drift["auc_text"],
            drift["auc_ok"],
        )
        add("≤ 20% of retrain-every-batch's retrains", drift["retrain_text"], drift["retrain_ok"])
    estimation = _figure(sections, "5.")
    if estimation:
        worse = estimation["worse"]  # data sets where ours is worse by more than 0.0001
        overall = estimation["mae_ours"] <= estimation["mae_theirs"] + 1e-4
        add(
            "estimated ROC AUC: mean absolute error no worse than NannyML CBPE's (all chunks; each data set)",
            f"{estimation['mae_ours']:.4f} vs {estimation['mae_theirs']:.4f}"
            + (f" (worse on {', '.join(worse)})" if worse else " (no data set worse)"),
            (not worse or "partly") if overall else False,
        )
        add(
            "performance estimation ≥ 10× faster than NannyML CBPE (fit + estimate; each data set)",
            f"{ratio(estimation['speedup'])} (smallest on one data set {ratio(estimation['min_speedup'])})",
            estimation["min_speedup"] >= 10 or ("partly" if estimation["speedup"] >= 10 else False),
        )
    timer = _figure(sections, "6.")
    if timer:
        rows = timer["rows"]
        add(
            f"one-batch timer run of {rows:,} rows ≤ 5 s, process start to exit (CLI)",
            seconds(timer["one_batch"]),
            timer["one_batch"] <= 5.0,
        )
        add(f"marginal {rows:,}-row batch ≤ 1 s (CLI)", seconds(timer["marginal"]), timer["marginal"] <= 1.0)
        add(
            "≥ 20× the score-plus-Evidently-report baseline per batch, at equal decisions",
            f"{ratio(timer['speedup'])} ({seconds(timer['baseline'])} per baseline batch)"
            + ("" if timer["decisions_equal"] else ", decisions differ"),
            timer["speedup"] >= 20 and timer["decisions_equal"],
        )
    big = _figure(sections, "7.")
    if big:
        add(
            f"{big['rows']:,}-row batch monitored with peak resident memory ≤ {big['memory_target']:g} GiB",
            f"{big['maxrss_gib']:.2f} GiB",
            big["maxrss_gib"] <= big["memory_target"],
        )
        add(
            f"{big['rows']:,}-row batch: monitor run ≤ {big['time_target']:g} × (read + the champion's predict)",
            f"{big['ratio']:.2f}×",
            big["ratio"] <= big["time_target"],
        )
    real = _figure(sections, "8.")
    for stream in real.get("streams", []):
        label = stream["label"]
        retrains = f"{stream['retrains']} of {stream['every_retrains']} retrains"
        if stream["gain_clear"]:
            measured = f"{percent(stream['share'], 0)} of a gain of {stream['gain']:+.4f}; {retrains}"
            met: bool | None = (
                stream["share"] >= real["share_target"]
                and stream["retrains"] <= real["retrain_target"] * stream["every_retrains"]
            )
        else:
            measured = f"no clear gain to recover ({stream['gain']:+.4f} ± {stream['gain_se']:.4f}); {retrains}"
            met = None
        add(
            f"real drift, {label}: the monitor recovers ≥ {percent(real['share_target'], 0)} of retrain-every-batch's"
            f" ROC AUC gain over never retraining, with ≤ {percent(real['retrain_target'], 0)} of its retrains",
            measured,
            met,
        )
        coverage = stream["coverage"]
        on_real = stream.get("real", True)
        add(
            f"real drift, {label}: estimated ROC AUC mean absolute error ≤ {real['mae_target']:g}"
            + ("" if on_real else " (reported: the target is on real drift, and this change is injected)"),
            f"{stream['mae']:.4f} over {stream['batches']} batches"
            + ("" if coverage is None else f" (interval coverage {percent(coverage, 0)})"),
            stream["mae"] <= real["mae_target"] if on_real else None,
        )
    replays = _figure(sections, "9.")
    for replay in replays.get("replays", []):
        for labelled in (True, False):
            runs = [run for run in replay["runs"] if run["labelled"] == labelled]
            if not runs:
                continue
            add(
                f"no-drift replays, {replay['name']}, batches {'with' if labelled else 'without'} labels:"
                f" ≤ {percent(replays['target'], 0)} of batches alarm, at every batch size",
                ", ".join(f"{run['size']:,} rows {percent(run['rate'], 0)}" for run in runs),
                all(run["rate"] <= replays["target"] for run in runs),
            )
    why = _figure(sections, "10.")
    if why:
        add(
            f"shifted relied-on feature ranked first by its share of prediction drift ≥ {percent(why['target'], 0)}",
            f"{percent(why['hit_rate'], 0)} ({why['hits']} of {why['shifts']} single shifts beyond the noise; "
            f"{why['all_hits']} of {why['all_shifts']} with those below)",
            why["hit_rate"] >= why["target"],
        )
        add(
            "important feature shifted a little ranks above an ignored one shifted a lot",
            f"{why['pair_hits']} of {why['pairs']} beyond the noise, {why.get('all_pair_hits', '?')} of "
            f"{why.get('all_pairs', '?')} in all (the drift-score ranking: {why['pair_score_hits']})",
            why["pair_hits"] == why["pairs"],
        )
        if "cli_shifts" in why:
            add(
                "through the CLI (`pipeline monitor`, `pipeline explain`): the shifted feature ranks first, and the "
                "relied-on one of a pair",
                f"{why['cli_hits']} of {why['cli_shifts']} single shifts; {why['cli_pair_hits']} of {why['cli_pairs']} "
                "pairs",
                None
                if why["cli_shifts"] == 0
                else why["cli_hits"] >= why["target"] * why["cli_shifts"] and why["cli_pair_hits"] == why["cli_pairs"],
            )
        add(
            f"cost of explaining a {why['big_rows']:,}-row batch stated",
            f"{seconds(why['big_seconds'])} end to end, attribution {seconds(why['attribution_seconds'])}",
            None,
        )
    multi = _figure(sections, "11.")
    if multi:
        sizes = multi["by_size"]
        largest = max(sizes)
        add(
            f"multivariate: a flipped correlation (marginals unchanged) alarms within 1 batch ({largest:,} rows)",
            f"{percent(sizes[largest]['flip'], 0)} of flipped batches",
            sizes[largest]["flip"] == 1.0,
        )
        add(
            f"multivariate: batches that did not drift alarm at the stated {percent(multi['stated'], 0)} or less, "
            "at every batch size",
            ", ".join(f"{rows:,} rows {percent(size['false'])}" for rows, size in sorted(sizes.items())),
            all(multi["within"].values()),
        )
        for rows, (false, flipped) in sorted(multi.get("cli", {}).items()):
            add(
                f"multivariate through the CLI ({rows:,}-row batches): the flipped batch alarms, stable ones do not",
                f"flipped {'alarmed' if flipped else 'missed'}, {false} stable batches alarmed",
                bool(flipped) and false == 0,
            )
    return table


def _why_moved(config: Any, stack: Any, quick: bool) -> Section:
    """Section 10 in this process, then (with a stack) its subset through the ``pipeline`` command."""
    from benchmarks import attribution, attribution_cli

    section = attribution.run(config, _say)
    if stack is None:
        return section
    cli_config = attribution_cli.CliConfig.quick() if quick else attribution_cli.CliConfig()
    return attribution.with_cli(section, *attribution_cli.run(cli_config, stack, _say))


def _multivariate(config: Any, stack: Any, quick: bool) -> Section:
    """Section 11 in this process, then (with a stack) the flipped stream through the ``pipeline`` command."""
    from benchmarks import multivariate, multivariate_cli

    section = multivariate.run(config, _say)
    if stack is None:
        return section
    cli_config = multivariate_cli.CliConfig.quick() if quick else multivariate_cli.CliConfig()
    return multivariate.with_cli(section, multivariate_cli.run(cli_config, stack, _say))


def limits(sections: list[Section]) -> list[str]:
    """What holds back the targets this run did not meet, from its own figures."""
    found = []
    throughput = _figure(sections, "1.")
    if throughput:
        rows = throughput["largest"]
        largest = throughput["by_rows"][rows]
        if largest["ours"] > 1.0 or largest["speedup"] < 20:
            stages = largest["stages"]
            shares = ", ".join(
                f"{name} {seconds(value)}" for name, value in sorted(stages.items(), key=lambda item: -item[1])
            )
            common = sum(value for name, value in stages.items() if name != "drift")
            slowest = max(stages, key=stages.get)
            why = {
                "score": "the champion's `predict_proba`, mostly xgboost's own predict",
                "drift": "our drift measurement",
            }.get(slowest, f"the {slowest} step")
            found.append(
                f"Throughput at {rows:,} rows. Our stages, slowest first: {shares}. The slowest is {slowest}"
                f" ({why}). Load, validate, score and store are the same code in both paths and take"
                f" {seconds(common)} together, so however fast drift gets, the end-to-end speed-up cannot"
                f" exceed {ratio((common + largest['baseline_drift']) / common)} on this run; the drift stage"
                f" alone is {ratio(largest['drift_speedup'])} faster than Evidently's report. Wall times"
                " also carry the machine's other load (see the load average above)."
            )
    timer = _figure(sections, "6.")
    if timer and timer["speedup"] < 20:
        shared = timer["read"] + timer["score"]
        found.append(
            f"The timer run's speed-up over score + Evidently. The baseline's batch is {seconds(timer['baseline'])}:"
            f" reading and validating the CSV {seconds(timer['read'])}, the champion's predict"
            f" {seconds(timer['score'])}, Evidently's report {seconds(timer['report'])}. The monitor reads, validates"
            f" and scores too, so even if everything else cost nothing it would be {ratio(timer['baseline'] / shared)}"
            f" faster, not 20×. Beyond those two steps, the marginal batch costs {seconds(timer['own'])} (drift,"
            f" estimate, store, MLflow), {ratio(timer['report'] / timer['own'])} less than Evidently's report alone."
        )
    big = _figure(sections, "7.")
    if big and big["ratio"] > big["time_target"]:
        largest = big["all"][-1]
        extra = largest.seconds - largest.baseline
        found.append(
            f"The {largest.rows:,}-row batch: the run is {seconds(largest.seconds)} against"
            f" {seconds(largest.baseline)} of read + predict; the {seconds(extra)} beyond them are start-up"
            " (about 3 s), validation and the profile of every chunk."
        )
    drift = _figure(sections, "4.")
    if drift and drift["auc_ok"] is not True:
        found.append(
            "Quality under drift: the monitor's mean ROC AUC is within 97% of retraining every batch over"
            " all streams, but not on the concept-shift stream; section 4 says why (a first retrain on a"
            " window of mostly old rows is rejected, then the cooldown delays the next one)."
        )
    replays = _figure(sections, "9.")
    for replay in replays.get("replays", []):
        over = [run for run in replay["runs"] if run["rate"] > replays["target"]]
        if over:
            rules: dict[str, int] = {}
            for run in over:
                for rule, count in run["rules"].items():
                    rules[rule] = rules.get(rule, 0) + count
            ranked = sorted(rules.items(), key=lambda item: -item[1])
            named = ", ".join(f"`{rule}` {count}" for rule, count in ranked if count)
            found.append(
                f"No-drift replays, {replay['name']}: over the target at "
                + ", ".join(f"{run['size']:,} rows {'with' if run['labelled'] else 'without'} labels" for run in over)
                + f"; the rules that fired there, batches: {named} (section 9)."
            )
    return found


def render(sections: list[Section], *, command: str, elapsed: float, quick: bool, load: tuple[str, str]) -> str:
    info = machine()
    lines = [
        "# Benchmarks",
        "",
        "Monitoring throughput, agreement with Evidently, the cost of a retrain cycle, model quality under drift,"
        " performance estimation without labels, the cost of one timer run, batches of any size (the local and"
        " the Spark engine), real drift in daily weather records, and false alarms on no-drift replays by batch"
        " size.",
        "This file is written by `make bench` (`python -m benchmarks.run`); the code is in `benchmarks/`.",
        "",
        f"- Command: `{command}`" + (" (quick mode: small sizes, not the reference figures)" if quick else ""),
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, whole run {seconds(elapsed)}",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['memory']} RAM, {info['os']}, Python {info['python']}",
        f"- Load average (1/5/15 min) at start {load[0]}, at end {load[1]}: figures are wall-clock times, so"
        " other"
        " work on the machine lengthens them",
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in versions().items()),
        "",
        "## Targets",
        "",
        targets(sections).markdown(),
        "",
    ]
    found = limits(sections)
    if found:
        lines += ["What limits the targets not met:", ""] + [f"- {text}" for text in found] + [""]
    for section in sections:
        lines.append(section.markdown())
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    run()
