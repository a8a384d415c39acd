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
        self.pending = {}
        self.log = []

    def get_secret_value(self, SecretId, VersionStage="AWSCURRENT"):  # noqa: N803 - boto3's keyword
        if SecretId not in self.values:
            raise NotFound(SecretId)
        return {"SecretString": self.values[SecretId]}

    def put_secret_value(self, SecretId, SecretString, VersionStages=("AWSCURRENT",)):  # noqa: N803
        self.log.append(("put", SecretId, tuple(VersionStages)))
        if "AWSPENDING" in VersionStages:
            self.pending[SecretId] = SecretString
            return {"VersionId": f"{SecretId}-pending"}
        self.put[SecretId] = SecretString
        self.values[SecretId] = SecretString
        return {"VersionId": f"{SecretId}-current"}

    def describe_secret(self, SecretId):  # noqa: N803
        stages = {f"{SecretId}-current": ["AWSCURRENT"]}
        if SecretId in self.pending:
            stages[f"{SecretId}-pending"] = ["AWSPENDING"]
        return {"VersionIdsToStages": stages}

    def update_secret_version_stage(self, SecretId, VersionStage, MoveToVersionId, RemoveFromVersionId):  # noqa: N803
        self.log.append(("stage", SecretId, VersionStage, MoveToVersionId, RemoveFromVersionId))
        assert VersionStage == "AWSCURRENT" and MoveToVersionId == f"{SecretId}-pending"
        self.values[SecretId] = self.pending.pop(SecretId)


@pytest.fixture
def hostctl(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("hostctl", HOSTCTL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DRIFTLOOP_DB_SECRET_ARN", "db")
    monkeypatch.setenv("DRIFTLOOP_GRAFANA_SECRET_ARN", "grafana")
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN", "")
    for role in ("mlflow", "monitor", "grafana"):
        monkeypatch.setenv(f"DRIFTLOOP_DB_{role.upper()}_USER", f"driftloop_{role}")
        monkeypatch.setenv(f"DRIFTLOOP_DB_{role.upper()}_SECRET_ARN", f"db-{role}")
    monkeypatch.setattr(module, "MONITOR_DB_LOCK", str(tmp_path / "db-password.lock"))
    return module


def role_secrets(**passwords):
    return {
        f"db-{role}": json.dumps({"username": f"driftloop_{role}", "password": pw}) for role, pw in passwords.items()
    }


def test_init_secrets_fills_only_empty_secrets(hostctl, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN", "admin")
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_MONITOR_SECRET_ARN", "monitor")
    monkeypatch.setenv("DRIFTLOOP_GRAFANA_SECRET_KEY_ARN", "grafana-key")
    client = FakeSecrets({"grafana": "kept"})
    hostctl.init_secrets(client)
    assert set(client.put) == {"admin", "monitor", "grafana-key", "db-mlflow", "db-monitor", "db-grafana"}
    roles = {
        json.loads(client.put[f"db-{role}"])["username"]: json.loads(client.put[f"db-{role}"])["password"]
        for role in ("mlflow", "monitor", "grafana")
    }
    assert set(roles) == {"driftloop_mlflow", "driftloop_monitor", "driftloop_grafana"}
    assert len(set(roles.values())) == 3 and all(len(pw) >= 24 for pw in roles.values())
    admin = json.loads(client.put["admin"])
    assert admin["username"] == "admin" and len(admin["password"]) >= 24 and admin["flask_secret_key"]
    monitor = json.loads(client.put["monitor"])
    assert monitor["username"] == "driftloop-monitor" and len(monitor["password"]) >= 24
    assert monitor["password"] != admin["password"]
    assert len(client.put["grafana-key"]) >= 32
    client.put.clear()
    hostctl.init_secrets(client)
    assert not client.put, "a second boot must not regenerate"


def test_exec_puts_secrets_in_the_child_environment_only(hostctl, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_GRAFANA_SECRET_KEY_ARN", "grafana-key")
    client = FakeSecrets(
        {
            "db": json.dumps({"username": "driftloop", "password": "master-pw"}),
            "grafana": "gf-pw",
            "grafana-key": "gf-key",
            **role_secrets(mlflow="mlflow-pw", monitor="monitor-pw", grafana="reader-pw"),
        }
    )
    monkeypatch.setattr(hostctl, "secrets_client", lambda: client)
    calls = []
    monkeypatch.setattr(hostctl.os, "execvpe", lambda path, argv, env: calls.append((argv, env)))
    hostctl.main(["exec", "--db", "grafana", "--grafana", "--", "docker", "compose", "-f", "docker/compose.yaml", "up"])
    hostctl.main(["exec", "--db", "monitor", "--", "pipeline", "monitor"])
    hostctl.main(["exec", "--db", "mlflow", "--", "mlflow-server.sh"])
    (argv, grafana), (_, monitor), (_, mlflow) = calls
    assert argv == ["docker", "compose", "-f", "docker/compose.yaml", "up"]
    # Each service its own role's password; none of them the master's.
    assert grafana["METRICS_DB_PASSWORD"] == "reader-pw" and "PGPASSWORD" not in grafana
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "gf-pw"
    assert grafana["GF_SECURITY_SECRET_KEY"] == "gf-key"  # pragma: allowlist secret
    assert monitor["PGPASSWORD"] == monitor["PIPELINE_METRICS_DB_PASSWORD"] == "monitor-pw"
    assert "METRICS_DB_PASSWORD" not in monitor
    assert mlflow["PGPASSWORD"] == "mlflow-pw" and "PIPELINE_METRICS_DB_PASSWORD" not in mlflow
    for env in (grafana, monitor, mlflow):
        assert "master-pw" not in env.values()
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


def admin_and_monitor(hostctl, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_ADMIN_SECRET_ARN", "admin")
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_MONITOR_SECRET_ARN", "monitor")
    return FakeSecrets(
        {
            "admin": json.dumps({"username": "admin", "password": "admin-pw", "flask_secret_key": "flask"}),
            "monitor": json.dumps({"username": "driftloop-monitor", "password": "monitor-pw"}),
        }
    )


def test_the_server_gets_the_admin_and_the_pipeline_the_monitor_user(hostctl, monkeypatch):
    client = admin_and_monitor(hostctl, monkeypatch)
    monkeypatch.setattr(hostctl, "secrets_client", lambda: client)
    calls = []
    monkeypatch.setattr(hostctl.os, "execvpe", lambda path, argv, env: calls.append((argv, env)))
    hostctl.main(["exec", "--mlflow-admin", "--", "mlflow-server.sh"])
    hostctl.main(["exec", "--mlflow-monitor", "--", "pipeline", "monitor"])
    (_, server), (_, pipeline) = calls
    assert server["MLFLOW_AUTH_ADMIN_USERNAME"] == "admin"
    assert server["MLFLOW_AUTH_ADMIN_PASSWORD"] == "admin-pw"  # pragma: allowlist secret
    assert server["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "flask"  # pragma: allowlist secret
    assert "MLFLOW_TRACKING_PASSWORD" not in server
    assert pipeline["MLFLOW_TRACKING_USERNAME"] == "driftloop-monitor"
    assert pipeline["MLFLOW_TRACKING_PASSWORD"] == "monitor-pw"  # pragma: allowlist secret
    assert not [k for k in pipeline if k.startswith("MLFLOW_AUTH_ADMIN")], "the pipeline never holds the admin"


class FakeMlflow:
    """Answers the admin API calls init-mlflow-users makes, and records them."""

    def __init__(self, users=(), experiments=None, grants=()):
        self.users = set(users)
        self.experiments = dict(experiments or {})
        self.grants = set(grants)
        self.calls = []

    def __call__(self, api, method, path, body=None, query=None):
        self.calls.append((method, path.rsplit("/mlflow/", 1)[1], body or query))
        if path.endswith("/users/get"):
            return (200, {}) if query["username"] in self.users else (404, {"error_code": "RESOURCE_DOES_NOT_EXIST"})
        if path.endswith("/users/create"):
            self.users.add(body["username"])
            return 200, {}
        if path.endswith("/users/update-password"):
            return (200, {}) if body["username"] in self.users else (404, {})
        if path.endswith("/experiments/get-by-name"):
            name = query["experiment_name"]
            if name in self.experiments:
                return 200, {"experiment": {"experiment_id": self.experiments[name]}}
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST"}
        if path.endswith("/experiments/create"):
            self.experiments[body["name"]] = "7"
            return 200, {"experiment_id": "7"}
        key = (body["username"], body["resource_type"], body["resource_id"])
        if path.endswith("/grant"):
            if key in self.grants:
                return 400, {"error_code": "RESOURCE_ALREADY_EXISTS"}
            self.grants.add(key)
        if path.endswith("/revoke"):
            self.grants.discard(key)
        return 200, {}


TWO_MODELS = {
    "credit-default": {
        "schema": "s3://bucket/training/credit-default/schema.json",
        "retrain": None,
        "policy": {},
        "bootstrap_training_data": "s3://bucket/training/credit-default/reference.csv",
    },
    "churn": {"schema": None, "retrain": "auto", "policy": {"drift_threshold": "0.2", "cooldown_batches": "3"}},
}


@pytest.fixture
def two_models(tmp_path, monkeypatch):
    path = tmp_path / "models.json"
    path.write_text(json.dumps(TWO_MODELS))
    monkeypatch.setenv("DRIFTLOOP_MODELS_FILE", str(path))


def test_init_mlflow_users_creates_the_monitor_and_grants_what_it_needs(hostctl, monkeypatch, two_models):
    client = admin_and_monitor(hostctl, monkeypatch)
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_PORT", "5000")
    monkeypatch.delenv("PIPELINE_EXPERIMENT_NAME", raising=False)
    monkeypatch.setattr(hostctl, "wait_for_mlflow", lambda url, timeout: None)
    mlflow = FakeMlflow()
    monkeypatch.setattr(hostctl.MlflowAdmin, "call", lambda api, *args, **kwargs: mlflow(api, *args, **kwargs))
    hostctl.init_mlflow_users(client)
    created = {"username": "driftloop-monitor", "password": "monitor-pw"}  # pragma: allowlist secret
    assert ("POST", "users/create", created) in mlflow.calls
    grants = [body for method, path, body in mlflow.calls if path == "users/permissions/grant"]
    assert grants == [
        *(
            {
                "username": "driftloop-monitor",
                "resource_type": "registered_model",
                "resource_id": model,
                "permission": "MANAGE",  # delete_registered_model_alias (previous) needs it; EDIT does not
            }
            for model in ("churn", "credit-default")  # every model of models.json
        ),
        {"username": "driftloop-monitor", "resource_type": "experiment", "resource_id": "7", "permission": "EDIT"},
    ]
    assert mlflow.experiments == {"driftloop": "7"}

    # A restart: the user exists (its password is set from the secret again), the grants are replaced.
    mlflow.calls.clear()
    hostctl.init_mlflow_users(client)
    paths = [path for _, path, _ in mlflow.calls]
    assert "users/create" not in paths and "users/update-password" in paths
    assert paths.count("users/permissions/revoke") == 3 and "experiments/create" not in paths


def test_each_model_is_configured_then_trained_from_its_own_data_and_schema(hostctl):
    assert hostctl.model_commands("credit-default", TWO_MODELS["credit-default"]) == [
        [
            "train",
            "--model-name=credit-default",
            "--data=s3://bucket/training/credit-default/reference.csv",
            "--if-no-champion",
            "--schema=s3://bucket/training/credit-default/schema.json",
        ]
    ]
    assert hostctl.model_commands("churn", TWO_MODELS["churn"]) == [
        ["configure", "--model-name=churn", "--retrain=auto", "--set=cooldown_batches=3", "--set=drift_threshold=0.2"]
    ]
    assert hostctl.model_commands("plain", {"schema": None, "retrain": None, "policy": {}}) == []


def test_first_champions_runs_every_model_and_fails_when_one_fails(hostctl, monkeypatch, two_models, capsys):
    """A model whose training fails does not keep the others from being set up; the unit then fails (retried)."""
    ran = []

    class Done:
        def __init__(self, returncode):
            self.returncode = returncode

    def run(command, env):
        ran.append(command[1:3])
        assert env["PIPELINE_METRICS_DB_PASSWORD"] == "the-monitor-pw"  # pragma: allowlist secret
        return Done(1 if command[1] == "train" else 0)

    monkeypatch.setattr(hostctl, "hold_monitor_db_lock", lambda exclusive: None)
    secret_env = {"PIPELINE_METRICS_DB_PASSWORD": "the-monitor-pw"}  # pragma: allowlist secret
    monkeypatch.setattr(hostctl, "secrets_env", lambda client, **kw: secret_env)
    monkeypatch.setattr(hostctl.subprocess, "run", run)
    with pytest.raises(SystemExit, match="failed for credit-default"):
        hostctl.first_champions(FakeSecrets({}))
    assert ran == [["configure", "--model-name=churn"], ["train", "--model-name=credit-default"]]
    assert "churn: no bootstrap training data; train its first champion by hand" in capsys.readouterr().out


def test_init_mlflow_users_does_nothing_without_basic_auth(hostctl, monkeypatch):
    monkeypatch.setattr(hostctl, "wait_for_mlflow", lambda url, timeout: pytest.fail("must not wait"))
    hostctl.init_mlflow_users(FakeSecrets({}))


def test_default_experiment_is_the_pipelines(hostctl):
    from pipeline.settings import Settings

    assert Settings.model_fields["experiment_name"].default == hostctl.DEFAULT_EXPERIMENT


class FakeConnection:
    """Records what hostctl asks of PostgreSQL (as the master user)."""

    def __init__(self, log, dbname):
        self.log, self.dbname = log, dbname

    def close(self):
        pass


def test_rotation_stages_the_password_sets_it_then_makes_it_current(hostctl, monkeypatch):
    """AWSPENDING first (a crash never loses the new password), then PostgreSQL, then AWSCURRENT; the monitor's
    rotation waits for a run under way (its lock) and restarts nothing, Grafana's restarts the dashboards."""
    import fcntl

    client = FakeSecrets(
        {"db": json.dumps({"username": "master", "password": "m"}), **role_secrets(monitor="old", grafana="old")}
    )
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_DB", "mlflow")
    log = client.log
    monkeypatch.setattr(hostctl, "db_connect", lambda dbname, user, password: FakeConnection(log, dbname))
    monkeypatch.setattr(
        hostctl, "set_role_password", lambda conn, user, password: log.append(("alter", conn.dbname, user, password))
    )
    monkeypatch.setattr(hostctl.subprocess, "run", lambda argv, check: log.append(("run", *argv)))
    locks = []
    real_flock = fcntl.flock
    monkeypatch.setattr(hostctl.fcntl, "flock", lambda fd, op: (locks.append(op), real_flock(fd, op)))

    hostctl.rotate_db_password(client, "monitor")
    new = json.loads(client.values["db-monitor"])
    assert new["username"] == "driftloop_monitor" and new["password"] not in ("old", "m")
    assert [entry[0] for entry in log] == ["put", "alter", "stage"]
    assert log[0] == ("put", "db-monitor", ("AWSPENDING",))
    assert log[1] == ("alter", "mlflow", "driftloop_monitor", new["password"])
    assert locks == [fcntl.LOCK_EX]

    log.clear()
    hostctl.rotate_db_password(client, "grafana")
    assert [entry[0] for entry in log] == ["put", "alter", "stage", "run"]
    assert log[-1] == ("run", "systemctl", "try-restart", "driftloop-dashboards.service")
    assert locks == [fcntl.LOCK_EX], "only the monitor's rotation takes its lock"


def test_a_monitor_run_holds_its_password_lock_until_it_ends(hostctl, monkeypatch):
    import fcntl

    client = FakeSecrets(role_secrets(monitor="monitor-pw"))
    monkeypatch.setattr(hostctl, "secrets_client", lambda: client)
    calls = []
    monkeypatch.setattr(hostctl.os, "execvpe", lambda path, argv, env: calls.append(argv))
    locks = []
    monkeypatch.setattr(hostctl.fcntl, "flock", lambda fd, op: locks.append((fd, op)))
    hostctl.main(["exec", "--db", "monitor", "--", "pipeline", "monitor"])
    ((fd, op),) = locks
    assert op == fcntl.LOCK_SH and hostctl.os.get_inheritable(fd), "the exec'd run keeps the shared lock"
    hostctl.os.close(fd)
