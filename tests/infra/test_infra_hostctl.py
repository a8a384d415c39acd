"""The tracking host's secrets helper, with a fake Secrets Manager client (boto3 is a project dependency)."""

import importlib.util
import json

import pytest
from tfconfig import MODULES

HOSTCTL = MODULES / "tracking_host" / "templates" / "hostctl.py"


class NotFound(Exception):
    pass


class FakeSecrets:
    class exceptions:  # noqa: N801 - mirrors boto3's client.exceptions
        ResourceNotFoundException = NotFound

    def __init__(self, values):
        self.values = dict(values)
        self.put = {}

    def get_secret_value(self, SecretId):  # noqa: N803 - boto3's keyword
        if SecretId not in self.values:
            raise NotFound(SecretId)
        return {"SecretString": self.values[SecretId]}

    def put_secret_value(self, SecretId, SecretString):  # noqa: N803
        self.put[SecretId] = SecretString
        self.values[SecretId] = SecretString


@pytest.fixture
def hostctl(monkeypatch):
    spec = importlib.util.spec_from_file_location("hostctl", HOSTCTL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DRIFTLOOP_DB_SECRET_ARN", "db")
    monkeypatch.setenv("DRIFTLOOP_GRAFANA_SECRET_ARN", "grafana")
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN", "")
    return module


def test_init_secrets_fills_only_empty_secrets(hostctl, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN", "admin")
    client = FakeSecrets({"grafana": "kept"})
    hostctl.init_secrets(client)
    assert set(client.put) == {"admin"}
    admin = json.loads(client.put["admin"])
    assert admin["username"] == "admin" and len(admin["password"]) >= 24 and admin["flask_secret_key"]
    hostctl.init_secrets(client)
    assert set(client.put) == {"admin"}, "a second boot must not regenerate"


def test_exec_puts_secrets_in_the_child_environment_only(hostctl, monkeypatch):
    client = FakeSecrets({"db": json.dumps({"username": "driftloop", "password": "db-pw"}), "grafana": "gf-pw"})
    monkeypatch.setattr(hostctl, "secrets_client", lambda: client)
    calls = []
    monkeypatch.setattr(hostctl.os, "execvpe", lambda path, argv, env: calls.append((argv, env)))
    hostctl.main(["exec", "--db", "--grafana", "--", "docker", "compose", "-f", "docker/compose.yaml", "up", "-d"])
    argv, env = calls[0]
    assert argv == ["docker", "compose", "-f", "docker/compose.yaml", "up", "-d"]
    assert env["PGPASSWORD"] == env["PIPELINE_METRICS_DB_PASSWORD"] == env["METRICS_DB_PASSWORD"] == "db-pw"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "gf-pw"
    assert "PGPASSWORD" not in hostctl.os.environ


def test_exec_without_flags_adds_no_secret(hostctl, monkeypatch):
    client = FakeSecrets({})
    monkeypatch.setattr(hostctl, "secrets_client", lambda: client)
    calls = []
    monkeypatch.setattr(hostctl.os, "execvpe", lambda path, argv, env: calls.append((argv, env)))
    hostctl.main(["exec", "--mlflow-admin", "--", "true"])  # basic auth off: no admin secret to read
    argv, env = calls[0]
    assert argv == ["true"]
    assert not {"PGPASSWORD", "GF_SECURITY_ADMIN_PASSWORD", "MLFLOW_TRACKING_PASSWORD"} & set(env)
