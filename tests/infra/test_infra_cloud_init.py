"""The tracking host's cloud-init renders with the module's variables, and its shell parts parse."""

import ast
import base64
import gzip
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml
from tfconfig import MODULES, locals_of, named_blocks

from pipeline.app.monitor_result import EXIT_ALARM, EXIT_REJECTED

HOST = MODULES / "tracking_host"
TEMPLATE = HOST / "templates" / "cloud-init.yaml.tftpl"

# The subset of Terraform's template language the cloud-init uses: ${name}, ${indent(n, name)},
# %{ if name } / %{ if !name } / %{ else } / %{ endif }, and the $${ / %%{ escapes. Strip markers (~)
# are left out on purpose: their whitespace rules are subtle, and the template does not need them.
TOKEN = re.compile(r"\$\$\{|%%\{|\$\{([^}]*)\}|%\{\s*(if\s+!?\w+|else|endif)\s*\}")


def render(template: str, values: dict) -> str:
    assert not re.search(r"%\{~|~\}|\$\{~", template), "strip markers are not supported by this renderer"
    out: list[str] = []
    stack: list[bool] = []  # one entry per open if: is this branch emitting?
    pos = 0

    def emit(text: str) -> None:
        if all(stack):
            out.append(text)

    for match in TOKEN.finditer(template):
        emit(template[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token in ("$${", "%%{"):
            emit(token[1:])
        elif match.group(1) is not None:
            emit(evaluate(match.group(1).strip(), values))
        else:
            directive = match.group(2)
            if directive.startswith("if"):
                name = directive.split()[1]
                value = values[name.lstrip("!")]
                assert isinstance(value, bool), f"%{{ if {name} }} needs a bool"
                stack.append(not value if name.startswith("!") else value)
            elif directive == "else":
                stack[-1] = not stack[-1]
            else:
                stack.pop()
    emit(template[pos:])
    assert not stack, "unterminated %{ if }"
    return "".join(out)


def evaluate(expression: str, values: dict) -> str:
    call = re.fullmatch(r"indent\((\d+),\s*(\w+)\)", expression)
    if call:
        return str(values[call.group(2)]).replace("\n", "\n" + " " * int(call.group(1)))
    assert re.fullmatch(r"\w+", expression), f"the test renderer does not know ${{{expression}}}"
    value = values[expression]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def templatefile_keys() -> set[str]:
    call = locals_of(HOST)["user_data"]
    assert "cloud-init.yaml.tftpl" in call
    return set(re.findall(r"(\w+)\s*=", call.split("{", 1)[1]))


NOTIFY_TOPIC = "arn:aws:sns:us-east-1:123456789012:driftloop-notifications"
HEARTBEAT_NAMESPACE = "driftloop/driftloop"


def models_json(models: dict[str, dict]) -> str:
    """main.tf's jsonencode() of the models variable: every attribute present, null when not given."""
    filled = {
        name: {
            "schema": model.get("schema"),
            "retrain": model.get("retrain"),
            "policy": model.get("policy", {}),
            "bootstrap_training_data": model.get("bootstrap_training_data"),
        }
        for name, model in models.items()
    }
    return json.dumps(filled, separators=(",", ":"))


def template_values(enable_basic_auth: bool, models: dict[str, dict] | None = None) -> dict:
    """The values main.tf passes, from the module's variable defaults plus sample inputs."""
    defaults = {k: v.get("default") for k, v in named_blocks(HOST, "variable").items()}
    values = {
        "name": "driftloop",
        "region": "us-east-1",
        "project_git_url": "https://example.com/driftloop.git",
        "project_git_commit": "0123456789abcdef" * 2 + "01234567",  # a 40-hex commit id
        "enable_basic_auth": enable_basic_auth,
        "mlflow_port": defaults["service_ports"]["mlflow"],
        "grafana_port": defaults["service_ports"]["grafana"],
        "extra_allowed_hosts": ",".join(defaults["extra_allowed_hosts"]),
        "artifact_bucket": "driftloop-artifacts",
        "db_host": "driftloop-metadata.abc123.us-east-1.rds.amazonaws.com",
        "db_port": defaults["db_port"],
        "db_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1234-AbCdEf",
        "db_sslmode": defaults["db_sslmode"],
        "db_ca_bundle_url": defaults["db_ca_bundle_url"],
        "db_ca_bundle_sha256": defaults["db_ca_bundle_sha256"],
        **{
            f"db_{role}_secret_arn": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:driftloop/db-{role}-1"
            for role in ("mlflow", "monitor", "grafana")
        },
        "db_password_rotation_schedule": defaults["db_password_rotation_schedule"],
        "mlflow_db_name": defaults["mlflow_db_name"],
        "metrics_db_name": defaults["metrics_db_name"],
        "auth_db_name": defaults["auth_db_name"],
        "grafana_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:driftloop/grafana-admin-1",
        "grafana_secret_key_arn": (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:driftloop/grafana-secret-key-1"
        ),
        "mlflow_admin_secret_arn": (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:driftloop/mlflow-admin-1" if enable_basic_auth else ""
        ),
        "mlflow_monitor_secret_arn": (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:driftloop/mlflow-monitor-1"
            if enable_basic_auth
            else ""
        ),
        "models_json": models_json(defaults["models"] if models is None else models),
        "compose_file": defaults["compose_file"],
        "monitor_schedule": defaults["monitor_schedule"],
        "monitor_timeout": defaults["monitor_timeout"],
        "monitor_memory_max": defaults["monitor_memory_max"],
        "notify_sns_topic_arn": NOTIFY_TOPIC,
        "heartbeat_namespace": HEARTBEAT_NAMESPACE,
        "inbox_uri": f"s3://driftloop-artifacts/{defaults['inbox_prefix']}",
        "hostctl_py": (HOST / "templates" / "hostctl.py").read_text(),
        "mlflow_server_sh": (HOST / "templates" / "mlflow-server.sh").read_text(),
        "bootstrap_sh": (HOST / "templates" / "bootstrap.sh").read_text(),
        "run_pipeline_sh": (HOST / "templates" / "run-pipeline.sh").read_text(),
    }
    assert set(values) == templatefile_keys(), "keep template_values in step with main.tf's templatefile()"
    return values


FIRST_CHAMPION_DATA = "s3://driftloop-artifacts/training/reference.csv"
# Two models: one trained on first boot from its data with its own schema, one trained by hand, with its mode
# and policy.
TWO_MODELS = {
    "credit-default": {
        "schema": "s3://driftloop-artifacts/training/credit-default/schema.json",
        "bootstrap_training_data": FIRST_CHAMPION_DATA,
    },
    "churn": {"retrain": "auto", "policy": {"drift_threshold": "0.2"}},
}


@pytest.fixture(params=[False, True], ids=["basic-auth-off", "basic-auth-on-two-models"])
def cloud_config(request):
    """Basic auth off with the default model, then basic auth on with two models."""
    rendered = render(TEMPLATE.read_text(), template_values(request.param, TWO_MODELS if request.param else None))
    assert rendered.startswith("#cloud-config\n")
    return request.param, rendered, yaml.safe_load(rendered)


def files_of(config: dict) -> dict[str, str]:
    return {entry["path"]: entry["content"] for entry in config["write_files"]}


def test_template_uses_exactly_the_values_main_tf_passes():
    used = set()
    for match in TOKEN.finditer(TEMPLATE.read_text()):
        if match.group(1):
            used.update(re.findall(r"[a-z_][a-z0-9_]*", match.group(1).replace("indent", "")))
        elif match.group(2) and match.group(2).startswith("if"):
            used.add(match.group(2).split()[1].lstrip("!"))
    assert used == templatefile_keys()


def test_user_data_fits_the_ec2_limit_when_gzipped(cloud_config):
    _, rendered, _ = cloud_config
    assert len(base64.b64encode(gzip.compress(rendered.encode()))) < 16384


def test_shell_scripts_pass_bash_n(cloud_config, tmp_path):
    _, _, config = cloud_config
    bash = shutil.which("bash")
    assert bash, "bash is needed for this test"
    scripts = {path: body for path, body in files_of(config).items() if body.startswith("#!/usr/bin/env bash")}
    assert set(scripts) == {
        "/usr/local/lib/driftloop/mlflow-server.sh",
        "/usr/local/lib/driftloop/bootstrap.sh",
        "/usr/local/lib/driftloop/run-pipeline",
    }
    for path, body in scripts.items():
        script = tmp_path / path.rsplit("/", 1)[1]
        script.write_text(body)
        result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path}: {result.stderr}"
    for command in config["runcmd"]:
        line = " ".join(command) if isinstance(command, list) else command
        result = subprocess.run([bash, "-n", "-c", line], capture_output=True, text=True)
        assert result.returncode == 0, f"runcmd {line!r}: {result.stderr}"


def test_hostctl_is_valid_python(cloud_config):
    _, _, config = cloud_config
    source = files_of(config)["/usr/local/lib/driftloop/hostctl"]
    assert source.startswith("#!/opt/driftloop/venv/bin/python")
    ast.parse(source)


def test_environment_file_follows_the_settings_interface(cloud_config):
    basic_auth, _, config = cloud_config
    lines = files_of(config)["/etc/driftloop/host.env"].splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    env = {k: v.strip('"') for k, v in env.items()}
    assert env["PIPELINE_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert env["PIPELINE_S3_ENDPOINT_URL"] == ""
    assert env["PIPELINE_ARTIFACT_BUCKET"] == "driftloop-artifacts"
    # The monitor's own role, never the master user, and the server's certificate verified.
    assert re.fullmatch(
        r"postgresql://driftloop_monitor@[\w.-]+:5432/metrics\?sslmode=verify-full&sslrootcert=/etc/driftloop/rds-ca.pem",
        env["PIPELINE_METRICS_DB_URL"],
    )
    assert "PIPELINE_MODEL_NAME" not in env, "the host watches many models; each command names its own"
    assert env["DRIFTLOOP_INBOX_URI"] == "s3://driftloop-artifacts/inbox/", "the root inbox"
    assert env["PIPELINE_NOTIFY_SNS_TOPIC"] == NOTIFY_TOPIC, "the failure hook and the monitor publish to it"
    assert env["PIPELINE_HEARTBEAT_NAMESPACE"] == HEARTBEAT_NAMESPACE, "the monitor's heartbeat, the alarms' metric"
    for key in ("METRICS_DB_HOST", "METRICS_DB_PORT", "METRICS_DB_USER", "METRICS_DB_NAME"):
        assert env[key], key
    assert env["METRICS_DB_SSLMODE"] == "verify-full" and env["METRICS_DB_USER"] == "driftloop_grafana"
    assert env["METRICS_DB_CA_FILE"] == env["DRIFTLOOP_DB_SSLROOTCERT"] == "/etc/driftloop/rds-ca.pem"
    assert env["DRIFTLOOP_DB_SSLMODE"] == "verify-full"
    assert env["DRIFTLOOP_DB_CA_BUNDLE_URL"] == "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
    users = {env[f"DRIFTLOOP_DB_{role}_USER"] for role in ("MLFLOW", "MONITOR", "GRAFANA")}
    assert users == {"driftloop_mlflow", "driftloop_monitor", "driftloop_grafana"}
    assert "DRIFTLOOP_DB_USER" not in env, "no service is configured with the master user"
    assert ("DRIFTLOOP_AUTH_DB" in env) is basic_auth
    assert ("DRIFTLOOP_MLFLOW_MONITOR_SECRET_ARN" in env) is basic_auth
    assert env["DRIFTLOOP_GRAFANA_SECRET_KEY_ARN"].startswith("arn:aws:secretsmanager:")
    assert env["DASHBOARDS_BIND_ADDRESS"] == "127.0.0.1", "compose publishes Grafana on the host's loopback only"
    assert env["GRAFANA_PORT"] == "3000"
    assert not [k for k in env if "PASSWORD" in k], "passwords are injected at start, never written"


def test_mlflow_unit_reads_the_secret_at_start(cloud_config):
    _, _, config = cloud_config
    unit = files_of(config)["/etc/systemd/system/driftloop-mlflow.service"]
    assert "EnvironmentFile=/etc/driftloop/host.env" in unit
    assert "ExecStartPre=/usr/local/lib/driftloop/hostctl init-db" in unit
    assert re.search(
        r"ExecStart=/usr/local/lib/driftloop/hostctl exec --db .*-- /usr/local/lib/driftloop/mlflow-server.sh", unit
    )
    script = files_of(config)["/usr/local/lib/driftloop/mlflow-server.sh"]
    for flag in (
        "--serve-artifacts",
        '--artifacts-destination "s3://$DRIFTLOOP_ARTIFACT_BUCKET/mlflow"',
        "--allowed-hosts",
        "--backend-store-uri",
        "--app-name basic-auth",
        "database_uri = ",
    ):
        assert flag in script, flag
    assert "ExecStartPost=/usr/local/lib/driftloop/hostctl init-mlflow-users" in unit


def test_services_listen_on_the_loopback_only(cloud_config):
    """Nothing serves on the host's network interfaces: MLflow and Grafana bind 127.0.0.1, Adminer is not started."""
    _, _, config = cloud_config
    files = files_of(config)
    script = files["/usr/local/lib/driftloop/mlflow-server.sh"]
    assert "--host 127.0.0.1" in script and "0.0.0.0" not in script
    assert 'hosts="localhost,localhost:*,127.0.0.1,127.0.0.1:*"' in script, "what a port-forwarded request carries"
    assert "169.254.169.254" not in script, "no public name to look up any more"
    unit = files["/etc/systemd/system/driftloop-dashboards.service"]
    assert "adminer" not in unit
    compose = yaml.safe_load((HOST.parents[2] / "docker" / "compose.yaml").read_text())
    (port,) = compose["services"]["grafana"]["ports"]
    assert port.startswith("${DASHBOARDS_BIND_ADDRESS:-127.0.0.1}:")


def test_basic_auth_admin_password_is_never_written_to_a_file(cloud_config):
    _, _, config = cloud_config
    script = files_of(config)["/usr/local/lib/driftloop/mlflow-server.sh"]
    ini = script.split("<<INI", 1)[1].split("\nINI", 1)[0]
    assert "password" not in ini and "admin_username" not in ini
    assert "default_permission = READ" in ini, "authenticated users read; nobody unauthenticated does"


def test_grafana_has_a_generated_secret_key_and_no_anonymous_access():
    compose = yaml.safe_load((HOST.parents[2] / "docker" / "compose.yaml").read_text())
    env = compose["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_SECURITY_SECRET_KEY"].startswith("${GF_SECURITY_SECRET_KEY:?"), "no default, no well-known key"
    source = (HOST / "templates" / "hostctl.py").read_text()
    assert 'env["GF_SECURITY_SECRET_KEY"]' in source and "DRIFTLOOP_GRAFANA_SECRET_KEY_ARN" in source


def test_dashboards_start_from_the_project_compose_file(cloud_config):
    _, _, config = cloud_config
    unit = files_of(config)["/etc/systemd/system/driftloop-dashboards.service"]
    assert "docker compose -f docker/compose.yaml up -d grafana\n" in unit
    assert "exec --db grafana --grafana" in unit, "Grafana's datasource logs in as its read-only role"


def test_monitor_runs_on_a_timer(cloud_config):
    _, _, config = cloud_config
    files = files_of(config)
    unit = files["/etc/systemd/system/driftloop-monitor.service"]
    exec_start = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert exec_start == [
        "ExecStart=/usr/local/lib/driftloop/hostctl exec --db monitor --mlflow-monitor -- "
        "/opt/driftloop/venv/bin/pipeline monitor --inbox s3://driftloop-artifacts/inbox/ --all-models "
        "--max-batch-mb 1024 --fail-on-alarm"
    ]
    assert "OnCalendar=hourly" in files["/etc/systemd/system/driftloop-monitor.timer"]
    bootstrap = files["/usr/local/lib/driftloop/bootstrap.sh"]
    assert "systemctl enable --now driftloop-monitor.timer" in bootstrap


def test_monitor_run_is_bounded_and_reports_its_failure(cloud_config):
    _, _, config = cloud_config
    files = files_of(config)
    unit = files["/etc/systemd/system/driftloop-monitor.service"].splitlines()
    assert "TimeoutStartSec=2h" in unit and "MemoryMax=3G" in unit
    assert "OnFailure=driftloop-notify-failure@%n.service" in unit
    # An alarm (3) or a batch set aside (4) is notified by the monitor itself; the hook is for a failed run only.
    success = [line for line in unit if line.startswith("SuccessExitStatus=")]
    assert success == [f"SuccessExitStatus={EXIT_ALARM} {EXIT_REJECTED}"]
    hook = files["/etc/systemd/system/driftloop-notify-failure@.service"].splitlines()
    assert [line for line in hook if line.startswith("ExecStart=")] == [
        "ExecStart=/usr/local/lib/driftloop/hostctl exec -- "
        '/opt/driftloop/venv/bin/pipeline notify --kind run-failed "%i failed on %H"'
    ]
    assert "EnvironmentFile=/etc/driftloop/host.env" in hook and "User=driftloop" in hook
    assert "SuccessExitStatus=2" in hook, "no sink configured (exit 2) is not a failure of the hook"
    assert not [line for line in hook if line.startswith("OnFailure=")], "the hook never triggers itself"
    assert not [line for line in hook if line.startswith("Restart=")]


def test_first_champion_unit_sets_up_every_model(cloud_config):
    two_models, _, config = cloud_config
    files = files_of(config)
    unit = files["/etc/systemd/system/driftloop-first-champion.service"]
    assert [line for line in unit.splitlines() if line.startswith("ExecStart=")] == [
        "ExecStart=/usr/local/lib/driftloop/hostctl first-champions"
    ]
    assert "User=driftloop" in unit and "After=network-online.target driftloop-mlflow.service" in unit
    assert "Before=driftloop-monitor.service" in unit
    models = json.loads(files["/etc/driftloop/models.json"])
    assert models == json.loads(models_json(TWO_MODELS if two_models else {"driftloop-model": {}}))
    assert (
        "systemctl enable --now --no-block driftloop-first-champion.service"
        in files["/usr/local/lib/driftloop/bootstrap.sh"]
    )


def test_hostctl_generates_grafana_password_on_the_host():
    source = (HOST / "templates" / "hostctl.py").read_text()
    assert "put_secret_value" in source and "ResourceNotFoundException" in source
    assert "GF_SECURITY_ADMIN_PASSWORD" in source and "PIPELINE_METRICS_DB_PASSWORD" in source


TERRAFORM = shutil.which("tofu") or shutil.which("terraform")


@pytest.mark.skipif(TERRAFORM is None, reason="no terraform/tofu binary; the Python renderer is checked alone")
@pytest.mark.parametrize("enable_basic_auth", [False, True], ids=["basic-auth-off", "basic-auth-on"])
def test_python_renderer_matches_terraform_templatefile(enable_basic_auth, tmp_path):
    """Where a Terraform binary exists, its templatefile() gives the same text (no provider needed)."""
    values = template_values(enable_basic_auth)
    (tmp_path / "values.json").write_text(json.dumps(values))
    (tmp_path / "main.tf").write_text(
        'output "rendered" {\n'
        f'  value = templatefile("{TEMPLATE}", jsondecode(file("${{path.module}}/values.json")))\n'
        "}\n"
    )
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    for args in (["apply", "-auto-approve", "-input=false", "-no-color"], ["output", "-raw", "rendered"]):
        result = subprocess.run(
            [TERRAFORM, f"-chdir={tmp_path}", *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 0, result.stderr
    assert result.stdout == render(TEMPLATE.read_text(), values)


def test_the_pipeline_runs_as_the_monitor_user_never_as_the_admin(cloud_config):
    _, _, config = cloud_config
    files = files_of(config)
    commands = {
        path: [line for line in body.splitlines() if line.startswith(("Exec", "exec "))]
        for path, body in files.items()
        if path.startswith("/etc/systemd/") or path == "/usr/local/lib/driftloop/run-pipeline"
    }
    admin = [path for path, lines in commands.items() if any("--mlflow-admin" in line for line in lines)]
    assert admin == ["/etc/systemd/system/driftloop-mlflow.service"], "only the server holds the admin"
    pipeline = [path for path, body in files.items() if "/opt/driftloop/venv/bin/pipeline " in body]
    for path in pipeline:
        for line in files[path].splitlines():
            if "bin/pipeline " in line and "hostctl exec" in line and "pipeline notify" not in line:
                assert "--mlflow-monitor" in line, f"{path}: {line}"
    assert "hostctl exec --db monitor --mlflow-monitor --" in files["/usr/local/lib/driftloop/run-pipeline"]


def test_each_service_connects_as_its_own_role_with_tls_verified(cloud_config):
    """MLflow, the monitor (its runs and the first champion's) and Grafana each log in as a role of their own;
    only hostctl's setup reads the master secret. Every connection string asks verify-full of the RDS bundle."""
    _, _, config = cloud_config
    files = files_of(config)
    roles = {}
    for path, body in files.items():
        for line in body.splitlines():
            match = re.search(r"hostctl exec (--db (\w+) )?", line)
            if match and line.startswith(("Exec", "exec ")):
                roles[path] = match.group(2)
    units = "/etc/systemd/system/"
    assert roles[units + "driftloop-mlflow.service"] == "mlflow"
    assert roles[units + "driftloop-dashboards.service"] == "grafana"
    assert roles[units + "driftloop-monitor.service"] == "monitor"
    assert roles["/usr/local/lib/driftloop/run-pipeline"] == "monitor"
    assert roles[units + "driftloop-notify-failure@.service"] is None, "the failure hook needs no database"
    # The first-champion unit runs `pipeline` with the monitor's role and MLflow user (hostctl first-champions).
    assert 'env = secrets_env(client, db="monitor", mlflow_monitor=True)' in files["/usr/local/lib/driftloop/hostctl"]
    mlflow = files[units + "driftloop-mlflow.service"]
    pre = [line for line in mlflow.splitlines() if line.startswith("ExecStartPre=")]
    assert [line.rsplit(" ", 1)[1] for line in pre] == ["init-secrets", "init-db", "init-db-roles"]
    # The URIs the services use: their own role, the CA bundle, verify-full (host.env's DRIFTLOOP_DB_SSLMODE).
    server = files["/usr/local/lib/driftloop/mlflow-server.sh"]
    assert 'db="postgresql+psycopg2://$DRIFTLOOP_DB_MLFLOW_USER@' in server
    assert 'tls="sslmode=$DRIFTLOOP_DB_SSLMODE&sslrootcert=$DRIFTLOOP_DB_SSLROOTCERT"' in server
    assert server.count("?$tls") == 2 and "sslmode=require" not in server
    assert "DB_USER@" not in server.replace("DB_MLFLOW_USER@", "")
    hostctl = files["/usr/local/lib/driftloop/hostctl"]
    assert 'sslmode=os.environ.get("DRIFTLOOP_DB_SSLMODE") or "verify-full"' in hostctl
    assert 'sslmode="require"' not in hostctl
    # The bundle is fetched on first boot, over HTTPS, checked when a checksum is pinned, before any service starts.
    boot = files["/usr/local/lib/driftloop/bootstrap.sh"]
    fetch = boot.index('--output "$ca.download" "$DRIFTLOOP_DB_CA_BUNDLE_URL"')
    assert "--proto '=https,file'" in boot and "sha256sum --check" in boot
    assert fetch < boot.index("systemctl enable --now driftloop-mlflow.service")


def test_sslmode_is_a_variable_whose_default_verifies_the_server():
    variables = named_blocks(HOST, "variable")
    assert variables["db_sslmode"]["default"] == "verify-full"
    assert variables["db_ca_bundle_url"]["default"] == (
        "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
    )
    values = {**template_values(True), "db_sslmode": "require"}
    env = files_of(yaml.safe_load(render(TEMPLATE.read_text(), values)))["/etc/driftloop/host.env"]
    assert 'METRICS_DB_SSLMODE="require"' in env and 'DRIFTLOOP_DB_SSLMODE="require"' in env
    assert "sslmode=require&sslrootcert=" in env


def test_the_monitor_database_password_rotates_on_a_timer(cloud_config):
    _, _, config = cloud_config
    files = files_of(config)
    unit = files["/etc/systemd/system/driftloop-db-password-rotation.service"]
    assert "ExecStart=/usr/local/lib/driftloop/hostctl rotate-db-password monitor\n" in unit
    assert "User=driftloop\n" in unit and "OnFailure=driftloop-notify-failure@%n.service" in unit
    timer = files["/etc/systemd/system/driftloop-db-password-rotation.timer"]
    assert "OnCalendar=monthly\n" in timer
    assert (
        "systemctl enable --now driftloop-db-password-rotation.timer" in files["/usr/local/lib/driftloop/bootstrap.sh"]
    )
