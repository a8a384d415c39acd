"""The make targets for infra and the one shared bucket-name setting."""

import os
import re
import subprocess

import pytest
from tfconfig import ENVS, ROOT, named_blocks

INFRA_MK = ROOT / "mk" / "infra.mk"
TARGETS = (
    "infra-init",
    "infra-plan",
    "infra-apply",
    "infra-destroy",
    "infra-validate",
    "infra-check",
    "infra-rehearse",
    "tools-checkov",
)


def makefile_bucket() -> str:
    match = re.search(r"^ARTIFACT_BUCKET\s*\?=\s*(\S+)\s*$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "the root Makefile must define ARTIFACT_BUCKET ?= ..."
    return match.group(1)


def test_localstack_bucket_default_matches_the_makefile():
    default = named_blocks(ENVS / "localstack", "variable")["artifact_bucket_name"]["default"]
    assert default == makefile_bucket()


def test_infra_targets_pass_the_shared_bucket_setting():
    text = INFRA_MK.read_text()
    assert "TF_VAR_artifact_bucket_name=$(ARTIFACT_BUCKET)" in text
    assert not re.search(r"^ARTIFACT_BUCKET\s*[:?]?=", text, re.M), "the bucket name is set in one place only"


@pytest.mark.parametrize("target", TARGETS)
def test_target_is_documented_for_make_help(target):
    assert re.search(rf"^{re.escape(target)}:[^\n]*## \S", INFRA_MK.read_text(), re.M)


def test_checkov_lives_outside_the_project_venv():
    text = INFRA_MK.read_text()
    assert "CHECKOV_VENV := .tools/checkov" in text
    assert "checkov==$(CHECKOV_VERSION)" in text
    assert ".venv" not in re.sub(r"#.*", "", text).replace("apart from .venv", "")


def test_missing_terraform_fails_with_install_pointers():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    result = subprocess.run(
        ["make", "--no-print-directory", "infra-plan", "TF="],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Neither 'tofu' nor 'terraform'" in result.stderr
    assert "opentofu.org" in result.stderr and "developer.hashicorp.com/terraform/install" in result.stderr


def test_unknown_env_is_refused():
    result = subprocess.run(
        ["make", "--no-print-directory", "infra-init", "ENV=prod", "TF=/bin/true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ENV must be one of" in result.stderr
