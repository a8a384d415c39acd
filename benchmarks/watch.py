"""Run one command and report what it cost: ``python -m benchmarks.watch COMMAND...``.

The benchmark starts this wrapper as its own process, so that the command is the wrapper's only child. It
prints the command's output, then one line ``WATCH seconds=... maxrss_kb=... tree_rss_kb=... tree_cpu=...
code=...``:

- ``seconds``: wall time from the command's start to its exit;
- ``maxrss_kb``: the command's own peak resident memory (``getrusage`` of the wrapper's children: exact for a
  single process such as the local engine's monitor);
- ``tree_rss_kb``: the peak of the resident memory summed over the command and all its descendants (a Spark
  engine's JVM and Python workers), sampled every ``INTERVAL`` seconds;
- ``tree_cpu``: CPU seconds (user + system) of the command and all its descendants, sampled likewise: a Spark
  session's JVM is not a child the command waits for, so ``getrusage`` does not count it.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time

INTERVAL = 0.25


def _tree() -> tuple[dict[int, list[int]], dict[int, tuple[float, int]]]:
    """Children of every process, and each process's (CPU seconds incl. reaped children, resident KB)."""
    tick = os.sysconf("SC_CLK_TCK")
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    children: dict[int, list[int]] = {}
    spent: dict[int, tuple[float, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid, parent = int(name), int(fields[1])
        children.setdefault(parent, []).append(pid)
        cpu = sum(int(value) for value in fields[11:15]) / tick  # utime, stime, cutime, cstime
        spent[pid] = (cpu, int(fields[21]) * page_kb)  # rss in pages
    return children, spent


def tree_usage(root: int) -> tuple[float, int]:
    """CPU seconds and resident KB of ``root`` and all its descendants now (Linux ``/proc``)."""
    children, spent = _tree()
    cpu, rss, todo = 0.0, 0, [root]
    while todo:
        pid = todo.pop()
        used, resident = spent.get(pid, (0.0, 0))
        cpu, rss = cpu + used, rss + resident
        todo.extend(children.get(pid, []))
    return cpu, rss


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # noqa: S603
    peak = {"cpu": 0.0, "rss": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                cpu, rss = tree_usage(child.pid)
            except OSError:
                cpu, rss = 0.0, 0
            peak["cpu"], peak["rss"] = max(peak["cpu"], cpu), max(peak["rss"], rss)
            stop.wait(INTERVAL)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_cpu = usage.ru_utime + usage.ru_stime  # the command itself and what it waited for, exactly
    print(output)
    print(
        f"WATCH seconds={elapsed:.3f} maxrss_kb={usage.ru_maxrss} tree_rss_kb={peak['rss']} "
        f"tree_cpu={max(peak['cpu'], own_cpu):.2f} code={child.returncode}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
