"""What the tracking host installs: one pinned commit, checked, then that commit's lock with --require-hashes and
the project with --no-deps (bootstrap.sh). The rehearsal (test_infra_host_rehearsal.py) runs it as root."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from test_infra_cloud_init import TEMPLATE, files_of, render, template_values
from tfconfig import ROOT

BOOTSTRAP = "/usr/local/lib/driftloop/bootstrap.sh"
LOCK = "requirements/runtime.lock"


@pytest.fixture(scope="module")
def host_files() -> dict[str, str]:
    values = template_values(True)
    return files_of(yaml.safe_load(render(TEMPLATE.read_text(), values))) | {"commit": values["project_git_commit"]}


def test_the_host_env_names_the_pinned_commit_and_no_branch(host_files):
    env = dict(line.split("=", 1) for line in host_files["/etc/driftloop/host.env"].splitlines() if "=" in line)
    assert env["DRIFTLOOP_GIT_COMMIT"] == f'"{host_files["commit"]}"'
    assert not {"DRIFTLOOP_GIT_REF", "DRIFTLOOP_PIP_SPEC"} & set(env)


def test_bootstrap_checks_the_commit_then_installs_the_lock_with_hashes_and_the_project_without_deps(host_files):
    script = host_files[BOOTSTRAP]
    installs = [line.strip() for line in script.splitlines() if re.search(r"\bpip\"? install\b", line)]
    assert installs == [
        f'"$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r {LOCK}',
        '"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps .',
    ]
    check = script.index('if [ "$head" != "$DRIFTLOOP_GIT_COMMIT" ]; then')
    assert script.index('head=$(git -C "$src" rev-parse HEAD)') < check < script.index(installs[0])
    assert (ROOT / LOCK).is_file(), "the lock the host installs is in the repository"


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def _checkout_part(script: str, src: Path) -> str:
    """bootstrap.sh from its checkout to its commit check, with the clone under `src` instead of /opt."""
    part = script[script.index("src=/opt/driftloop/src") : script.index('if [ ! -x "$venv/bin/python" ]')]
    return "set -euo pipefail\n" + part.replace("src=/opt/driftloop/src", f"src={src}")


@pytest.fixture
def origin(tmp_path) -> tuple[Path, str]:
    """A repository whose branch has moved on past the commit to deploy."""
    repo = tmp_path / "origin"
    repo.mkdir()
    _git("init", "--quiet", "--initial-branch=main", cwd=repo)
    who = ("-c", "user.name=driftloop", "-c", "user.email=driftloop@example.com")
    for message in ("deployed", "later"):
        _git(*who, "commit", "--quiet", "--allow-empty", "-m", message, cwd=repo)
    return repo, _git("rev-parse", "HEAD~1", cwd=repo)


def test_the_checkout_is_the_pinned_commit_not_the_branch_tip(host_files, origin, tmp_path):
    repo, commit = origin
    src = tmp_path / "src"
    env = {"DRIFTLOOP_GIT_URL": f"file://{repo}", "DRIFTLOOP_GIT_COMMIT": commit, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["bash", "-c", _checkout_part(host_files[BOOTSTRAP], src)], env=env, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert _git("rev-parse", "HEAD", cwd=src) == commit


def test_a_checkout_at_another_commit_stops_before_installing(host_files, origin, tmp_path):
    repo, commit = origin
    src = tmp_path / "src"
    subprocess.run(["git", "clone", "--quiet", str(repo), str(src)], check=True)  # at the branch tip
    env = {"DRIFTLOOP_GIT_URL": f"file://{repo}", "DRIFTLOOP_GIT_COMMIT": commit, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        ["bash", "-c", _checkout_part(host_files[BOOTSTRAP], src)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"not at the pinned commit {commit}; nothing installed" in result.stderr
