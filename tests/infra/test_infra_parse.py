"""Every Terraform file parses, and every module and env keeps the agreed shape."""

import re
import shutil
import subprocess

import hcl2
import pytest
from tfconfig import (
    ENV_NAMES,
    ENVS,
    INFRA,
    MODULE_NAMES,
    MODULES,
    all_resources,
    load_dir,
    named_blocks,
    tf_files,
)

MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
PROVIDER_CONSTRAINT = "~> 5.70"


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_tf_file_parses(path):
    with path.open() as handle:
        assert isinstance(hcl2.load(handle), dict)


def test_every_module_and_env_exists():
    assert sorted(p.name for p in MODULES.iterdir() if p.is_dir()) == sorted(MODULE_NAMES)
    assert sorted(p.name for p in ENVS.iterdir() if p.is_dir()) == sorted(ENV_NAMES)


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_module_has_the_standard_files(module):
    missing = [name for name in MODULE_FILES if not (MODULES / module / name).is_file()]
    assert not missing, f"{module} lacks {missing}"


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_module_main_resource_is_named_this(module):
    names = {name for by_name in all_resources(MODULES / module).values() for name in by_name}
    assert "this" in names


@pytest.mark.parametrize(
    "directory", [MODULES / m for m in MODULE_NAMES] + [ENVS / e for e in ENV_NAMES], ids=lambda p: p.name
)
def test_variables_are_typed_and_described(directory):
    for name, body in named_blocks(directory, "variable").items():
        assert body.get("type"), f"{directory.name}: variable {name} has no type"
        assert body.get("description"), f"{directory.name}: variable {name} has no description"


@pytest.mark.parametrize(
    "directory", [MODULES / m for m in MODULE_NAMES] + [ENVS / e for e in ENV_NAMES], ids=lambda p: p.name
)
def test_outputs_are_described(directory):
    for name, body in named_blocks(directory, "output").items():
        assert body.get("description"), f"{directory.name}: output {name} has no description"


@pytest.mark.parametrize(
    "directory", [MODULES / m for m in MODULE_NAMES] + [ENVS / e for e in ENV_NAMES], ids=lambda p: p.name
)
def test_versions_are_pinned_consistently(directory):
    terraform = load_dir(directory)["terraform"][0]
    minimum = re.fullmatch(r">= 1\.(\d+)", terraform["required_version"])
    assert minimum and int(minimum.group(1)) >= 6
    aws = terraform["required_providers"][0]["aws"]
    assert aws == {"source": "hashicorp/aws", "version": PROVIDER_CONSTRAINT}


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_module_resources_merge_the_common_tags(module):
    """Every taggable resource takes var.tags (directly or merged with a Name)."""
    untagged = []
    for rtype, by_name in all_resources(MODULES / module).items():
        for name, body in by_name.items():
            if "tags" in body and "var.tags" not in str(body["tags"]):
                untagged.append(f"{rtype}.{name}")
    assert not untagged
    assert "tags" in named_blocks(MODULES / module, "variable")


def documented_names(readme, heading):
    text = readme.read_text()
    block = text.split("<!-- BEGIN_TF_DOCS -->", 1)[1].split("<!-- END_TF_DOCS -->", 1)[0]
    section = re.split(rf"^#+ {heading}$", block, maxsplit=1, flags=re.M)[1]
    section = re.split(r"^#+ ", section, maxsplit=1, flags=re.M)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Name")]
    return {row.split("|")[1].strip() for row in rows}


@pytest.mark.parametrize(
    "directory", [MODULES / m for m in MODULE_NAMES] + [ENVS / e for e in ENV_NAMES], ids=lambda p: p.name
)
def test_readme_tables_match_inputs_and_outputs(directory):
    readme = directory / "README.md"
    assert readme.is_file(), f"{readme} is missing"
    assert documented_names(readme, "Inputs") == set(named_blocks(directory, "variable"))
    assert documented_names(readme, "Outputs") == set(named_blocks(directory, "output"))


def test_top_readme_documents_the_aws_env():
    readme = INFRA / "README.md"
    assert documented_names(readme, "Inputs") == set(named_blocks(ENVS / "aws", "variable"))
    assert documented_names(readme, "Outputs") == set(named_blocks(ENVS / "aws", "output"))
    text = readme.read_text()
    for section in ("## Cost of the defaults", "## Apply", "## Destroy", "## How this has been verified"):
        assert section in text


TERRAFORM = shutil.which("tofu") or shutil.which("terraform")


@pytest.mark.skipif(TERRAFORM is None, reason="no terraform/tofu binary; make infra-validate covers it elsewhere")
def test_terraform_fmt_is_clean():
    result = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", str(INFRA)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
