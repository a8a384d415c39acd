"""The benchmark document's structure: the targets table and every section (no figure is checked)."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# benchmarks/ sits beside the package, not in it: it runs from the repository root and is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import rainfall  # noqa: E402
from benchmarks import run as bench  # noqa: E402
from benchmarks.common import Section, Table  # noqa: E402


def test_the_document_has_the_targets_table_and_every_section():
    sections = [
        Section(
            "1. Monitor throughput",
            "intro",
            [("", Table(["a"], [["1"]]))],
            figures={
                "largest": 100,
                "by_rows": {100: {"ours": 0.5, "ours_cpu": 0.6, "speedup": 30.0, "drift_speedup": 90.0}},
            },
        ),
        Section("3. Retrain cycle", "intro", figures={"fit": 10.0, "overhead": 6.0, "overhead_share": 0.6}),
    ]
    document = bench.render(sections, command="make bench", elapsed=1.0, quick=False, load=("0", "0"))
    assert document.startswith("# Benchmarks")
    for heading in ("## Targets", "## 1. Monitor throughput", "## 3. Retrain cycle"):
        assert heading in document
    targets = bench.targets(sections)
    assert [row[2] for row in targets.rows] == ["yes", "yes", "**no**"]
    assert np.isfinite(float(targets.rows[0][1].split()[0]))


def test_the_estimation_targets_compare_error_and_speed_with_nannyml():
    def rows(figures):
        return bench.targets([Section("5. Performance estimation without labels", "intro", figures=figures)]).rows

    met = {"mae_ours": 0.02, "mae_theirs": 0.02, "worse": [], "speedup": 20.0, "min_speedup": 12.0}
    assert [row[2] for row in rows(met)] == ["yes", "yes"]
    one_worse = {**met, "worse": ["synth: stable"], "min_speedup": 8.0}
    assert [row[2] for row in rows(one_worse)] == ["**partly**", "**partly**"]
    missed = {**met, "mae_ours": 0.03, "speedup": 5.0, "min_speedup": 4.0}
    assert [row[2] for row in rows(missed)] == ["**no**", "**no**"]


def test_the_merged_profile_targets_read_the_agreement_figures():
    figures = {"equal_share": 1.0, "merged_equal_share": 0.996, "merged_abs": 8e-5, "merged_rel": 9e-4}
    rows = bench.targets(
        [Section("2. Agreement with Evidently", "intro", figures={**figures, "merged_in_bound": True})]
    )
    assert [row[2] for row in rows.rows] == ["yes", "yes", "yes"]
    missed = {**figures, "merged_equal_share": 0.99, "merged_in_bound": False}
    rows = bench.targets([Section("2. Agreement with Evidently", "intro", figures=missed)])
    assert [row[2] for row in rows.rows] == ["yes", "**no**", "**no**"]


# ---------------------------------------------------------------- sections 8 and 9: the pure parts


def _weather_like(rows, rng):
    """Six columns with distinct distributions and dependence: two correlated temperatures, a skewed wind and a
    gust that follows it, a bounded visibility, a pressure of its own."""
    warm = rng.normal(size=rows)
    wind = rng.exponential(size=rows)
    return np.column_stack(
        [
            warm,
            0.9 * warm + 0.3 * rng.normal(size=rows),
            wind,
            wind + 0.5 * rng.exponential(size=rows),
            rng.uniform(0, 10, size=rows),
            rng.normal(5, 0.2, size=rows),
        ]
    )


def test_a_rotation_of_the_columns_is_found_and_undone():
    import pandas as pd

    rng = np.random.default_rng(1)
    truth = _weather_like(4_000, rng)
    change = 2_500
    shipped = truth.copy()
    shipped[change:] = np.roll(truth[change:], -2, axis=1)  # after the change, column j holds column j + 2
    assert shipped[change, 0] == truth[change, 2]
    rotation = rainfall.infer_rotation(shipped[:change], shipped[change:])
    assert rotation.shift == 2
    assert rotation.correlation[2] < min(c for k, c in enumerate(rotation.correlation) if k != 2)
    # Correlations alone cannot tell the two temperatures apart (each relates to the others alike); the rotation
    # is the best ordering up to that pair.
    assert rotation.best_ordering[:4] == (2, 3, 4, 5) and set(rotation.best_ordering[4:]) == {0, 1}
    names = [f"c{i}" for i in range(6)]
    frame = pd.DataFrame(shipped, columns=names).assign(y=np.arange(4_000) % 2)
    restored = rainfall.derotate(frame, names, rotation.shift, change)
    np.testing.assert_array_equal(restored[names].to_numpy(), truth)
    np.testing.assert_array_equal(restored["y"].to_numpy(), frame["y"].to_numpy())
    np.testing.assert_array_equal(frame[names].to_numpy(), shipped)  # the input is left as it was


def test_columns_that_were_not_rotated_are_left_as_they_are():
    rng = np.random.default_rng(2)
    data = _weather_like(3_000, rng)
    assert rainfall.infer_rotation(data[:1_500], data[1_500:]).shift == 0


def test_time_batches_are_consecutive_and_whole():
    assert rainfall.time_batches(10, 40, 7) == [(10, 17), (17, 24), (24, 31), (31, 38)]
    assert rainfall.time_batches(0, 5, 7) == []


def test_replay_draws_repeat_rows_within_a_batch_only_when_the_pool_is_too_small():
    rng = np.random.default_rng(3)
    small = rainfall.replay_draws(100, 30, 40, rng)
    assert len(small) == 40 and all(len(b) == 30 for b in small)
    assert all(len(set(b.tolist())) == 30 for b in small)  # no row twice in a batch
    assert all(b.min() >= 0 and b.max() < 100 for b in small)
    assert len({tuple(sorted(b.tolist())) for b in small}) == 40  # independent draws, not one batch repeated
    seen = np.concatenate(small)
    assert len(set(seen.tolist())) > 30  # rows come back across batches, from the whole pool
    large = rainfall.replay_draws(100, 250, 3, rng)
    assert all(len(b) == 250 and len(set(b.tolist())) < 250 for b in large)
    assert all(b.min() >= 0 and b.max() < 100 for b in large)


def test_the_share_of_the_gain_and_its_error():
    assert rainfall.share_of_gain(0.85, 0.80, 0.90) == pytest.approx(0.5)
    assert rainfall.share_of_gain(0.90, 0.80, 0.90) == pytest.approx(1.0)
    assert rainfall.share_of_gain(0.78, 0.80, 0.90) == pytest.approx(-0.2)
    assert np.isnan(rainfall.share_of_gain(0.85, 0.80, 0.80))  # nothing to recover
    assert np.isnan(rainfall.share_of_gain(0.85, 0.80, 0.79))
    gain, se = rainfall.paired_gain([0.9, 0.8, 0.7, float("nan")], [0.8, 0.8, 0.8, 0.8])
    assert gain == pytest.approx(0.0)
    assert se == pytest.approx(0.1 / np.sqrt(3))


def test_estimate_error_coverage_and_the_rules_read_from_records():
    assert rainfall.mean_absolute_error([0.8, None, 0.7], [0.75, 0.9, 0.8]) == pytest.approx(0.075)
    assert np.isnan(rainfall.mean_absolute_error([None], [0.8]))
    assert rainfall.coverage([0.8, 0.7, 0.9, 0.6], [0.75, 0.72, 0.85, None], [0.85, 0.8, 0.9, 0.7]) == pytest.approx(
        2 / 3
    )
    assert np.isnan(rainfall.coverage([0.8], [None], [None]))
    record = {"drift_detected": True, "performance_drop": False, "estimated_drop": True, "drift_p": 0.01}
    assert rainfall.rules_fired(record) == ["drift_detected", "estimated_drop"]
    assert rainfall.p_fields([{"a": 1}, record, {"auc_p": 0.5, "drift_p": 0.2}]) == ["drift_p", "auc_p"]


def test_the_real_drift_and_replay_targets():
    real = {
        "share_target": 0.8,
        "retrain_target": 0.5,
        "mae_target": 0.03,
        "streams": [
            {
                "label": "real",
                "share": float("nan"),
                "gain": 0.001,
                "gain_se": 0.002,
                "gain_clear": False,
                "retrains": 10,
                "every_retrains": 44,
                "mae": 0.02,
                "coverage": None,
                "batches": 44,
            },
            {
                "label": "injected",
                "real": False,
                "share": 0.9,
                "gain": 0.2,
                "gain_se": 0.01,
                "gain_clear": True,
                "retrains": 23,
                "every_retrains": 44,
                "mae": 0.05,
                "coverage": 0.9,
                "batches": 44,
            },
        ],
    }
    replays = {
        "target": 0.02,
        "replays": [
            {
                "name": "weather",
                "runs": [
                    {"size": 200, "labelled": True, "alarmed": 2, "batches": 50, "rate": 0.04, "rules": {}},
                    {"size": 500, "labelled": True, "alarmed": 0, "batches": 50, "rate": 0.0, "rules": {}},
                    {"size": 200, "labelled": False, "alarmed": 1, "batches": 50, "rate": 0.02, "rules": {}},
                ],
            },
        ],
    }
    rows = bench.targets(
        [Section("8. Real drift", "", figures=real), Section("9. No-drift replays", "", figures=replays)]
    )
    met = [row[2] for row in rows.rows]
    # real: no clear gain (n/a), MAE met; injected: 23 > 22 retrains (no), MAE 0.05 reported, not a target (the
    # change is injected, not real drift: n/a); replays: 4% (no), 2% (yes)
    assert met == ["n/a", "yes", "**no**", "n/a", "**no**", "yes"]
    assert "coverage 90%" in rows.rows[3][1] and "injected" in rows.rows[3][0]


def test_sections_8_and_9_render_from_their_records():
    from benchmarks import real_drift, replays

    def record(auc, action="none", **flags):
        return {"roc_auc": auc, "estimated_roc_auc": auc + 0.01, "action": action, "champion_version": 1, **flags}

    stream = real_drift.StreamResult("injected", "injected", 1_825, "m v1 (xgboost)", "xgboost", change_batch=2)
    stream.years = [
        real_drift.Year(1, 1_825, 2_190, record(0.85), 0.85, 0.85, "xgboost"),
        real_drift.Year(2, 2_190, 2_555, record(0.60, "retrained-promoted", drift_detected=True), 0.60, 0.62, "logreg"),
        real_drift.Year(3, 2_555, 2_920, record(0.84, drift_p=0.2), 0.55, 0.83, "logreg"),
    ]
    assert stream.retrains == 1 and stream.promotions == 1 and stream.alarms == 1
    assert stream.mae == pytest.approx(0.01)
    rotation = rainfall.Rotation(1, tuple(float(k) for k in range(8)), (0.1,) * 8, (1, 2, 3, 4, 5, 6, 7, 0), 3.5)
    section8 = real_drift._section(
        [stream], rotation, real_drift.RealDriftConfig(), real_drift.Defaults(20_000, 0.2, 0.2), 18_159, "0.2.0", 60.0
    )
    replay = replays.Replay("weather", "weather", "r v1 (logreg)", 100, 100)
    replay.runs = [replays.Run(200, True, [record(0.8, drift_detected=True), record(0.8)], 10.0)]
    section9 = replays._section([replay], replays.ReplayConfig(sizes=(200,), unlabelled=False), "0.2.0", 20.0)
    document = bench.render([section8, section9], command="x", elapsed=1.0, quick=True, load=("0", "0"))
    assert "## 8. Real drift" in document and "## 9. No-drift replays" in document
    assert "| 3 | 2,555–2,919 | 0.840 | 0.550 | 0.830 (logreg) |" in document  # the per-batch row
    assert "| 200 | 2 | 1 (50%) | 1 | 0 | 0 | 0 (0) |" in document
    assert "`drift_p`" in document


def test_section_10_measures_reliance_on_the_model_alone():
    from benchmarks import attribution

    rows = 500
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"used": rng.standard_normal(rows), "unused": rng.standard_normal(rows)})

    def proba(batch):
        return 1.0 / (1.0 + np.exp(-batch["used"].to_numpy()))

    permuted = attribution.permutation_reliance(proba, frame, ["used", "unused"], seed=1)
    assert permuted["used"] > 0.1 and permuted["unused"] == 0.0
    moved = attribution.shift_reliance(proba, frame, ["used", "unused"], 2.0, {"used": 1.0, "unused": 1.0})
    assert moved["used"] > 0.1 and moved["unused"] == 0.0
    present = {"used": 1.0, "unused": 1.0}
    assert attribution.ignored_features(permuted, moved, present) == ["unused"]
    assert attribution.ignored_features(permuted, moved, {"used": 1.0, "unused": 0.5}) == []
    # a column a shuffle leaves unchanged but a large shift moves is not ignored
    assert attribution.ignored_features({"x": 0.0}, {"x": 0.2}, {"x": 1.0}) == []


def test_section_10_counts_only_the_shifts_beyond_the_stable_batches_noise():
    from benchmarks import attribution

    stable = [0.02, 0.05, 0.03]
    assert attribution.beyond_noise(0.06, stable)
    assert not attribution.beyond_noise(0.05, stable)
    assert not attribution.beyond_noise(float("nan"), stable)
    assert not attribution.beyond_noise(1.0, [])

    def outcome(rank, counted):
        return attribution.Outcome("f", 0.5, rank, 1, 1, 0.5, 0.1, counted)

    outcomes = [outcome(1, True), outcome(2, True), outcome(1, True), outcome(3, False), outcome(1, False)]
    assert attribution.hit_count(outcomes) == (2, 3)


def test_section_11_judges_each_batch_size_against_the_stated_rate():
    from benchmarks import multivariate

    assert multivariate.within_rate(0, 260, 0.01)
    assert multivariate.within_rate(2, 260, 0.01)  # 0.8%: the interval reaches below 1%
    assert not multivariate.within_rate(10, 100, 0.01)  # 10%: its interval starts above 1%
    assert multivariate.within_rate(0, 0, 0.01)
    tally = multivariate.Tally(200, stable_alarms=1, stable=200, early_alarms=2, early=60)
    assert (tally.false_alarms, tally.calm) == (3, 260)
    table = multivariate.false_alarm_table([tally, multivariate.Tally(500, stable=200, early=60)], 0.01)
    assert [row[0] for row in table.rows] == ["200", "500"]
    assert table.rows[0][2] == "3 of 260" and table.rows[1][-1] == "yes"


def test_section_10_through_the_cli_pairs_with_the_least_relied_on_feature_when_none_is_ignored():
    from benchmarks import attribution_cli

    permuted = {"a": 0.2, "b": 0.001, "c": 0.0, "d": 0.0}
    moved = {"a": 0.3, "b": 0.0, "c": 0.01, "d": 0.0}
    present = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.5}
    assert attribution_cli.least_relied(permuted, moved, present, 2) == ["b", "c"]


def test_section_11_through_the_cli_adds_its_runs_and_their_target():
    from benchmarks import multivariate, multivariate_cli

    runs = [multivariate_cli.CliRun(200, [False] * 10, True, 0.9, 5.0), multivariate_cli.CliRun(2_000, [True], False)]
    section = multivariate.with_cli(Section("11. Multivariate drift", "intro", [("a", Table(["x"]))]), runs)
    assert [row[1] for row in section.tables[1][1].rows] == ["0 of 10", "1 of 1"]
    section.figures.update({"by_size": {200: {"flip": 1.0, "false": 0.0}}, "stated": 0.01, "within": {200: True}})
    met = [row[2] for row in bench.targets([section]).rows]
    assert met == ["yes", "yes", "yes", "**no**"]
