"""The MLflow server with its basic-auth app (as docs/reliability.md shows): a request without credentials
is refused, one with the right credentials works, and the pipeline's own health check and client work
through it with MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD."""

from __future__ import annotations

import secrets
import shutil
import sys
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from reliability_rig import state_dir

from pipeline.app import stack
from pipeline.model import tracking

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def auth_server() -> Iterator[tuple[str, str]]:
    folder = state_dir("pipeline-rel-auth-")
    password = secrets.token_urlsafe(18)  # pragma: allowlist secret
    ini = folder / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    ini.chmod(0o600)
    port = stack.free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [
        str(mlflow_bin),
        "server",
        "--app-name",
        "basic-auth",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--workers",
        "1",
    ]
    pid_file = folder / "mlflow.pid"
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(24)}
    pid = stack._spawn(cmd, folder / "mlflow.log", pid_file, env)
    uri = f"http://127.0.0.1:{port}"
    stack.wait_until(
        lambda: stack.port_open("127.0.0.1", port) and stack.http_ok(f"{uri}/health"),
        120,
        "MLflow basic-auth server",
        folder / "mlflow.log",
        pid,
    )
    yield uri, password
    stack._stop_pid(pid_file)
    shutil.rmtree(folder, ignore_errors=True)


def get(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback test server
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_unauthenticated_and_wrong_password_requests_are_refused(auth_server):
    uri, password = auth_server
    search = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert get(search) == 401
    assert get(search, ("admin", password + "x")) == 401
    assert get(search, ("admin", password)) == 200


def test_an_authenticated_client_and_the_pipeline_health_check_work(auth_server, monkeypatch):
    uri, password = auth_server
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    tracking.check_server(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment(f"auth-{secrets.token_hex(3)}")
    run = client.create_run(experiment)
    client.log_param(run.info.run_id, "threshold", "0.1")
    assert client.get_run(run.info.run_id).data.params == {"threshold": "0.1"}
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(Exception, match="401|Unauthorized|credentials"):
        MlflowClient(uri).create_experiment("refused")
