"""The compose stack, checked without a Docker engine: pins, secrets, healthchecks, ports, mounts, scripts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import uuid
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from packaging.requirements import Requirement
from stack_files import DOCKER, LOCALSTACK, ROOT

from pipeline.app import stack
from pipeline.app.stack_config import StackConfig
from pipeline.settings import DEFAULT_BUCKET

SERVICES = {"postgres", "localstack", "mlflow", "grafana", "adminer"}
LOCAL_ONLY = {"postgres", "localstack", "mlflow"}
HOST_PORTS = {
    "postgres": ("POSTGRES_PORT", "15432", "5432"),
    "localstack": ("S3_PORT", "4566", "4566"),
    "mlflow": ("MLFLOW_PORT", "5000", "5000"),
    "grafana": ("GRAFANA_PORT", "3000", "3000"),
    "adminer": ("ADMINER_PORT", "8080", "8080"),
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY")
INTERPOLATION = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")
LOCALSTACK_FAKE_CREDENTIAL = "test"


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _referenced_variables(text: str) -> dict[str, set[str]]:
    """Every ${VAR...} in the compose file, with the operators it is used with ('' when bare)."""
    found: dict[str, set[str]] = {}
    # $$ is compose's escape: $${VAR} reaches the container's shell untouched.
    for name, operator, _ in INTERPOLATION.findall(text.replace("$$", "")):
        found.setdefault(name, set()).add(operator)
    return found


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            pairs[key.strip()] = value.strip()
    return pairs


def test_compose_defines_the_stack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned_to_a_version(compose: dict[str, Any], name: str) -> None:
    image = compose["services"][name]["image"]
    repository, _, tag = image.rpartition(":")
    assert repository and "/" not in tag, f"{name}: {image} has no tag"
    assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned to a version"


def test_localstack_is_the_last_tag_that_starts_without_a_token(compose: dict[str, Any]) -> None:
    service = compose["services"]["localstack"]
    assert service["image"] == "localstack/localstack:4.14.0"
    assert _environment(service)["LOCALSTACK_AUTH_TOKEN"] == "${LOCALSTACK_AUTH_TOKEN:-}"


def test_postgres_is_pinned_to_a_major_with_its_volume_where_that_major_expects_it(
    compose: dict[str, Any],
) -> None:
    service = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:17(\.\d+)?(-\w+)?", service["image"])
    targets = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    assert targets["/var/lib/postgresql/data"] in compose["volumes"], "the cluster needs a named volume"
    assert (DOCKER / targets["/docker-entrypoint-initdb.d"]).resolve() == DOCKER / "postgres-init"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_secret_comes_from_the_environment(compose: dict[str, Any], name: str) -> None:
    for key, value in _environment(compose["services"][name]).items():
        if not SECRET_NAME.search(key):
            continue
        match = INTERPOLATION.fullmatch(value)
        assert match, f"{name}.{key} is not read from the environment"
        _, operator, default = match.groups()
        if "PASSWORD" in key:
            assert operator in (None, ":?"), f"{name}.{key} must not have a default"
        elif operator == ":-" and default:
            assert default == LOCALSTACK_FAKE_CREDENTIAL, f"{name}.{key} defaults to something other than a fake"


def test_no_credentials_sit_in_commands_or_urls() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    for userinfo in re.findall(r"://([^/\s@]+)@", text):
        assert ":" not in INTERPOLATION.sub("", userinfo), f"a URL carries a password: {userinfo}"
    assert "admin/admin" not in text


def test_grafana_admin_password_is_required_and_has_no_default(compose: dict[str, Any]) -> None:
    env = _environment(compose["services"]["grafana"])
    assert re.fullmatch(r"\$\{GF_SECURITY_ADMIN_PASSWORD:\?[^}]+\}", env["GF_SECURITY_ADMIN_PASSWORD"])


def test_every_service_others_depend_on_has_a_healthcheck_and_is_waited_for(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency, spec in depends_on.items():
            assert spec["condition"] == "service_healthy", f"{name} -> {dependency}"
            check = services[dependency].get("healthcheck")
            assert check and check["test"] and not check.get("disable"), f"{dependency} has no healthcheck"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_host_ports_are_configurable_with_the_documented_defaults(compose: dict[str, Any], name: str) -> None:
    variable, default, container = HOST_PORTS[name]
    (port,) = compose["services"][name]["ports"]
    assert port.endswith(f"${{{variable}:-{default}}}:{container}"), port


def test_local_only_services_bind_to_loopback(compose: dict[str, Any]) -> None:
    for name in LOCAL_ONLY:
        (port,) = compose["services"][name]["ports"]
        assert port.startswith("127.0.0.1:"), name


def test_mounted_paths_and_build_contexts_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), f"{name} mounts missing {source}"
        if "build" in service:
            context = DOCKER / service["build"]["context"]
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file(), name


def test_mlflow_image_pins_the_same_mlflow_as_the_project(compose: dict[str, Any]) -> None:
    context = DOCKER / compose["services"]["mlflow"]["build"]["context"]
    requirements = [
        line.strip()
        for line in (context / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[\w.\-\[\]]+==[\w.]+", r) for r in requirements), requirements
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    project_mlflow = Requirement(next(d for d in project if Requirement(d).name == "mlflow"))
    image_mlflow = next(r for r in requirements if r.startswith("mlflow=="))
    assert project_mlflow.specifier.contains(image_mlflow.split("==")[1])  # the image's MLflow is in the range
    assert {r.split("==")[0] for r in requirements} >= {"mlflow", "psycopg2-binary", "boto3"}
    dockerfile = (context / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M), "the server should not run as root"


def test_mlflow_server_uses_postgres_and_proxies_artifacts_to_localstack(compose: dict[str, Any]) -> None:
    service = compose["services"]["mlflow"]
    args = service["command"]
    store = args[args.index("--backend-store-uri") + 1]
    assert store.startswith("postgresql+psycopg2://") and store.endswith("@postgres:5432/mlflow")
    assert "--serve-artifacts" in args
    assert args[args.index("--artifacts-destination") + 1] == f"s3://${{ARTIFACT_BUCKET:-{DEFAULT_BUCKET}}}/mlflow"
    env = _environment(service)
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://localstack:4566"
    assert set(service["depends_on"]) == {"postgres", "localstack"}


def test_bucket_default_agrees_with_the_makefile_and_settings(compose: dict[str, Any]) -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^ARTIFACT_BUCKET \?= {re.escape(DEFAULT_BUCKET)}$", makefile, re.M)
    env = _environment(compose["services"]["localstack"])
    assert env["ARTIFACT_BUCKET"] == f"${{ARTIFACT_BUCKET:-{DEFAULT_BUCKET}}}"


def test_env_example_names_every_variable_and_holds_no_secret() -> None:
    referenced = _referenced_variables((DOCKER / "compose.yaml").read_text())
    example = _env_example()
    assert set(referenced) <= set(example), sorted(set(referenced) - set(example))
    for key, value in example.items():
        if SECRET_NAME.search(key) and value:
            assert value == LOCALSTACK_FAKE_CREDENTIAL, f"{key} has a value in .env.example"
    assert re.search(r"^\.env$", (DOCKER / ".gitignore").read_text(), re.M), "docker/.env must stay untracked"


def test_the_aws_host_can_start_grafana_alone(compose: dict[str, Any]) -> None:
    """The tracking host runs `compose up grafana` against RDS, with no docker/.env (Adminer stays local)."""
    services = compose["services"]
    for name in LOCAL_ONLY:
        assert services[name].get("profiles") == ["local"], name
    for name in ("grafana", "adminer"):
        assert "profiles" not in services[name]
        for dependency, spec in services[name].get("depends_on", {}).items():
            assert spec.get("required") is False, f"{name} must not pull {dependency} in on AWS"

    # Compose interpolates the whole file, so every variable it requires must exist on that host.
    templates = ROOT / "infra" / "modules" / "tracking_host" / "templates"
    cloud_init = (templates / "cloud-init.yaml.tftpl").read_text()
    provided = set(re.findall(r"^\s+([A-Z][A-Z0-9_]*)=", cloud_init, re.M))
    provided |= set(re.findall(r'env\["([A-Z][A-Z0-9_]*)"\] =', (templates / "hostctl.py").read_text()))
    required = {
        name
        for name, operators in _referenced_variables((DOCKER / "compose.yaml").read_text()).items()
        if operators & {":?", "?", ""}
    }
    assert required <= provided, sorted(required - provided)
    assert "docker compose -f ${compose_file} up -d grafana\n" in cloud_init


# ------------------------------------------------------------------ init scripts, run for real


def test_init_scripts_are_valid_bash() -> None:
    for script in [*(DOCKER / "postgres-init").glob("*.sh"), *(LOCALSTACK / "init" / "ready.d").glob("*.sh")]:
        assert os.access(script, os.X_OK), f"{script} is not executable"
        subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.integration
def test_postgres_init_script_creates_the_databases_and_can_run_again(pg_stack: StackConfig) -> None:
    script = DOCKER / "postgres-init" / "10-databases.sh"
    suffix = uuid.uuid4().hex[:8]
    names = [f"init_mlflow_{suffix}", f"init_metrics_{suffix}"]
    env = {
        **os.environ,
        "PATH": f"{stack.postgres_bin_dir()}:{os.environ['PATH']}",
        "PGHOST": pg_stack.host,
        "PGPORT": str(pg_stack.pg_port),
        "POSTGRES_USER": "postgres",
        "STACK_DATABASES": " ".join(names),
    }
    for _ in range(2):
        subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True, timeout=60)

    conn = psycopg2.connect(pg_stack.pg_url("postgres", user="postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,))
            assert sorted(row[0] for row in cur.fetchall()) == sorted(names)
            for name in names:
                cur.execute(f'DROP DATABASE "{name}"')
    finally:
        conn.close()


def test_bucket_script_creates_the_bucket_once(tmp_path: Path) -> None:
    """Run the LocalStack ready.d script against a stand-in awslocal that keeps buckets in a folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "awslocal"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'echo "$*" >> "$FAKE_S3/calls"\n'
        'bucket=""; prev=""\n'
        'for arg in "$@"; do [ "$prev" = "--bucket" ] && bucket="$arg"; prev="$arg"; done\n'
        'case "$2" in\n'
        '  head-bucket) [ -d "$FAKE_S3/$bucket" ] ;;\n'
        '  create-bucket) mkdir "$FAKE_S3/$bucket" ;;\n'
        "  *) true ;;\n"
        "esac\n"
    )
    fake.chmod(0o755)
    store = tmp_path / "s3"
    store.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_S3": str(store),
        "ARTIFACT_BUCKET": "b1",
    }
    (script,) = (LOCALSTACK / "init" / "ready.d").glob("*.sh")
    bash = shutil.which("bash")
    assert bash
    for _ in range(2):
        subprocess.run([bash, str(script)], env=env, check=True, capture_output=True, timeout=30)

    calls = (store / "calls").read_text().splitlines()
    assert (store / "b1").is_dir()
    assert sum(call.startswith("s3api create-bucket") for call in calls) == 1
