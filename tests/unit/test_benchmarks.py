"""The benchmark document's structure: the targets table and every section (no figure is checked)."""

import sys
from pathlib import Path

import numpy as np

# benchmarks/ sits beside the package, not in it: it runs from the repository root and is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

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
