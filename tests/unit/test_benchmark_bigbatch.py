"""Section 7's arithmetic and its watcher: the cost model's line, and what a watched command cost."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# benchmarks/ sits beside the package, not in it: it runs from the repository root and is not installed.
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.bigbatch import CostModel  # noqa: E402
from benchmarks.watch import tree_usage  # noqa: E402


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
    before = tree_usage(os.getpid())[0]
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "burnt"
        assert tree_usage(os.getpid())[0] - before >= 0.35
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_watcher_counts_a_grandchild_the_command_does_not_wait_for():
    # the command starts a process it never waits for (as a Spark session's JVM is started), which burns 1 s of
    # CPU and holds 200 MB; the command reads the line the grandchild prints once it has burnt that, and exits
    # while the grandchild still lives; getrusage would count neither. (No fixed sleep: on a loaded machine the
    # grandchild may need longer than any fixed time to get its second of CPU.)
    grandchild = (
        "import time\nblock = b'x' * (200 * 2**20)\nwhile time.process_time() < 1.0: pass\n"
        "print('burnt', flush=True)\ntime.sleep(0.6)\n"
    )
    command = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {grandchild!r}], stdout=subprocess.PIPE, text=True)\n"
        "child.stdout.readline()\ntime.sleep(0.2)\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.watch", sys.executable, "-c", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = dict(part.split("=") for part in out.strip().splitlines()[-1].removeprefix("WATCH ").split())
    assert figures["code"] == "0"
    assert float(figures["seconds"]) >= 1.0  # at least the grandchild's second of CPU
    assert float(figures["tree_cpu"]) >= 0.9
    assert int(figures["tree_rss_kb"]) >= 200 * 1024
    assert int(figures["maxrss_kb"]) < 200 * 1024  # the command itself never held the block
