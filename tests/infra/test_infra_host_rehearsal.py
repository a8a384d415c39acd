"""The tracking host rehearsed on this machine, as far as it can be without booting an instance.

Fast checks: the rendered cloud-init passes `cloud-init schema`, its shell scripts pass shellcheck, and its
systemd units pass `systemd-analyze verify`.

The rehearsal (marked e2e): bootstrap.sh runs as root in private mount and network namespaces, with /etc,
/opt, /var/lib and /usr/local/lib overlaid on throwaway folders, `systemctl` stubbed, the project cloned from
a local copy of this repository and pip kept off the network. Then, in the test's own network namespace, the
host's units run their exact commands as the `driftloop` user: MLflow's ExecStartPre/ExecStart/ExecStartPost
lines (basic auth on, as by default), the first-champion unit (twice, as after a reboot), the runbook's first
training by hand (`run-pipeline train --model-name NAME --data s3://... --schema s3://...`), and the monitor
timer's ExecStart (`--all-models` on the root inbox) twice against a moto server (S3 and Secrets Manager) and a
real PostgreSQL with TLS standing in for RDS. The host watches two models with different schemas: one trained
by the first-champion unit from its bootstrap data, the other by hand after the unit set its retraining mode
and policy; one timer run monitors both. While MLflow runs, a request without credentials that would move
`champion` is refused and the monitor's own MLflow user may move it, but not manage users.

The database as on RDS: the master user is no superuser and logs in with a password, and every client checks
the stand-in's certificate (sslmode=verify-full, its CA fetched by bootstrap.sh as the RDS bundle is). Each
service logs in as its own role. Between the two monitor runs the master password is rotated (in PostgreSQL and
in the emulator's secret) and so is the monitor's own (the rotation timer's command); the second run and an
MLflow request then succeed, the old monitor password is refused, and Grafana's role may read but not INSERT.
Last, a registry writer points the champion's `reference_uri` tag at an address of their choice
(http://127.0.0.1:PORT/x, a port of the test's own listener): `pipeline explain` under the monitor's unit refuses it
in one line, and the listener sees no connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import textwrap
import time
import urllib.error
import urllib.request
from base64 import b64encode
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml
from test_infra_cloud_init import TEMPLATE, files_of, render, template_values
from tfconfig import ROOT

from pipeline.domain.schema import read_schema

SHELLCHECK = shutil.which("shellcheck")
CLOUD_INIT = shutil.which("cloud-init")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
FIRST_CHAMPION_DATA = "s3://driftloop-artifacts/training/reference.csv"
TWO_MODELS = {
    "driftloop-model": {"bootstrap_training_data": FIRST_CHAMPION_DATA},
    "loans": {"retrain": "challenger", "policy": {"cooldown_batches": "3"}},
}
MASTER_PASSWORD = "master-before-rotation"  # pragma: allowlist secret (the stand-in's, set by the fixture)
OVERLAID = ("/etc", "/opt", "/var/lib", "/usr/local/lib")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def system_python_matches() -> bool:
    """The host's venv borrows this environment's packages, so the system python3 must be the same minor."""
    try:
        out = subprocess.run(
            ["/usr/bin/python3", "-c", "import sys, venv; print(sys.version_info[:2])"], capture_output=True, text=True
        )
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == str(tuple(sys.version_info[:2]))


def rendered_config(enable_basic_auth: bool, models: dict | None = None, **overrides) -> tuple[str, dict]:
    values = {**template_values(enable_basic_auth, models), **overrides}
    text = render(TEMPLATE.read_text(), values)
    return text, yaml.safe_load(text)


def unit_lines(unit: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(f"{key}=")]


# ---------------------------------------------------------------- static checks of the rendered host


@pytest.mark.skipif(CLOUD_INIT is None, reason="cloud-init is not installed (apt-get install cloud-init)")
@pytest.mark.parametrize("enable_basic_auth", [False, True], ids=["basic-auth-off", "basic-auth-on-two-models"])
def test_cloud_init_passes_its_schema(enable_basic_auth, tmp_path):
    text, _ = rendered_config(enable_basic_auth, TWO_MODELS if enable_basic_auth else None)
    path = tmp_path / "user-data.yaml"
    path.write_text(text)
    result = subprocess.run([CLOUD_INIT, "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid" in result.stdout


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed (apt-get install shellcheck)")
def test_embedded_shell_scripts_pass_shellcheck(tmp_path):
    _, config = rendered_config(True, TWO_MODELS)
    scripts = {path: body for path, body in files_of(config).items() if body.startswith("#!/usr/bin/env bash")}
    assert set(scripts) == {
        "/usr/local/lib/driftloop/bootstrap.sh",
        "/usr/local/lib/driftloop/mlflow-server.sh",
        "/usr/local/lib/driftloop/run-pipeline",
    }
    for path, body in scripts.items():
        script = tmp_path / Path(path).name
        script.write_text(body)
        result = subprocess.run([SHELLCHECK, "--shell=bash", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path}:\n{result.stdout}"
    runcmd = tmp_path / "runcmd.sh"
    runcmd.write_text("".join(shlex.join(c) + "\n" if isinstance(c, list) else c + "\n" for c in config["runcmd"]))
    result = subprocess.run([SHELLCHECK, "--shell=bash", str(runcmd)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_hostctl_is_python_not_shell():
    """hostctl is the one embedded program shellcheck does not cover: it is Python, run by the rehearsal."""
    _, config = rendered_config(False)
    assert files_of(config)["/usr/local/lib/driftloop/hostctl"].startswith("#!/opt/driftloop/venv/bin/python\n")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("enable_basic_auth", [False, True], ids=["basic-auth-off", "basic-auth-on-two-models"])
def test_systemd_units_pass_verify(enable_basic_auth, tmp_path):
    """The units, under a temporary root whose ExecStart binaries are stubs, pass `systemd-analyze verify`."""
    _, config = rendered_config(enable_basic_auth, TWO_MODELS if enable_basic_auth else None)
    root = tmp_path / "root"
    for path, body in files_of(config).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    for binary in ("usr/local/lib/driftloop/hostctl", "usr/bin/docker", "opt/driftloop/venv/bin/pipeline"):
        stub = root / binary
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    for system_units in ("usr/lib/systemd/system", "lib/systemd/system"):  # sysinit.target, timers.target, ...
        if (Path("/") / system_units).is_dir() and not (root / system_units).exists():
            shutil.copytree(Path("/") / system_units, root / system_units, symlinks=True)
    (root / "opt/driftloop/src").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/driftloop").mkdir(parents=True, exist_ok=True)
    units = sorted(str(root / path.lstrip("/")) for path in files_of(config) if path.startswith("/etc/systemd/"))
    assert len(units) == 8, "the first-champion unit sets up every model, with or without bootstrap data"
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", f"--root={root}", "--man=no", *units], capture_output=True, text=True
    )
    own = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "driftloop" in line and "docker.service" not in line
    ]
    assert result.returncode == 0 or not own, "\n".join(own) or result.stderr
    assert not own, "\n".join(own)


# ---------------------------------------------------------------- the rehearsal


SANDBOX = """#!/usr/bin/env bash
# Overlay the host's system folders on throwaway ones, then run the given command.
set -euo pipefail
base=$1
shift
mount --make-rprivate /
for dir in {overlaid}; do
  name=$(printf %s "$dir" | tr / _)
  mkdir -p "$base/$name/upper" "$base/$name/work"
  mount -t overlay overlay -o "lowerdir=$dir,upperdir=$base/$name/upper,workdir=$base/$name/work" "$dir"
done
exec "$@"
""".replace("{overlaid}", " ".join(OVERLAID))

# Runs a command the way systemd runs a unit's command line: the unit's EnvironmentFile, then the
# emulator's settings (what the instance role and the VPC give a real host), from the unit's folder.
RUN_UNIT = """#!/usr/bin/env bash
set -euo pipefail
set -a
# shellcheck source=/dev/null
. /etc/driftloop/host.env
# shellcheck source=/dev/null
. "$EMULATOR_ENV"
set +a
cd "$1"
shift
exec "$@"
"""


def _needs_root_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "the rehearsal needs root (mount namespaces, overlays, useradd)"
    if shutil.which("unshare") is None or shutil.which("runuser") is None:
        return "unshare and runuser are needed"
    if shutil.which("openssl") is None:
        return "openssl is needed for the database's TLS certificate"
    if not system_python_matches():
        return f"/usr/bin/python3 with venv must be Python {sys.version_info[0]}.{sys.version_info[1]}, like this test"
    if tls_postgres_bin() is None:
        return "no PostgreSQL with TLS support (apt-get install postgresql); RDS only accepts TLS"
    return None


def tls_postgres_bin() -> Path | None:
    """A PostgreSQL build with OpenSSL (Debian's), since the host connects with TLS (verify-full)."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        pg_config = candidate / "pg_config"
        if not (candidate / "postgres").exists():
            continue
        if not pg_config.exists():
            return candidate  # Debian's server package, built with OpenSSL, ships no pg_config
        configure = subprocess.run([str(pg_config), "--configure"], capture_output=True, text=True).stdout
        if "with-openssl" in configure or "with-ssl=openssl" in configure:
            return candidate
    return None


@pytest.fixture
def tls_postgres(monkeypatch):
    """A real PostgreSQL (system binaries) with TLS on, like RDS with rds.force_ssl."""
    from pipeline.app import stack
    from pipeline.app.stack_config import DB_ROLE, StackConfig

    bin_dir = tls_postgres_bin()
    monkeypatch.setattr(stack, "postgres_bin_dir", lambda: bin_dir)
    cfg = StackConfig(state_dir=stack.new_state_dir("host-rehearsal-pg-"), pg_port=stack.free_port())
    stack.start_postgres(cfg)
    data = cfg.pg_data
    # Its own CA, named for the address the host connects to, so clients can verify-full against it.
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
        + ["-keyout", str(data / "server.key"), "-out", str(data / "server.crt")],
        check=True,
        capture_output=True,
    )
    (data / "server.key").chmod(0o600)
    shutil.copy(data / "server.crt", cfg.state_dir / "ca.pem")
    # Only TLS connections, as rds.force_ssl = 1 does on RDS; passwords checked (SCRAM), but for the test's own
    # superuser, which stands in for nothing on RDS.
    (data / "pg_hba.conf").write_text(
        "hostssl all postgres 127.0.0.1/32 trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
    )
    stack._chown_tree(data, stack.PG_SYSTEM_USER)

    import psycopg2

    conn = psycopg2.connect(cfg.pg_url("postgres", user="postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ALTER SYSTEM SET ssl = on")
        cur.execute("SELECT pg_reload_conf()")
        # The RDS master user: no superuser, may create databases and roles, logs in with its password.
        cur.execute(f"ALTER ROLE {DB_ROLE} NOSUPERUSER CREATEDB CREATEROLE PASSWORD %s", (MASTER_PASSWORD,))
    conn.close()
    time.sleep(1)
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(cfg.pg_url("postgres", user="postgres") + "?sslmode=disable").close()
    yield cfg
    stack.stop_postgres(cfg)
    shutil.rmtree(cfg.state_dir, ignore_errors=True)


@pytest.fixture
def emulator():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws(service: str, endpoint: str):
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


def build_wheelhouse(folder: Path) -> Path:
    """The project's build backend, so pip can build the checkout without an index (cached between runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not list(folder.glob("setuptools-*.whl")):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "-d", str(folder)]
            + ["setuptools>=68", "wheel"],
            check=True,
        )
    return folder


@pytest.mark.e2e
@pytest.mark.skipif(_needs_root_namespaces() is not None, reason=str(_needs_root_namespaces()))
def test_host_bootstraps_trains_and_monitors_its_inbox(tls_postgres, emulator):
    """Two models of different schemas on one host: the first from its bootstrap training data (the first-champion
    unit), the second as the runbook trains it (run-pipeline over SSM); one timer run monitors both."""
    from pipeline.app import stack

    bucket = "rehearsal-two-models"
    pg = tls_postgres
    mlflow_port = stack.free_port()
    dev_site = sysconfig.get_paths()["purelib"]
    work = Path(stack.new_state_dir("host-rehearsal-"))  # reachable by the driftloop user, unlike tmp_path
    try:
        _rehearse(work, pg, emulator, bucket, mlflow_port, dev_site)
    finally:
        shutil.rmtree(work, ignore_errors=True)


BOOTSTRAPPED, BY_HAND = "driftloop-model", "loans"  # the first champion from bootstrap data; the other by hand


def _rehearse(work, pg, emulator, bucket, mlflow_port, dev_site):
    model = BOOTSTRAPPED
    # The emulated account: the bucket, the RDS-managed secret, and the empty secret the host fills.
    aws("s3", emulator).create_bucket(Bucket=bucket)
    sm = aws("secretsmanager", emulator)
    db_secret = sm.create_secret(
        Name=f"rds!db-{bucket}", SecretString=json.dumps({"username": "pipeline", "password": MASTER_PASSWORD})
    )
    db_role_secrets = {role: sm.create_secret(Name=f"driftloop/db-{role}-{bucket}") for role in DB_ROLE_NAMES}
    grafana_secret = sm.create_secret(Name=f"driftloop/grafana-admin-{bucket}")
    grafana_key_secret = sm.create_secret(Name=f"driftloop/grafana-secret-key-{bucket}")
    mlflow_admin_secret = sm.create_secret(Name=f"driftloop/mlflow-admin-{bucket}")
    mlflow_monitor_secret = sm.create_secret(Name=f"driftloop/mlflow-monitor-{bucket}")
    # The notification topic, with a queue subscribed to read what the host publishes.
    topic = aws("sns", emulator).create_topic(Name=f"driftloop-notifications-{bucket}")["TopicArn"]
    sqs = aws("sqs", emulator)
    queue_url = sqs.create_queue(QueueName=f"notifications-{bucket}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws("sns", emulator).subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    # The project, from a local copy instead of GitHub, at the commit under test.
    origin = work / "origin.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(ROOT), str(origin)], check=True)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    commit = head.stdout.strip()

    inbox = f"s3://{bucket}/inbox/"  # the root inbox; each model's batches go to its own folder
    inboxes = {name: f"{inbox}{name}/" for name in (BOOTSTRAPPED, BY_HAND)}
    ca_bundle = work / "ca-bundle.pem"
    shutil.copy(pg.state_dir / "ca.pem", ca_bundle)
    training_data = f"s3://{bucket}/training/reference.csv"
    schemas = {name: f"s3://{bucket}/training/{name}/schema.json" for name in (BOOTSTRAPPED, BY_HAND)}
    by_hand_data = f"s3://{bucket}/training/{BY_HAND}/reference.csv"
    models = {
        BOOTSTRAPPED: {"schema": schemas[BOOTSTRAPPED], "bootstrap_training_data": training_data},
        BY_HAND: {"retrain": "challenger", "policy": {"cooldown_batches": "3"}},
    }
    _, config = rendered_config(
        True,  # basic auth, as by default
        models,
        project_git_url=f"file://{origin}",
        project_git_commit=commit,  # fetched by its id, as from GitHub
        artifact_bucket=bucket,
        db_host="127.0.0.1",
        db_port=pg.pg_port,
        db_secret_arn=db_secret["ARN"],
        db_sslmode="verify-full",  # against the stand-in's own CA, fetched as the RDS bundle is
        db_ca_bundle_url=f"file://{ca_bundle}",
        db_ca_bundle_sha256=hashlib.sha256(ca_bundle.read_bytes()).hexdigest(),
        **{f"db_{role}_secret_arn": secret["ARN"] for role, secret in db_role_secrets.items()},
        metrics_db_name="host_metrics",  # created by `hostctl init-db`, as on first boot
        grafana_secret_arn=grafana_secret["ARN"],
        grafana_secret_key_arn=grafana_key_secret["ARN"],
        mlflow_admin_secret_arn=mlflow_admin_secret["ARN"],
        mlflow_monitor_secret_arn=mlflow_monitor_secret["ARN"],
        auth_db_name="host_mlflow_auth",  # created by `hostctl init-db` too
        mlflow_port=mlflow_port,
        inbox_uri=inbox,
        notify_sns_topic_arn=topic,
        heartbeat_namespace=f"driftloop/{bucket}",
    )
    files = files_of(config)

    # write_files, as cloud-init would, into the overlays' upper folders.
    layers = work / "layers"
    for entry in config["write_files"]:
        lower = next(d for d in OVERLAID if entry["path"].startswith(d + "/"))
        target = layers / lower.replace("/", "_") / "upper" / entry["path"][len(lower) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"])
        target.chmod(int(entry["permissions"], 8))
    sandbox = work / "sandbox.sh"
    sandbox.write_text(SANDBOX)
    sandbox.chmod(0o755)

    # 1. First boot: bootstrap.sh as root, no network at all, systemctl recorded.
    stubs = work / "stubs"
    stubs.mkdir()
    calls = work / "systemctl.calls"
    (stubs / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (stubs / "systemctl").chmod(0o755)
    wheelhouse = build_wheelhouse(ROOT / ".tools" / "wheelhouse")
    boot_env = {
        **os.environ,
        "PATH": f"{stubs}:{HOST_PATH}",  # the system python3, as on Ubuntu, not this test's interpreter
        "PIP_NO_INDEX": "1",  # nothing from PyPI: the build backend from a local folder,
        "PIP_FIND_LINKS": str(wheelhouse),
        "PYTHONPATH": dev_site,  # and the project's dependencies from this test's own environment
    }
    etc, opt = layers / "_etc" / "upper", layers / "_opt" / "upper"
    runcmd = [c if isinstance(c, list) else ["bash", "-c", c] for c in config["runcmd"]]
    assert runcmd == [["bash", "/usr/local/lib/driftloop/bootstrap.sh"]]
    boot = subprocess.run(
        ["unshare", "-m", "-n", str(sandbox), str(layers), *runcmd[0]],
        env=boot_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert boot.returncode == 0, boot.stdout + boot.stderr
    assert calls.read_text().splitlines() == [
        "daemon-reload",
        "enable --now docker.service",
        "enable --now driftloop-mlflow.service",
        "enable --now driftloop-dashboards.service",
        "enable --now --no-block driftloop-first-champion.service",
        "enable --now driftloop-monitor.timer",
        "enable --now driftloop-db-password-rotation.timer",
    ]
    assert (etc / "driftloop/rds-ca.pem").read_bytes() == ca_bundle.read_bytes(), "the CA bundle, fetched and checked"
    assert any(line.startswith("driftloop:") for line in (etc / "passwd").read_text().splitlines())
    checkout = subprocess.run(
        ["git", "-C", str(opt / "driftloop/src"), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    assert checkout.stdout.strip() == commit
    assert (opt / "driftloop/venv/bin/pipeline").exists() and (opt / "driftloop/venv/bin/python").exists()
    assert (layers / "_var_lib" / "upper" / "driftloop").is_dir(), "the driftloop user's home"
    # pip found mlflow already installed (on PYTHONPATH), so it wrote no `mlflow` script into the venv:
    # write the one a full install writes.
    script = opt / "driftloop/venv/bin/mlflow"
    script.write_text("#!/opt/driftloop/venv/bin/python\nimport sys\nfrom mlflow.cli import cli\nsys.exit(cli())\n")
    script.chmod(0o755)

    # 2. Data: each model's first training set, its schema and one new batch, uploaded as the runbook says.
    data, other = write_two_tables(work)
    s3 = aws("s3", emulator)
    s3.upload_file(str(data / "reference.csv"), bucket, "training/reference.csv")
    s3.upload_file(str(other / "reference.csv"), bucket, f"training/{BY_HAND}/reference.csv")
    for name, folder in ((BOOTSTRAPPED, data), (BY_HAND, other)):
        s3.upload_file(str(folder / "schema.json"), bucket, f"training/{name}/schema.json")

    # 3. The units' commands as the host runs them, from the rendered unit files.
    mlflow_unit = files["/etc/systemd/system/driftloop-mlflow.service"]
    monitor_unit = files["/etc/systemd/system/driftloop-monitor.service"]
    (timer_command,) = unit_lines(monitor_unit, "ExecStart")
    rotation_unit = files["/etc/systemd/system/driftloop-db-password-rotation.service"]
    (rotate_command,) = unit_lines(rotation_unit, "ExecStart")
    assert unit_lines(monitor_unit, "OnFailure") == ["driftloop-notify-failure@%n.service"]
    hook_unit = files["/etc/systemd/system/driftloop-notify-failure@.service"]
    (hook_start,) = unit_lines(hook_unit, "ExecStart")
    # What systemd runs for driftloop-notify-failure@driftloop-monitor.service.service on a host named so.
    hook_command = hook_start.replace("%i", "driftloop-monitor.service").replace("%H", "rehearsal-host")
    assert timer_command.endswith(
        f"/opt/driftloop/venv/bin/pipeline monitor --inbox {inbox} --all-models --max-batch-mb 1024 --fail-on-alarm"
    )
    assert unit_lines(monitor_unit, "User") == ["driftloop"] and unit_lines(monitor_unit, "WorkingDirectory") == [
        "/var/lib/driftloop"
    ]
    # What the instance role and AWS's endpoints give a real host, the packages pip did not install, the
    # folder systemd's RuntimeDirectory= makes for MLflow's unit, and two tuning trials instead of five to keep
    # the run short.
    assert unit_lines(mlflow_unit, "RuntimeDirectory") == ["driftloop-mlflow"]
    runtime = work / "runtime"
    emulator_env = work / "emulator.env"
    emulator_env.write_text(
        textwrap.dedent(f"""\
        AWS_ACCESS_KEY_ID=test
        AWS_SECRET_ACCESS_KEY=test
        AWS_ENDPOINT_URL={emulator}
        PYTHONPATH={dev_site}
        HOME=/var/lib/driftloop
        RUNTIME_DIRECTORY={runtime}
        MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT=true
        PIPELINE_TUNING_TRIALS=2
        """)
    )
    run_unit = work / "run-unit"
    run_unit.write_text(RUN_UNIT)
    run_unit.chmod(0o755)
    results = work / "results"
    results.mkdir()
    os.chmod(work, 0o755)
    os.chmod(results, 0o777)

    def as_service_user(workdir: str, command: str) -> str:
        return (
            f"runuser -u driftloop -- env -i PATH={HOST_PATH} EMULATOR_ENV={emulator_env} "
            f"{run_unit} {workdir} {command}"
        )

    # The runbook's `sudo -u driftloop /usr/local/lib/driftloop/run-pipeline train --model-name NAME --data
    # s3://... --schema s3://...`; the emulator's settings stand in for the instance role.
    emulator_vars = " ".join(emulator_env.read_text().split())
    train = (
        f"runuser -u driftloop -- env -i PATH={HOST_PATH} {emulator_vars} /usr/local/lib/driftloop/run-pipeline "
        f"train --model-name {BY_HAND} --data {by_hand_data} --schema {schemas[BY_HAND]}"
    )
    # The same wrapper as the timer's (the monitor's database role and MLflow user), another command.
    explain_command = (
        timer_command.split(" -- ", 1)[0]
        + f" -- /opt/driftloop/venv/bin/pipeline explain --model-name {BY_HAND} --batch 1"
    )
    first_unit = files["/etc/systemd/system/driftloop-first-champion.service"]
    (first_start,) = unit_lines(first_unit, "ExecStart")
    assert first_start == "/usr/local/lib/driftloop/hostctl first-champions"
    first_champions = as_service_user(unit_lines(first_unit, "WorkingDirectory")[0], first_start)
    steps = [
        f"{as_service_user('/', pre)} > {results}/mlflow-pre.log 2>&1"
        for pre in unit_lines(mlflow_unit, "ExecStartPre")
    ]
    (mlflow_start,) = unit_lines(mlflow_unit, "ExecStart")
    (mlflow_post,) = unit_lines(mlflow_unit, "ExecStartPost")
    script = "\n".join(
        [
            "set -uo pipefail",
            f"install -d -o driftloop -g driftloop -m 0700 {runtime}",
            *[s + " || exit 11" for s in steps],
            f"{as_service_user('/', mlflow_start)} > {results}/mlflow.log 2>&1 &",
            "mlflow=$!",
            # systemd runs ExecStartPost once ExecStart is forked; it waits for /health itself.
            f"{as_service_user('/', mlflow_post)} > {results}/mlflow-post.log 2>&1 || {{ kill $mlflow; exit 14; }}",
            f"health=http://127.0.0.1:{mlflow_port}/health",
            'for _ in $(seq 90); do curl -sf "$health" >/dev/null && break; sleep 1; done',
            'curl -sf "$health" >/dev/null || { kill $mlflow; exit 12; }',
            # First boot: the unit sets up both models and trains the one with bootstrap data.
            f"{first_champions} > {results}/first-champions.log 2>&1; echo $? > {results}/first-champions.rc",
            f"{train} > {results}/train.log 2>&1; echo $? > {results}/train.rc",
            # A second first-boot run (a reboot) finds the champion and trains nothing.
            f"{first_champions} > {results}/train-again.log 2>&1 || exit 13",
            f"touch {results}/ready",
            # The batch lands in the inbox only now, like a user's upload after the first champion.
            f"while [ ! -f {results}/uploaded ]; do sleep 0.2; done",
            f"{as_service_user('/var/lib/driftloop', timer_command)} > {results}/monitor-1.log 2>&1",
            f"echo $? > {results}/monitor-1.rc",
            f"while [ ! -f {results}/counted ]; do sleep 0.2; done",
            # The master password has been rotated meanwhile; now the rotation timer's run rotates the monitor's.
            f"{as_service_user('/var/lib/driftloop', rotate_command)} > {results}/rotate.log 2>&1",
            f"echo $? > {results}/rotate.rc",
            f"{as_service_user('/var/lib/driftloop', timer_command)} > {results}/monitor-2.log 2>&1",
            f"echo $? > {results}/monitor-2.rc",
            f"{as_service_user('/var/lib/driftloop', hook_command)} > {results}/hook.log 2>&1",
            f"echo $? > {results}/hook.rc",
            # A registry writer points the champion's reference tag at an address of their choice.
            f"while [ ! -f {results}/tagged ]; do sleep 0.2; done",
            f"{as_service_user('/var/lib/driftloop', explain_command)} > {results}/explain.log 2>&1",
            f"echo $? > {results}/explain.rc",
            # MLflow keeps running until the test has asked it and the database once more.
            f"while [ ! -f {results}/asked-again ]; do sleep 0.2; done",
            "pkill -TERM -P $mlflow 2>/dev/null; kill $mlflow; wait $mlflow 2>/dev/null",
            "exit 0",
        ]
    )
    (work / "host.sh").write_text(script + "\n")
    host = subprocess.Popen(
        ["unshare", "-m", str(sandbox), str(layers), "bash", str(work / "host.sh")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 900
    while not (results / "ready").exists() and host.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    if (results / "ready").exists():
        upload_batch(data / "batch_001.csv", inboxes[BOOTSTRAPPED], emulator)
        upload_batch(other / "batch_001.csv", inboxes[BY_HAND], emulator)
        (results / "uploaded").touch()
    while not (results / "monitor-1.rc").exists() and host.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    after_first = {name: recorded_batches(pg, name) for name in (BOOTSTRAPPED, BY_HAND)}
    try:
        answers = {
            name: ask_mlflow(f"http://127.0.0.1:{mlflow_port}", name, sm, mlflow_monitor_secret["ARN"])
            for name in (BOOTSTRAPPED, BY_HAND)
        }
        old_monitor = json.loads(
            sm.get_secret_value(SecretId=db_role_secrets["monitor"]["ARN"], VersionStage="AWSCURRENT")["SecretString"]
        )
        rotate_master_password(pg, sm, db_secret["ARN"])
    finally:
        (results / "counted").touch()
    while not (results / "hook.rc").exists() and host.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        after_rotation = ask_after_rotation(
            pg, f"http://127.0.0.1:{mlflow_port}", model, sm, mlflow_monitor_secret["ARN"], db_role_secrets, ca_bundle
        )
        after_rotation["old monitor password"] = db_login(pg, "host_metrics", old_monitor, ca_bundle)
        with listening() as listener:
            untrusted = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
            tag_reference(f"http://127.0.0.1:{mlflow_port}", BY_HAND, sm, mlflow_monitor_secret["ARN"], untrusted)
            (results / "tagged").touch()
            while not (results / "explain.rc").exists() and host.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            connections = accepted(listener)
    finally:
        (results / "tagged").touch()
        (results / "asked-again").touch()
    output, _ = host.communicate(timeout=900)

    def log(name: str) -> str:
        path = results / name
        return path.read_text() if path.exists() else f"({name} missing)"

    detail = "\n".join(
        f"--- {n}\n{log(n)[-3000:]}"
        for n in (
            "mlflow-pre.log",
            "mlflow.log",
            "mlflow-post.log",
            "first-champions.log",
            "train.log",
            "monitor-1.log",
            "rotate.log",
            "monitor-2.log",
        )
    )
    assert host.returncode == 0, output + detail
    assert log("first-champions.rc").strip() == "0", detail
    assert log("train.rc").strip() == "0", detail
    assert log("monitor-1.rc").strip() == "0", detail
    assert log("rotate.rc").strip() == "0", detail
    assert "rotated the password of database role driftloop_monitor" in log("rotate.log"), detail
    assert log("monitor-2.rc").strip() == "0", detail
    # The first-champion unit: the by-hand model's mode and policy, the other's first champion with its schema.
    first = log("first-champions.log")
    assert f"{BY_HAND}: retraining mode challenger (" in first, detail
    assert f"{BY_HAND}: no bootstrap training data; train its first champion by hand" in first, detail
    assert f"--data={training_data} --if-no-champion --schema={schemas[BOOTSTRAPPED]}" in first, detail
    assert f"{BOOTSTRAPPED} v1 " in first and "is champion" in first, detail
    assert f"{BY_HAND} v1 " in log("train.log") and "is champion" in log("train.log"), detail
    assert f"{BOOTSTRAPPED}: champion is v1; nothing to bootstrap" in log("train-again.log"), log("train-again.log")
    assert "loans: retraining mode challenger (" in log("train-again.log"), log("train-again.log")
    # One timer run monitored both models; the second found nothing new in either.
    assert "2 model(s): 2 monitored" in " ".join(log("monitor-1.log").split()), detail
    assert " ".join(log("monitor-2.log").split()).count("nothing new (1 batches recorded)") == 2, detail
    assert log("hook.rc").strip() == "0", log("hook.log")
    # Tags are not addresses: the untrusted reference tag is refused in one line, and nothing connects to it.
    refused = [line for line in log("explain.log").splitlines() if "is refused" in line]
    assert log("explain.rc").strip() == "2" and "Traceback" not in log("explain.log"), log("explain.log")
    assert len(refused) == 1 and f"tag reference_uri='{untrusted}' is refused" in refused[0], log("explain.log")
    assert connections == 0
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])]
    assert any("driftloop-monitor.service failed on rehearsal-host" in body for body in bodies), bodies
    # The heartbeat: the run that recorded a batch of each model put one data point for each; the idle run none.
    assert heartbeat_sums(emulator, f"driftloop/{bucket}") == {BOOTSTRAPPED: 1.0, BY_HAND: 1.0}, detail

    assert after_first == {BOOTSTRAPPED: 1, BY_HAND: 1}, detail
    assert [recorded_batches(pg, name) for name in (BOOTSTRAPPED, BY_HAND)] == [1, 1], (
        "the second run must record nothing new\n" + detail
    )

    # Basic auth: nobody without the monitor's (or the admin's) password reads or moves anything; the monitor's
    # user manages both models.
    assert f"MANAGE on models {BOOTSTRAPPED}, {BY_HAND}, EDIT on experiment driftloop" in log("mlflow-post.log")
    expected = {
        "move champion, no credentials": 401,
        "move champion, wrong password": 401,
        "read champion, no credentials": 401,
        "read champion, monitor": 200,
        "move champion, monitor": 200,
        "create a user, monitor": 403,
    }
    assert answers == {BOOTSTRAPPED: expected, BY_HAND: expected}, answers

    # One role per service, none the master; the rotations of the master's and the monitor's passwords left
    # MLflow and the monitor working; Grafana's role reads and cannot write.
    assert "driftloop_grafana may SELECT in host_metrics" in log("mlflow-pre.log"), detail
    new_monitor = json.loads(
        sm.get_secret_value(SecretId=db_role_secrets["monitor"]["ARN"], VersionStage="AWSCURRENT")["SecretString"]
    )
    assert new_monitor["password"] != old_monitor["password"]
    assert after_rotation == {
        "database owners": {
            "mlflow": "driftloop_mlflow",
            "host_mlflow_auth": "driftloop_mlflow",
            "host_metrics": "driftloop_monitor",
        },
        "sessions of other roles": [],  # MLflow's pool, while it runs, is its own role's; none is the master's
        "read champion after the rotations, monitor": 200,
        "grafana reads": 2,  # the batch of each model
        "grafana inserts": "InsufficientPrivilege: permission denied for table batch_metrics",
        "grafana creates a table": "InsufficientPrivilege: permission denied for schema public",
        "grafana in the mlflow database": "refused: permission denied for database",
        "monitor in the mlflow database": "refused: permission denied for database",
        "monitor, new password": "ok",  # pragma: allowlist secret
        "old monitor password": "refused: password authentication failed",  # pragma: allowlist secret
    }, after_rotation


DB_ROLE_NAMES = ("mlflow", "monitor", "grafana")


def write_two_tables(work: Path) -> tuple[Path, Path]:
    """Two tables of different schemas, each with its schema file: the demo's rows and schema, and rows of another
    seed without two of its columns, their schema inferred (`pipeline schema infer`)."""
    pipeline = str(Path(sys.executable).with_name("pipeline"))
    folders = work / "data", work / "other"
    for folder, seed in zip(folders, ("42", "7"), strict=True):
        subprocess.run(
            [pipeline, "data", "synth", "--out", str(folder), "--rows", "600", "--batches", "1"]
            + ["--reference-rows", "3000", "--drift-kind", "none", "--seed", seed],
            check=True,
            capture_output=True,
        )
    data, other = folders
    shutil.copy(ROOT / "pipeline" / "demo" / "features.json", data / "schema.json")
    for name in ("reference.csv", "batch_001.csv"):
        rows = pd.read_csv(other / name)
        rows.drop(columns=["gender", "arrivalmode"]).to_csv(other / name, index=False)
    subprocess.run(
        [pipeline, "schema", "infer", "--data", str(other / "reference.csv"), "--target", "disposition"]
        + ["--positive", "admit", "--out", str(other / "schema.json")],
        check=True,
        capture_output=True,
    )
    features = [set(read_schema(folder / "schema.json").features) for folder in folders]
    assert {"gender", "arrivalmode"} <= features[0] and not {"gender", "arrivalmode"} & features[1]
    return data, other


def rotate_master_password(pg, sm, secret_arn: str) -> None:
    """What RDS does every 7 days: a new master password, in the database and in its managed secret."""
    import psycopg2

    from pipeline.app.stack_config import DB_ROLE

    new = "master-after-rotation"  # pragma: allowlist secret (the stand-in's)
    conn = psycopg2.connect(pg.pg_url("postgres", user="postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"ALTER ROLE {DB_ROLE} PASSWORD %s", (new,))
    conn.close()
    sm.put_secret_value(SecretId=secret_arn, SecretString=json.dumps({"username": DB_ROLE, "password": new}))


def db_login(pg, database: str, credentials: dict, ca_bundle: Path, statement: str | None = None):
    """'ok' (or the statement's first value), or what the server answered, in a few words."""
    import psycopg2

    try:
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=pg.pg_port,
            dbname=database,
            user=credentials["username"],
            password=credentials["password"],
            sslmode="verify-full",
            sslrootcert=str(ca_bundle),
            connect_timeout=10,
        )
    except psycopg2.OperationalError as error:
        text = str(error)
        known = ("password authentication failed", "permission denied for database")
        return "refused: " + next((k for k in known if k in text), text)
    try:
        with conn.cursor() as cur:
            if statement is None:
                return "ok"
            cur.execute(statement)
            return cur.fetchone()[0] if cur.description else "done"
    except psycopg2.Error as error:
        return f"{type(error).__name__}: {error.diag.message_primary}"
    finally:
        conn.close()


def ask_after_rotation(pg, base_url, model, sm, monitor_secret_arn, db_role_secrets, ca_bundle) -> dict:
    import psycopg2

    roles = {
        role: json.loads(sm.get_secret_value(SecretId=secret["ARN"], VersionStage="AWSCURRENT")["SecretString"])
        for role, secret in db_role_secrets.items()
    }
    conn = psycopg2.connect(pg.pg_url("postgres", user="postgres"))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN %s",
            (("mlflow", "host_mlflow_auth", "host_metrics"),),
        )
        owners = dict(cur.fetchall())
        cur.execute(
            # Client sessions only: an autovacuum worker in one of these databases has no role (usename NULL).
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname IN %s AND backend_type = 'client backend' "
            "ORDER BY 1",
            (("mlflow", "host_mlflow_auth", "host_metrics"),),
        )
        sessions = [row[0] for row in cur.fetchall()]
    conn.close()
    monitor = json.loads(sm.get_secret_value(SecretId=monitor_secret_arn)["SecretString"])
    request = urllib.request.Request(
        f"{base_url}/api/2.0/mlflow/registered-models/alias?name={model}&alias=champion",
        headers={
            "Authorization": "Basic " + b64encode(f"{monitor['username']}:{monitor['password']}".encode()).decode()
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            champion = response.status
    except urllib.error.HTTPError as error:
        champion = error.code
    grafana, metrics = roles["grafana"], "host_metrics"
    return {
        "database owners": owners,
        "sessions of other roles": [user for user in sessions if user not in {"driftloop_mlflow", "driftloop_monitor"}],
        "read champion after the rotations, monitor": champion,
        "grafana reads": db_login(pg, metrics, grafana, ca_bundle, "SELECT count(*) FROM batch_metrics"),
        "grafana inserts": db_login(pg, metrics, grafana, ca_bundle, "INSERT INTO batch_metrics DEFAULT VALUES"),
        "grafana creates a table": db_login(pg, metrics, grafana, ca_bundle, "CREATE TABLE intruder (x int)"),
        "grafana in the mlflow database": db_login(pg, "mlflow", grafana, ca_bundle),
        "monitor in the mlflow database": db_login(pg, "mlflow", roles["monitor"], ca_bundle),
        "monitor, new password": db_login(pg, metrics, roles["monitor"], ca_bundle),
    }


@contextlib.contextmanager
def listening():
    """A listener on a free port where the untrusted tag points, to see whether the host ever connects to it (a
    fixed port, such as 9, could be reached by another test meanwhile)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        yield listener
    finally:
        listener.close()


def accepted(listener: socket.socket) -> int:
    """Connections the listener received (and holds in its backlog)."""
    count = 0
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def tag_reference(base_url: str, model: str, sm, monitor_secret_arn: str, uri: str) -> None:
    """Set the champion's ``reference_uri`` tag as any user allowed to edit the model may (the monitor's)."""
    monitor = json.loads(sm.get_secret_value(SecretId=monitor_secret_arn)["SecretString"])
    auth = "Basic " + b64encode(f"{monitor['username']}:{monitor['password']}".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": auth}
    read = urllib.request.Request(f"{base_url}/api/2.0/mlflow/registered-models/alias?name={model}&alias=champion")
    read.add_header("Authorization", auth)
    with urllib.request.urlopen(read, timeout=30) as response:
        version = json.load(response)["model_version"]["version"]
    body = json.dumps({"name": model, "version": version, "key": "reference_uri", "value": uri}).encode()
    tag = urllib.request.Request(
        f"{base_url}/api/2.0/mlflow/model-versions/set-tag", data=body, method="POST", headers=headers
    )
    with urllib.request.urlopen(tag, timeout=30) as response:
        assert response.status == 200


def ask_mlflow(base_url: str, model: str, sm, monitor_secret_arn: str) -> dict[str, int]:
    """HTTP status of what an outsider, and the monitor's user, may do to the registry (basic auth on)."""
    monitor = json.loads(sm.get_secret_value(SecretId=monitor_secret_arn)["SecretString"])

    def status(method: str, path: str, body: dict | None = None, auth: tuple[str, str] | None = None) -> int:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    alias = "/api/2.0/mlflow/registered-models/alias"
    read = f"{alias}?name={model}&alias=champion"
    user = (monitor["username"], monitor["password"])
    with urllib.request.urlopen(
        urllib.request.Request(
            base_url + read,
            headers={"Authorization": "Basic " + b64encode(f"{user[0]}:{user[1]}".encode()).decode()},
        ),
        timeout=30,
    ) as response:
        champion = json.load(response)["model_version"]["version"]
    move = {"name": model, "alias": "champion", "version": champion}  # to where it is: harmless if allowed
    return {
        "move champion, no credentials": status("POST", alias, move),
        "move champion, wrong password": status("POST", alias, move, (monitor["username"], "not-the-password")),
        "read champion, no credentials": status("GET", read),
        "read champion, monitor": status("GET", read, auth=user),
        "move champion, monitor": status("POST", alias, move, user),
        "create a user, monitor": status(
            "POST", "/api/2.0/mlflow/users/create", {"username": "intruder", "password": "x" * 16}, user
        ),
    }


def upload_batch(path: Path, inbox: str, endpoint: str) -> None:
    """`aws s3 cp batch.csv s3://BUCKET/inbox/MODEL/`, as the runbook says (boto3 when the CLI is absent)."""
    if shutil.which("aws"):
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",  # pragma: allowlist secret
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        subprocess.run(["aws", "s3", "cp", str(path), inbox], env=env, check=True, capture_output=True)
    else:
        bucket, prefix = inbox.removeprefix("s3://").split("/", 1)
        aws("s3", endpoint).upload_file(str(path), bucket, prefix + path.name)


def heartbeat_sums(endpoint: str, namespace: str) -> dict[str, float]:
    """The monitor's heartbeat in the emulator's CloudWatch: the sum of BatchesRecorded of each model, last hour."""
    cloudwatch = aws("cloudwatch", endpoint)
    now = datetime.now(UTC)
    sums: dict[str, float] = {}
    for metric in cloudwatch.list_metrics(Namespace=namespace, MetricName="BatchesRecorded")["Metrics"]:
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName="BatchesRecorded",
            Dimensions=metric["Dimensions"],
            StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(minutes=5),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        (model,) = [d["Value"] for d in metric["Dimensions"] if d["Name"] == "Model"]
        sums[model] = sum(point["Sum"] for point in points)
    return sums


def recorded_batches(pg, model: str) -> int | None:
    import psycopg2

    try:
        conn = psycopg2.connect(pg.pg_url("host_metrics", user="postgres"))
    except psycopg2.OperationalError:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM batch_metrics WHERE model_name = %s", (model,))
            return cur.fetchone()[0]
    except psycopg2.Error:
        return None
    finally:
        conn.close()
