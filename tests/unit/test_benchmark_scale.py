"""The scale benchmark's arithmetic: the cost model's line, and CPU counted over a whole process tree."""

import subprocess
import sys
from pathlib import Path

import pytest

# benchmarks/ sits beside the package, not in it: it runs from the repository root and is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.scale import CostModel, tree_cpu_seconds  # noqa: E402


def test_the_cost_model_finds_the_fixed_and_the_per_row_cost():
    rows = [200_000, 1_000_000, 3_000_000]
    model = CostModel.fit(rows, [4.0 + 2.5e-5 * n for n in rows])

    assert model.fixed == pytest.approx(4.0)
    assert model.per_row == pytest.approx(2.5e-5)
    assert model.seconds(10_000_000) == pytest.approx(254.0)


def test_the_cost_model_needs_two_sizes():
    with pytest.raises(ValueError, match="two sizes"):
        CostModel.fit([1_000_000], [30.0])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_cpu_of_a_child_process_counts():
    burn = "import time\nwhile time.process_time() < 0.4: pass\nprint('burnt', flush=True)\ntime.sleep(30)\n"
    before = tree_cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "burnt"
        assert tree_cpu_seconds() - before >= 0.35
    finally:
        child.kill()
        child.wait()
