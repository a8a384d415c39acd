"""`make local-up` and `make local-down` on a machine where a Docker engine answers, as on one without: the
embedded stack unless the user asks for compose (STACK=compose). The engine and the CLI are stand-ins on PATH
that record how they were called; the recipe is the Makefile's own."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def stand_in(folder: Path, name: str, log: Path) -> Path:
    path = folder / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\nexit 0\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def machine(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """A PATH whose `docker` answers `docker info` (an engine is there), and a stand-in `pipeline`."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    stand_in(bin_dir, "docker", log)
    pipeline = stand_in(bin_dir, "pipeline", log)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env, pipeline, log


def make(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # -o install: the project's virtualenv is not (re)built for a recipe test
    return subprocess.run(
        ["make", "--no-print-directory", "-o", "install", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_with_a_docker_engine_the_embedded_stack_is_still_the_default(machine):
    env, pipeline, log = machine
    up = make(env, "local-up", f"PIPELINE={pipeline}")
    down = make(env, "local-down", f"PIPELINE={pipeline}")
    assert up.returncode == 0 and down.returncode == 0, up.stdout + up.stderr
    assert "embedded host stack" in up.stdout
    calls = log.read_text().splitlines()
    assert calls == ["pipeline stack up", "pipeline stack down"]  # docker is never asked


def test_compose_is_opted_into_and_needs_its_env_file(machine, tmp_path):
    env, pipeline, log = machine
    missing = make(env, "local-up", "STACK=compose", f"COMPOSE_ENV={tmp_path / 'absent.env'}", f"PIPELINE={pipeline}")
    assert missing.returncode != 0
    assert "absent.env is missing" in missing.stdout and "PIPELINE_METRICS_DB_PASSWORD" in missing.stdout
    assert not any(line.startswith("docker compose") for line in log.read_text().splitlines())

    env_file = tmp_path / "compose.env"
    env_file.write_text("METRICS_DB_PASSWORD=x\n")  # pragma: allowlist secret
    up = make(env, "local-up", "STACK=compose", f"COMPOSE_ENV={env_file}", f"PIPELINE={pipeline}")
    assert up.returncode == 0, up.stdout + up.stderr
    compose = [line for line in log.read_text().splitlines() if line.startswith("docker compose")]
    assert compose == [f"docker compose -f docker/compose.yaml --env-file {env_file} --profile local up -d --wait"]
    assert "pipeline stack up" not in log.read_text()


def test_an_unknown_stack_is_refused_in_one_line(machine):
    env, pipeline, _log = machine
    result = make(env, "local-up", "STACK=kubernetes", f"PIPELINE={pipeline}")
    assert result.returncode != 0 and "choose embedded (the default) or compose" in result.stdout
